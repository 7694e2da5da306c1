/* dryrun.h: deploy -n: what a deploy would do, changing nothing. */
#ifndef DEPLOY_DRYRUN_H
#define DEPLOY_DRYRUN_H

#include <stddef.h>

void say_commits(const char *sha);
int dry_run_deploy(const char *ref, int prepare_only);
#endif
