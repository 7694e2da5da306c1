/*
 * cleanup.c: cleanup of what a killed run left behind.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <signal.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup.h"
#include "child.h"
#include "core.h"
#include "files.h"
#include "history.h"
#include "msg.h"
#include "order.h"
#include "pause.h"
#include "releases.h"
#include "rmtree.h"
#include "root.h"
#include "switch.h"
#include "venvs.h"

static void
end_stale_step(void)
{
	unsigned long long t = 0, now_t;
	long pgid = 0;
	size_t len;
	char *s;
	int i;

	if ((s = read_file_at(statefd, "step", 60, &len, NULL)) == NULL)
		return;
	{
		char *f[2];
		int nf = fields(s, f, 2);

		pgid = nf >= 1 ? strtol(f[0], NULL, 10) : 0;
		t = nf >= 2 ? strtoull(f[1], NULL, 10) : 0;
	}
	free(s);
	/* the leader alive but born later: that number is someone else's */
	now_t = pgid > 1 ? start_time(pgid) : 0;
	if (pgid > 1 && (t == 0 || now_t == 0 || now_t == t) &&
	    kill(-(pid_t)pgid, 0) == 0) {
		say("ending process group %ld left by an interrupted deploy",
		    pgid);
		kill(-(pid_t)pgid, SIGKILL);
		for (i = 0; i < 50 && kill(-(pid_t)pgid, 0) == 0; i++)
			poll(NULL, 0, 20);
	}
	unlinkat(statefd, "step", 0);
}

/*
 * A git killed in the mirror leaves its *.lock files, and every later
 * fetch fails on them. Under our lock no git runs there: remove them.
 */
static int
unlock_refs(int dfd, int depth)
{
	struct dirent *d;
	struct stat st;
	size_t n;
	int fd, count = 0;
	DIR *dp;

	if (depth > 32 || (fd = dup(dfd)) == -1)
		return 0;
	if ((dp = fdopendir(fd)) == NULL) {
		close(fd);
		return 0;
	}
	while ((d = readdir(dp)) != NULL) {
		if (d->d_name[0] == '.' || fstatat(dfd, d->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		n = strlen(d->d_name);
		if (S_ISREG(st.st_mode) && n > 5 &&
		    strcmp(d->d_name + n - 5, ".lock") == 0)
			count += unlinkat(dfd, d->d_name, 0) == 0;
		else if (S_ISDIR(st.st_mode) && depth > 0 &&
		    (fd = openat(dfd, d->d_name, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC)) != -1) {
			count += unlock_refs(fd, depth + 1);
			close(fd);
		}
	}
	closedir(dp);
	return count;
}

static void
unlock_mirror(void)
{
	int gfd, rfd, n;

	if ((gfd = openat(rootfd, "repo", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return;
	n = unlock_refs(gfd, 0);	/* packed-refs.lock, HEAD.lock, ... */
	if ((rfd = openat(gfd, "refs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) != -1) {
		n += unlock_refs(rfd, 1);
		close(rfd);
	}
	close(gfd);
	if (n > 0)
		say("removed %d stale lock file%s in repo/ left by a killed git",
		    n, n == 1 ? "" : "s");
}

/* Virtualenvs a killed run left half built: never reused, so removed. */
static void
remove_incomplete_venvs(void)
{
	struct dirent *d;
	DIR *dp;

	if ((dp = venvs_dir()) == NULL)
		return;
	while ((d = readdir(dp)) != NULL) {
		if (d->d_name[0] == '.' || venv_done(dirfd(dp), d->d_name))
			continue;
		if (remove_in(dirfd(dp), "venvs", d->d_name) == 0)
			say("removed incomplete virtualenv venvs/%s", d->d_name);
	}
	closedir(dp);
}

/*
 * Under the lock, before anything else: end what a killed run left
 * running, remove what it left half made, and finish a switch it left
 * unfinished. Returns that finish's status (EXIT_OK when none).
 */
int
cleanup(int by_hand)
{
	char who[600];
	long cur;
	size_t i;
	int fd;

	end_stale_step();
	unlock_mirror();
	need_current_sane();	/* read again: it may have moved while we waited */
	if (unlinkat(rootfd, TMPLINK, 0) == 0)
		say("removed %s left by an interrupted switch", TMPLINK);
	unlinkat(rootfd, PREVLINK, 0);	/* the same, for previous */
	unlinkat(statefd, "index", 0);
	unlinkat(statefd, "index.lock", 0);	/* a killed read-tree's */
	unlinkat(statefd, "history.tmp", 0);
	remove_in(statefd, STATE, "repo.tmp");
	history_load();
	if (nhist > 512)	/* activations alone never prune: bound it here */
		history_compact();
	scan_releases();
	cur = cur_index();
	if (cur >= 0 && rel[cur].state == R_FOREIGN) {
		/* a live release we did not build (a migrated root) */
		say("adopting the current release %s", cursha);
		history_add(EV_COMPLETE, cursha);
		scan_releases();
	}
	fd = releases_fd(1);
	for (i = 0; fd != -1 && i < nrel; i++) {
		if (rel[i].state != R_INCOMPLETE || strcmp(rel[i].name, cursha) == 0)
			continue;
		if (remove_in(fd, "releases", rel[i].name) == 0) {
			say("removed incomplete release %s", rel[i].name);
			history_forget(rel[i].name);
			history_save();
		} else
			warnx("cannot remove incomplete release %s/releases/%s",
			    root, rel[i].name);
	}
	if (fd != -1)
		close(fd);
	scan_releases();
	remove_incomplete_venvs();
	if (!by_hand && paused_by(who, sizeof(who)) &&
	    faccessat(statefd, "pending", F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		/* finishing it restarts the program: not on our own */
		warnx("a switch is pending and deploy is %s: 'deploy resume' "
		    "or 'deploy activate' finishes it", who);
		return EXIT_LOCKED;
	}
	return finish_pending();
}
