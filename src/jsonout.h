/* jsonout.h: --json output: one field at a time. */
#ifndef DEPLOY_JSONOUT_H
#define DEPLOY_JSONOUT_H

#include <stddef.h>

void json_str(const char *s);
void json_field(const char *name, const char *s, int comma);
void json_time(const char *name, long long t);
#endif
