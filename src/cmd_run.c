/*
 * cmd_run.c: the run command: the app's own process, for supervisord's
 * command= or a unit's ExecStart=. current is resolved once, so the
 * process stays in one release however often current moves; it gets the
 * environment deploy's steps get (the release's .venv/bin first on PATH,
 * VIRTUAL_ENV, the envfile, DEPLOY_*), then deploy execs the command:
 * its pid and signals are the app's own. No lock, no audit.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_run.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "msg.h"
#include "root.h"

/* The release current names: its real path in rreal, its sha in sha. */
static void
current_release(char rreal[PATH_MAX], char sha[65])
{
	char target[PATH_MAX], *p;
	const char *base;
	ssize_t n;

	if ((n = readlinkat(rootfd, "current", target, sizeof(target) - 1)) ==
	    -1)
		die(EXIT_USAGE, "%s/current: %s: no release to run (deploy one "
		    "first)", root, strerror(errno));
	target[n] = '\0';
	base = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
	p = target[0] == '/' ? xstrdup(target) : fmtpath("%s/%s", root, target);
	if (realpath(p, rreal) == NULL)
		die(EXIT_USAGE, "%s/current -> %s: %s: no release to run", root,
		    printable(target), strerror(errno));
	free(p);
	if (!is_sha(base))
		die(EXIT_USAGE, "%s/current -> %s: not a release", root,
		    printable(target));
	copy_sha(sha, base);
}

/* run [--] COMMAND [ARG...]: exec'd in current's release */
int
cmd_run(int argc, char **argv)
{
	char rreal[PATH_MAX], sha[65], *p;
	const char *path = getenv("PATH");
	char **e;
	int err;

	(void)argc;
	current_release(rreal, sha);
	if (chdir(rreal) == -1)
		die(EXIT_USAGE, "%s: %s", rreal, strerror(errno));
	setenv("PWD", rreal, 1);	/* not a PWD= naming current */
	setenv("DEPLOY_ROOT", root, 1);
	setenv("DEPLOY_RELEASE", rreal, 1);
	setenv("DEPLOY_REVISION", sha, 1);
	p = fmtpath("%s/.venv", rreal);
	setenv("VIRTUAL_ENV", p, 1);
	free(p);
	p = fmtpath("%s/.venv/bin:%s", rreal, path ? path : "/usr/bin:/bin");
	setenv("PATH", p, 1);
	free(p);
	unsetenv("PYTHONHOME");
	for (e = envvars; e != NULL && *e != NULL; e++)
		putenv(*e);	/* trusted as for the steps: it may set PATH */
	fflush(NULL);
	execvp(argv[1], argv + 1);
	err = errno;
	warnx("run: %s: %s", printable(argv[1]), strerror(err));
	leave(err == ENOENT ? 127 : 126);
}
