/* cmd_log.h: the log command. */
#ifndef DEPLOY_CMD_LOG_H
#define DEPLOY_CMD_LOG_H

int cmd_log(int argc, char **argv);

#endif
