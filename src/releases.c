/*
 * releases.c: the view of releases/, current and previous.
 *
 * Rule: current is only ever replaced by rename(2) (or swapped with
 * previous by one renameat2), never removed and made again.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#ifndef RENAME_EXCHANGE		/* <linux/fs.h>'s, which musl does not carry */
#define RENAME_EXCHANGE	(1 << 1)
#endif
#endif

#include "releases.h"
#include "core.h"
#include "files.h"
#include "history.h"
#include "msg.h"
#include "order.h"
#include "root.h"
#include "sig.h"

struct release *rel;

size_t nrel;

char cursha[65];		/* current's release, "" when none */

/* The text of the link name under the root, NUL-ended: its length, or
 * -1 (errno). */
static ssize_t
read_link(const char *name, char *buf, size_t len)
{
	ssize_t n = readlinkat(rootfd, name, buf, len - 1);

	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* The release a link's text names ("releases/SHA") into sha: 0, or -1
 * when it names none. */
static int
release_in_link(const char *buf, char sha[65])
{
	if (strncmp(buf, "releases/", 9) != 0 || !is_sha(buf + 9))
		return -1;
	copy_sha(sha, buf + 9);
	return 0;
}

/*
 * The link name under the root made to say target, by rename(2) of a new
 * link tmp over it: it is never missing. 0, 1 tmp could not be made,
 * 2 not renamed (tmp removed); errno says why.
 */
static int
place_link(const char *target, const char *tmp, const char *name)
{
	int e;

	unlinkat(rootfd, tmp, 0);
	if (symlinkat(target, rootfd, tmp) == -1)
		return 1;
	if (renameat(rootfd, tmp, rootfd, name) == -1) {
		e = errno;
		unlinkat(rootfd, tmp, 0);
		errno = e;
		return 2;
	}
	return 0;
}

/* What current is: absent, a link to releases/<sha>, or something else. */
int
read_current(char *why, size_t wl)
{
	char buf[PATH_MAX], sha[65];
	struct stat st;

	cursha[0] = '\0';
	if (fstatat(rootfd, "current", &st, AT_SYMLINK_NOFOLLOW) == -1)
		return CUR_NONE;
	if (S_ISDIR(st.st_mode)) {
		snprintf(why, wl, "%s/current is a directory, not a link: "
		    "mv current releases/<sha> && ln -s releases/<sha> current "
		    "(in %s; deploy then adopts it; see deploy(1), MIGRATING)",
		    root, root);
		return CUR_DIR;
	}
	if (!S_ISLNK(st.st_mode) || read_link("current", buf, sizeof(buf)) == -1) {
		snprintf(why, wl, "%s/current is not a symbolic link", root);
		return CUR_BAD;
	}
	if (buf[0] == '/') {
		/* the post's script links by absolute path: accept one that
		 * resolves to a release of this root */
		char real[PATH_MAX], *want = fmtpath("%s/releases/", root);

		if (realpath(buf, real) != NULL &&
		    strncmp(real, want, strlen(want)) == 0 &&
		    is_sha(real + strlen(want)))
			snprintf(buf, sizeof(buf), "releases/%s",
			    real + strlen(want));
		free(want);
	}
	if (release_in_link(buf, sha) == -1) {
		snprintf(why, wl, "%s/current points to '%s', not to a release "
		    "in %s/releases/: point it at one (ln -s releases/<sha> "
		    "current.new && mv -T current.new current) or remove it",
		    root, buf, root);
		return CUR_BAD;
	}
	if (fstatat(rootfd, buf, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISDIR(st.st_mode)) {
		snprintf(why, wl, "%s/current points to %s, which does not "
		    "exist: point it at a release that does, or remove it and "
		    "deploy", root, buf);
		return CUR_BAD;
	}
	copy_sha(cursha, sha);
	return CUR_OK;
}

/* ROOT/releases, never through a link; -1 only when absent and absent_ok */
int
releases_fd(int absent_ok)
{
	int fd = openat(rootfd, "releases", O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW);

	if (fd == -1 && !(absent_ok && errno == ENOENT))
		die(FAIL_STATUS, "%s/releases: %s", root, strerror(errno));
	return fd;
}

void
scan_releases(void)
{
	char **names = NULL;
	int *isdir = NULL, fd;
	size_t n = 0, i;
	struct dirent *d;
	struct stat st;
	DIR *dp;

	free(rel);
	rel = NULL;
	nrel = 0;
	if ((fd = releases_fd(1)) == -1)
		return;
	if ((dp = fdopendir(fd)) == NULL)
		die(FAIL_STATUS, "%s/releases: %s", root, strerror(errno));
	while ((d = readdir(dp)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		names = xrealloc(names, (n + 1) * sizeof(*names));
		isdir = xrealloc(isdir, (n + 1) * sizeof(*isdir));
		names[n] = xstrdup(d->d_name);
		isdir[n] = fstatat(dirfd(dp), d->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
		n++;
	}
	closedir(dp);
	releases_build(hist, nhist, names, isdir, n, &rel, &nrel);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(isdir);
}

long
cur_index(void)
{
	return cursha[0] ? release_find(rel, nrel, cursha) : -1;
}

/* The release ROOT/previous names, or "" (none, or not a release link). */
static void
read_previous(char sha[65])
{
	char buf[PATH_MAX];

	sha[0] = '\0';
	if (read_link("previous", buf, sizeof(buf)) > 9)
		release_in_link(buf, sha);
}

/*
 * Right before current moves from cursha to sha: previous -> cursha, so
 * that a page the old release rendered (its processes serve until the
 * restart reaches them, and browsers hold its pages after) still finds
 * its assets: nginx looks in current, then in previous. previous moves
 * first, never after: the release leaving is in the pair throughout.
 * When previous already names sha (a switch back, a rollback to it), the
 * two links are swapped by one renameat2(RENAME_EXCHANGE) where the
 * kernel and file system have it, so neither release is missing for an
 * instant: 1, current is switched too. 0: previous set, or nothing to do
 * (no current yet). -1: could not (said so): the switch goes on, since
 * the app itself runs; pages of the old release may miss their assets.
 */
static int
set_previous(const char *sha)
{
	char prev[65], *target;
	int ret = 0;

	if (cursha[0] == '\0' || strcmp(cursha, sha) == 0)
		return 0;
	read_previous(prev);
	target = fmtpath("releases/%s", cursha);
#if defined(__linux__) && defined(SYS_renameat2)
	if (strcmp(prev, sha) == 0) {
		char buf[PATH_MAX];

		/* only a link we wrote: the post's absolute one is rewritten */
		if (read_link("current", buf, sizeof(buf)) > 0 &&
		    strcmp(buf, target) == 0 &&
		    syscall(SYS_renameat2, rootfd, "previous", rootfd, "current",
		    RENAME_EXCHANGE) == 0) {
			free(target);
			return 1;
		}
	}
#endif
	if (place_link(target, PREVLINK, "previous") != 0) {
		warnx("%s/previous: %s: pages that release %.12s rendered may "
		    "miss their assets", root, strerror(errno), cursha);
		ret = -1;
	}
	free(target);
	return ret;
}

/*
 * A switch from sha to current has been finished by this run for a run
 * that did not name previous itself (0098c49's pending record, which
 * knew no previous): previous -> sha, as its switch would have left it.
 */
void
previous_was(const char *sha)
{
	char prev[65], *target;

	read_previous(prev);
	if (sha[0] == '\0' || strcmp(prev, sha) == 0 ||
	    strcmp(sha, cursha) == 0)
		return;
	target = fmtpath("releases/%s", sha);
	if (place_link(target, PREVLINK, "previous") != 0)
		warnx("%s/previous: %s", root, strerror(errno));
	else if (fsync(rootfd) == -1)
		warnx("fsync %s: %s", root, strerror(errno));
	free(target);
}

/* Prune keeps the release previous names: its pages' assets are there. */
size_t
keep_previous(void)
{
	char prev[65];
	long i;

	read_previous(prev);
	if (prev[0] == '\0' || (i = release_find(rel, nrel, prev)) < 0 ||
	    !rel[i].mark)
		return 0;
	rel[i].mark = 0;
	return 1;
}

/* 6. switch: a new link under a temp name, renamed over current */
int
switch_current(const char *sha)
{
	char *target = fmtpath("releases/%s", sha);
	struct stat st;
	int r;

	if (fstatat(rootfd, target, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISDIR(st.st_mode)) {
		warnx("%s/%s is not a release folder: not switching to it", root,
		    target);
		free(target);
		return -1;
	}
	if (set_previous(sha) == 1)
		goto switched;	/* swapped with previous in one step */
	if ((r = place_link(target, TMPLINK, "current")) != 0) {
		if (r == 1)
			warnx("%s/%s: %s", root, TMPLINK, strerror(errno));
		else
			warnx("rename %s over %s/current: %s", TMPLINK, root,
			    strerror(errno));
		free(target);
		return -1;
	}
switched:
	if (fsync(rootfd) == -1)
		warnx("fsync %s: %s", root, strerror(errno));
	snprintf(cursha, sizeof(cursha), "%s", sha);
	free(target);
	return 0;
}

void
need_current_sane(void)
{
	char why[PATH_MAX * 2];
	int c = read_current(why, sizeof(why));

	if (c == CUR_DIR || c == CUR_BAD)
		die(EXIT_USAGE, "%s", why);
}
