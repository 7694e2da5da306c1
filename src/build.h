/* build.h: building a release: links, the revision, build and test, migrate. */
#ifndef DEPLOY_BUILD_H
#define DEPLOY_BUILD_H

#include <stddef.h>
#include "core.h"
#include "order.h"
#include "child.h"

extern int restart_needed;
void build_release(const char *sha);
int step_migrate(const char *sha);
#endif
