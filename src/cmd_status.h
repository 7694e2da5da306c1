/* cmd_status.h: the status command. */
#ifndef DEPLOY_CMD_STATUS_H
#define DEPLOY_CMD_STATUS_H

int cmd_status(int argc, char **argv);

#endif
