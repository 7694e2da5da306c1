/*
 * tail.h: the tail of a step's output: repeated blocks collapsed, free of
 * I/O.
 */
#ifndef DEPLOY_TAIL_H
#define DEPLOY_TAIL_H

#include <stddef.h>

/* One line of a step's output, for collapsing a repeated block. */
struct tline {
	const char	*p;
	size_t		 n;
};
#define TAIL_BLOCK	10	/* lines a repeated block may have */
/* At l[i], the block of lines (its length returned) repeated most often
 * right after it, *reps more times (0: none). */
size_t	tail_block(const struct tline *l, size_t n, size_t i, size_t *reps);
/* The last line among l[0..before) that ends a Python traceback
 * ("SomethingError: ..." after "Traceback (most recent call last):" and
 * its indented frames), or -1: the cause, when it scrolled out. */
long	tail_exception(const struct tline *l, size_t n, size_t before);

#endif
