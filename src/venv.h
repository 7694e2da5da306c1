/* venv.h: the virtualenv of a release: built, shared by key, or derived. */
#ifndef DEPLOY_VENV_H
#define DEPLOY_VENV_H

#include <stddef.h>

void step_venv_pip(const char *sha, const char *rdir);
#endif
