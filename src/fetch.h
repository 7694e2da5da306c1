/* fetch.h: the mirror: fetch, and turning a REF into a commit. */
#ifndef DEPLOY_FETCH_H
#define DEPLOY_FETCH_H

#include <stddef.h>
#include "child.h"

void clone_mirror(const char *url, struct runopts *o);
void step_fetch(void);
int resolve_local(const char *ref, char *sha);
#define RP_OUT	256	/* rev_parse_commit's output */
int rev_parse_commit(const char *spec, char out[RP_OUT], struct result *r);
void resolve(const char *ref, char *sha);
int ls_remote(const char *ref, char *sha, char *gerr, size_t gl);
int mirror_sha(const char *ref, char *sha);
#endif
