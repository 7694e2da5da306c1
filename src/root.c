/*
 * root.c: the deploy root: opened once, its bookkeeping folder made on demand.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "root.h"
#include "core.h"
#include "msg.h"
#include "sig.h"

char *root;		/* absolute, resolved */

int rootfd = -1;

int statefd = -1;

int state_errno;	/* why .deploy/ did not open; 0 when it did */

void
open_root(int create)
{
	char real[PATH_MAX];

	if (create && mkdir(root, 0755) == 0)
		say("created %s", root);
	if (realpath(root, real) == NULL)
		die(EXIT_USAGE, "deploy root %s: %s", root, strerror(errno));
	free(root);
	root = xstrdup(real);
	if ((rootfd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		die(EXIT_USAGE, "deploy root %s: %s", root, strerror(errno));
	statefd = openat(rootfd, STATE, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	state_errno = statefd == -1 ? errno : 0;
}

void
need_state(void)
{
	struct stat st;

	/* 0700: the logs in it hold what build and test print */
	if (statefd == -1 && mkdirat(rootfd, STATE, 0700) == -1 &&
	    errno != EEXIST)
		die(FAIL_STATUS, "%s/%s: %s", root, STATE, strerror(errno));
	if (statefd == -1 && (statefd = openat(rootfd, STATE, O_RDONLY |
	    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		die(FAIL_STATUS, "%s/%s: %s", root, STATE, strerror(errno));
	/* one an older deploy made 0755 */
	if (fstat(statefd, &st) == -1)
		die(FAIL_STATUS, "%s/%s: %s", root, STATE, strerror(errno));
	if (st.st_uid == geteuid() && (st.st_mode & 07777) != 0700 &&
	    fchmod(statefd, 0700) == -1)
		die(FAIL_STATUS, "%s/%s: %s", root, STATE, strerror(errno));
}

/* -C, else $DEPLOY_ROOT, else the parent of the shared/ we were run from */
void
root_find(const char *copt, const char *argv0)
{
	char *dir, real[PATH_MAX], *slash;
	const char *env = getenv("DEPLOY_ROOT");

	if (copt != NULL) {
		root = xstrdup(copt);
		return;
	}
	if (env != NULL && *env != '\0') {
		root = xstrdup(env);
		return;
	}
	if (strchr(argv0, '/') != NULL) {
		dir = xstrdup(argv0);
		*strrchr(dir, '/') = '\0';
		if (realpath(*dir ? dir : "/", real) != NULL &&
		    (slash = strrchr(real, '/')) != NULL &&
		    strcmp(slash + 1, "shared") == 0) {
			*slash = '\0';
			root = xstrdup(*real ? real : "/");
			free(dir);
			return;
		}
		free(dir);
	}
	die(EXIT_USAGE, "no deploy root: use -C DIR, set DEPLOY_ROOT, or run "
	    "the copy in ROOT/shared/");
}
