/* cmd_audit.h: the audit command: the trail shown and checked. */
#ifndef DEPLOY_CMD_AUDIT_H
#define DEPLOY_CMD_AUDIT_H

#include <stddef.h>
#include "core.h"
#include "run.h"

int cmd_audit(const char *arg);
#endif
