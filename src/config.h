/*
 * config.h: loading deploy.conf and the envfile, trusted only when their
 * owner and mode are.
 */
#ifndef DEPLOY_CONFIG_H
#define DEPLOY_CONFIG_H

#include <sys/types.h>
#include "core.h"

extern struct config cfg;
extern char **envvars;
const char *login_name(uid_t uid);
const char *user_name(uid_t uid, char *buf, size_t len);
char *read_trusted(int dfd, const char *name, const char *shown,
    const char *hint, size_t *lenp);
void load_config(const char *path);
const char *config_for_status(void);
#endif
