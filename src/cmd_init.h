/* cmd_init.h: the init command. */
#ifndef DEPLOY_CMD_INIT_H
#define DEPLOY_CMD_INIT_H

int cmd_init_check(int argc, char **argv);
int cmd_init(int argc, char **argv);

#endif
