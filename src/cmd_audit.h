/* cmd_audit.h: the audit command: the trail shown and checked. */
#ifndef DEPLOY_CMD_AUDIT_H
#define DEPLOY_CMD_AUDIT_H

int cmd_audit(int argc, char **argv);

#endif
