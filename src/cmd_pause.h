/* cmd_pause.h: the pause and resume commands. */
#ifndef DEPLOY_CMD_PAUSE_H
#define DEPLOY_CMD_PAUSE_H

int cmd_pause(int argc, char **argv);
int cmd_resume_check(int argc, char **argv);
void cmd_resume(void);

#endif
