/*
 * partial.h: a release being built: removed, and the run ended, when its
 * build fails.
 */
#ifndef DEPLOY_PARTIAL_H
#define DEPLOY_PARTIAL_H

#include <stddef.h>

void fail_build(const char *sha, int status) __attribute__((noreturn));
#endif
