/*
 * partial.c: a release being built: removed, and the run ended, when its
 * build fails; a failed release removed before it is built again. No
 * link is left naming a folder removed here.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "partial.h"
#include "core.h"
#include "files.h"
#include "history.h"
#include "msg.h"
#include "output.h"
#include "releases.h"
#include "rmtree.h"
#include "root.h"

/*
 * A release that failed after its switch is built again from nothing.
 * After its switch back, previous names it (for the pages it rendered):
 * previous goes first, durably, so that it never names a missing folder,
 * during the build or for good when the build fails. Deploying the failed
 * commit again so ends its grace period (issue 29).
 */
void
drop_failed_release(const char *sha)
{
	char buf[PATH_MAX], *link = fmtpath("releases/%s", sha);
	char *abs = fmtpath("%s/%s", root, link);
	ssize_t n;
	int fd;

	say("release %.12s failed after an earlier switch: rebuilding it", sha);
	if (history_add(EV_REMOVE, sha) == -1)
		leave(EXIT_FAILED);
	n = readlinkat(rootfd, "previous", buf, sizeof(buf) - 1);
	buf[n > 0 ? n : 0] = '\0';
	if ((strcmp(buf, link) == 0 || strcmp(buf, abs) == 0) &&
	    (unlinkat(rootfd, "previous", 0) == -1 || fsync(rootfd) == -1))
		die(EXIT_FAILED, "cannot remove %s/previous, which names the "
		    "failed release %.12s: %s; nothing was removed", root, sha,
		    strerror(errno));
	free(abs);
	free(link);
	fd = releases_fd(0);
	if (remove_in(fd, "releases", sha) == -1)
		die(EXIT_FAILED, "cannot remove %s/releases/%s; the next run "
		    "will try again", root, sha);
	close(fd);
	history_forget(sha);
	history_save();
}

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
