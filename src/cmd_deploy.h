/* cmd_deploy.h: the deploy and prepare commands. */
#ifndef DEPLOY_CMD_DEPLOY_H
#define DEPLOY_CMD_DEPLOY_H

#include <stddef.h>
#include "core.h"
#include "order.h"

int cmd_deploy(const char *ref, int prepare_only);
#endif
