/* readroot.h: the commands that only read: what the root must hold for them. */
#ifndef DEPLOY_READROOT_H
#define DEPLOY_READROOT_H

#include <stddef.h>

void need_readable(void);
void need_deploy_root(void);
#endif
