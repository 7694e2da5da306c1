/* prune.h: prune: old releases, logs, venvs and module mirrors. */
#ifndef DEPLOY_PRUNE_H
#define DEPLOY_PRUNE_H

#include <stddef.h>
#include "core.h"
#include "order.h"
#include "child.h"

void do_prune(int asstep);
#endif
