/* cmd_run.h: the run command: the app's own process, in current's release. */
#ifndef DEPLOY_CMD_RUN_H
#define DEPLOY_CMD_RUN_H

int cmd_run(int argc, char **argv);

#endif
