/*
 * cmd_log.c: the log command.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "cmd_log.h"
#include "core.h"
#include "files.h"
#include "history.h"
#include "msg.h"
#include "output.h"
#include "readroot.h"
#include "root.h"

/* The log the last deploy, activate or rollback that ran wrote first,
 * failed or not, into best: after a switch back the newest log is the
 * release switched back to, not the one that failed. */
static void
last_deploy_log(int dfd, char *best, size_t len)
{
	char sha[65], name[80];
	struct stat st;

	lastlog_read(sha);
	snprintf(name, sizeof(name), "%s.log", sha);
	if (sha[0] != '\0' && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode))
		snprintf(best, len, "%s", name);
}

/* log [REV]: a release's log (without REV, the last deploy's); no lock */
int
cmd_log(int argc, char **argv)
{
	const char *rev = argc == 2 ? argv[1] : NULL;
	char best[128] = "", buf[8192];
	long long bestt = -1;
	struct dirent *d;
	struct stat st;
	size_t len = rev ? strlen(rev) : 0;
	int fd, hits = 0;
	ssize_t n;
	DIR *dp;

	need_readable();
	if (statefd == -1 || (fd = openat(statefd, "logs", O_RDONLY |
	    O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) == -1 ||
	    (dp = fdopendir(fd)) == NULL)
		die(EXIT_USAGE, "%s/%s/logs: no logs yet", root, STATE);
	while ((d = readdir(dp)) != NULL) {
		size_t l = strlen(d->d_name);

		if (l < 5 || l >= sizeof(best) || strcmp(d->d_name + l - 4,
		    ".log") != 0 || (rev && strncmp(d->d_name, rev, len) != 0) ||
		    fstatat(dirfd(dp), d->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISREG(st.st_mode))
			continue;
		hits++;
		if ((long long)st.st_mtime > bestt) {
			bestt = (long long)st.st_mtime;
			memcpy(best, d->d_name, l + 1);	/* l < sizeof(best) */
		}
	}
	if (rev == NULL)
		last_deploy_log(dirfd(dp), best, sizeof(best));
	if (rev && hits > 1)
		die(EXIT_USAGE, "REV '%s' is ambiguous: give more digits",
		    printable(rev));
	if (best[0] == '\0')
		die(EXIT_USAGE, "no log %s%sin %s/%s/logs", rev ? "of " : "",
		    rev ? printable(rev) : "", root, STATE);
	if ((fd = openat(dirfd(dp), best, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		die(EXIT_USAGE, "%s/%s/logs/%s: %s", root, STATE, best,
		    strerror(errno));
	closedir(dp);
	fflush(stdout);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		put_output(stdout, buf, (size_t)n);
		if (ferror(stdout))
			break;
	}
	fflush(stdout);
	close(fd);
	return EXIT_OK;
}
