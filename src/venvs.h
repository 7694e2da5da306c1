/* venvs.h: the shared venvs/ folder: keys, records of how each was built. */
#ifndef DEPLOY_VENVS_H
#define DEPLOY_VENVS_H

#include <dirent.h>
#include <stddef.h>

#define VREC	".deploy-built"	/* in venvs/KEY: built with what, from what */
DIR *venvs_dir(void);
void python_id(unsigned long long *h);
int venv_done(int vfd, const char *key);
void mark_venv_done(const char *key, const char *rec, size_t n);
#endif
