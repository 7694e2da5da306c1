/* cmd_activate.h: the activate, rollback and migrate commands. */
#ifndef DEPLOY_CMD_ACTIVATE_H
#define DEPLOY_CMD_ACTIVATE_H

#include <stddef.h>
#include "core.h"
#include "order.h"

int cmd_activate(const char *rev, int rollback);
int cmd_migrate(const char *rev);
#endif
