/* tree.h: the whole tree: checkout, submodules and Git LFS content. */
#ifndef DEPLOY_TREE_H
#define DEPLOY_TREE_H

#include <stddef.h>

void checkout_tree(const char *sha, const char *rdir);
#endif
