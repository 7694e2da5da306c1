/* build.h: building a release: links, the revision, build and test, migrate. */
#ifndef DEPLOY_BUILD_H
#define DEPLOY_BUILD_H

#include <stddef.h>

void build_release(const char *sha, int will_switch);
int step_migrate(const char *sha, int skip);
#endif
