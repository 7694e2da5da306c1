/* cmd_init.h: the init command. */
#ifndef DEPLOY_CMD_INIT_H
#define DEPLOY_CMD_INIT_H

#include <stddef.h>
#include "core.h"
#include "sig.h"
#include "child.h"

int cmd_init(int argc, char **argv);
#endif
