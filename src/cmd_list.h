/* cmd_list.h: the list command. */
#ifndef DEPLOY_CMD_LIST_H
#define DEPLOY_CMD_LIST_H

#include <stddef.h>
#include "core.h"
#include "order.h"

int cmd_list(void);
#endif
