/* derive.h: a new venv derived from the most similar one. */
#ifndef DEPLOY_DERIVE_H
#define DEPLOY_DERIVE_H

#include <stddef.h>
#include "child.h"
#include "copytree.h"

#define DERIVE_MAX	(1 << 20)	/* requirements compared line by line */
void norm_name(char *s);
char **venv_dists(const char *vpath, char *why, size_t wl);
char *venv_seeds(const char *vpath);
char *venv_record(unsigned long long base, const char *seeds, const char *reqs,
    size_t len, size_t *n);
int derive_source(int vfd, unsigned long long base, const char *reqs,
    size_t len, const char *key, char src[17], char **seeds);
void step_ok_derived(const char *src);
char **venv_pip(const char *vpath, ...);
char **venv_gone(char **v, size_t *n, char **have, char **want);
int derive_copy(int vfd, const char *src, const char *key, struct vcopy *c,
    char *why, size_t wl);
int derive_pip(const char *vpath, const char *reqpath, const char *seeds,
    struct runopts *o, char *why, size_t wl);
#endif
