/* cmd_list.h: the list command. */
#ifndef DEPLOY_CMD_LIST_H
#define DEPLOY_CMD_LIST_H

int cmd_list(int argc, char **argv);

#endif
