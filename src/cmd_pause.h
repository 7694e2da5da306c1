/* cmd_pause.h: the pause and resume commands. */
#ifndef DEPLOY_CMD_PAUSE_H
#define DEPLOY_CMD_PAUSE_H

#include <stddef.h>
#include "core.h"
#include "run.h"
#include "sig.h"
#include "pause.h"

int cmd_pause(int argc, char **argv);
int cmd_resume(void);
#endif
