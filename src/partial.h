/*
 * partial.h: a release being built: removed, and the run ended, when its
 * build fails; a failed release removed before it is built again.
 */
#ifndef DEPLOY_PARTIAL_H
#define DEPLOY_PARTIAL_H

#include <stddef.h>

void fail_build(const char *sha, int status) __attribute__((noreturn));
void drop_failed_release(const char *sha);
#endif
