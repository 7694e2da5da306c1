/* notify.h: notify: the command told after a deploy, activate or rollback. */
#ifndef DEPLOY_NOTIFY_H
#define DEPLOY_NOTIFY_H

#include <stddef.h>

void run_notify(int status);
#endif
