/* deps.h: how a commit's dependencies are installed, read from its tree. */
#ifndef DEPLOY_DEPS_H
#define DEPLOY_DEPS_H

/* DEPS_REQUIREMENTS, DEPS_POETRY or DEPS_NONE (core.h); refuses, exit 2,
 * what cannot be installed as declared. gd: "--git-dir=..." */
int deps_way(const char *gd, const char *sha);
#endif
