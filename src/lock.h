/* lock.h: the lock: one run at a time per root. */
#ifndef DEPLOY_LOCK_H
#define DEPLOY_LOCK_H

#include <stddef.h>

int lock_held(int fd, long *pid, long long *t, char *what, size_t wl);
void lock_root(const char *what);
#endif
