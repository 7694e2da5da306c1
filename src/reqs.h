/* reqs.h: reading requirements files and pip's output, free of I/O. */
#ifndef DEPLOY_REQS_H
#define DEPLOY_REQS_H

#include <stddef.h>

/* The requirement in the line [*l, *e): pip's comment ('#' at the start
 * or after a blank) and the blanks around it cut off, *l == *e when
 * nothing is left. */
void	reqs_trim(const char **l, const char **e);

/* Whether a requirements file may share a venv keyed by its bytes: every
 * line blank, a comment, a plain requirement or an option naming no
 * local path. */
int	reqs_shareable(const char *buf, size_t len);
/* Whether a poetry.lock (buf, len) names only packages an index gives:
 * no folder, file or URL source and nothing installed for development. */
int	lock_shareable(const char *buf, size_t len);

/* Whether pip's output (buf, len) says it failed for a reason a venv
 * built from nothing would meet too: what it is, or NULL. */
const char *pip_lasting(const char *buf, size_t len);

/*
 * Whether a requirements file may share a venv keyed by its bytes: an
 * allow-list, since pip reads many things as local paths (vendor/lib,
 * x-1.0-py3-none-any.whl, --find-links dir, -r other.txt, ${VAR}) whose
 * contents the key cannot see. Anything not understood is not shareable.
 */
#define RQ_WS(c)	((c) == ' ' || (c) == '\t' || (c) == '\r' || \
			    (c) == '\f' || (c) == '\v')

#define RQ_ALNUM(c)	(((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && \
			    (c) <= 'Z') || ((c) >= '0' && (c) <= '9'))

#endif
