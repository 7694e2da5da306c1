/* rmtree.h: removing a tree: descriptor-relative, never following a link. */
#ifndef DEPLOY_RMTREE_H
#define DEPLOY_RMTREE_H

#include <stddef.h>

int open_dir_at(int dfd, const char *name);
int remove_tree(int dfd, const char *name, const char *where);
int remove_in(int dfd, const char *dir, const char *name);
#endif
