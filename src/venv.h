/* venv.h: the virtualenv of a release: built, shared by key, or derived. */
#ifndef DEPLOY_VENV_H
#define DEPLOY_VENV_H

#include <stddef.h>

/* way: DEPS_REQUIREMENTS, DEPS_POETRY or DEPS_NONE (core.h) */
void step_venv_pip(const char *sha, const char *rdir, int way);
#endif
