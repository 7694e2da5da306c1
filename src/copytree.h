/* copytree.h: copying a venv's tree, its absolute paths rewritten. */
#ifndef DEPLOY_COPYTREE_H
#define DEPLOY_COPYTREE_H

#include <limits.h>
#include <stddef.h>

struct vcopy {
	const char	*from, *to;	/* the old venv's absolute path, the new */
	size_t		 fromlen, tolen;
	char		 why[PATH_MAX + 128];
	double		 rewrite;	/* seconds finding and writing the path */
	size_t		 nrewrit;	/* files rewritten */
};

int copy_tree(int sfd, int dfd, const char *relp, struct vcopy *c);
#endif
