/* cmd_deploy.h: the deploy and prepare commands. */
#ifndef DEPLOY_CMD_DEPLOY_H
#define DEPLOY_CMD_DEPLOY_H

int cmd_deploy_check(int argc, char **argv);
int cmd_deploy(int argc, char **argv);

#endif
