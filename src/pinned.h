/* pinned.h: the pinned fast path: no resolver when the file is the set. */
#ifndef DEPLOY_PINNED_H
#define DEPLOY_PINNED_H

#include <stddef.h>
#include "child.h"
#include "copytree.h"

#define REQS_MAX	(64 << 20)	/* bytes of requirements a key covers */
int derive_pinned(const struct vcopy *c, const char *buf, size_t len,
    const char *seeds, struct runopts *o, char *why, size_t wl);
#endif
