/* restart.h: restarting the program and checking it. */
#ifndef DEPLOY_RESTART_H
#define DEPLOY_RESTART_H

#include <stddef.h>

int step_restart(const char *sha, int back);
int step_check(const char *sha);
extern char failed_member[256];
extern char restart_why[];
#endif
