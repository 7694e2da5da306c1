/*
 * tail.c: the tail of a step's output: repeated blocks collapsed, free of I/O.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <string.h>

#include "tail.h"

static int
tline_eq(const struct tline *a, const struct tline *b)
{
	return a->n == b->n && memcmp(a->p, b->p, a->n) == 0;
}

size_t
tail_block(const struct tline *l, size_t n, size_t i, size_t *reps)
{
	size_t p, r, j, best = 1, bestr = 0;

	for (p = 1; p <= TAIL_BLOCK && i + 2 * p <= n; p++) {
		for (r = 0; i + (r + 2) * p <= n; r++) {
			for (j = 0; j < p && tline_eq(&l[i + j],
			    &l[i + (r + 1) * p + j]); j++)
				;
			if (j < p)
				break;
		}
		if (p * r > best * bestr) {
			best = p;
			bestr = r;
		}
	}
	*reps = bestr;
	return best;
}
