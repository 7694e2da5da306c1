/* preflight.h: preflight: setup mistakes caught before anything is fetched. */
#ifndef DEPLOY_PREFLIGHT_H
#define DEPLOY_PREFLIGHT_H

#include <stddef.h>

extern int preflight_failed;
void preflight_result(const char *what, const char *why);
int release_command_ok(const char *key, const char *cmd, const char *sha,
    char *why, size_t wl);
void need_restart_command(const char *sha);
void preflight(int build, int switching);
#endif
