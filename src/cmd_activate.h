/* cmd_activate.h: the activate, rollback and migrate commands. */
#ifndef DEPLOY_CMD_ACTIVATE_H
#define DEPLOY_CMD_ACTIVATE_H

int cmd_activate_check(int argc, char **argv);
int cmd_activate(int argc, char **argv);
int cmd_migrate_check(int argc, char **argv);
int cmd_migrate(int argc, char **argv);

#endif
