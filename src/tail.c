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

static int
starts(const struct tline *l, const char *s)
{
	size_t n = strlen(s);

	return l->n >= n && memcmp(l->p, s, n) == 0;
}

/* "Name: message" or "Name", Name a dotted Python identifier: how a
 * traceback ends. */
static int
exception_line(const struct tline *l)
{
	size_t i;
	char c;

	if (l->n == 0 || !(l->p[0] == '_' || (l->p[0] >= 'A' &&
	    l->p[0] <= 'Z') || (l->p[0] >= 'a' && l->p[0] <= 'z')))
		return 0;
	for (i = 1; i < l->n; i++) {
		c = l->p[i];
		if (c == ':')
			return i + 1 == l->n || l->p[i + 1] == ' ';
		if (!(c == '_' || c == '.' || (c >= '0' && c <= '9') ||
		    (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
			return 0;
	}
	return 1;
}

long
tail_exception(const struct tline *l, size_t n, size_t before)
{
	size_t i;
	long last = -1;
	int in_tb = 0;

	for (i = 0; i < n && i < before; i++) {
		if (starts(&l[i], "Traceback (most recent call last):"))
			in_tb = 1;
		else if (in_tb && !starts(&l[i], " ")) {
			if (exception_line(&l[i]))
				last = (long)i;
			in_tb = 0;
		}
	}
	return last;
}
