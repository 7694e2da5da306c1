/*
 * msg.h: messages: warnx, die and say, and the exit hook the runner
 * installs.
 */
#ifndef DEPLOY_MSG_H
#define DEPLOY_MSG_H

#include <stddef.h>

/* The runner's way out (audit, notify), installed once by main; leave()
 * calls it, or exits plainly when none is installed. */
void	msg_on_leave(void (*)(int));
void	msg_quiet(int on);
void	leave(int) __attribute__((noreturn));

void warnx(const char *fmt, ...);
void die(int status, const char *fmt, ...) __attribute__((noreturn));
void say(const char *fmt, ...);
#endif
