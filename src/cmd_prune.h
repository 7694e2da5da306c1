/* cmd_prune.h: the prune command. */
#ifndef DEPLOY_CMD_PRUNE_H
#define DEPLOY_CMD_PRUNE_H

#include <stddef.h>
#include "core.h"

int cmd_prune(void);
#endif
