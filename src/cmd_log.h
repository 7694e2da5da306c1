/* cmd_log.h: the log command. */
#ifndef DEPLOY_CMD_LOG_H
#define DEPLOY_CMD_LOG_H

#include <stddef.h>
#include "core.h"
#include "run.h"

int cmd_log(const char *rev);
#endif
