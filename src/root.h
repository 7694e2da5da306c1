/*
 * root.h: the deploy root: opened once, its bookkeeping folder made on
 * demand.
 */
#ifndef DEPLOY_ROOT_H
#define DEPLOY_ROOT_H

#include <stddef.h>

#define STATE	".deploy"		/* bookkeeping folder under the root */

extern char *root;
extern int rootfd;
extern int statefd;
extern int state_errno;
void open_root(int create);
void need_state(void);
void root_find(const char *copt, const char *argv0);
#endif
