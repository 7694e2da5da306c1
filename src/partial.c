/*
 * partial.c: a release being built: removed, and the run ended, when its
 * build fails.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <unistd.h>

#include "partial.h"
#include "core.h"
#include "history.h"
#include "msg.h"
#include "output.h"
#include "releases.h"
#include "rmtree.h"
#include "root.h"

void
fail_build(const char *sha, int status)
{
	int fd = releases_fd(0);

	if (remove_in(fd, "releases", sha) == -1)
		warnx("could not remove all of %s/releases/%s: the next run "
		    "will try again", root, sha);
	else {
		history_forget(sha);
		history_save();
	}
	close(fd);
	if (status == EXIT_FAILED)
		warnx("deploy of %.12s failed before the switch; current is "
		    "unchanged", sha);
	else if (status > 128)
		warnx("interrupted by signal %d; removed the partial release "
		    "%.12s; current is unchanged", status - 128, sha);
	else
		warnx("refused %.12s before anything was built; removed the "
		    "partial release; current is unchanged", sha);
	if (logfd != -1 && status == EXIT_FAILED)
		warnx("full output: %s/%s/logs/%s.log", root, STATE, sha);
	/* current stays, and the runner's way out makes sure it runs: a
	 * broken head must not keep a rebooted site down */
	leave(status);
}
