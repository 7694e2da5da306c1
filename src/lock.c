/*
 * lock.c: the lock: one run at a time per root.
 *
 * Rule: one deploy at a time per root, an fcntl lock that dies with its
 * holder, taken before anything under the root changes.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lock.h"
#include "cmdline.h"
#include "core.h"
#include "files.h"
#include "msg.h"
#include "root.h"
#include "sig.h"

static int lockfd = -1;

/* The lock's holder, when a run holds fd's lock: 1 and its pid, since
 * when, and its command (the lock file's "pid P started T COMMAND"). */
int
lock_held(int fd, long *pid, long long *t, char *what, size_t wl)
{
	char buf[256], *f[5];
	struct flock fl;
	int n;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fd == -1 || fcntl(fd, F_GETLK, &fl) == -1 || fl.l_type == F_UNLCK)
		return 0;
	n = (int)pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	snprintf(what, wl, "?");
	*t = 0;
	if (fields(buf, f, 5) == 5 && strcmp(f[2], "started") == 0) {
		*t = strtoll(f[3], NULL, 10);
		snprintf(what, wl, "%s", f[4]);
	}
	*pid = (long)fl.l_pid;
	return 1;
}

/* "pid P (COMMAND, since LOCAL TIME)" of the lock's holder */
static const char *
lock_holder(void)
{
	static char desc[160];
	char what[64] = "?";
	long long t = 0;
	long pid = 0;

	lock_held(lockfd, &pid, &t, what, sizeof(what));
	snprintf(desc, sizeof(desc), "pid %ld (%s, since %s)", pid, what,
	    fmttime(t));
	return desc;
}

void
lock_root(const char *what)
{
	struct flock fl;
	double end = now() + options->wait;
	char buf[256];
	int n, said = 0;

	if ((lockfd = openat(statefd, "lock", O_RDWR | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0644)) == -1)
		die(FAIL_STATUS, "%s/%s/lock: %s", root, STATE, strerror(errno));
	for (;;) {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (fcntl(lockfd, F_SETLK, &fl) == 0)
			break;
		if (errno != EACCES && errno != EAGAIN)
			die(FAIL_STATUS, "lock %s/%s/lock: %s", root, STATE,
			    strerror(errno));
		if (now() < end && !gotsig) {
			if (!said++)
				say("waiting up to %lds for the deploy that holds "
				    "the lock on %s: %s", options->wait, root, lock_holder());
			poll(NULL, 0, 100);
			continue;
		}
		if (gotsig)
			leave(128 + gotsig);
		die(EXIT_LOCKED, "another deploy holds the lock on %s: %s%s", root,
		    lock_holder(), options->wait ? "; gave up waiting" :
		    "; use -w SECONDS to wait for it");
	}
	n = snprintf(buf, sizeof(buf), "pid %ld started %lld %s\n",
	    (long)getpid(), (long long)time(NULL), what);
	if (ftruncate(lockfd, 0) == -1 || pwrite(lockfd, buf, (size_t)n, 0) != n)
		warnx("%s/%s/lock: cannot record holder: %s", root, STATE,
		    strerror(errno));
}
