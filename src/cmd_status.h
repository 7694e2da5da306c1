/* cmd_status.h: the status command. */
#ifndef DEPLOY_CMD_STATUS_H
#define DEPLOY_CMD_STATUS_H

#include <stddef.h>
#include "core.h"
#include "order.h"
#include "releases.h"

int cmd_status(void);
#endif
