/* prune.h: prune: old releases, logs, venvs and module mirrors. */
#ifndef DEPLOY_PRUNE_H
#define DEPLOY_PRUNE_H

#include <stddef.h>

void do_prune(int asstep);
int cmd_prune(int argc, char **argv);
#endif
