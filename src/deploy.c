/*
 * deploy.c: the rest of the program, on its way to files of its own.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE		/* d_type, so a tree walk needs no stat per entry */

#include <ctype.h>
#include <dirent.h>
#include <ftw.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#ifndef FICLONE
#define FICLONE	_IOW(0x94, 9, int)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE	(1 << 1)
#endif
#endif

#include "core.h"
#include "order.h"
#include "reqs.h"
#include "sha256.h"
#include "json.h"
#include "run.h"
#include "msg.h"
#include "files.h"
#include "jsonout.h"
#include "sig.h"
#include "root.h"
#include "report.h"
#include "config.h"
#include "history.h"
#include "output.h"
#include "child.h"
#include "lock.h"

#define SETTLE	1			/* seconds a restarted program must stay up */

static void
copy_sha(char dst[65], const char *src)
{
	size_t n = strlen(src);

	if (n > 64)
		n = 64;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static struct release *rel;

static size_t nrel;

static char cursha[65];		/* current's release, "" when none */

enum { CUR_NONE, CUR_OK, CUR_DIR, CUR_BAD };

/* What current is: absent, a link to releases/<sha>, or something else. */
static int
read_current(char *why, size_t wl)
{
	char buf[PATH_MAX];
	struct stat st;
	ssize_t n;

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
	if (!S_ISLNK(st.st_mode) ||
	    (n = readlinkat(rootfd, "current", buf, sizeof(buf) - 1)) == -1) {
		snprintf(why, wl, "%s/current is not a symbolic link", root);
		return CUR_BAD;
	}
	buf[n] = '\0';
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
	if (strncmp(buf, "releases/", 9) != 0 || !is_sha(buf + 9)) {
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
	copy_sha(cursha, buf + 9);
	return CUR_OK;
}

/* ROOT/releases, never through a link; -1 only when absent and absent_ok */
static int
releases_fd(int absent_ok)
{
	int fd = openat(rootfd, "releases", O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW);

	if (fd == -1 && !(absent_ok && errno == ENOENT))
		die(FAIL_STATUS, "%s/releases: %s", root, strerror(errno));
	return fd;
}

static void
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

static long
cur_index(void)
{
	return cursha[0] ? release_find(rel, nrel, cursha) : -1;
}

struct frame {
	char	**subs;
	size_t	  nsub, i;
	char	 *name;
	dev_t	  dev;
	ino_t	  ino;
};

static int
open_dir_at(int dfd, const char *name)
{
	int fd;

	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 && errno == EACCES &&
	    fchmodat(dfd, name, 0700, 0) == 0)	/* a mode 000 folder of ours */
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	return fd;
}

/* Removes the files of the folder fd, keeps its subfolders' names in f. */
static int
scan_dir(int fd, struct frame *f, dev_t dev)
{
	char **files = NULL;
	size_t nf = 0, i;
	struct dirent *d;
	struct stat st;
	int dfd, errs = 0, isdir;
	DIR *dp;

	f->subs = NULL;
	f->nsub = f->i = 0;
	/* a folder a build made read-only (chmod -R a-w) cannot be emptied
	 * as it is: make it ours to change first (root needs no such help) */
	if (fstat(fd, &st) == 0 && (st.st_mode & S_IRWXU) != S_IRWXU)
		(void)fchmod(fd, (st.st_mode & 07777) | S_IRWXU);
	if ((dfd = dup(fd)) == -1 || (dp = fdopendir(dfd)) == NULL) {
		if (dfd != -1)
			close(dfd);
		return 1;
	}
	while ((d = readdir(dp)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
#ifdef DT_DIR
		if (d->d_type != DT_UNKNOWN)
			isdir = d->d_type == DT_DIR;
		else
#endif
		isdir = fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode);
		if (isdir) {
			f->subs = xrealloc(f->subs, (f->nsub + 1) * sizeof(char *));
			f->subs[f->nsub++] = xstrdup(d->d_name);
		} else {
			files = xrealloc(files, (nf + 1) * sizeof(char *));
			files[nf++] = xstrdup(d->d_name);
		}
	}
	closedir(dp);
	(void)dev;
	for (i = 0; i < nf; i++) {
		if (unlinkat(fd, files[i], 0) == -1 && errno != ENOENT)
			errs++;
		free(files[i]);
	}
	free(files);
	return errs;
}

static void
frame_free(struct frame *f)
{
	size_t i;

	for (i = 0; i < f->nsub; i++)
		free(f->subs[i]);
	free(f->subs);
	free(f->name);
}

/*
 * Whether anything is mounted at or below path (a bind mount of the same
 * file system has the same st_dev, so st_dev alone cannot tell). Linux
 * lists mounts in /proc/self/mountinfo; elsewhere st_dev is the guard.
 */
static int
mounted_under(const char *path)
{
	char line[8192], mp[PATH_MAX], *p, *q;
	size_t n = strlen(path);
	int found = 0, f;
	FILE *fp;

	if ((fp = fopen("/proc/self/mountinfo", "re")) == NULL &&
	    (fp = fopen("/proc/self/mountinfo", "r")) == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		/* the fifth field, with spaces and such as \\ooo */
		for (p = line, f = 1; f < 5 && p != NULL; f++)
			if ((p = strchr(p, ' ')) != NULL)
				p++;
		if (p == NULL)
			continue;
		for (q = mp; *p && *p != ' ' && q < mp + sizeof(mp) - 1; p++) {
			if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' &&
			    p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
				*q++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 +
				    (p[3] - '0'));
				p += 3;
			} else
				*q++ = *p;
		}
		*q = '\0';
		found = strncmp(mp, path, n) == 0 && (mp[n] == '/' || mp[n] == '\0');
	}
	fclose(fp);
	return found;
}

/*
 * Removes dfd/name and all below it, holding one descriptor at a time so
 * that any depth works; climbs back with ".." and checks it is the folder
 * it came from. Never crosses into another file system.
 */
static int
remove_tree(int dfd, const char *name, const char *where)
{
	struct frame *st = NULL;
	size_t depth = 0;
	struct stat sb;
	int fd, cfd, up, errs = 0;
	dev_t dev;

	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    strchr(name, '/') != NULL || *name == '\0')
		return -1;
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(sb.st_mode))
		return unlinkat(dfd, name, 0);
	if (where != NULL && mounted_under(where)) {
		warnx("%s has a file system mounted in it: not removing it; "
		    "unmount it first", where);
		return -1;
	}
	if ((fd = open_dir_at(dfd, name)) == -1 || fstat(fd, &sb) == -1)
		return -1;
	dev = sb.st_dev;
	st = xrealloc(NULL, sizeof(*st));
	st[0].name = xstrdup(name);
	st[0].dev = sb.st_dev;
	st[0].ino = sb.st_ino;
	errs += scan_dir(fd, &st[0], dev);
	depth = 1;
	while (depth > 0) {
		struct frame *f = &st[depth - 1];

		if (f->i < f->nsub) {
			const char *child = f->subs[f->i++];

			if ((cfd = open_dir_at(fd, child)) == -1) {
				errs++;
				continue;
			}
			if (fstat(cfd, &sb) == -1 || sb.st_dev != dev) {
				close(cfd);	/* a mount point: leave it */
				errs++;
				continue;
			}
			close(fd);
			fd = cfd;
			st = xrealloc(st, (depth + 1) * sizeof(*st));
			f = &st[depth++];
			f->name = xstrdup(child);
			f->dev = sb.st_dev;
			f->ino = sb.st_ino;
			errs += scan_dir(fd, f, dev);
			continue;
		}
		if (depth == 1) {
			close(fd);
			fd = -1;
			if (unlinkat(dfd, f->name, AT_REMOVEDIR) == -1)
				errs++;
			frame_free(f);
			depth--;
			break;
		}
		up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (up == -1 || fstat(up, &sb) == -1 ||
		    sb.st_dev != st[depth - 2].dev ||
		    sb.st_ino != st[depth - 2].ino) {
			/* the tree moved under us: stop rather than guess */
			if (up != -1)
				close(up);
			errs++;
			break;
		}
		close(fd);
		fd = up;
		if (unlinkat(fd, f->name, AT_REMOVEDIR) == -1)
			errs++;
		frame_free(f);
		depth--;
	}
	while (depth > 0)
		frame_free(&st[--depth]);
	if (fd != -1)
		close(fd);
	free(st);
	return errs ? -1 : 0;
}

/* remove_tree of ROOT/dir/name, dfd being that dir */
static int
remove_in(int dfd, const char *dir, const char *name)
{
	char *where = fmtpath("%s/%s/%s", root, dir, name);
	int r = remove_tree(dfd, name, where);

	free(where);
	return r;
}

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

/* ROOT/venvs to read, never through a link; NULL when absent */
static DIR *
venvs_dir(void)
{
	DIR *dp;
	int fd;

	if ((fd = openat(rootfd, "venvs", O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) == -1)
		return NULL;
	if ((dp = fdopendir(fd)) == NULL)
		close(fd);
	return dp;
}

static int venv_done(int vfd, const char *key);

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

static int finish_pending(void);
static void need_current_sane(void);
static int paused_by(char *who, size_t wl);

/*
 * Under the lock, before anything else: end what a killed run left
 * running, remove what it left half made, and finish a switch it left
 * unfinished. Returns that finish's status (EXIT_OK when none).
 */
static int
cleanup(void)
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
	if (!byhand && paused_by(who, sizeof(who)) &&
	    faccessat(statefd, "pending", F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		/* finishing it restarts the program: not on our own */
		warnx("a switch is pending and deploy is %s: 'deploy resume' "
		    "or 'deploy activate' finishes it", who);
		return EXIT_LOCKED;
	}
	return finish_pending();
}

/*
 * supervisorctl says what went wrong in its own terms (a Python exception,
 * "no such process"); these turn the common ones into what the admin
 * should change.
 */

/* supervisorctl's "error: <class 'PermissionError'>, [Errno 13] ..." */
static int
sv_denied(const char *out)
{
	return strstr(out, "PermissionError") != NULL ||
	    strstr(out, "Permission denied") != NULL;
}

static void
sv_denied_why(char *why, size_t wl)
{
	char me[64];

	snprintf(why, wl, "the user running deploy (uid %ld, %s) may not use "
	    "supervisord's socket (permission denied): give it that user or "
	    "group with chown=USER:GROUP and chmod=0770 under "
	    "[unix_http_server] in supervisord.conf, then restart supervisord",
	    (long)geteuid(), user_name(geteuid(), me, sizeof(me)));
}

/* Levenshtein distance, for names up to 63 bytes; 99 for longer ones */
static int
distance(const char *a, const char *b)
{
	int d[64][64];
	size_t i, j, la = strlen(a), lb = strlen(b);

	if (la >= 64 || lb >= 64)
		return 99;
	for (i = 0; i <= la; i++)
		d[i][0] = (int)i;
	for (j = 0; j <= lb; j++)
		d[0][j] = (int)j;
	for (i = 1; i <= la; i++)
		for (j = 1; j <= lb; j++) {
			int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			d[i][j] = best;
		}
	return d[la][lb];
}

/*
 * For a program supervisord does not know: the names it knows that are
 * close to it (same group, or a letter or two away), and what to write
 * instead ("web:*" for the processes of group web). "" when none is.
 */
static void
close_programs(char *buf, size_t bl)
{
	struct runopts o = opts("/", ENV_NONE, NULL, NULL);
	char out[16384], *line, *save, name[256], want[256], mean[600] = "";
	char **argv, *colon;
	size_t n = 0, shown = 0;
	struct result r;
	int far;

	snprintf(want, sizeof(want), "%s", cfg.program);
	want[strcspn(want, ":")] = '\0';	/* "web:*", "web:x": web */
	far = strlen(want) < 5 ? 1 : 2;
	argv = words_plus(cfg.supervisorctl, "status", (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	o.timeout = 30;
	out[0] = '\0';
	run(argv, &o, &r);	/* non-zero when some are not running */
	free_words(argv);
	buf[0] = '\0';
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char grp[256], sug[260];
		int k;

		if (two_words(line, name, sizeof(name), NULL, 0) < 1)
			continue;
		snprintf(grp, sizeof(grp), "%s", name);
		if ((colon = strchr(grp, ':')) != NULL)
			*colon = '\0';
		/* a typo: two edits away, one for a short name */
		if (strcmp(grp, want) != 0 && distance(grp, want) > far &&
		    distance(name, cfg.program) > far)
			continue;
		if (shown++ < 6 && n < bl) {
			k = snprintf(buf + n, bl - n, "%s%s", n ? ", " : "",
			    printable(name));
			n = k < 0 ? bl : n + (size_t)k;
		}
		if (colon != NULL)
			snprintf(sug, sizeof(sug), "%s:*", grp);
		else
			snprintf(sug, sizeof(sug), "%s", name);
		if (strcmp(sug, cfg.program) != 0 && strstr(mean, sug) == NULL &&
		    strlen(mean) + strlen(sug) + 5 < sizeof(mean))
			snprintf(mean + strlen(mean), sizeof(mean) - strlen(mean),
			    "%s%s", mean[0] ? " or " : "", printable(sug));
	}
	if (shown > 6 && n < bl)
		snprintf(buf + n, bl - n, " and %zu more", shown - 6);
	n = strlen(buf);
	if (n > 0 && mean[0] && n < bl &&
	    snprintf(buf + n, bl - n, " -> did you mean %s?", mean) < 0)
		buf[n] = '\0';
}

/*
 * Cheap checks of what a deploy will need, so that a misspelled program or
 * a missing command is refused (exit 2, nothing changed) instead of
 * costing a built release that then fails its restart. With -n each one
 * is reported.
 */
static int preflight_failed;

static void
preflight_result(const char *what, const char *why)
{
	if (why == NULL) {
		if (nflag)
			say("preflight: %s: ok", what);
		return;
	}
	if (!nflag)
		die(EXIT_USAGE, "%s: %s; nothing was changed", what, why);
	warnx("preflight: %s: %s", what, why);
	preflight_failed = 1;
}

static void
preflight_command(const char *key, const char *cmd)
{
	char **w = words(cmd), found[PATH_MAX], what[64], why[PATH_MAX + 64];

	snprintf(what, sizeof(what), "%s command", key);
	why[0] = '\0';
	if (strchr(w[0], '/') != NULL && w[0][0] != '/')
		;	/* relative to the release: not there yet */
	else if (strcmp(key, "restart") == 0 && strchr(w[0], '/') == NULL &&
	    path_lookup(w[0], found, sizeof(found)) == -1) {
		/* it runs with the release's .venv/bin first on PATH: a
		 * console script of the app's own wheel is looked for there
		 * once the release has its venv (release_command_ok) */
		if (nflag)
			say("preflight: %s: '%s' is not on PATH; looked for in "
			    "the release's .venv/bin once it is built", what,
			    printable(w[0]));
		free_words(w);
		return;
	}
	else if (path_lookup(w[0], found, sizeof(found)) == -1 &&
	    strchr(w[0], '/') != NULL)
		snprintf(why, sizeof(why), "'%s' is not an executable file",
		    printable(w[0]));
	else if (strchr(w[0], '/') == NULL && path_lookup(w[0], found,
	    sizeof(found)) == -1)
		snprintf(why, sizeof(why), "'%s' is not on PATH (install it, "
		    "or set %s in deploy.conf)", printable(w[0]), key);
	preflight_result(what, why[0] ? why : NULL);
	free_words(w);
}

static void
preflight_links(void)
{
	char **w, **p, why[PATH_MAX + 64];
	struct stat st;

	if (cfg.link == NULL)
		return;
	w = words(cfg.link);
	for (p = w; *p; p++) {
		char *src = fmtpath("shared/%s", *p);

		if (fstatat(rootfd, src, &st, 0) == -1) {
			snprintf(why, sizeof(why), "%s/%s: %s", root, src,
			    strerror(errno));
			preflight_result("link", why);
		} else
			preflight_result("link", NULL);
		free(src);
	}
	free_words(w);
}

/*
 * supervisorctl reaches its server, and the program (every process of a
 * group) is known to it; STOPPED or FATAL is fine for a first deploy.
 */
static void
preflight_program(void)
{
	struct runopts o = opts("/", ENV_NONE, NULL, NULL);
	char out[8192], *line, *save, name[256], why[1200], first[200] = "";
	char what[300], **argv, near[600];
	size_t plen = strlen(cfg.program);
	int matched = 0, unknown = 0;
	struct result r;

	snprintf(what, sizeof(what), "program %s", cfg.program);
	if (plen > 2 && strcmp(cfg.program + plen - 2, ":*") == 0)
		plen -= 1;	/* "web:*" matches "web:web_00" */
	argv = words_plus(cfg.supervisorctl, "status", cfg.program, (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	o.timeout = 30;
	out[0] = '\0';
	run(argv, &o, &r);	/* non-zero for a process not running */
	free_words(argv);
	if (r.signo)
		leave(128 + r.signo);	/* no verdict: we were stopped */
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (first[0] == '\0')
			snprintf(first, sizeof(first), "%s", line);
		if (two_words(line, name, sizeof(name), NULL, 0) < 1 ||
		    !(strncmp(name, cfg.program, plen) == 0 &&
		    (name[plen] == '\0' || name[plen] == ':' ||
		    name[plen - 1] == ':')))
			continue;
		matched++;
		if (strstr(line, "no such process") || strstr(line, "no such group"))
			unknown++;
	}
	if (r.execerr)
		snprintf(why, sizeof(why), "cannot run %s: %s", cfg.supervisorctl,
		    strerror(r.execerr));
	else if (matched == 0 && sv_denied(first))
		sv_denied_why(why, sizeof(why));
	else if (matched == 0)
		snprintf(why, sizeof(why), "'%s status' cannot reach "
		    "supervisord: %s", cfg.supervisorctl, first[0] ? printable(first) :
		    "no answer");
	else if (unknown && (close_programs(near, sizeof(near)), near[0]))
		snprintf(why, sizeof(why), "supervisord does not know it; it "
		    "knows %s", near);
	else if (unknown)
		snprintf(why, sizeof(why), "supervisord does not know it (add a "
		    "[program:%.*s] section with autostart=false, then "
		    "'supervisorctl update'; see deploy(1))", (int)strcspn(cfg.program,
		    ":"), cfg.program);
	preflight_result(what, matched && !unknown && !r.execerr ? NULL : why);
}

/*
 * The restart command as the release will run it: its .venv/bin first on
 * PATH, a relative path in the release.  0 when it can run; else -1 and
 * why.
 */
static int
release_command_ok(const char *key, const char *cmd, const char *sha,
    char *why, size_t wl)
{
	char **w = words(cmd), found[PATH_MAX], *f;
	struct stat st;
	int ok;

	if (w[0][0] == '/')
		f = xstrdup(w[0]);
	else if (strchr(w[0], '/') != NULL)
		f = fmtpath("%s/releases/%s/%s", root, sha, w[0]);
	else
		f = fmtpath("%s/releases/%s/.venv/bin/%s", root, sha, w[0]);
	ok = stat(f, &st) == 0 && S_ISREG(st.st_mode) && access(f, X_OK) == 0;
	if (!ok && strchr(w[0], '/') == NULL)
		ok = path_lookup(w[0], found, sizeof(found)) == 0;
	if (!ok && strchr(w[0], '/') == NULL)
		snprintf(why, wl, "%s command: '%s' is neither in the release's "
		    ".venv/bin nor on PATH (add the package that provides it to "
		    "%s, or set %s in deploy.conf)", key, printable(w[0]),
		    cfg.requirements, key);
	else if (!ok)
		snprintf(why, wl, "%s command: %s is not an executable file",
		    key, printable(f));
	free(f);
	free_words(w);
	return ok ? 0 : -1;
}

/* Before a built release is switched to: its restart command can run */
static void
need_restart_command(const char *sha)
{
	char why[PATH_MAX + 256];

	if (cfg.restart == NULL)
		return;
	if (release_command_ok("restart", cfg.restart, sha, why,
	    sizeof(why)) == 0) {
		if (nflag)
			say("preflight: restart command: ok in releases/%.12s",
			    sha);
		return;
	}
	if (!nflag)
		die(EXIT_USAGE, "%s; nothing was changed", why);
	warnx("preflight: %s", why);
	preflight_failed = 1;
}

/*
 * With lfs = yes written in deploy.conf, git-lfs before anything is
 * fetched. By default (no lfs line) a server without git-lfs keeps
 * deploying apps that have no LFS files; one that has them is refused
 * by tree_read, before its tree is checked out.
 */
static void
preflight_lfs(void)
{
	char found[PATH_MAX];

	if (cfg.lfs == 1)
		preflight_result("git-lfs", path_lookup("git-lfs", found,
		    sizeof(found)) == 0 ? NULL : "not on PATH (install the "
		    "git-lfs package, or set lfs = no in "
		    "deploy.conf for an app without LFS files)");
}

/* build: what the build needs; switching: what the switch needs */
static void
preflight(int build, int switching)
{
	if (build) {
		preflight_command("virtualenv", cfg.virtualenv);
		preflight_links();
		preflight_lfs();
	}
	if (switching && cfg.program != NULL) {
		preflight_command("supervisorctl", cfg.supervisorctl);
		if (!preflight_failed)
			preflight_program();
	}
	if (switching && cfg.restart != NULL)
		preflight_command("restart", cfg.restart);
}

/* The bare mirror in repo/: cloned under a temp name, then renamed in. */
static void
clone_mirror(const char *url, struct runopts *o)
{
	char *tmp = fmtpath("%s/%s/repo.tmp", root, STATE);
	char **av = words_plus("git", "clone", "--mirror", "--quiet", "--",
	    url, tmp, (char *)NULL);
	struct result r;

	remove_in(statefd, STATE, "repo.tmp");
	if (run_step("clone", av, o, &r) == -1) {
		remove_in(statefd, STATE, "repo.tmp");
		leave(r.signo ? 128 + r.signo : EXIT_FAILED);
	}
	if (renameat(statefd, "repo.tmp", rootfd, "repo") == -1)
		die(FAIL_STATUS, "rename %s to %s/repo: %s", tmp, root,
		    strerror(errno));
	if (fsync(rootfd) == -1)
		warnx("fsync %s: %s", root, strerror(errno));
	free_words(av);
	free(tmp);
}

/* 1. fetch: every fetch happens in the mirror, never in a release */
static void
step_fetch(void)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	struct stat st;
	struct result r;
	char **argv;

	o.record = 1;	/* a killed fetch's helpers are ended by the next run */
	if (fstatat(rootfd, "repo", &st, 0) == -1) {
		clone_mirror(cfg.repo, &o);
		return;
	}
	/* the mirror's housekeeping waits for prune, off the no-op path */
	argv = words_plus("git", gitdir(), "fetch", "--prune", "--quiet",
	    "--no-auto-maintenance", "--end-of-options", cfg.repo,
	    "+refs/heads/*:refs/heads/*",
	    "+refs/tags/*:refs/tags/*", (char *)NULL);
	if (run_step("fetch", argv, &o, &r) == -1)
		leave(r.signo ? 128 + r.signo : EXIT_FAILED);
	free_words(argv);
}

/*
 * A branch name git's rules would make a path of: no "..", no part that
 * starts with '.' or ends in ".lock", none of ~^:?*[\\ or "@{".
 */
static int
plain_branch(const char *r)
{
	const char *p;

	if (strstr(r, "..") || strstr(r, "//") || strstr(r, "@{") ||
	    strstr(r, "/.") || strstr(r, ".lock") || *r == '.' || *r == '/' ||
	    r[strlen(r) - 1] == '/' || strpbrk(r, "~^:?*[\\") != NULL)
		return 0;
	for (p = r; *p; p++)
		if (!isdigit((unsigned char)*p) && (*p < 'a' || *p > 'f'))
			return 1;
	return 0;	/* all hex: git may read it as an object name */
}

/* The sha of a full refname in the mirror, loose or packed; 0 when found. */
static int
read_ref(int gfd, const char *name, char *sha)
{
	char *buf, *line, *save, *sp;
	size_t len;
	int found = -1;

	if ((buf = read_file_at(gfd, name, 200, &len, NULL)) != NULL) {
		buf[strcspn(buf, "\n")] = '\0';
		if (is_sha(buf)) {
			copy_sha(sha, buf);
			found = 0;
		}
		free(buf);
		return found;	/* a loose ref wins; a symref is not for here */
	}
	if ((buf = read_file_at(gfd, "packed-refs", 256 << 20, &len, NULL)) == NULL)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line != NULL && found;
	    line = strtok_r(NULL, "\n", &save))
		if ((sp = strchr(line, ' ')) != NULL && strcmp(sp + 1, name) == 0) {
			*sp = '\0';
			if (is_sha(line)) {
				copy_sha(sha, line);
				found = 0;
			}
		}
	free(buf);
	return found;
}

/*
 * REF without a git process, where that is unambiguous: HEAD, or a branch
 * that no tag and no other ref git looks at first shares a name with.
 * Anything else is git's to resolve. 0 when resolved.
 */
static int
resolve_local(const char *ref, char *sha)
{
	char *head = NULL, *name = NULL, *alt, tmp[65];
	struct stat st;
	const char *try[] = { "%s", "refs/%s", "refs/tags/%s" };
	int gfd, r = -1;
	size_t len, i;

	if ((gfd = openat(rootfd, "repo", O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) == -1)
		return -1;
	if (strcmp(ref, "HEAD") == 0) {
		if ((head = read_file_at(gfd, "HEAD", 300, &len, NULL)) != NULL &&
		    strncmp(head, "ref: refs/heads/", 16) == 0) {
			head[strcspn(head, "\n")] = '\0';
			if (plain_branch(head + 16))
				name = xstrdup(head + 5);
		}
	} else if (plain_branch(ref)) {
		name = fmtpath("refs/heads/%s", ref);
		for (i = 0; i < sizeof(try) / sizeof(try[0]); i++) {
			alt = fmtpath(try[i], ref);
			if (read_ref(gfd, alt, tmp) == 0 ||
			    fstatat(gfd, alt, &st, AT_SYMLINK_NOFOLLOW) == 0) {
				free(name);
				name = NULL;
			}
			free(alt);
		}
	}
	if (name != NULL)
		r = read_ref(gfd, name, sha);
	free(name);
	free(head);
	close(gfd);
	return r;
}

/* 2. resolve: REF to a full object id, checked before it is a path */
static void
resolve(const char *ref, char *sha)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char out[256], *spec;
	struct result r;
	char **argv;

	if (!ref_ok(ref))
		die(EXIT_USAGE, "ref '%s': not a usable ref (empty, starts "
		    "with '-', or holds spaces or control characters)",
		    printable(ref));
	step_begin("resolve");
	if (resolve_local(ref, sha) == 0) {
		step_ok("resolve");
		return;
	}
	spec = fmtpath("%s^{commit}", ref);
	argv = words_plus("git", gitdir(), "rev-parse", "--verify", "--quiet",
	    spec, (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	out[0] = '\0';
	if (run(argv, &o, &r) == -1) {
		if (r.signo)
			leave(128 + r.signo);
		step_fail("resolve", "not found", 0);
		die(EXIT_USAGE, "ref '%s': no such branch, tag or commit in %s",
		    printable(ref), cfg.repo);
	}
	out[strcspn(out, "\n")] = '\0';
	if (!is_sha(out))
		die(EXIT_FAILED, "git rev-parse printed '%.80s', not an object id",
		    out);
	strcpy(sha, out);
	step_ok("resolve");
	free_words(argv);
	free(spec);
}

/*
 * For -n: what REF names on the remote now, asked with ls-remote so that
 * not even the mirror changes. 0 and sha set when found; -1 when the
 * remote does not list it (a commit id); -2 when git could not ask the
 * remote, its last line of error in gerr.
 */
static int
ls_remote(const char *ref, char *sha, char *gerr, size_t gl)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char *out, *line, *save, *tab, *want[4];
	size_t outlen = 1 << 20;
	struct result r;
	char **argv;
	int best = 4, i;

	want[0] = fmtpath("refs/tags/%s^{}", ref);
	want[1] = fmtpath("refs/tags/%s", ref);
	want[2] = fmtpath("refs/heads/%s", ref);
	want[3] = xstrdup(ref);
	argv = words_plus("git", "ls-remote", "--end-of-options", cfg.repo, ref,
	    (char *)NULL);
	out = xrealloc(NULL, outlen);
	out[0] = '\0';
	o.out = out;
	o.outlen = outlen;
	o.bothout = 1;
	gerr[0] = '\0';
	if (run(argv, &o, &r) == -1) {
		if (r.signo)
			leave(128 + r.signo);
		/* git's first "fatal:" line says why; the rest is advice */
		for (line = strtok_r(out, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save))
			if (strchr(line, '\t') == NULL && *trim(line) != '\0' &&
			    (gerr[0] == '\0' || (strncmp(gerr, "fatal:", 6) != 0 &&
			    strncmp(trim(line), "fatal:", 6) == 0)))
				snprintf(gerr, gl, "%s", printable(trim(line)));
		if (gerr[0] == '\0')
			snprintf(gerr, gl, "%s", why_failed(&r, "git", o.timeout));
		best = 5;
	} else
		for (line = strtok_r(out, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			if ((tab = strchr(line, '\t')) == NULL)
				continue;
			*tab++ = '\0';
			for (i = 0; i < best; i++)
				if (strcmp(tab, want[i]) == 0 && is_sha(line)) {
					best = i;
					copy_sha(sha, line);
				}
		}
	for (i = 0; i < 4; i++)
		free(want[i]);
	free_words(argv);
	free(out);
	return best < 4 ? 0 : best == 5 ? -2 : -1;
}

/*
 * git does the checking (verify-commit, verify-tag) in the mirror; we
 * only read its verdict. It runs in a private folder made for this run:
 * GNUPGHOME is a fresh homedir into which only gpg_keyring's keys are
 * imported, so no key of the user's own keyring counts (and with no
 * keyring it stays empty: every OpenPGP signature is refused); the ssh
 * allowed-signers file is a copy of allowed_signers (or empty). The key
 * files are read once, before the lock, with the config's trust checks:
 * a missing one is a configuration error, never "allow everything".
 */
struct keyfile {
	char	*name;		/* as shown in messages */
	char	*buf;
	size_t	 len;
};

static struct keyfile ssh_keys;

static struct keyfile *gpg_keys;

static size_t ngpg_keys;

static void
add_gpg_key(int dfd, const char *name, const char *shown)
{
	gpg_keys = xrealloc(gpg_keys, (ngpg_keys + 1) * sizeof(*gpg_keys));
	gpg_keys[ngpg_keys].name = xstrdup(shown);
	gpg_keys[ngpg_keys].buf = read_trusted(dfd, name, shown, "",
	    &gpg_keys[ngpg_keys].len);
	ngpg_keys++;
}

/* gpg_keyring as a folder: every file in it not starting with '.' */
static void
load_keyring_dir(int fd, const char *shown)
{
	struct dirent *d;
	struct stat st;
	char *f;
	DIR *dp;

	if (fstat(fd, &st) == -1)
		die(EXIT_USAGE, "%s: %s", shown, strerror(errno));
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		die(EXIT_USAGE, "%s: writable by group or others; refusing it "
		    "(chmod go-w %s)", shown, shown);
	if (st.st_uid != geteuid() && st.st_uid != 0)
		die(EXIT_USAGE, "%s: owned by uid %ld, not by you or root; "
		    "refusing it", shown, (long)st.st_uid);
	if ((dp = fdopendir(fd)) == NULL)
		die(EXIT_USAGE, "%s: %s", shown, strerror(errno));
	while ((d = readdir(dp)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		f = fmtpath("%s/%s", shown, d->d_name);
		add_gpg_key(dirfd(dp), d->d_name, f);
		free(f);
	}
	closedir(dp);
	if (ngpg_keys == 0)
		die(EXIT_USAGE, "%s: holds no key file; refusing to verify "
		    "against nothing", shown);
}

/* The key files, for verify = commit | tag; exit 2 when one is missing. */
static void
load_keys(void)
{
	char *f, *shown;
	int fd;

	if (cfg.verify == VERIFY_OFF || ssh_keys.name != NULL || ngpg_keys > 0)
		return;
	if (cfg.allowed_signers == NULL && cfg.gpg_keyring == NULL)
		die(EXIT_USAGE, "verify = %s needs allowed_signers or gpg_keyring "
		    "in deploy.conf; nothing was changed", cfg.verify ==
		    VERIFY_TAG ? "tag" : "commit");
	if (cfg.allowed_signers != NULL) {
		f = fmtpath("shared/%s", cfg.allowed_signers);
		ssh_keys.name = fmtpath("%s/%s", root, f);
		ssh_keys.buf = read_trusted(rootfd, f, ssh_keys.name, "",
		    &ssh_keys.len);
		free(f);
	}
	if (cfg.gpg_keyring == NULL)
		return;
	f = fmtpath("shared/%s", cfg.gpg_keyring);
	shown = fmtpath("%s/%s", root, f);
	fd = openat(rootfd, f, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd != -1)
		load_keyring_dir(fd, shown);
	else
		add_gpg_key(rootfd, f, shown);
	free(shown);
	free(f);
}

/* removes the private folder made by private_keys() */
static void
drop_private(char *dir)
{
	char *slash = strrchr(dir, '/');
	int fd;

	*slash = '\0';
	if ((fd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) != -1) {
		remove_tree(fd, slash + 1, NULL);
		close(fd);
	}
	*slash = '/';
}

/* The private folder: allowed_signers and gnupg/ with only our keys. */
static int
private_keys(char *dir, size_t dl, char *why, size_t wl)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	const char *tmp = getenv("TMPDIR");
	char *home, **argv, name[32];
	struct result r;
	size_t i, n;

	snprintf(dir, dl, "%s/deploy-keys.XXXXXX", tmp && *tmp == '/' ? tmp :
	    "/tmp");
	if (mkdtemp(dir) == NULL) {
		snprintf(why, wl, "%s: %s", dir, strerror(errno));
		return -1;
	}
	home = fmtpath("%s/gnupg", dir);
	if (mkdir(home, 0700) == -1 || write_new(dir, "allowed_signers",
	    ssh_keys.buf ? ssh_keys.buf : "", ssh_keys.len) == -1) {
		snprintf(why, wl, "%s: %s", dir, strerror(errno));
		free(home);
		return -1;
	}
	argv = words_plus("gpg", "--batch", "--quiet", "--no-tty", "--homedir",
	    home, "--import", (char *)NULL);
	for (i = 0; i < ngpg_keys; i++) {
		snprintf(name, sizeof(name), "key%zu", i);
		if (write_new(dir, name, gpg_keys[i].buf, gpg_keys[i].len) == -1) {
			snprintf(why, wl, "%s: %s", dir, strerror(errno));
			free(home);
			free_words(argv);
			return -1;
		}
		for (n = 0; argv[n]; n++)
			;
		argv = xrealloc(argv, (n + 2) * sizeof(*argv));
		argv[n] = fmtpath("%s/%s", dir, name);
		argv[n + 1] = NULL;
	}
	o.timeout = 60;
	if (ngpg_keys > 0 && run(argv, &o, &r) == -1) {
		snprintf(why, wl, "gpg could not import %s (%s)", gpg_keys[0].name,
		    why_failed(&r, "gpg", o.timeout));
		free(home);
		free_words(argv);
		return -1;
	}
	free(home);
	free_words(argv);
	return 0;
}

/* gpg's status keywords that end a verdict, and what they mean */
static const struct {
	const char	*kw;
	const char	*why;		/* NULL: good */
} gpg_verdicts[] = {
	{ "GOODSIG", NULL },
	{ "EXPKEYSIG", "signed by an expired key" },
	{ "EXPSIG", "expired signature" },
	{ "REVKEYSIG", "signed by a revoked key" },
	{ "BADSIG", "bad signature" },
	{ "NO_PUBKEY", "signed by a key not allowed" },
};

/* One "[GNUPG:] KEYWORD ARG REST" line of git's --raw output. */
static void
gpg_status(char *line, const char **why, char *who, size_t wl)
{
	char *kw = line, *arg, *rest;
	size_t i;

	arg = kw + strcspn(kw, " ");
	if (*arg != '\0')
		*arg++ = '\0';
	rest = arg + strcspn(arg, " ");
	if (*rest != '\0')
		*rest++ = '\0';
	if (strcmp(kw, "NEWSIG") == 0 && *arg != '\0' && who[0] == '\0')
		snprintf(who, wl, "%s", arg);
	for (i = 0; i < sizeof(gpg_verdicts) / sizeof(gpg_verdicts[0]); i++) {
		if (strcmp(kw, gpg_verdicts[i].kw) != 0)
			continue;
		if (*why == NULL || gpg_verdicts[i].why != NULL)
			*why = gpg_verdicts[i].why;
		if (*rest != '\0')
			snprintf(who, wl, "%s (openpgp %s)", rest, arg);
		else if (who[0] != '\0')
			snprintf(who + strlen(who), wl - strlen(who),
			    " (openpgp %s)", arg);
		else
			snprintf(who, wl, "openpgp %s", arg);
		return;
	}
}

/*
 * git's verdict, from what it printed: gpg's status lines (--raw) or
 * ssh-keygen's words. 0 good (signer set), -1 refused (refusal set).
 */
static int
read_verdict(char *out, int ok, const char *what)
{
	char *line, *save, *p, who[400] = "", other[200] = "";
	const char *why = "unsigned";
	int good = 0;

	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "[GNUPG:] ", 9) == 0) {
			why = why && strcmp(why, "unsigned") == 0 ? NULL : why;
			gpg_status(line + 9, &why, who, sizeof(who));
			good = why == NULL;
		} else if (strncmp(line, "Good \"git\" signature ", 21) == 0 &&
		    (p = strstr(line, " key ")) != NULL) {
			/* "for PRINCIPAL with TYPE key FPR", or no "for"
			 * when the key is in no line of allowed_signers */
			good = strncmp(line + 21, "for ", 4) == 0 &&
			    strstr(line, " with ") != NULL;
			if (good)
				snprintf(who, sizeof(who), "%.*s (ssh %s)",
				    (int)(strstr(line, " with ") - line - 25),
				    line + 25, p + 5);
			else
				snprintf(who, sizeof(who), "ssh key %s", p + 5);
			why = good ? NULL : "signed by a key not allowed";
		} else if (strstr(line, "no signature found") != NULL)
			why = "unsigned";
		else if (strstr(line, "key has expired") != NULL) {
			why = "signed by an expired key";	/* valid-before */
			good = 0;
		} else if (strstr(line, "erification failed") != NULL ||
		    strstr(line, "ould not verify") != NULL) {
			why = "bad signature";
			good = 0;
		} else if (other[0] == '\0' && strcmp(line, "No principal "
		    "matched.") != 0)
			snprintf(other, sizeof(other), "%s", line);
	}
	/* words we do not know, where a signature was expected: say them
	 * rather than call the commit unsigned */
	if (why != NULL && strcmp(why, "unsigned") == 0 && !good &&
	    other[0] != '\0') {
		why = "not accepted";
		snprintf(who, sizeof(who), "%s", other);
	}
	signer[0] = '\0';
	if (ok && good && why == NULL && who[0] != '\0') {
		snprintf(signer, sizeof(signer), "%s", printable(who));
		return 0;
	}
	snprintf(refusal, sizeof(refusal), "%s %s%s%s", what, why ? why :
	    "not accepted", who[0] ? ": " : "", who[0] ? printable(who) : "");
	return -1;
}

/*
 * verify = tag: REF must name an annotated tag whose commit is sha. Its
 * object id into tag; 0 when it does, -1 refused, -2 the mirror's tag
 * names another commit (for -n: the remote moved it since the fetch).
 */
static int
tag_object(const char *ref, const char *sha, char *tag)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char out[256], *name, *s1, *s2, **argv, *f[2];
	struct result r;
	int st = 0;

	name = strncmp(ref, "refs/tags/", 10) == 0 ? xstrdup(ref) :
	    fmtpath("refs/tags/%s", ref);
	s1 = fmtpath("%s^{tag}", name);
	s2 = fmtpath("%s^{commit}", name);
	argv = words_plus("git", gitdir(), "rev-parse", s1, s2, (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	o.timeout = 60;
	out[0] = '\0';
	if (run(argv, &o, &r) == -1 || fields(out, f, 2) != 2 ||
	    !is_sha(f[0]) || !is_sha(f[1])) {
		snprintf(refusal, sizeof(refusal), "'%s' is not an annotated tag "
		    "(verify = tag takes a signed tag; a lightweight tag or a "
		    "branch carries no signature)", printable(ref));
		st = -1;
	} else if (strcmp(f[1], sha) != 0) {
		snprintf(refusal, sizeof(refusal), "tag '%s' names %.12s, not "
		    "%.12s", printable(ref), f[1], sha);
		st = -2;
	} else
		copy_sha(tag, f[0]);
	free_words(argv);
	free(s2);
	free(s1);
	free(name);
	return st;
}

/*
 * Asks git whether sha (verify = commit) or the tag REF (verify = tag)
 * carries a good signature by an allowed key. 0 yes (signer says whose),
 * -1 refused (refusal says why), -2 as tag_object.
 */
static int
check_signature(const char *ref, const char *sha)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char dir[PATH_MAX], why[PATH_MAX + 128], out[8192], tag[65];
	char *extra[2] = { NULL, NULL }, *asf, **argv;
	struct result r;
	int st;

	load_keys();
	signer[0] = refusal[0] = '\0';
	if (cfg.verify == VERIFY_TAG && (st = tag_object(ref, sha, tag)) != 0)
		return st;
	dir[0] = '\0';
	if (private_keys(dir, sizeof(dir), why, sizeof(why)) == -1) {
		if (dir[0] == '/' && strstr(dir, "XXXXXX") == NULL)
			drop_private(dir);
		die(EXIT_USAGE, "verify: %s; nothing was built or switched", why);
	}
	extra[0] = fmtpath("GNUPGHOME=%s/gnupg", dir);
	asf = fmtpath("gpg.ssh.allowedSignersFile=%s/allowed_signers", dir);
	/* git's own programs and no trust floor from the user's config:
	 * the private homedir already holds nothing but allowed keys */
	argv = words_plus("git", gitdir(), "-c", "gpg.format=ssh", "-c", asf,
	    "-c", "gpg.program=gpg", "-c", "gpg.openpgp.program=gpg", "-c",
	    "gpg.ssh.program=ssh-keygen", "-c", "gpg.minTrustLevel=undefined",
	    cfg.verify == VERIFY_TAG ? "verify-tag" : "verify-commit", "--raw",
	    cfg.verify == VERIFY_TAG ? tag : sha, (char *)NULL);
	o.extra = extra;
	o.out = out;
	o.outlen = sizeof(out);
	o.bothout = 1;
	o.timeout = 60;
	out[0] = '\0';
	st = run(argv, &o, &r);
	drop_private(dir);
	if (r.signo)
		leave(128 + r.signo);
	st = read_verdict(out, st == 0, cfg.verify == VERIFY_TAG ? "tag" :
	    "commit");
	free_words(argv);
	free(asf);
	free(extra[0]);
	return st;
}

/* The verify step: a refusal is one line, before anything is built. */
static void
step_verify(const char *ref, const char *sha)
{
	step_begin("verify");
	if (check_signature(ref, sha) == 0) {
		step_done("verify", signer);
		return;
	}
	logf_("== [%d] verify refused: %s\n", stepno, refusal);
	live_clear();
	die(EXIT_FAILED, "refused %.12s: %s; nothing was built or switched",
	    sha, refusal);
}

static void
python_id(unsigned long long *h)
{
	char **w = words(cfg.virtualenv), **p, found[PATH_MAX], real[PATH_MAX];
	const char *name = "python3";
	struct stat st;

	for (p = w; *p; p++)
		if ((strcmp(*p, "-p") == 0 || strcmp(*p, "--python") == 0) && p[1])
			name = p[1];
		else if (strncmp(*p, "--python=", 9) == 0)
			name = *p + 9;
		else if (p == w && strstr(*p, "python") != NULL)
			name = *p;
	if (path_lookup(name, found, sizeof(found)) == 0 &&
	    realpath(found, real) != NULL && stat(real, &st) == 0) {
		*h = fnv(*h, real, strlen(real));
		*h = fnv(*h, &st.st_size, sizeof(st.st_size));
		*h = fnv(*h, &st.st_mtime, sizeof(st.st_mtime));
	}
	free_words(w);
}

static int
venv_done(int vfd, const char *key)
{
	char *m = fmtpath("%s/.deploy-complete", key);
	struct stat st;
	int r = fstatat(vfd, m, &st, AT_SYMLINK_NOFOLLOW) == 0;

	free(m);
	return r;
}

/*
 * The venv's files durable first, then its record (what it was built
 * with and from), then the mark that says it is complete: a crash never
 * leaves a mark on a venv whose files are not all on disk.
 */
static void
mark_venv_done(const char *key, const char *rec, size_t n)
{
	char *m = fmtpath("venvs/%s/.deploy-complete", key);
	char *b = fmtpath("venvs/%s/.deploy-built", key);
	char *d = fmtpath("venvs/%s", key);
	int fd, dfd;

	if ((dfd = openat(rootfd, d, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) == -1)
		die(EXIT_FAILED, "%s/%s: %s", root, d, strerror(errno));
	flush_fs(dfd);
	if ((fd = openat(rootfd, b, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0644)) == -1 || write_all(fd, rec, n) == -1 ||
	    fsync(fd) == -1 || close(fd) == -1)
		die(EXIT_FAILED, "%s/%s: %s", root, b, strerror(errno));
	if ((fd = openat(rootfd, m, O_WRONLY | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0644)) == -1 || fsync(fd) == -1 || close(fd) == -1)
		die(EXIT_FAILED, "%s/%s: %s", root, m, strerror(errno));
	fsync(dfd);
	close(dfd);
	free(m);
	free(b);
	free(d);
}

#define VREC	".deploy-built"	/* in venvs/KEY: built with what, from what */

#define DERIVE_MAX	(1 << 20)	/* requirements compared line by line */

#define DRYRUN_MAX	(1 << 20)	/* pip's dry-run output kept */

struct vcopy {
	const char	*from, *to;	/* the old venv's absolute path, the new */
	size_t		 fromlen, tolen;
	char		 why[PATH_MAX + 128];
	double		 rewrite;	/* seconds finding and writing the path */
	size_t		 nrewrit;	/* files rewritten */
};

/* buf with every c->from made c->to, or NULL when it names none */
static char *
rewrite_path(const char *buf, size_t n, const struct vcopy *c, size_t *outn)
{
	const char *p = buf, *q, *e = buf + n;
	char *out = NULL;
	size_t on = 0;

	while ((q = find_bytes(p, (size_t)(e - p), c->from, c->fromlen)) != NULL) {
		out = xrealloc(out, on + (size_t)(q - p) + c->tolen + 1);
		memcpy(out + on, p, (size_t)(q - p));
		on += (size_t)(q - p);
		memcpy(out + on, c->to, c->tolen);
		on += c->tolen;
		p = q + c->fromlen;
	}
	if (out == NULL)
		return NULL;
	out = xrealloc(out, on + (size_t)(e - p) + 1);
	memcpy(out + on, p, (size_t)(e - p));
	*outn = on + (size_t)(e - p);
	return out;
}

static int
copy_fail(struct vcopy *c, const char *relp, const char *name, const char *why)
{
	snprintf(c->why, sizeof(c->why), "%s/%s%s%s: %s", c->from, relp,
	    *relp ? "/" : "", name, why);
	return -1;
}

/*
 * A file of the old venv into the new one, its mode and times kept (a
 * .pyc is checked against its source's mtime). One that names the old
 * venv is rewritten; a binary one only when both paths have one length
 * (they do: keys are fixed width), so offsets inside it hold. The rest is
 * a reflink where the file system has them, else a copy: never a hard
 * link, so a write in one venv never shows in another.
 */
#define BIGFILE	(32L << 20)	/* larger files are streamed */

#define CHUNK	(1 << 20)

/* 1 when the file names c->from, 0 when not, -1 on a read error */
static int
big_names_path(int in, const struct vcopy *c)
{
	char *b = xrealloc(NULL, CHUNK + c->fromlen);
	size_t keep = 0, have;
	off_t off = 0;
	ssize_t k;
	int r = 0;

	while ((k = pread(in, b + keep, CHUNK, off)) > 0 ||
	    (k == -1 && errno == EINTR)) {
		if (k == -1)
			continue;
		off += k;
		if (find_bytes(b, keep + (size_t)k, c->from, c->fromlen)) {
			r = 1;
			break;
		}
		/* a match may straddle two chunks: keep the last bytes */
		have = keep + (size_t)k;
		keep = have < c->fromlen ? have : c->fromlen - 1;
		memmove(b, b + have - keep, keep);
	}
	if (k == -1)
		r = -1;
	free(b);
	return r;
}

/* in to out, a chunk at a time, from the start */
static int
stream_copy(int in, int out)
{
	char *b = xrealloc(NULL, CHUNK);
	off_t off = 0;
	ssize_t k = 0;
	int r = 0;

	if (ftruncate(out, 0) == -1 || lseek(out, 0, SEEK_SET) == -1)
		r = -1;
	while (r == 0 && ((k = pread(in, b, CHUNK, off)) > 0 ||
	    (k == -1 && errno == EINTR))) {
		if (k == -1)
			continue;
		off += k;
		r = write_all(out, b, (size_t)k);
	}
	if (r == 0 && k == -1)
		r = -1;
	free(b);
	return r;
}

static int
copy_file(int sfd, int dfd, const char *relp, const char *name,
    struct vcopy *c)
{
	struct timespec ts[2];
	struct stat st;
	char *buf = NULL, *nb = NULL;
	size_t n = 0, nn = 0;
	ssize_t k = 0;
	int in, out = -1, r = -1, done = 0;
	double t0;

	if ((in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    fstat(in, &st) == -1) {
		copy_fail(c, relp, name, strerror(errno));
		goto out;
	}
	if (st.st_size > BIGFILE) {
		/* streamed, never whole in memory (a 2 GB torch library);
		 * one that names the old path is left to a fresh build */
		if ((k = big_names_path(in, c)) != 0) {
			copy_fail(c, relp, name, k < 0 ? strerror(errno) :
			    "too large to rewrite the venv's path in it");
			goto out;
		}
		n = (size_t)st.st_size;
	}
	buf = xrealloc(NULL, st.st_size > BIGFILE ? 1 :
	    (size_t)st.st_size + 1);
	while (st.st_size <= BIGFILE && n < (size_t)st.st_size &&
	    ((k = read(in, buf + n,
	    (size_t)st.st_size - n)) > 0 || (k == -1 && errno == EINTR)))
		if (k > 0)
			n += (size_t)k;
	if (k == -1 || n != (size_t)st.st_size) {
		copy_fail(c, relp, name, k == -1 ? strerror(errno) :
		    "changed while copied");
		goto out;
	}
	if ((out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1) {
		copy_fail(c, relp, name, strerror(errno));
		goto out;
	}
	t0 = now();
	if (st.st_size <= BIGFILE && (memchr(buf, '\0', n) == NULL ||
	    c->fromlen == c->tolen))
		nb = rewrite_path(buf, n, c, &nn);
	if (nb != NULL) {
		if (write_all(out, nb, nn) == -1)
			goto werr;
		done = 1;
		c->nrewrit++;
	}
	c->rewrite += now() - t0;	/* the search costs even when none */
#ifdef __linux__
	if (!done && n > 0 && ioctl(out, FICLONE, in) == 0)
		done = 1;
	if (!done && n > 0) {
		long long oi = 0, oo = 0;

		while ((size_t)oi < n && syscall(SYS_copy_file_range, in, &oi,
		    out, &oo, n - (size_t)oi, 0) > 0)
			;
		if ((size_t)oi == n)
			done = 1;
		else if (ftruncate(out, 0) == -1)
			goto werr;
	}
#endif
	if (!done && st.st_size > BIGFILE && stream_copy(in, out) == -1)
		goto werr;
	if (!done && st.st_size <= BIGFILE && write_all(out, buf, n) == -1)
		goto werr;
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	if (fchmod(out, st.st_mode & 07777) == -1 || futimens(out, ts) == -1)
		goto werr;
	r = 0;
	goto out;
werr:
	copy_fail(c, relp, name, strerror(errno));
out:
	if (out != -1 && close(out) == -1 && r == 0)
		r = copy_fail(c, relp, name, strerror(errno));
	if (in != -1)
		close(in);
	free(nb);
	free(buf);
	return r;
}

/* the tree at sfd into the empty folder dfd: files, folders and links */
static int
copy_tree(int sfd, int dfd, const char *relp, struct vcopy *c)
{
	struct timespec ts[2];
	struct dirent *d;
	struct stat st;
	char *sub, lt[PATH_MAX + 1], *nl;
	ssize_t ll;
	DIR *dp;
	int fd, s2 = -1, d2 = -1, r = 0;

	if ((fd = dup(sfd)) == -1 || (dp = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return copy_fail(c, relp, ".", strerror(errno));
	}
	while (r == 0 && (errno = 0, d = readdir(dp)) != NULL) {
		const char *nm = d->d_name;

		if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0 ||
		    (*relp == '\0' && strncmp(nm, ".deploy-", 8) == 0))
			continue;
		if (gotsig)
			r = copy_fail(c, relp, nm, "interrupted");
		else if (fstatat(sfd, nm, &st, AT_SYMLINK_NOFOLLOW) == -1)
			r = copy_fail(c, relp, nm, strerror(errno));
		else if (S_ISREG(st.st_mode))
			r = copy_file(sfd, dfd, relp, nm, c);
		else if (S_ISLNK(st.st_mode)) {
			size_t nn;

			if ((ll = readlinkat(sfd, nm, lt, sizeof(lt) - 1)) == -1)
				r = copy_fail(c, relp, nm, strerror(errno));
			else {
				lt[ll] = '\0';
				/* an absolute target into the old venv */
				nl = strncmp(lt, c->from, c->fromlen) == 0 &&
				    (lt[c->fromlen] == '/' || lt[c->fromlen] ==
				    '\0') ? rewrite_path(lt, (size_t)ll, c, &nn) :
				    NULL;
				if (nl != NULL)
					nl[nn] = '\0';
				if (symlinkat(nl ? nl : lt, dfd, nm) == -1)
					r = copy_fail(c, relp, nm, strerror(errno));
				free(nl);
			}
		} else if (S_ISDIR(st.st_mode)) {
			sub = *relp ? fmtpath("%s/%s", relp, nm) : xstrdup(nm);
			if (mkdirat(dfd, nm, 0700) == -1 || (s2 = openat(sfd, nm,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
			    (d2 = openat(dfd, nm, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC)) == -1)
				r = copy_fail(c, relp, nm, strerror(errno));
			else if ((r = copy_tree(s2, d2, sub, c)) == 0) {
				ts[0] = st.st_atim;
				ts[1] = st.st_mtim;
				if (fchmod(d2, st.st_mode & 07777) == -1 ||
				    futimens(d2, ts) == -1)
					r = copy_fail(c, relp, nm, strerror(errno));
			}
			if (s2 != -1)
				close(s2);
			if (d2 != -1)
				close(d2);
			s2 = d2 = -1;
			free(sub);
		} else
			r = copy_fail(c, relp, nm, "not a file, folder or link");
	}
	if (r == 0 && errno != 0)
		r = copy_fail(c, relp, ".", strerror(errno));
	closedir(dp);
	return r;
}

/* PEP 503: lower case, each run of - _ . one - */
static void
norm_name(char *s)
{
	char *d = s;

	for (; *s; s++)
		if (*s == '-' || *s == '_' || *s == '.') {
			if (d == s || d[-1] != '-')
				*d++ = '-';
		} else
			*d++ = (char)tolower((unsigned char)*s);
	*d = '\0';
}

static int
strp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The distributions installed in the venv at vpath, as sorted
 * "name version" words (names normalized), read from the names of the
 * .dist-info folders in site-packages. NULL, with why, for anything pip
 * may have made otherwise (an .egg-info, two pythons).
 */
static char **
venv_dists(const char *vpath, char *why, size_t wl)
{
	char **v = NULL, *lib = fmtpath("%s/lib", vpath), *sp = NULL, *e, *w;
	struct dirent *d;
	size_t n = 0;
	DIR *dp;

	if ((dp = opendir(lib)) == NULL) {
		snprintf(why, wl, "%s: %s", lib, strerror(errno));
		goto fail;
	}
	while ((d = readdir(dp)) != NULL)
		if (strncmp(d->d_name, "python", 6) == 0) {
			if (sp != NULL) {
				snprintf(why, wl, "%s: two pythons", lib);
				closedir(dp);
				goto fail;
			}
			sp = fmtpath("%s/%s/site-packages", lib, d->d_name);
		}
	closedir(dp);
	if (sp == NULL || (dp = opendir(sp)) == NULL) {
		snprintf(why, wl, "%s: %s", sp ? sp : lib,
		    sp ? strerror(errno) : "no site-packages");
		goto fail;
	}
	v = xrealloc(NULL, sizeof(*v));
	while ((d = readdir(dp)) != NULL) {
		size_t l = strlen(d->d_name);

		if (l > 9 && strcmp(d->d_name + l - 9, ".egg-info") == 0) {
			snprintf(why, wl, "%s/%s: not a wheel's install", sp,
			    d->d_name);
			closedir(dp);
			goto fail;
		}
		if (l <= 10 || strcmp(d->d_name + l - 10, ".dist-info") != 0)
			continue;
		w = xstrdup(d->d_name);
		w[l - 10] = '\0';
		/* the wheel spec escapes '-' in both: the first splits */
		if ((e = strchr(w, '-')) == NULL) {
			snprintf(why, wl, "%s/%s: no version", sp, d->d_name);
			free(w);
			closedir(dp);
			goto fail;
		}
		*e = '\0';
		norm_name(w);
		v[n] = fmtpath("%s %s", w, e + 1);
		free(w);
		v = xrealloc(v, (++n + 1) * sizeof(*v));
	}
	closedir(dp);
	v[n] = NULL;
	qsort(v, n, sizeof(*v), strp_cmp);
	free(lib);
	free(sp);
	return v;
fail:
	if (v != NULL) {
		v[n] = NULL;
		free_words(v);
	}
	free(lib);
	free(sp);
	return NULL;
}

static int
is_seed(const char *nv)
{
	static const char *seeds[] = { "pip ", "setuptools ", "wheel ",
	    "distribute ", NULL };
	const char **s;

	for (s = seeds; *s; s++)
		if (strncmp(nv, *s, strlen(*s)) == 0)
			return 1;
	return 0;
}

/* what virtualenv put in: "pip 23.0.1,setuptools 66.1.1,..." or "?" */
static char *
venv_seeds(const char *vpath)
{
	char why[PATH_MAX + 64], **v = venv_dists(vpath, why, sizeof(why)), **p;
	char *s = xstrdup(""), *t;

	if (v == NULL) {
		free(s);
		return xstrdup("?");
	}
	for (p = v; *p; p++)
		if (is_seed(*p)) {
			t = fmtpath("%s%s%s", s, *s ? "," : "", *p);
			free(s);
			s = t;
		}
	free_words(v);
	return s;
}

/* the record a complete shared venv keeps: base, seeds, requirements */
static char *
venv_record(unsigned long long base, const char *seeds, const char *reqs,
    size_t len, size_t *n)
{
	char *h = fmtpath("deploy-venv 1\nbase %016llx\nseeds %s\n"
	    "requirements\n", base, seeds), *r;
	size_t hl = strlen(h);

	r = xrealloc(NULL, hl + len + 1);
	memcpy(r, h, hl);
	if (len > 0)
		memcpy(r + hl, reqs, len);
	r[hl + len] = '\0';
	*n = hl + len;
	free(h);
	return r;
}

/* lines of b (not blank) that a has too */
static size_t
common_lines(const char *a, size_t al, const char *b, size_t bl)
{
	const char *l, *p, *e = b + bl, *q, *ae = a + al, *m;
	size_t score = 0, n;

	for (l = b; l < e; l = p + 1) {
		if ((p = memchr(l, '\n', (size_t)(e - l))) == NULL)
			p = e;
		n = (size_t)(p - l);
		if (n == 0 || (n == 1 && *l == '\r'))
			continue;
		for (q = a; q < ae; q = m + 1) {
			if ((m = memchr(q, '\n', (size_t)(ae - q))) == NULL)
				m = ae;
			if ((size_t)(m - q) == n && memcmp(q, l, n) == 0) {
				score++;
				break;
			}
		}
	}
	return score;
}

/*
 * The complete venv to derive the new one from: built by the same python
 * and virtualenv command (base), from requirements sharing the most lines
 * with reqs, the current release's first. Its key in src, its seeds in
 * *seeds; -1 when there is none.
 */
static int
derive_source(int vfd, unsigned long long base, const char *reqs, size_t len,
    const char *key, char src[17], char **seeds)
{
	char cur[PATH_MAX], *rec, *p, *q, *name, want[32];
	size_t n, score, best = 0;
	ssize_t cl;
	struct dirent *d;
	DIR *dp;
	int fd;

	if (len > DERIVE_MAX || (fd = dup(vfd)) == -1)
		return -1;
	if ((dp = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	cur[0] = '\0';
	if ((cl = readlinkat(rootfd, "current/.venv", cur, sizeof(cur) - 1)) > 0) {
		cur[cl] = '\0';
		if ((p = strrchr(cur, '/')) != NULL)
			memmove(cur, p + 1, strlen(p));
	} else
		cur[0] = '\0';
	snprintf(want, sizeof(want), "base %016llx\n", base);
	*seeds = NULL;
	rewinddir(dp);
	while ((d = readdir(dp)) != NULL) {
		name = d->d_name;
		if (name[0] == '.' || strlen(name) != 16 ||
		    strcmp(name, key) == 0 || !venv_done(dirfd(dp), name))
			continue;
		p = fmtpath("%s/%s", name, VREC);
		rec = read_file_at(dirfd(dp), p, DERIVE_MAX + 4096, &n, NULL);
		free(p);
		if (rec == NULL)
			continue;
		/* "deploy-venv 1\nbase X\nseeds S\nrequirements\n" */
		if (strncmp(rec, "deploy-venv 1\n", 14) != 0 ||
		    strncmp(rec + 14, want, strlen(want)) != 0 ||
		    strncmp(p = rec + 14 + strlen(want), "seeds ", 6) != 0 ||
		    (q = strchr(p, '\n')) == NULL || q - p == 7 ||
		    strncmp(q + 1, "requirements\n", 13) != 0 ||
		    strncmp(p + 6, "?\n", 2) == 0) {
			free(rec);
			continue;
		}
		*q = '\0';
		score = common_lines(q + 14, n - (size_t)(q + 14 - rec), reqs, len);
		if (strcmp(name, cur) == 0 && score > 0)
			score = (size_t)-1;	/* the venv running now */
		if (score > best) {
			best = score;
			memcpy(src, name, 17);
			free(*seeds);
			*seeds = xstrdup(p + 6);
		}
		free(rec);
	}
	closedir(dp);
	return best > 0 ? 0 : -1;
}

/* the "name version" words of pip's "Would install a-1.0 b_c-2.0" line */
static char **
dryrun_dists(const char *out)
{
	const char *l, *p;
	char **v, **w, *dash, err[128];
	size_t n;

	for (l = out; l != NULL; l = (l = strchr(l, '\n')) ? l + 1 : NULL)
		if (strncmp(l, "Would install ", 14) == 0)
			break;
	if (l == NULL)
		return NULL;
	p = strchr(l, '\n');
	{
		char *line = xrealloc(NULL, (p ? (size_t)(p - l) : strlen(l)) + 1);

		memcpy(line, l + 14, (p ? (size_t)(p - l) : strlen(l)) - 14);
		line[(p ? (size_t)(p - l) : strlen(l)) - 14] = '\0';
		v = split_words(line, err, sizeof(err));
		free(line);
	}
	if (v == NULL)
		return NULL;
	for (n = 0, w = v; *w; w++, n++) {
		/* versions have no '-': the last one splits */
		if ((dash = strrchr(*w, '-')) == NULL || dash == *w) {
			free_words(v);
			return NULL;
		}
		*dash = '\0';
		norm_name(*w);
		dash = fmtpath("%s %s", *w, dash + 1);
		free(*w);
		*w = dash;
	}
	qsort(v, n, sizeof(*v), strp_cmp);
	return v;
}

/* the venv step's line for a derived venv */
static void
step_ok_derived(const char *src)
{
	char note[128];

	snprintf(note, sizeof(note), "derived from venvs/%.64s", src);
	step_done("venv", note);
}

/* runs argv in the venv being derived; why says what failed */
static int
derive_run(char **argv, struct runopts *o, char *why, size_t wl)
{
	struct result r;

	if (run(argv, o, &r) == 0)
		return 0;
	snprintf(why, wl, "pip: %s", why_failed(&r, argv[0], o->timeout));
	return -1;
}

/* argv for the venv's own pip: VENV/bin/python -m pip WORDS... */
static char **
venv_pip(const char *vpath, ...)
{
	char **argv = words_plus("x", "-m", "pip", (char *)NULL);
	va_list ap;

	free(argv[0]);
	argv[0] = fmtpath("%s/bin/python", vpath);
	va_start(ap, vpath);
	argv = append_words(argv, ap);
	va_end(ap);
	return argv;
}

/* the copy: the source venv into venvs/KEY, paths rewritten */
static int
derive_copy(int vfd, const char *src, const char *key, struct vcopy *c,
    char *why, size_t wl)
{
	struct stat st;
	int sfd, dfd = -1, r = -1;

	if ((sfd = openat(vfd, src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || fstat(sfd, &st) == -1)
		snprintf(why, wl, "%s: %s", c->from, strerror(errno));
	else if (mkdirat(vfd, key, 0700) == -1 || (dfd = openat(vfd, key,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		snprintf(why, wl, "mkdir %s: %s", c->to, strerror(errno));
	else if (copy_tree(sfd, dfd, "", c) == -1)
		snprintf(why, wl, "copy: %s", c->why);
	else if (fchmod(dfd, st.st_mode & 07777) == -1)
		snprintf(why, wl, "%s: %s", c->to, strerror(errno));
	else
		r = 0;
	if (sfd != -1)
		close(sfd);
	if (dfd != -1)
		close(dfd);
	return r;
}

/* uninstalls what the venv has ("name version") and want lacks */
static int
derive_uninstall(const char *vpath, char **want, char **have,
    struct runopts *o, char *why, size_t wl)
{
	char **argv = venv_pip(vpath, "uninstall", "-y", (char *)NULL), **w, **h;
	size_t n, len;
	int r = 0;

	for (n = 0; argv[n]; n++)
		;
	for (h = have; *h; h++) {
		len = strcspn(*h, " ");
		if (is_seed(*h))
			continue;
		for (w = want; *w && (strncmp(*w, *h, len) != 0 ||
		    (*w)[len] != ' '); w++)
			;
		if (*w != NULL)
			continue;
		argv = xrealloc(argv, (n + 2) * sizeof(*argv));
		argv[n] = xstrdup(*h);
		argv[n++][len] = '\0';
		argv[n] = NULL;
	}
	if (n > 5)
		r = derive_run(argv, o, why, wl);
	free_words(argv);
	return r;
}

/* pip constraints pinning every non-seed "name version" of want */
static int
write_constraints(const char *cpath, char **want, char *why, size_t wl)
{
	size_t cn = 0;
	char *cons, *sp, **w;
	int fd, r = 0;

	for (w = want; *w; w++)
		cn += strlen(*w) + 2;
	cons = xrealloc(NULL, cn + 1);
	for (w = want, cn = 0; *w; w++)
		if (!is_seed(*w) && (sp = strchr(*w, ' ')) != NULL)
			cn += (size_t)sprintf(cons + cn, "%.*s==%s\n",
			    (int)(sp - *w), *w, sp + 1);
	if ((fd = open(cpath, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1 || write_all(fd, cons, cn) == -1 ||
	    close(fd) == -1) {
		snprintf(why, wl, "%s: %s", cpath, strerror(errno));
		r = -1;
	}
	free(cons);
	return r;
}

/*
 * The copy to what a fresh build would hold: pip's dry run over the new
 * requirements says what that is; what else the copy has is uninstalled;
 * an install pinned to the dry run's versions does the rest.
 */
static int
derive_pip(const char *vpath, const char *reqpath, const char *seeds,
    struct runopts *o, char *why, size_t wl)
{
	char *out = xrealloc(NULL, DRYRUN_MAX), **argv, **want = NULL;
	char **have = NULL, *cpath = fmtpath("%s/.deploy-constraints", vpath);
	char *got;
	double t0 = now(), t1, t2;
	int r = -1;

	out[0] = '\0';
	argv = venv_pip(vpath, "install", "--dry-run", "--ignore-installed",
	    "-r", reqpath, (char *)NULL);
	o->out = out;
	o->outlen = DRYRUN_MAX;
	o->bothout = 1;	/* pip's ERROR lines say whether to build from nothing */
	if (derive_run(argv, o, why, wl) == -1)
		goto out;
	o->out = NULL;
	o->bothout = 0;
	if (strlen(out) >= DRYRUN_MAX - 1 || (want = dryrun_dists(out)) == NULL) {
		snprintf(why, wl, "pip's dry run did not say what it would "
		    "install");
		goto out;
	}
	t1 = now();
	if ((have = venv_dists(vpath, why, wl)) == NULL ||
	    derive_uninstall(vpath, want, have, o, why, wl) == -1 ||
	    write_constraints(cpath, want, why, wl) == -1)
		goto out;
	free_words(argv);
	argv = venv_pip(vpath, "install", "-r", reqpath, "-c", cpath,
	    (char *)NULL);
	t2 = now();
	if (derive_run(argv, o, why, wl) == -1)
		goto out;
	logf_("resolve times: dry-run %.3f, uninstall %.3f, install %.3f\n",
	    t1 - t0, t2 - t1, now() - t2);
	unlink(cpath);
	if (strcmp((got = venv_seeds(vpath)), seeds) != 0)
		snprintf(why, wl, "pip, setuptools or wheel differ from what "
		    "virtualenv installs (%s, not %s)", got, seeds);
	else
		r = 0;
	free(got);
out:
	o->out = NULL;
	o->outlen = 0;
	o->bothout = 0;
	free_words(argv);
	if (want != NULL)
		free_words(want);
	if (have != NULL)
		free_words(have);
	free(cpath);
	free(out);
	return r;
}

/*
 * Run by the venv's python as `python -c PINNED_RUN FILE ARGS`: pip's own
 * commands in one interpreter, since each start of pip costs about 0.25 s:
 * uninstall what ARGS name up to the first "--", install --no-deps
 * --force-reinstall what follows up to the second, then check; and for
 * each NAME[EXTRAS] after that, whether what the extras require is
 * installed, which pip check does not look at. Exit 3 when a check
 * fails, 1 when pip does. The parts' times go to the log.
 */
#define PINNED_RUN	"import sys; exec(compile(open(sys.argv.pop(1)).read(), " \
			    "'deploy-pinned', 'exec'))"

static const char pinned_py[] =
"import sys, time\n"
"a = sys.argv[1:]\n"
"i = a.index('--')\n"
"j = a.index('--', i + 1)\n"
"t = time.monotonic()\n"
"from pip._internal.cli.main import main\n"
"p = ['import %.3f' % (time.monotonic() - t)]\n"
"def part(name, argv, fail):\n"
"    t = time.monotonic()\n"
"    r = main(argv)\n"
"    p.append('%s %.3f' % (name, time.monotonic() - t))\n"
"    return fail if r else 0\n"
"r = a[:i] and part('uninstall', ['uninstall', '-y'] + a[:i], 1) or 0\n"
"if not r and a[i + 1:j]:\n"
"    r = part('install', ['install', '--no-deps', '--force-reinstall'] +\n"
"        a[i + 1:j], 1)\n"
"t = time.monotonic()\n"
"if not r:\n"
"    r = main(['check']) and 3\n"
"if not r and a[j + 1:]:\n"
"    from pip._internal.metadata import get_default_environment\n"
"    from pip._vendor.packaging.requirements import Requirement\n"
"    e = get_default_environment()\n"
"    for s in a[j + 1:]:\n"
"        q = Requirement(s)\n"
"        d = e.get_distribution(q.name)\n"
"        for w in d.iter_dependencies(q.extras) if d else ():\n"
"            g = e.get_distribution(w.name)\n"
"            if g is None or not w.specifier.contains(g.version, True):\n"
"                print('%s requires %s, which is not installed' % (s, w))\n"
"                r = 3\n"
"p.append('check %.3f' % (time.monotonic() - t))\n"
"print('pinned times: ' + ', '.join(p), flush=True)\n"
"sys.exit(r)\n";

struct pinned {
	char	**names;	/* normalized, of every requirement line */
	char	**gone;		/* installed, not named, not seeds */
	char	**extras;	/* "NAME[EXTRAS]" of the lines with extras */
	char	*inst;		/* pip's file: the options, changed lines */
	const char *old;	/* the source venv's requirements */
	size_t	 instn, nnames, ngone, nextras, nchanged, nhashed;
	int	 reqhashes;
};

static char **
push_word(char **v, size_t *n, char *w)
{
	v = xrealloc(v, (*n + 2) * sizeof(*v));
	v[(*n)++] = w;
	v[*n] = NULL;
	return v;
}

static void
push_line(struct pinned *p, const char *l, size_t n)
{
	p->inst = xrealloc(p->inst, p->instn + n + 2);
	memcpy(p->inst + p->instn, l, n);
	p->instn += n;
	p->inst[p->instn++] = '\n';
	p->inst[p->instn] = '\0';
}

/*
 * A requirement line [l, e), comment and blanks trimmed, that passed
 * reqs_shareable, when it pins one version: NAME[EXTRAS] == VERSION, then
 * markers and --hash options. The normalized name in n, the version in
 * v, *x the end of the extras (l when none). 0, or -1 for a range, a
 * wildcard, "===", two specifiers, anything else.
 */
static int
pin_line(const char *l, const char *e, char *n, size_t nl, char *v,
    size_t vl, const char **x)
{
	const char *s, *t, *opt, *v0;

	for (opt = l; opt < e; opt++)
		if (*opt == '-' && opt > l && RQ_WS(opt[-1]))
			break;
	for (t = l; t < opt && *t != ';'; t++)
		;
	for (s = l; s < t && (RQ_ALNUM(*s) || strchr("._-", *s)); s++)
		;
	if (s == l || (size_t)(s - l) >= nl)
		return -1;
	memcpy(n, l, (size_t)(s - l));
	n[s - l] = '\0';
	norm_name(n);
	while (s < t && RQ_WS(*s))
		s++;
	*x = l;
	if (s < t && *s == '[') {
		while (s < t && *s != ']')
			s++;
		if (s == t)
			return -1;
		*x = ++s;
		while (s < t && RQ_WS(*s))
			s++;
	}
	if (t - s < 3 || s[0] != '=' || s[1] != '=' || s[2] == '=')
		return -1;
	for (s += 2; s < t && RQ_WS(*s); s++)
		;
	for (v0 = s; s < t && (RQ_ALNUM(*s) || strchr("._+!-", *s)); s++)
		;
	if (s == v0 || (size_t)(s - v0) >= vl)
		return -1;
	memcpy(v, v0, (size_t)(s - v0));
	v[s - v0] = '\0';
	while (s < t && RQ_WS(*s))
		s++;
	return s == t ? 0 : -1;
}

/* whether the source's requirements had the line [l, e) as it is */
static int
old_line(const char *old, const char *l, const char *e)
{
	const char *q, *end = old + strlen(old);
	size_t n = (size_t)(e - l);

	for (q = old; (q = find_bytes(q, (size_t)(end - q), l, n)) != NULL;
	    q++)
		if ((q == old || q[-1] == '\n') && (q + n == end ||
		    strchr("\n\r#", q[n]) != NULL || RQ_WS(q[n])))
			return 1;
	return 0;
}

/* one line of a pinned file into the plan; -1 when it is not pinned */
static int
plan_line(struct pinned *p, const char *l, const char *e, char **have)
{
	char n[256], v[128], *nv, **h;
	const char *x;
	int hashed;

	if (*l == '-') {	/* an option: pip needs it to find the same */
		if ((size_t)(e - l) >= 16 && strncmp(l, "--require-hashes",
		    16) == 0)
			p->reqhashes = 1;
		push_line(p, l, (size_t)(e - l));
		return 0;
	}
	if (pin_line(l, e, n, sizeof(n), v, sizeof(v), &x) == -1)
		return -1;
	if ((hashed = find_bytes(l, (size_t)(e - l), "--hash", 6) != NULL))
		p->nhashed++;
	p->names = push_word(p->names, &p->nnames, xstrdup(n));
	if (x != l) {
		char *w = xrealloc(NULL, (size_t)(x - l) + 1);

		memcpy(w, l, (size_t)(x - l));
		w[x - l] = '\0';
		p->extras = push_word(p->extras, &p->nextras, w);
	}
	nv = fmtpath("%s %s", n, v);
	for (h = have; *h && strcmp(*h, nv) != 0; h++)
		;
	/* new, another version, or hashes the copy was not checked by */
	if (*h == NULL || (hashed && !old_line(p->old, l, e))) {
		push_line(p, l, (size_t)(e - l));
		p->nchanged++;
	}
	free(nv);
	return 0;
}

static void
plan_free(struct pinned *p)
{
	if (p->names != NULL)
		free_words(p->names);
	if (p->gone != NULL)
		free_words(p->gone);
	if (p->extras != NULL)
		free_words(p->extras);
	free(p->inst);
}

/*
 * What the fast path does to a venv holding have ("name version") for the
 * requirements buf: 0, or -1 when a line is not a plain pin (or an option
 * pip reads another file by, which reqs_shareable refused already).
 */
static int
pinned_plan(const char *buf, size_t len, char **have, const char *old,
    struct pinned *p)
{
	const char *l, *q, *e, *end = buf + len;
	char **h, **w;
	size_t nl;

	memset(p, 0, sizeof(*p));
	p->old = old;
	for (l = buf; l < end; l = q + 1) {
		if ((q = memchr(l, '\n', (size_t)(end - l))) == NULL)
			q = end;
		/* pip's comments: '#' at the start or after a blank */
		for (e = l; e < q; e++)
			if (*e == '#' && (e == l || RQ_WS(e[-1])))
				break;
		while (l < e && RQ_WS(*l))
			l++;
		while (e > l && RQ_WS(e[-1]))
			e--;
		if (l < e && plan_line(p, l, e, have) == -1)
			return -1;
	}
	/* hash checking is all or nothing: a line without a hash then
	 * fails a fresh build, and so the resolve */
	if (p->nnames == 0 || ((p->nhashed > 0 || p->reqhashes) &&
	    p->nhashed != p->nnames))
		return -1;
	for (h = have; *h; h++) {
		nl = strcspn(*h, " ");
		for (w = p->names; *w && (strlen(*w) != nl ||
		    strncmp(*w, *h, nl) != 0); w++)
			;
		if (*w == NULL && !is_seed(*h))
			p->gone = push_word(p->gone, &p->ngone,
			    fmtpath("%.*s", (int)nl, *h));
	}
	return 0;
}

/* the two files the pinned run reads, 0600, next to the venv's record */
static int
put_file(const char *path, const char *s, size_t n, char *why, size_t wl)
{
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1 || write_all(fd, s, n) == -1 ||
	    close(fd) == -1) {
		snprintf(why, wl, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* argv of the pinned run: uninstall -- install -- extras */
static char **
pinned_argv(const char *vpath, const char *py, const char *req,
    struct pinned *p)
{
	char **argv = words_plus("x", "-c", PINNED_RUN, py, (char *)NULL);
	size_t n = 4, i;

	free(argv[0]);
	argv[0] = fmtpath("%s/bin/python", vpath);
	for (i = 0; i < p->ngone; i++)
		argv = push_word(argv, &n, xstrdup(p->gone[i]));
	argv = push_word(argv, &n, xstrdup("--"));
	if (p->nchanged > 0) {
		argv = push_word(argv, &n, xstrdup("-r"));
		argv = push_word(argv, &n, xstrdup(req));
	}
	argv = push_word(argv, &n, xstrdup("--"));
	for (i = 0; i < p->nextras; i++)
		argv = push_word(argv, &n, xstrdup(p->extras[i]));
	return argv;
}

/*
 * The copy to the pinned file's set, no resolver: what the copy has and
 * the file does not name is uninstalled, the lines whose version is not
 * the copy's, or whose hashes are not the ones the source was built
 * with, are installed --no-deps --force-reinstall (with their hashes, so
 * pip checks them), and pip check says the set is closed. 0 done; 1
 * the file is not all pins; -1 failed (why): resolve instead.
 */
static int
derive_pinned(const struct vcopy *c, const char *buf, size_t len,
    const char *seeds, struct runopts *o, char *why, size_t wl)
{
	const char *vpath = c->to;
	char *req = fmtpath("%s/.deploy-pinned", vpath), **argv = NULL;
	char *py = fmtpath("%s/.deploy-pinned.py", vpath), **have, *got;
	char *rec = fmtpath("%s/%s", c->from, VREC), *old = NULL, *q;
	struct pinned p;
	struct result r;
	double t0;
	size_t n;
	int rc = -1;

	if ((have = venv_dists(vpath, why, wl)) == NULL)
		goto out;
	/* what the source was built from: its hashes were checked */
	if ((old = read_file_at(AT_FDCWD, rec, DERIVE_MAX + 4096, &n,
	    NULL)) == NULL || (q = strstr(old, "\nrequirements\n")) == NULL) {
		snprintf(why, wl, "%s: %s", rec, old ? "no requirements" :
		    strerror(errno));
		goto out;
	}
	if (pinned_plan(buf, len, have, q + 14, &p) == -1) {
		plan_free(&p);
		rc = 1;
		goto out;
	}
	logf_("pinned: %zu lines, %zu to install, %zu to uninstall\n",
	    p.nnames, p.nchanged, p.ngone);
	if (put_file(req, p.inst ? p.inst : "", p.instn, why, wl) == -1 ||
	    put_file(py, pinned_py, sizeof(pinned_py) - 1, why, wl) == -1)
		goto done;
	argv = pinned_argv(vpath, py, req, &p);
	t0 = now();
	if (run(argv, o, &r) == -1) {
		snprintf(why, wl, "%s", !r.signo && !r.timedout && !r.execerr &&
		    WIFEXITED(r.status) && WEXITSTATUS(r.status) == 3 ? "pip check "
		    "failed: the requirements are not closed under their "
		    "dependencies" : why_failed(&r, "pip", o->timeout));
		goto done;
	}
	logf_("pinned: python and pip %.3fs\n", now() - t0);
	if (strcmp((got = venv_seeds(vpath)), seeds) != 0)
		snprintf(why, wl, "pip, setuptools or wheel differ from what "
		    "virtualenv installs (%s, not %s)", got, seeds);
	else
		rc = 0;
	free(got);
done:
	unlink(req);
	unlink(py);
	plan_free(&p);
out:
	if (argv != NULL)
		free_words(argv);
	if (have != NULL)
		free_words(have);
	free(old);
	free(rec);
	free(req);
	free(py);
	return rc;
}

/*
 * The venv and pip lines of a derive, written once pip is done: the venv
 * step's time is the copy's, the pip step's its own.
 */
static void
derive_lines(const char *src, double t0, double t1, const char *fail,
    const char *how)
{
	size_t keep = taillen;

	stepstart = now() - (t1 - t0);
	step_ok_derived(src);
	step_begin("pip");
	taillen = keep;		/* pip's output, for a failure's tail */
	stepstart = t1;
	if (fail != NULL)
		step_fail("pip", fail, 1);
	else if (how != NULL)
		step_done("pip", how);
	else
		step_ok("pip");
}

/*
 * The requirements into the copy: the pinned fast path when the file is
 * all pins (*how "pinned"), else, or when pip check finds the pins not
 * closed, the resolver. 0 done, -1 failed (why says it).
 */
static int
derive_deps(struct vcopy *c, const char *buf, size_t len, const char *reqpath,
    const char *seeds, struct runopts *o, char *why, size_t wl,
    const char **how)
{
	int r;

	*how = NULL;
	if ((r = derive_pinned(c, buf, len, seeds, o, why, wl)) == 0) {
		*how = "pinned";
		return 0;
	}
	if (gotsig)
		return -1;
	if (r == -1)
		logf_("pinned fast path failed: %s; resolving instead\n", why);
	return derive_pip(c->to, reqpath, seeds, o, why, wl);
}

static void fail_build(const char *sha, int status) __attribute__((noreturn));

/*
 * venvs/KEY from the venvs/SRC nearest to it, as the venv and pip steps:
 * 0 done; -1 failed (logged, the half-made venv removed) with the venv
 * step still open: build_venv builds from nothing in it, and note says
 * why. When pip failed for a reason a fresh build meets too (the index
 * unreachable, a hash mismatch, no matching distribution), the pip step
 * fails and so does the build. A signal ends the build.
 */
static int
derive_venv(const char *sha, int vfd, const char *key, const char *src,
    const char *seeds, const char *reqpath, const char *buf, size_t len,
    struct runopts *o, char *note, size_t nl)
{
	char why[PATH_MAX + 256] = "", fail[PATH_MAX + 384];
	const char *lasting = NULL, *how = NULL;
	double t0, t1;
	struct vcopy c;
	int r = -1;

	memset(&c, 0, sizeof(c));
	c.from = fmtpath("%s/venvs/%s", root, src);
	c.to = fmtpath("%s/venvs/%s", root, key);
	c.fromlen = strlen(c.from);
	c.tolen = strlen(c.to);
	step_begin("venv");
	t0 = stepstart;
	logf_("deriving %s from %s\n", c.to, c.from);
	if (derive_copy(vfd, src, key, &c, why, sizeof(why)) == 0) {
		t1 = now();
		logf_("copy: %.3fs, of it %.3fs finding the old path and "
		    "rewriting %zu files\n", t1 - t0, c.rewrite, c.nrewrit);
		logf_("pip, in the copy\n");
		if ((r = derive_deps(&c, buf, len, reqpath, seeds, o, why,
		    sizeof(why), &how)) == 0)
			derive_lines(src, t0, t1, NULL, how);
		else if (!gotsig && (lasting = pip_lasting(tail, taillen)) !=
		    NULL) {
			snprintf(fail, sizeof(fail), "%s (%s: a venv built from "
			    "nothing would fail the same)", printable(why),
			    lasting);
			derive_lines(src, t0, t1, fail, NULL);
		}
	}
	if (r == -1) {
		remove_in(vfd, "venvs", key);
		if (!gotsig && lasting == NULL) {
			logf_("venv derive failed: %s; building from nothing\n",
			    why);
			snprintf(note, nl, "built from nothing: deriving from "
			    "venvs/%s failed: %s", src, printable(why));
		}
	}
	free((char *)c.from);
	free((char *)c.to);
	if (gotsig)
		fail_build(sha, 128 + gotsig);
	if (lasting != NULL)
		fail_build(sha, EXIT_FAILED);
	return r;
}

#define REQS_MAX	(64 << 20)	/* bytes of requirements a key covers */

/*
 * The requirements file's bytes, or NULL when nothing is at its path
 * (the pip step is then skipped). A link is followed while it stays in
 * the release; *reqpath becomes the file pip must read, so that it reads
 * what was hashed. Anything else fails the build.
 */
static char *
read_requirements(const char *sha, const char *rdir, char **reqpath,
    size_t *len)
{
	char rreal[PATH_MAX], qreal[PATH_MAX], why[PATH_MAX + 128] = "";
	char *buf = NULL;
	struct stat st;
	size_t rl;

	*reqpath = fmtpath("%s/%s", rdir, cfg.requirements);
	*len = 0;
	if (lstat(*reqpath, &st) == -1 && errno == ENOENT)
		return NULL;
	if (realpath(rdir, rreal) == NULL)
		snprintf(why, sizeof(why), "%s: %s", rdir, strerror(errno));
	else if (realpath(*reqpath, qreal) == NULL)
		snprintf(why, sizeof(why), "%s: %s", cfg.requirements,
		    errno == ENOENT ? "a symbolic link to nothing" :
		    strerror(errno));
	else if (strncmp(qreal, rreal, rl = strlen(rreal)) != 0 ||
	    qreal[rl] != '/')
		snprintf(why, sizeof(why), "%s: a symbolic link out of the "
		    "release (to %s)", cfg.requirements, qreal);
	else if ((buf = read_file_at(AT_FDCWD, qreal, REQS_MAX, len,
	    NULL)) == NULL)
		snprintf(why, sizeof(why), "%s: %s", cfg.requirements,
		    strerror(errno));
	if (why[0] != '\0') {
		step_begin("pip");
		step_fail("pip", printable(why), 0);
		fail_build(sha, EXIT_FAILED);
	}
	free(*reqpath);
	*reqpath = xstrdup(qreal);
	return buf;
}

/*
 * The venv and pip steps from nothing: virtualenv, then pip install -r.
 * *seeds, when asked, gets what virtualenv put in, before pip changes it.
 */
static void
build_venv(const char *sha, const char *vpath, const char *reqpath,
    int haveq, struct runopts *o, char **seeds, const char *note)
{
	struct result r;
	char **argv;

	argv = words_plus(cfg.virtualenv, vpath, (char *)NULL);
	if (note == NULL)
		step_begin("venv");	/* else a failed derive's step goes on */
	if (run(argv, o, &r) == -1) {
		step_fail("venv", why_failed(&r, argv[0], o->timeout), 1);
		fail_build(sha, r.signo ? 128 + r.signo : EXIT_FAILED);
	}
	step_done("venv", note);
	free_words(argv);
	if (seeds != NULL)
		*seeds = venv_seeds(vpath);
	if (!haveq) {
		char why[PATH_MAX + 32];

		snprintf(why, sizeof(why), "no %s", cfg.requirements);
		step_skip("pip", why);
		return;
	}
	argv = venv_pip(vpath, "install", "-r", reqpath, (char *)NULL);
	if (run_step("pip", argv, o, &r) == -1)
		fail_build(sha, r.signo ? 128 + r.signo : EXIT_FAILED);
	free_words(argv);
}

/* releases/SHA/.venv -> ../../venvs/KEY */
static void
link_venv(const char *sha, const char *rdir, const char *key)
{
	char *lnk = fmtpath("../../venvs/%s", key);
	char *dot = fmtpath("%s/.venv", rdir);

	if (symlink(lnk, dot) == -1) {
		warnx("%s: %s", dot, strerror(errno));
		fail_build(sha, EXIT_FAILED);
	}
	free(lnk);
	free(dot);
}

/*
 * 4. venv and pip: shared under venvs/KEY when the requirements allow
 * (reused as it is, or derived from the nearest one), else in the release
 */
static void
step_venv_pip(const char *sha, const char *rdir)
{
	char *reqpath, *buf, key[17], *vpath, src[17], *seeds = NULL, *rec;
	char note[PATH_MAX + 384];
	struct runopts o = opts(rdir, ENV_RELEASE, rdir, sha);
	unsigned long long h = 1469598103934665603ULL, base = h;
	char *extra[3] = { NULL, NULL, NULL };
	size_t len, recn;
	int shared, vfd = -1, ne = 0;

	buf = read_requirements(sha, rdir, &reqpath, &len);
	/* past REQS_MAX the key would not see all of it: never shared */
	shared = cfg.reuse_venv && (buf == NULL || (len <= REQS_MAX &&
	    reqs_shareable(buf, len)));
	if (buf != NULL)
		h = fnv(h, buf, len);
	h = fnv(h, cfg.virtualenv, strlen(cfg.virtualenv) + 1);
	python_id(&h);
	snprintf(key, sizeof(key), "%016llx", h);
	/* what a venv is derived from must share these: the same python
	 * and virtualenv command */
	base = fnv(base, cfg.virtualenv, strlen(cfg.virtualenv) + 1);
	python_id(&base);
	if (getenv("PIP_CACHE_DIR") == NULL && getenv("PIP_NO_CACHE_DIR") == NULL)
		extra[ne++] = fmtpath("PIP_CACHE_DIR=%s/%s/pip-cache", root, STATE);
	if (getenv("PIP_DISABLE_PIP_VERSION_CHECK") == NULL)
		extra[ne++] = xstrdup("PIP_DISABLE_PIP_VERSION_CHECK=1");
	o.extra = extra;
	o.record = 1;
	vpath = shared ? fmtpath("%s/venvs/%s", root, key) :
	    fmtpath("%s/.venv", rdir);
	if (!shared) {
		build_venv(sha, vpath, reqpath, buf != NULL, &o, NULL, NULL);
		goto done;
	}
	mkdirat(rootfd, "venvs", 0755);
	if ((vfd = openat(rootfd, "venvs", O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) == -1)
		die(EXIT_FAILED, "%s/venvs: %s", root, strerror(errno));
	link_venv(sha, rdir, key);
	if (venv_done(vfd, key)) {
		step_skip("venv", "reused venvs/");
		logf_("reusing %s\n", vpath);
		step_skip("pip", "requirements unchanged");
		goto done;
	}
	remove_in(vfd, "venvs", key);	/* a broken one is never reused */
	/* changed requirements: from the nearest venv when there is one */
	note[0] = '\0';
	if (buf == NULL || derive_source(vfd, base, buf, len, key, src,
	    &seeds) == -1 || derive_venv(sha, vfd, key, src, seeds, reqpath,
	    buf, len, &o, note, sizeof(note)) == -1) {
		free(seeds);
		build_venv(sha, vpath, reqpath, buf != NULL, &o, &seeds,
		    note[0] ? note : NULL);
	}
	rec = venv_record(base, seeds, buf ? buf : "", len, &recn);
	mark_venv_done(key, rec, recn);
	free(rec);
	free(seeds);
done:
	if (vfd != -1)
		close(vfd);
	free(extra[0]);
	free(extra[1]);
	free(vpath);
	free(buf);
	free(reqpath);
}

/*
 * Puts a link to target at rdir/path: the parents are made or entered
 * with O_NOFOLLOW (a symlink from the checkout must not lead us out of the
 * release), and what the checkout put at path is replaced.
 */
static int
link_one(const char *rdir, const char *path, const char *target)
{
	char *copy = xstrdup(path), *part, *next, *where;
	struct stat st;
	int fd, nfd, r = -1;

	if ((fd = open(rdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		free(copy);
		return -1;
	}
	for (part = copy; (next = strchr(part, '/')) != NULL; part = next + 1) {
		*next = '\0';
		if (mkdirat(fd, part, 0755) == -1 && errno != EEXIST)
			goto out;
		if ((nfd = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC)) == -1)
			goto out;	/* ELOOP/ENOTDIR: a symlink or a file */
		close(fd);
		fd = nfd;
	}
	if (fstatat(fd, part, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		where = fmtpath("%s/%s", rdir, path);
		r = remove_tree(fd, part, where);
		free(where);
		if (r == -1)
			goto out;
	}
	r = symlinkat(target, fd, part);
out:
	close(fd);
	free(copy);
	return r;
}

/* links shared/<path> into the release at the same relative path */
static void
step_link(const char *sha, const char *rdir)
{
	char **w, **p, *dst, *target, *slash;
	struct stat st;
	int depth;

	if (cfg.link == NULL) {
		step_skip("link", "nothing to link");
		return;
	}
	step_begin("link");
	w = words(cfg.link);
	for (p = w; *p; p++) {
		char *src = fmtpath("shared/%s", *p);

		if (fstatat(rootfd, src, &st, 0) == -1) {
			char why[PATH_MAX + 64];
			snprintf(why, sizeof(why), "%s/%s: %s (link)", root, src,
			    strerror(errno));
			step_fail("link", why, 0);
			fail_build(sha, EXIT_FAILED);
		}
		free(src);
		dst = fmtpath("%s/%s", rdir, *p);
		for (depth = 1, slash = *p; (slash = strchr(slash, '/')); slash++)
			depth++;
		target = xrealloc(NULL, (size_t)depth * 3 + 16 + strlen(*p));
		target[0] = '\0';
		while (depth-- > 0)
			strcat(target, "../");
		strcat(target, "../shared/");
		strcat(target, *p);
		if (link_one(rdir, *p, target) == -1) {
			char why[PATH_MAX + 64];
			snprintf(why, sizeof(why), "%s: %s", dst, strerror(errno));
			step_fail("link", why, 0);
			fail_build(sha, EXIT_FAILED);
		}
		logf_("%s -> %s\n", dst, target);
		free(target);
		free(dst);
	}
	free_words(w);
	step_ok("link");
}

static void
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
	/* current stays: it runs, as a run with nothing to build makes sure;
	 * a broken head must not keep a rebooted site down (the runner
	 * converges on the way out) */
	if (status == EXIT_FAILED && notify_event != NULL)
		build_failed = 1;
	leave(status);
}

/* REVISION: the full sha, for the app to read (as Capistrano has it) */
static void
write_revision(const char *sha, const char *rdir)
{
	char *p = fmtpath("%s/REVISION", rdir), *line = fmtpath("%s\n", sha);
	int fd;

	unlink(p);	/* whatever the checkout put there, even a link */
	if ((fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0644)) == -1 || write_all(fd, line, strlen(line)) == -1 ||
	    close(fd) == -1) {
		warnx("%s: %s", p, strerror(errno));
		fail_build(sha, EXIT_FAILED);
	}
	free(line);
	free(p);
}

/*
 * A release is the commit's tree with each submodule read in at its
 * pinned commit (recursively, SUBDEPTH deep at most) and each LFS file's
 * content in place of its pointer, or the build fails: never a silently
 * incomplete tree. Each submodule has a bare mirror of its own,
 * ROOT/modules/HASH.git (HASH: of its URL), fetched only when the pinned
 * commit is not in it yet; STATE/uses/SHA names the mirrors release SHA
 * was read from, so that prune keeps those. Only path and url are read
 * from the commit's .gitmodules, and every git run here has
 * GIT_ALLOW_PROTOCOL, so that no URL runs a program. The LFS filter is
 * given on the command line: no system or user config is needed or
 * trusted.
 */
#define SUBDEPTH	5

#define TREEMAX		((size_t)64 << 20)	/* bytes of ls-tree output */

#define LFSHEAD		"version https://git-lfs.github.com/spec/v1"

static char allowproto[] = "GIT_ALLOW_PROTOCOL=file:ssh:https:git";

struct tree {
	char		*gd;		/* "--git-dir=MIRROR" */
	char		*url;
	char		 sha[65];
	char		*path;		/* in the release; "" for the top */
	int		 depth;
	const struct tree *up;
};

struct submod {
	char	*name, *path, *url;
};

static const char *tree_rel;	/* the release being built */

static char top_path[] = "";	/* the superproject's path in the release */

static char *tree_uses;		/* the mirrors it reads, one a line */

/* The build fails: one line saying why, after the step's FAILED line. */
static void
tree_fail(const char *step, const char *fmt, ...)
{
	char why[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	step_fail(step, why, 1);
	fail_build(tree_rel, EXIT_FAILED);
}

/* git ARGS... (up to a NULL); 0 when it exited 0. A signal ends the build. */
static int
tree_git(char *out, size_t outlen, struct result *r, ...)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char *extra[2] = { allowproto, NULL }, **argv;
	va_list ap;
	int rc;

	va_start(ap, r);
	argv = append_words(words("git"), ap);
	va_end(ap);
	o.extra = extra;
	o.record = 1;
	o.out = out;
	o.outlen = outlen;
	o.quiet = out != NULL;
	if (out != NULL)
		out[0] = '\0';
	rc = run(argv, &o, r);
	free_words(argv);
	if (r->signo)
		fail_build(tree_rel, 128 + r->signo);
	return rc;
}

/* Whether a .gitattributes (its blob oid) routes a path through LFS. */
static int
attr_lfs(const char *gd, const char *oid)
{
	char buf[65536], *line, *save;
	struct result r;

	if (tree_git(buf, sizeof(buf), &r, gd, "cat-file", "blob", oid,
	    (char *)NULL) == -1)
		return 0;
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		if (line[strspn(line, " \t")] != '#' &&
		    strstr(line, "filter=lfs") != NULL)
			return 1;
	return 0;
}

/*
 * The gitlinks of t's commit ("SHA PATH" each, NULL-terminated) and in
 * *lfs whether any of its .gitattributes names the LFS filter.
 */
static char **
tree_scan(const struct tree *t, const char *step, int *lfs)
{
	char *out = xrealloc(NULL, TREEMAX), *line, *save, *tab, *base;
	char **links = xrealloc(NULL, sizeof(*links));
	size_t n = 0;
	struct result r;

	links[0] = NULL;
	*lfs = 0;
	if (tree_git(out, TREEMAX, &r, "-c", "core.quotePath=false", t->gd,
	    "ls-tree", "-r", "--full-tree", t->sha, (char *)NULL) == -1)
		tree_fail(step, "git ls-tree %.12s failed", t->sha);
	if (r.outn >= TREEMAX - 1)
		tree_fail(step, "the tree of %.12s lists more than %zu MB",
		    t->sha, TREEMAX >> 20);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((tab = strchr(line, '\t')) == NULL || tab - line < 52)
			continue;
		*tab++ = '\0';
		base = strrchr(tab, '/') ? strrchr(tab, '/') + 1 : tab;
		if (strncmp(line, "160000 commit ", 14) == 0) {
			if (*tab == '"' || !is_sha(line + 14))
				tree_fail(step, "submodule '%s': a path with "
				    "characters git quotes", printable(tab));
			links = xrealloc(links, (n + 2) * sizeof(*links));
			links[n++] = fmtpath("%s %s", line + 14, tab);
			links[n] = NULL;
		} else if (strcmp(base, ".gitattributes") == 0 &&
		    strncmp(line + 7, "blob ", 5) == 0 && !*lfs)
			*lfs = attr_lfs(t->gd, line + 12);
	}
	free(out);
	return links;
}

/* A .gitmodules entry that could reach outside its place, or run code. */
static const char *
submod_bad(const struct submod *m)
{
	const char *s, *c;
	size_t n;

	if (*m->name == '\0' || strstr(m->name, "..") != NULL)
		return "a name that is empty or holds '..'";
	if (m->path == NULL || !relpath_ok(m->path) || *m->path == '-')
		return "a path that is missing, absolute, holds '..' or "
		    "starts with '-'";
	for (s = m->path; *s; s += n + (s[n] == '/')) {
		n = strcspn(s, "/");
		if ((n == 4 && strncasecmp(s, ".git", 4) == 0) ||
		    (n == 7 && strncmp(s, ".deploy", 7) == 0) ||
		    (s == m->path && n == 5 && strncmp(s, ".venv", 5) == 0))
			return "a path through .git, .deploy or .venv";
	}
	if (m->url == NULL || *m->url == '\0' || *m->url == '-')
		return "a url that is missing or starts with '-'";
	c = strstr(m->url, "::");
	if (c != NULL && memchr(m->url, '/', (size_t)(c - m->url)) == NULL)
		return "a url naming a transport helper (ext::, fd::)";
	for (s = m->url; *s; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			return "a url with control characters";
	return NULL;
}

static struct submod *
submod_of(struct submod **m, size_t *n, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (strlen((*m)[i].name) == len &&
		    strncmp((*m)[i].name, name, len) == 0)
			return &(*m)[i];
	*m = xrealloc(*m, (*n + 1) * sizeof(**m));
	(*m)[*n].name = fmtpath("%.*s", (int)len, name);
	(*m)[*n].path = (*m)[*n].url = NULL;
	return &(*m)[(*n)++];
}

/*
 * The commit's .gitmodules, read from the commit (never a working tree,
 * never its includes), every entry checked: a bad one fails the build.
 */
static size_t
gitmodules(const struct tree *t, const char *step, struct submod **m)
{
	char *out = xrealloc(NULL, 1 << 20), *spec, *p, *e, *key, *v, *dot;
	struct submod *s;
	struct result r;
	size_t n = 0, i;
	const char *why;

	*m = NULL;
	spec = fmtpath("%s:.gitmodules", t->sha);
	if (tree_git(out, 1 << 20, &r, t->gd, "config", "--no-includes", "-z",
	    "--blob", spec, "--list", (char *)NULL) == -1)
		tree_fail(step, "%s%s%.12s has submodules but no readable "
		    ".gitmodules", t->path, *t->path ? ": " : "", t->sha);
	for (p = out, e = out + r.outn; p < e; p += strlen(p) + 1) {
		key = p;
		v = strchr(p, '\n');
		if (v != NULL)
			*v++ = '\0';
		if (strncmp(key, "submodule.", 10) != 0 ||
		    (dot = strrchr(key + 10, '.')) == NULL)
			continue;
		if (strcmp(dot, ".path") != 0 && strcmp(dot, ".url") != 0)
			continue;	/* update, branch...: not ours to run */
		s = submod_of(m, &n, key + 10, (size_t)(dot - key - 10));
		if (dot[1] == 'p') {
			free(s->path);
			s->path = xstrdup(v ? v : "");
		} else {
			free(s->url);
			s->url = xstrdup(v ? v : "");
		}
	}
	for (i = 0; i < n; i++)
		if ((why = submod_bad(&(*m)[i])) != NULL)
			tree_fail(step, "%s.gitmodules of %.12s: submodule "
			    "'%s' has %s; refused", t->path, t->sha,
			    printable((*m)[i].name), why);
	free(spec);
	free(out);
	return n;
}

/*
 * url relative to the repository base came from ("../lib.git", "./x"),
 * resolved as git does; NULL when it climbs above base.
 */
static char *
sub_url(const char *base, const char *url)
{
	char *b, *s, *r;
	size_t len;
	int scp = 0;

	if (strncmp(url, "./", 2) != 0 && strncmp(url, "../", 3) != 0)
		return xstrdup(url);
	b = xstrdup(base);
	len = strlen(b);
	while (len > 0 && b[len - 1] == '/')
		b[--len] = '\0';
	for (;;) {
		if (strncmp(url, "./", 2) == 0)
			url += 2;
		else if (strncmp(url, "../", 3) == 0) {
			url += 3;
			if ((s = strrchr(b, '/')) != NULL && s > b &&
			    s[-1] != '/')
				*s = '\0';
			else if (strstr(b, "://") == NULL &&
			    (s = strrchr(b, ':')) != NULL && !scp) {
				s[1] = '\0';	/* host:app.git -> host: */
				scp = 1;
			} else {
				free(b);
				return NULL;
			}
		} else
			break;
	}
	r = fmtpath("%s%s%s", b, scp ? "" : "/", url);
	free(b);
	return r;
}

static int
has_commit(const struct tree *t)
{
	struct result r;
	char *spec = fmtpath("%s^{commit}", t->sha);
	int ok = tree_git(NULL, 0, &r, t->gd, "cat-file", "-e", spec,
	    (char *)NULL) == 0;

	free(spec);
	return ok;
}

/*
 * t's mirror under ROOT/modules, holding t's commit: cloned when new,
 * fetched only when the commit is missing.
 */
static void
sub_mirror(struct tree *t, const char *step)
{
	char name[32], *mrel, *tmp, *abs, *u;
	struct stat st;
	struct result r;
	int mfd;

	snprintf(name, sizeof(name), "%016llx.git",
	    fnv(14695981039346656037ULL, t->url, strlen(t->url)));
	mrel = fmtpath("modules/%s", name);
	t->gd = fmtpath("--git-dir=%s/%s", root, mrel);
	u = tree_uses;
	tree_uses = fmtpath("%s%s\n", u ? u : "", name);
	free(u);
	if (mkdirat(rootfd, "modules", 0755) == -1 && errno != EEXIST)
		tree_fail(step, "%s/modules: %s", root, strerror(errno));
	if (fstatat(rootfd, mrel, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		tmp = fmtpath("%.16s.tmp", name);
		abs = fmtpath("%s/modules/%s", root, tmp);
		if ((mfd = open_dir_at(rootfd, "modules")) == -1)
			tree_fail(step, "%s/modules: %s", root, strerror(errno));
		remove_in(mfd, "modules", tmp);
		if (tree_git(NULL, 0, &r, "clone", "--mirror", "--quiet", "--",
		    t->url, abs, (char *)NULL) == -1) {
			remove_in(mfd, "modules", tmp);
			tree_fail(step, "submodule %s: cannot clone %s", t->path,
			    t->url);
		}
		if (renameat(mfd, tmp, mfd, name) == -1)
			tree_fail(step, "rename %s: %s", abs, strerror(errno));
		close(mfd);
		free(tmp);
		free(abs);
	} else if (has_commit(t))
		goto done;	/* the pointer did not move: no fetch */
	else if (tree_git(NULL, 0, &r, t->gd, "fetch", "--prune", "--quiet",
	    "--no-auto-maintenance", "--end-of-options", t->url,
	    "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*",
	    (char *)NULL) == -1)
		tree_fail(step, "submodule %s: cannot fetch %s", t->path, t->url);
	/* a commit no branch or tag holds: ask for it by name */
	if (!has_commit(t))
		tree_git(NULL, 0, &r, t->gd, "fetch", "--quiet",
		    "--no-auto-maintenance", "--end-of-options", t->url, t->sha,
		    (char *)NULL);
	if (!has_commit(t))
		tree_fail(step, "submodule %s: commit %s is not in %s", t->path,
		    t->sha, t->url);
done:
	free(mrel);
}

/*
 * The LFS objects t's commit needs, into its mirror. On failure, the
 * first file whose object did not come is named.
 */
static void
tree_lfs(const struct tree *t, const char *step)
{
	char *url = *t->url == '/' ? fmtpath("file://%s", t->url) :
	    xstrdup(t->url), out[65536], *line, *save, *obj;
	struct stat st;
	struct result r;

	if (tree_git(NULL, 0, &r, t->gd, "lfs", "fetch", url, t->sha,
	    (char *)NULL) == 0) {
		free(url);
		return;
	}
	if (tree_git(out, sizeof(out), &r, t->gd, "lfs", "ls-files", "--long",
	    t->sha, (char *)NULL) == 0)
		for (line = strtok_r(out, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			if (strlen(line) < 69 || line[64] != ' ')
				continue;
			line[64] = '\0';
			obj = fmtpath("%s/lfs/objects/%.2s/%.2s/%s", t->gd + 10,
			    line, line + 2, line);
			if (stat(obj, &st) == -1)
				tree_fail(step, "LFS file %s%s%s: object %.12s "
				    "is not in %s", t->path, *t->path ? "/" : "",
				    line + 67, line, t->url);
			free(obj);
		}
	tree_fail(step, "%s%sgit lfs fetch from %s failed", t->path,
	    *t->path ? ": " : "", t->url);
}

/* t's commit read into its place in the release, LFS smudged or not. */
static void
tree_checkout(const struct tree *t, int lfs, const char *step)
{
	char *idx = fmtpath("GIT_INDEX_FILE=%s/%s/index", root, STATE);
	char *extra[3] = { idx, allowproto, NULL }, **argv, *wt;
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	struct result r;

	wt = fmtpath("--work-tree=%s/releases/%s%s%s", root, tree_rel,
	    *t->path ? "/" : "", t->path);
	if (lfs)
		argv = words_plus("git", "-c",
		    "filter.lfs.smudge=git-lfs smudge -- %f", "-c",
		    "filter.lfs.process=git-lfs filter-process", "-c",
		    "filter.lfs.required=true", t->gd, wt, "read-tree",
		    "--reset", "-u", t->sha, (char *)NULL);
	else
		argv = words_plus("git", t->gd, wt, "read-tree", "--reset",
		    "-u", t->sha, (char *)NULL);
	o.extra = extra;
	o.record = 1;
	if (run(argv, &o, &r) == -1) {
		if (r.signo)
			fail_build(tree_rel, 128 + r.signo);
		tree_fail(step, "%s%s%s", t->path, *t->path ? ": " : "",
		    why_failed(&r, "git", o.timeout));
	}
	unlinkat(statefd, "index", 0);
	free_words(argv);
	free(wt);
	free(idx);
}

/* The release's folder at path: real folders all the way, no links. */
static void
sub_place(const struct tree *t, const char *step)
{
	char *p = fmtpath("releases/%s/%s", tree_rel, t->path), *s;
	struct stat st;

	for (s = strchr(p + 9 + strlen(tree_rel), '/'); ; s = strchr(s + 1, '/')) {
		if (s != NULL)
			*s = '\0';
		if (fstatat(rootfd, p, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISDIR(st.st_mode))
			tree_fail(step, "submodule %s: %s/%s is not a folder",
			    t->path, root, p);
		if (s == NULL)
			break;
		*s = '/';
	}
	free(p);
}

static void tree_read(const struct tree *t, const char *step);

/* Each gitlink of t: its URL from t's .gitmodules, its mirror, its tree. */
static void
tree_subs(const struct tree *t, char **links)
{
	struct submod *m;
	struct tree s;
	const struct tree *u;
	size_t n, i, j, sl;
	const char *lp;
	char **l;

	n = gitmodules(t, "submodule", &m);
	for (l = links; *l; l++) {
		memset(&s, 0, sizeof(s));
		sl = strcspn(*l, " ");
		memcpy(s.sha, *l, sl);
		s.sha[sl] = '\0';
		lp = *l + sl + 1;
		s.path = fmtpath("%s%s%s", t->path, *t->path ? "/" : "", lp);
		s.depth = t->depth + 1;
		s.up = t;
		step_begin("submodule");
		for (i = 0; i < n && strcmp(m[i].path, lp) != 0; i++)
			;
		if (!cfg.submodules)
			tree_fail("submodule", "%s is a submodule, and "
			    "submodules = no", s.path);
		if (i == n)
			tree_fail("submodule", "%s is a submodule that "
			    ".gitmodules does not name: no url", s.path);
		if ((s.url = sub_url(t->url, m[i].url)) == NULL)
			tree_fail("submodule", "%s: url '%s' climbs above %s",
			    s.path, m[i].url, t->url);
		if (s.depth > SUBDEPTH)
			tree_fail("submodule", "%s: submodules nest deeper than "
			    "%d", s.path, SUBDEPTH);
		for (u = t; u != NULL; u = u->up)
			if (strcmp(u->url, s.url) == 0)
				tree_fail("submodule", "%s: %s is also a "
				    "repository around it (a cycle)", s.path,
				    s.url);
		sub_place(&s, "submodule");
		sub_mirror(&s, "submodule");
		tree_read(&s, "submodule");
		free(s.path);
		free(s.url);
		free(s.gd);
	}
	for (j = 0; j < n; j++) {
		free(m[j].name);
		free(m[j].path);
		free(m[j].url);
	}
	free(m);
}

static int
have_git_lfs(void)
{
	char found[PATH_MAX];

	return path_lookup("git-lfs", found, sizeof(found)) == 0;
}

/* t's tree, its LFS content and its submodules, into the release */
static void
tree_read(const struct tree *t, const char *step)
{
	char **links, **l;
	int lfs;

	links = tree_scan(t, step, &lfs);
	if (lfs && !cfg.lfs)
		tree_fail(step, "%s%s%.12s stores files in Git LFS, and lfs = no",
		    t->path, *t->path ? ": " : "", t->sha);
	if (lfs && cfg.lfs == 2 && !have_git_lfs()) {
		step_fail(step, "git-lfs is not on PATH and this commit stores "
		    "files in Git LFS: install the git-lfs package", 1);
		fail_build(tree_rel, EXIT_USAGE);
	}
	if (lfs)
		tree_lfs(t, step);
	tree_checkout(t, lfs, step);
	step_done(step, *t->path ? t->path : NULL);
	if (*links != NULL)
		tree_subs(t, links);
	for (l = links; *l; l++)
		free(*l);
	free(links);
}

static char *ptr_found;

static int
ptr_check(const char *p, const struct stat *st, int type, struct FTW *f)
{
	char head[sizeof(LFSHEAD) - 1];
	ssize_t k;
	int fd;

	(void)f;
	if (type != FTW_F || !S_ISREG(st->st_mode) ||
	    st->st_size < (off_t)sizeof(head) || st->st_size > 1024)
		return 0;
	if ((fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) == -1)
		return 0;
	k = read(fd, head, sizeof(head));
	close(fd);
	if (k == (ssize_t)sizeof(head) && memcmp(head, LFSHEAD, sizeof(head)) == 0) {
		ptr_found = xstrdup(p);
		return 1;
	}
	return 0;
}

/*
 * The commit, its submodules and its LFS content, read into rdir; or the
 * build fails. Then no file may still be an LFS pointer.
 */
static void
checkout_tree(const char *sha, const char *rdir)
{
	struct tree t;
	int fd;

	memset(&t, 0, sizeof(t));
	t.gd = gitdir();
	t.url = cfg.repo;
	copy_sha(t.sha, sha);
	t.path = top_path;
	tree_rel = sha;
	free(tree_uses);
	tree_uses = NULL;
	step_begin("checkout");
	tree_read(&t, "checkout");
	if (nftw(rdir, ptr_check, 16, FTW_PHYS) == 1) {
		step_begin("lfs");
		tree_fail("lfs", "%s is an LFS pointer, not its content (is "
		    "the file's object on the remote?)", ptr_found +
		    strlen(rdir) + 1);
	}
	if (tree_uses == NULL)
		return;
	mkdirat(statefd, "uses", 0700);
	if ((fd = open_dir_at(statefd, "uses")) == -1 ||
	    replace_file_at(fd, sha, tree_uses, strlen(tree_uses), 0) == -1)
		tree_fail("submodule", "%s/%s/uses/%s: %s", root, STATE, sha,
		    strerror(errno));
	close(fd);
}

/* 3-4. build releases/<sha> at its final path, then record it complete */
/* a deploy that switches: its restart command is looked for in the
 * release once the venv is built, before the tests are paid for */
static int restart_needed;

static void
build_release(const char *sha)
{
	char *rdir = fmtpath("%s/releases/%s", root, sha), **argv;
	struct runopts o = opts(rdir, ENV_RELEASE, rdir, sha);
	char why[PATH_MAX + 256];
	struct stat st;
	struct result r;
	int fd;

	open_log(sha, 1);
	notify_due = 1;
	fd = releases_fd(0);
	if (fstatat(fd, sha, &st, AT_SYMLINK_NOFOLLOW) == 0)
		die(EXIT_FAILED, "%s exists, but deploy did not build it: move "
		    "it out of releases/ and deploy again", rdir);
	/* say it is ours before it exists, so a crash can be cleaned up */
	if (history_add(EV_BUILD, sha) == -1)
		leave(EXIT_FAILED);
	if (mkdirat(fd, sha, 0755) == -1)
		die(EXIT_FAILED, "%s: %s", rdir, strerror(errno));
	close(fd);

	/* a checkout of exactly sha, with no .git and no tie to the mirror */
	checkout_tree(sha, rdir);
	if (gotsig)
		fail_build(sha, 128 + gotsig);
	write_revision(sha, rdir);

	step_venv_pip(sha, rdir);
	if (gotsig)
		fail_build(sha, 128 + gotsig);
	step_link(sha, rdir);

	o = opts(rdir, ENV_APP, rdir, sha);
	o.record = 1;
	if (cfg.build != NULL) {
		argv = words(cfg.build);
		if (run_step("build", argv, &o, &r) == -1)
			fail_build(sha, r.signo ? 128 + r.signo : EXIT_FAILED);
		free_words(argv);
	} else
		step_skip("build", "no build command");
	if (restart_needed && cfg.restart != NULL &&
	    release_command_ok("restart", cfg.restart, sha, why, sizeof(why))
	    == -1) {
		warnx("%s", why);
		fail_build(sha, EXIT_FAILED);
	}
	if (cfg.test != NULL) {
		argv = words(cfg.test);
		if (run_step("test", argv, &o, &r) == -1)
			fail_build(sha, r.signo ? 128 + r.signo : EXIT_FAILED);
		free_words(argv);
	} else
		step_skip("test", "no test command");
	if (gotsig)
		fail_build(sha, 128 + gotsig);

	/* make the tree durable before the history says it is complete:
	 * its file system only (a shared venv was flushed when marked) */
	if ((fd = open(rdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		sync();
	else {
		flush_fs(fd);
		close(fd);
	}
	if (history_add(EV_COMPLETE, sha) == -1) {
		nhist--;
		fail_build(sha, EXIT_FAILED);
	}
	logf_("== complete\n");
	free(rdir);
}

/*
 * 5. migrate: after the tests, right before the switch, so that a commit
 * whose tests fail never touches the database. Never on rollback:
 * migrations go forward only. 0 done, else the exit status.
 */
static int
step_migrate(const char *sha)
{
	char *rdir = fmtpath("%s/releases/%s", root, sha), **argv;
	struct runopts o = opts(rdir, ENV_APP, rdir, sha);
	struct result r;
	int st = EXIT_OK;

	if (cfg.migrate == NULL) {
		free(rdir);
		return EXIT_OK;
	}
	if (Mflag) {
		step_skip("migrate", "-M");
		free(rdir);
		return EXIT_OK;
	}
	o.record = 1;
	argv = words(cfg.migrate);
	if (run_step("migrate", argv, &o, &r) == -1) {
		st = r.signo ? 128 + r.signo : EXIT_FAILED;
		if (!r.signo)
			warnx("migrate of %.12s failed; current is unchanged and "
			    "the release stays built: deploy or activate it "
			    "again to run migrate again", sha);
	}
	free_words(argv);
	free(rdir);
	return st;
}

/* The release ROOT/previous names, or "" (none, or not a release link). */
static void
read_previous(char sha[65])
{
	char buf[PATH_MAX];
	ssize_t n;

	sha[0] = '\0';
	n = readlinkat(rootfd, "previous", buf, sizeof(buf) - 1);
	if (n <= 9)
		return;
	buf[n] = '\0';
	if (strncmp(buf, "releases/", 9) == 0 && is_sha(buf + 9))
		copy_sha(sha, buf + 9);
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
		ssize_t n = readlinkat(rootfd, "current", buf, sizeof(buf) - 1);

		/* only a link we wrote: the post's absolute one is rewritten */
		if (n > 0 && (size_t)n == strlen(target) &&
		    memcmp(buf, target, (size_t)n) == 0 &&
		    syscall(SYS_renameat2, rootfd, "previous", rootfd, "current",
		    RENAME_EXCHANGE) == 0) {
			free(target);
			return 1;
		}
	}
#endif
	unlinkat(rootfd, PREVLINK, 0);
	if (symlinkat(target, rootfd, PREVLINK) == -1 ||
	    renameat(rootfd, PREVLINK, rootfd, "previous") == -1) {
		warnx("%s/previous: %s: pages that release %.12s rendered may "
		    "miss their assets", root, strerror(errno), cursha);
		unlinkat(rootfd, PREVLINK, 0);
		ret = -1;
	}
	free(target);
	return ret;
}

/* Prune keeps the release previous names: its pages' assets are there. */
static size_t
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
static int
switch_current(const char *sha)
{
	char *target = fmtpath("releases/%s", sha);
	struct stat st;

	if (fstatat(rootfd, target, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISDIR(st.st_mode)) {
		warnx("%s/%s is not a release folder: not switching to it", root,
		    target);
		free(target);
		return -1;
	}
	if (set_previous(sha) == 1)
		goto switched;	/* swapped with previous in one step */
	unlinkat(rootfd, TMPLINK, 0);
	if (symlinkat(target, rootfd, TMPLINK) == -1) {
		warnx("%s/%s: %s", root, TMPLINK, strerror(errno));
		free(target);
		return -1;
	}
	if (renameat(rootfd, TMPLINK, rootfd, "current") == -1) {
		warnx("rename %s over %s/current: %s", TMPLINK, root,
		    strerror(errno));
		unlinkat(rootfd, TMPLINK, 0);
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

/*
 * supervisorctl status PROGRAM: the worst state among its processes (a
 * group "web" or "web:*" has several), a fingerprint of their pids (it
 * changes when any of them restarts) and, for the log, the pids
 * themselves: "pid N", or "NAME pid N, ..." for a group.
 * supervisorctl runs without the release's venv on PATH, so that a
 * supervisor package in the requirements does not stand in for it, and
 * in "/": it reads ./supervisord.conf first, and a file the app commits
 * must not choose the server we restart and watch.
 */
static int
program_state(const char *rdir, const char *sha, char *state, size_t sl,
    long *pid, char *pids, size_t pidl)
{
	struct runopts o = opts("/", ENV_NONE, rdir, sha);
	char out[8192], *p, *line, *save, **argv, name[256], word[32];
	size_t plen = strlen(cfg.program), pn = 0;
	unsigned long long fp = 1469598103934665603ULL;
	struct result r;
	int matched = 0, group;

	group = plen > 2 && strcmp(cfg.program + plen - 2, ":*") == 0;
	if (group)
		plen -= 1;	/* match "web:" */
	argv = words_plus(cfg.supervisorctl, "status", cfg.program, (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	out[0] = '\0';
	if (o.timeout == 0 || o.timeout > 60)
		o.timeout = 60;
	run(argv, &o, &r);	/* its status says not running as non-zero */
	free_words(argv);
	*pid = 0;
	snprintf(state, sl, "UNKNOWN");
	snprintf(pids, pidl, "no pid");
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		long lp = 0;

		if (two_words(line, name, sizeof(name), word, sizeof(word)) != 2)
			continue;
		if (!(strcmp(name, cfg.program) == 0 ||
		    (group && strncmp(name, cfg.program, plen) == 0) ||
		    (strncmp(name, cfg.program, plen) == 0 && name[plen] == ':')))
			continue;
		if (++matched == 1 || (strcmp(state, "RUNNING") == 0 &&
		    strcmp(word, "RUNNING") != 0))
			snprintf(state, sl, "%s", word);
		if ((p = strstr(line, "pid ")) != NULL)
			lp = strtol(p + 4, NULL, 10);
		fp = fnv(fp, &lp, sizeof(lp));
		if (lp > 0 && pn < pidl) {
			int k;

			if (strcmp(name, cfg.program) == 0)
				k = snprintf(pids + pn, pidl - pn, "%spid %ld",
				    pn ? ", " : "", lp);
			else
				k = snprintf(pids + pn, pidl - pn, "%s%s pid %ld",
				    pn ? ", " : "", name, lp);
			pn = k < 0 ? pidl : pn + (size_t)k;
		}
	}
	*pid = (long)(fp & LONG_MAX);
	return matched ? 0 : -1;
}

/*
 * A group ("web:*") is restarted one process at a time, so that while one
 * restarts the others keep serving and keep open the listening socket
 * that supervisord holds for an [fcgi-program] (it closes with the last
 * process).  supervisorctl runs in "/", not in a release that prune may
 * remove.
 */
#define MAXMEMBERS	256

/*
 * supervisorctl's "ERROR (no such file)" (or "not executable") for a
 * restart: supervisord found nothing to exec, so the program never ran
 * and has no output to show.  And the process of a group whose restart
 * failed, so that its output can be shown before the switch back.
 */
static int spawnerr;

static char failed_member[256];

static void
note_spawn_error(void)
{
	if (find_bytes(tail, taillen, "(no such file)", 14) != NULL ||
	    find_bytes(tail, taillen, "(file is not executable)", 24) != NULL)
		spawnerr = 1;
}

static const char *
spawn_why(void)
{
	static char buf[600];

	snprintf(buf, sizeof(buf), "supervisord found no file to run: the "
	    "command= of [program:%.*s] names a file that is not in the "
	    "release, or not executable (for .venv/bin/NAME: is the package "
	    "that provides NAME in %s?)", (int)strcspn(cfg.program, ":"),
	    cfg.program, cfg.requirements);
	return buf;
}

struct member {
	char		 name[256];
	char		 state[32];
	long		 pid;
};

static int
is_group(void)
{
	size_t n;

	if (cfg.program == NULL || cfg.restart != NULL)
		return 0;
	n = strlen(cfg.program);
	return n > 2 && strcmp(cfg.program + n - 2, ":*") == 0;
}

/* supervisorctl status NAME: one member per line that names NAME (or a
 * process of the group when NAME is "web:*"); returns how many, or -1
 * (said in the log and in members_why) when it cannot see them all: more
 * than max, a name of 256 bytes or more, an answer larger than it reads.
 * A roll must never restart part of a group and report it done. */
static char members_why[160];

static int
group_members(const char *sha, const char *name, struct member *m, int max)
{
	struct runopts o = opts("/", ENV_NONE, NULL, sha);
	char out[65536], *p, *line, *save, **argv, first[1024];
	size_t plen = strlen(name);
	struct result r;
	int n = 0;

	if (plen > 2 && strcmp(name + plen - 2, ":*") == 0)
		plen--;		/* "web:" */
	else
		plen = 0;	/* the exact name */
	argv = words_plus(cfg.supervisorctl, "status", name, (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	out[0] = '\0';
	if (o.timeout == 0 || o.timeout > 60)
		o.timeout = 60;
	run(argv, &o, &r);	/* non-zero when some are not running */
	free_words(argv);
	members_why[0] = '\0';
	if (strlen(out) >= sizeof(out) - 1)
		snprintf(members_why, sizeof(members_why), "supervisorctl "
		    "status %.40s says more than %zu bytes", name, sizeof(out));
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (n == max) {
			snprintf(members_why, sizeof(members_why), "more than "
			    "%d processes in %.40s", max, name);
			break;
		}
		if (two_words(line, m[n].name, sizeof(m[n].name), m[n].state,
		    sizeof(m[n].state)) != 2) {
			if (two_words(line, first, sizeof(first), NULL, 0) &&
			    strlen(first) >= sizeof(m[n].name) &&
			    strncmp(first, name, plen ? plen : strlen(name)) == 0)
				snprintf(members_why, sizeof(members_why),
				    "a process name of %zu bytes in %.40s",
				    strlen(first), name);
			continue;
		}
		/* the exact name, or a process of the group NAME ("web:web_0") */
		if (plen ? strncmp(m[n].name, name, plen) != 0 ||
		    m[n].name[plen] == '\0' : strcmp(m[n].name, name) != 0 &&
		    (strncmp(m[n].name, name, strlen(name)) != 0 ||
		    m[n].name[strlen(name)] != ':'))
			continue;
		m[n].pid = (p = strstr(line, "pid ")) ? strtol(p + 4, NULL,
		    10) : 0;
		n++;
	}
	if (members_why[0]) {
		logf_("%s\n", members_why);
		return -1;
	}
	return n;
}

/* sleeps until the next look at a restarted program: 200 ms while it
 * starts; once it is RUNNING, until its settle second is over, so that a
 * program that stays up costs two supervisorctl calls, not five (each is
 * a Python start-up, about 0.3 s of CPU) */
static void
wait_next_look(const char *state, double settled)
{
	double left = settled - now();

	if (strcmp(state, "RUNNING") == 0 && left > 0)
		poll(NULL, 0, (int)(left * 1000) + 10);
	else
		poll(NULL, 0, 200);
}

/* restarts one process and waits until it is RUNNING with the same pid
 * for SETTLE seconds; why says what went wrong */
static int
restart_one(const char *sha, const char *name, char *why, size_t wl)
{
	struct runopts o = opts("/", ENV_NONE, NULL, sha);
	char **argv = words_plus(cfg.supervisorctl, "restart", name,
	    (char *)NULL);
	struct member m;
	struct result r;
	double begun, end, settled = 0;
	long firstpid = -1;
	int extended = 0;

	memset(&m, 0, sizeof(m));
	logf_("restarting %s\n", name);
	if (run(argv, &o, &r) == -1 && (r.timedout || r.execerr)) {
		snprintf(why, wl, "%.255s: %s", name, why_failed(&r, argv[0],
		    o.timeout));
		free_words(argv);
		return -1;
	}
	free_words(argv);
	note_spawn_error();
	if (snprintf(failed_member, sizeof(failed_member), "%s", name) < 0)
		failed_member[0] = '\0';
	begun = now();	/* this process's own time, not the step's */
	end = begun + (cfg.check_timeout > 10 ? cfg.check_timeout : 10);
	for (;;) {
		if (group_members(sha, name, &m, 1) != 1) {
			snprintf(m.state, sizeof(m.state), "UNKNOWN");
			m.pid = 0;
		}
		logf_("%s is %s (pid %ld)\n", name, m.state, m.pid);
		if (strcmp(m.state, "RUNNING") == 0) {
			if (m.pid != firstpid) {
				firstpid = m.pid;
				settled = now() + SETTLE;
			} else if (now() >= settled) {
				failed_member[0] = '\0';
				return 0;
			}
		} else if (strcmp(m.state, "STARTING") != 0) {
			snprintf(why, wl, "%.255s is %s, not RUNNING%s%s", name,
			    m.state, spawnerr ? ": " : "", spawnerr ? spawn_why() :
			    "");
			return -1;
		}
		if (gotsig && !late) {
			snprintf(why, wl, "stopped by signal %d", gotsig);
			return -1;
		}
		if (now() >= end && strcmp(m.state, "RUNNING") == 0 &&
		    !extended) {
			extended = 1;	/* as in step_restart */
			end = settled + 1;
		}
		if (now() >= end) {
			snprintf(why, wl, "%.255s is still %s after %lds", name,
			    m.state, (long)(end - begun));
			return -1;
		}
		wait_next_look(m.state, settled);
	}
}

/* the restart step for a group: the processes that are down first (on a
 * switch back, the one that failed comes up on the old release before
 * the one still serving is touched), then the running ones; the first
 * failure ends the roll */
static int
restart_rolling(const char *sha)
{
	static struct member m[MAXMEMBERS];
	char why[1024];
	int n, i, pass;

	if ((n = group_members(sha, cfg.program, m, MAXMEMBERS)) <= 0) {
		snprintf(why, sizeof(why), "supervisorctl status %s names %s",
		    cfg.program, n == 0 ? "no process" : members_why);
		step_fail("restart", why, 1);
		return -1;
	}
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < n; i++) {
			if ((strcmp(m[i].state, "RUNNING") == 0) != pass)
				continue;
			if (restart_one(sha, m[i].name, why, sizeof(why)) == -1) {
				step_fail("restart", why, 1);
				return -1;
			}
		}
	step_ok("restart");
	return 0;
}

/* 6. restart, then wait until supervisord says it runs and stays up */
static int
step_restart(const char *sha)
{
	char *rdir = fmtpath("%s/releases/%s", root, sha), **argv;
	struct runopts o = opts(rdir, ENV_RELEASE, rdir, sha);
	char state[32], why[1024], pids[512];
	double end, settled = 0;
	struct result r;
	long pid, firstpid = 0;
	int extended = 0;

	if (cfg.program == NULL && cfg.restart == NULL) {
		step_skip("restart", "no program or restart command");
		free(rdir);
		return 0;
	}
	step_begin("restart");
	spawnerr = 0;
	failed_member[0] = '\0';
	if (is_group()) {
		free(rdir);
		return restart_rolling(sha);
	}
	argv = cfg.restart ? words(cfg.restart) :
	    words_plus(cfg.supervisorctl, "restart", cfg.program, (char *)NULL);
	if (cfg.restart == NULL) {
		o.env = ENV_NONE;
		o.dir = "/";	/* as in program_state */
	} else
		o.keepgroup = 1;	/* it may start a daemon */
	if (run(argv, &o, &r) == -1 && (cfg.restart != NULL || r.timedout ||
	    r.execerr)) {
		step_fail("restart", why_failed(&r, argv[0], o.timeout), 1);
		free_words(argv);
		free(rdir);
		return -1;
	}
	free_words(argv);
	if (cfg.restart == NULL)
		note_spawn_error();
	if (cfg.program == NULL) {
		step_ok("restart");
		free(rdir);
		return 0;
	}
	end = now() + (cfg.check_timeout > 10 ? cfg.check_timeout : 10);
	for (;;) {
		program_state(rdir, sha, state, sizeof(state), &pid, pids,
		    sizeof(pids));
		logf_("%s is %s (%s)\n", cfg.program, state, pids);
		if (strcmp(state, "RUNNING") == 0) {
			if (pid != firstpid) {
				firstpid = pid;
				settled = now() + SETTLE;
			} else if (now() >= settled)
				break;
		} else if (strcmp(state, "STARTING") != 0) {
			snprintf(why, sizeof(why), "%s is %s, not RUNNING%s%s",
			    cfg.program, state, spawnerr ? ": " : "",
			    spawnerr ? spawn_why() : "");
			step_fail("restart", why, 1);
			free(rdir);
			return -1;
		}
		if (now() >= end && strcmp(state, "RUNNING") == 0 &&
		    !extended) {
			/* first seen RUNNING late (a slow supervisorctl on a
			 * loaded host): one more settle to confirm it */
			extended = 1;
			end = settled + 1;
		}
		if (now() >= end) {
			snprintf(why, sizeof(why), "%s is still %s after %lds",
			    cfg.program, state, (long)(end - stepstart));
			step_fail("restart", why, 1);
			free(rdir);
			return -1;
		}
		wait_next_look(state, settled);
	}
	step_ok("restart");
	free(rdir);
	return 0;
}

/* 7. check: again and again until it passes or check_timeout ends;
 * 0 passed, -1 failed, 1 interrupted by a signal */
static int
step_check(const char *sha)
{
	char *rdir = fmtpath("%s/releases/%s", root, sha), **argv;
	struct runopts o = opts(rdir, ENV_APP, rdir, sha);
	struct result r;
	double end;
	int ok = -1, tries = 0;

	if (cfg.check == NULL) {
		step_skip("check", "no check command");
		free(rdir);
		return 0;
	}
	argv = words(cfg.check);
	step_begin("check");
	end = now() + cfg.check_timeout;
	for (;;) {
		double left = end - now();

		tries++;
		o.timeout = left < 1 ? 1 : (long)left + 1;
		if (cfg.timeout > 0 && o.timeout > cfg.timeout)
			o.timeout = cfg.timeout;
		if (run(argv, &o, &r) == 0) {
			ok = 0;
			break;
		}
		if (gotsig || now() >= end)
			break;
		poll(NULL, 0, 500);
	}
	if (ok == 0)
		step_ok("check");
	else if (gotsig) {
		/* not a verdict on the release: the next run checks again */
		step_fail("check", "interrupted by a signal", 0);
		ok = 1;
	} else {
		char why[300];
		snprintf(why, sizeof(why), "%s, %d tries in %lds",
		    why_failed(&r, argv[0], o.timeout), tries, cfg.check_timeout);
		step_fail("check", why, 1);
	}
	free_words(argv);
	free(rdir);
	return ok;
}

/*
 * Logs of builds that failed have no release to go with: the newest keep
 * of them stay for diagnosis, older ones go.
 */
struct orphan {
	char		 name[80];
	long long	 mtime;
};

static int
orphan_cmp(const void *a, const void *b)
{
	const struct orphan *x = a, *y = b;

	return x->mtime > y->mtime ? -1 : x->mtime < y->mtime;
}

static void
prune_logs(void)
{
	struct orphan *o = NULL;
	size_t n = 0, i;
	struct dirent *d;
	struct stat st;
	char sha[80];
	int fd;
	DIR *dp;

	if ((fd = openat(statefd, "logs", O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) == -1 || (dp = fdopendir(fd)) == NULL)
		return;
	scan_releases();
	while ((d = readdir(dp)) != NULL) {
		size_t len = strlen(d->d_name);

		if (len < 5 || len >= sizeof(sha) ||
		    strcmp(d->d_name + len - 4, ".log") != 0)
			continue;
		memcpy(sha, d->d_name, len - 4);
		sha[len - 4] = '\0';
		if (!is_sha(sha) || release_find(rel, nrel, sha) >= 0 ||
		    fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		o = xrealloc(o, (n + 1) * sizeof(*o));
		/* len < sizeof(sha) == sizeof(o[n].name): a copy, not a
		 * snprintf that gcc -Os thinks may truncate */
		memcpy(o[n].name, d->d_name, len + 1);
		o[n++].mtime = (long long)st.st_mtime;
	}
	if (n > 1)
		qsort(o, n, sizeof(*o), orphan_cmp);
	for (i = (size_t)cfg.keep; i < n; i++)
		unlinkat(dirfd(dp), o[i].name, 0);
	closedir(dp);
	free(o);
}

/* Virtualenvs that no remaining release links to. */
static void
prune_venvs(int asstep)
{
	char buf[PATH_MAX], *lk;
	struct dirent *d;
	size_t i;
	ssize_t k;
	int used;
	DIR *dp;

	if ((dp = venvs_dir()) == NULL)
		return;
	scan_releases();
	while ((d = readdir(dp)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		for (i = 0, used = 0; i < nrel && !used; i++) {
			lk = fmtpath("releases/%s/.venv", rel[i].name);
			k = readlinkat(rootfd, lk, buf, sizeof(buf) - 1);
			free(lk);
			if (k > 0) {
				buf[k] = '\0';
				used = strcmp(strrchr(buf, '/') ? strrchr(buf, '/') +
				    1 : buf, d->d_name) == 0;
			}
		}
		if (used)
			continue;
		lk = fmtpath("%s/.deploy-complete", d->d_name);
		unlinkat(dirfd(dp), lk, 0);
		free(lk);
		if (remove_in(dirfd(dp), "venvs", d->d_name) == 0) {
			logf_("removed venvs/%s\n", d->d_name);
			if (!asstep)
				say("removed unused virtualenv venvs/%s", d->d_name);
		}
	}
	closedir(dp);
}

/*
 * Submodule mirrors no remaining release was read from, and the uses/
 * records of releases that are gone.
 */
static void
prune_modules(int asstep)
{
	char *all = xstrdup(""), *u, *p, name[300];
	struct dirent *d;
	size_t i, len;
	int ufd, mfd;
	DIR *dp;

	scan_releases();
	if ((ufd = open_dir_at(statefd, "uses")) != -1 &&
	    (dp = fdopendir(ufd)) != NULL) {
		while ((d = readdir(dp)) != NULL)
			if (d->d_name[0] != '.' && release_find(rel, nrel,
			    d->d_name) < 0)
				unlinkat(ufd, d->d_name, 0);
		closedir(dp);
		ufd = open_dir_at(statefd, "uses");
	}
	for (i = 0; ufd != -1 && i < nrel; i++)
		if ((u = read_file_at(ufd, rel[i].name, 1 << 20, &len,
		    NULL)) != NULL) {
			p = all;
			all = fmtpath("%s%s", p, u);
			free(p);
			free(u);
		}
	if (ufd != -1)
		close(ufd);
	if ((mfd = open_dir_at(rootfd, "modules")) == -1 ||
	    (dp = fdopendir(mfd)) == NULL) {
		if (mfd != -1)
			close(mfd);
		free(all);
		return;
	}
	while ((d = readdir(dp)) != NULL) {
		snprintf(name, sizeof(name), "\n%s\n", d->d_name);
		if (d->d_name[0] == '.' || strstr(all, name + 1) == all ||
		    strstr(all, name) != NULL)
			continue;
		if (remove_in(dirfd(dp), "modules", d->d_name) == 0) {
			logf_("removed modules/%s\n", d->d_name);
			if (!asstep)
				say("removed unused submodule mirror modules/%s",
				    d->d_name);
		}
	}
	closedir(dp);
	free(all);
}

/* 8. prune: oldest complete releases beyond keep, and failed ones */
static void
do_prune(int asstep)
{
	long cur, rb;
	size_t i, n;
	int fd;

	if (asstep)
		step_begin("prune");
	scan_releases();
	cur = cur_index();
	rb = rollback_target(rel, nrel, cur);
	n = prune_select(rel, nrel, cfg.keep, cur, rb);
	n -= keep_previous();
	fd = releases_fd(0);
	for (i = 0; i < nrel; i++) {
		if (!rel[i].mark)
			continue;
		if (nflag) {
			say("would remove %s release %s", state_name(rel[i].state),
			    rel[i].name);
			continue;
		}
		/* say so first: a half-deleted release must not look
		 * complete, and the next run finishes the job */
		if (history_add(EV_REMOVE, rel[i].name) == -1)
			break;
		if (remove_in(fd, "releases", rel[i].name) == -1)
			warnx("could not remove all of %s/releases/%s: the next "
			    "run will try again", root, rel[i].name);
		else {
			history_forget(rel[i].name);
			history_save();
			char *lg = fmtpath("logs/%s.log", rel[i].name);
			unlinkat(statefd, lg, 0);
			free(lg);
			logf_("removed %s\n", rel[i].name);
			if (!asstep)
				say("removed %s release %s",
				    state_name(rel[i].state), rel[i].name);
		}
	}
	close(fd);
	if (!nflag) {
		prune_venvs(asstep);
		prune_modules(asstep);
	}
	if (!nflag) {
		history_compact();
		prune_logs();
		if (asstep) {
			struct runopts o = opts(root, ENV_NONE, NULL, NULL);
			struct result r;
			/* in the foreground: a detached gc would outlive
			 * our lock, and cleanup could take its lock files */
			char **argv = words_plus("git", "-c",
			    "gc.autoDetach=false", gitdir(), "gc", "--auto",
			    "--quiet", (char *)NULL);

			if (run(argv, &o, &r) == -1)
				warnx("git gc --auto in %s/repo: %s", root,
				    why_failed(&r, "git", o.timeout));
			free_words(argv);
		}
	}
	if (asstep)
		step_ok("prune");
	else if (n == 0)
		say("nothing to prune (keep = %ld)", cfg.keep);
}

/*
 * Once current has moved, .deploy/pending ("STATE SHA PREV PRUNE") says
 * how far the run got, and every command that takes the lock first drives
 * it to the end, so that a killed run is finished by the next one:
 *
 *   switched   current is SHA: restart it         -> restarted, or back
 *   restarted  check SHA                          -> checked, or back
 *   checked    SHA runs: prune if the deploy asked -> done
 *   back       SHA failed (recorded so): switch current to PREV and
 *              restart it                         -> done, exit 4; exit 5
 *              when there is no PREV or it will not run either
 *   done       pending removed
 *
 * A signal stops the machine between states, with pending kept and exit
 * 128+N (current is fully switched; the next run goes on from there). A
 * step that ran to its end and failed is never taken for an interruption:
 * the switch back runs, and 4 or 5 wins over 128+N.
 *
 * switched and back are written durably (file and .deploy/ fsynced)
 * before current moves; the other states are not (a lost one only makes
 * the next run restart and check again). 0098c49's "SHA PREV" enters the
 * machine as switched. While paused, only a command run by hand
 * (activate, rollback, resume) drives it; others stop with exit 3. After
 * done, a run that switched nothing itself converges (see below): that is
 * outside the machine, and never switches.
 */
enum { P_NONE, P_SWITCHED, P_RESTARTED, P_CHECKED, P_BACK };

static const char *pnames[] = { "none", "switched", "restarted", "checked",
    "back" };

struct pending {
	int	state;
	char	sha[65];
	char	prev[65];	/* "" when there is nothing to go back to */
	int	prune;
};

/*
 * Moves the machine to p->state and writes it down; done removes it.
 * -1 when it could not be written (said so).
 */
static int
pending_set(struct pending *p, int state)
{
	char buf[200];
	int n;

	p->state = state;
	if (state == P_NONE) {
		if (unlinkat(statefd, "pending", 0) == -1 && errno != ENOENT)
			warnx("%s/%s/pending: %s", root, STATE, strerror(errno));
		return 0;
	}
	n = snprintf(buf, sizeof(buf), "%s %s %s %s\n", pnames[state], p->sha,
	    p->prev[0] ? p->prev : "-", p->prune ? "prune" : "-");
	/* durable, file and folder, before current moves (switched) and
	 * before it moves back (back): after a power cut a current without
	 * its record would run unchecked, and with autostart=false not at
	 * all. Losing a later state (restarted, checked, done) only makes
	 * the next run restart and check once more: no fsync for those */
	if (replace_file_at(statefd, "pending", buf, (size_t)n,
	    state == P_SWITCHED || state == P_BACK) == -1) {
		warnx("%s/%s/pending: %s", root, STATE, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * What a killed run left. A record that no longer fits current (a
 * switch that never happened, a hand-made change) is dropped.
 * Formats: "STATE SHA PREV PRUNE" (0.4 on; words a later version adds
 * at the end are ignored, the rule for every state file), and 0098c49's
 * "SHA PREV", written before its switch and removed after the check: a
 * switched release whose restart and check are due, no prune.
 */
static void
pending_load(struct pending *p, int drop)
{
	char *buf, st[16] = "", a[80] = "", b[80] = "", c[16] = "", *f[4];
	size_t len;
	int i, ok, nf;

	memset(p, 0, sizeof(*p));
	if ((buf = read_file_at(statefd, "pending", 300, &len, NULL)) == NULL)
		return;
	nf = fields(buf, f, 4);
	if (nf == 2 && is_sha(f[0])) {	/* 0098c49's */
		static char none[] = "-", switched[] = "switched";

		f[3] = none;
		f[2] = f[1];
		f[1] = f[0];
		f[0] = switched;
		nf = 4;
	}
	ok = nf == 4 && strlen(f[0]) < sizeof(st) &&
	    strlen(f[1]) < sizeof(a) && strlen(f[2]) < sizeof(b) &&
	    strlen(f[3]) < sizeof(c);
	if (!ok && drop)
		warnx("%s/%s/pending: not a record this version reads; "
		    "dropped", root, STATE);
	if (ok) {
		memcpy(st, f[0], strlen(f[0]) + 1);
		memcpy(a, f[1], strlen(f[1]) + 1);
		memcpy(b, f[2], strlen(f[2]) + 1);
		memcpy(c, f[3], strlen(f[3]) + 1);
		ok = is_sha(a);
	}
	free(buf);
	for (i = P_SWITCHED; ok && i <= P_BACK; i++)
		if (strcmp(st, pnames[i]) == 0)
			break;
	if (ok && i > P_BACK && drop)
		warnx("%s/%s/pending: state '%s' is not one this version "
		    "knows; dropped", root, STATE, printable(st));
	if (!ok || i > P_BACK || (i != P_BACK && strcmp(a, cursha) != 0) ||
	    (i == P_BACK && strcmp(a, cursha) != 0 && strcmp(b, cursha) != 0)) {
		if (drop)
			unlinkat(statefd, "pending", 0);
		return;
	}
	p->state = i;
	copy_sha(p->sha, a);
	copy_sha(p->prev, is_sha(b) ? b : "");
	p->prune = strcmp(c, "prune") == 0;
}

static int
release_state(const char *sha)
{
	long i;

	scan_releases();
	i = release_find(rel, nrel, sha);
	return i < 0 ? R_FOREIGN : rel[i].state;
}

static int
tail_has_text(void)
{
	size_t i;

	for (i = 0; i < taillen; i++)
		if (!isspace((unsigned char)tail[i]))
			return 1;
	return 0;
}

/*
 * After a failed restart or check, the cause is usually in the program's
 * own output, which supervisord keeps: say where, and show its end.  For
 * a group, the process whose restart failed (else one that is not
 * running, else the first): once the group is switched back, its log
 * holds the old release's start instead.
 */
static void
show_program_output(void)
{
	struct runopts o = opts("/", ENV_NONE, NULL, NULL);
	const char *chan[] = { "stderr", "stdout" };
	static struct member m[MAXMEMBERS];
	char **argv, name[256];
	struct result r;
	size_t i;
	int n, k;

	if (cfg.program == NULL)
		return;
	snprintf(name, sizeof(name), "%s", cfg.program);
	if (strchr(cfg.program, ':') != NULL && failed_member[0] != '\0')
		snprintf(name, sizeof(name), "%s", failed_member);
	else if (strchr(cfg.program, ':') != NULL) {
		n = group_members(NULL, cfg.program, m, MAXMEMBERS);
		for (k = 0; k < n && strcmp(m[k].state, "RUNNING") == 0; k++)
			;
		if (n == 0) {
			warnx("the output of each process: supervisorctl tail "
			    "GROUP:PROCESS stderr");
			return;
		}
		memcpy(name, m[k < n ? k : 0].name, sizeof(name));
	}
	o.timeout = 30;
	for (i = 0; i < 2; i++) {
		argv = words_plus(cfg.supervisorctl, "tail", "-1600",
		    name, chan[i], (char *)NULL);
		taillen = 0;
		if (run(argv, &o, &r) == 0 && tail_has_text()) {
			warnx("the end of program %s's output (supervisorctl "
			    "tail %s %s):", name, name, chan[i]);
			tail_show(10);
			free_words(argv);
			return;
		}
		free_words(argv);
	}
	if (spawnerr)
		warnx("program %s has no output: it never started, because %s",
		    name, spawn_why());
	else
		warnx("program %s's own output (supervisorctl tail %s stderr) "
		    "is empty", name, name);
}

/*
 * back: the release failed; put the previous one back and restart it.
 * *retry: the switch itself failed, so the next run must try again.
 */
static int
switch_back(struct pending *p, int *retry)
{
	if (release_state(p->sha) != R_FAILED)
		history_add(EV_FAILED, p->sha);
	if (p->prev[0] == '\0') {
		warnx("release %s failed its restart or check, and there is no "
		    "release to go back to: current still points to it. Fix the "
		    "app and deploy again, or stop program %s by hand.", p->sha,
		    cfg.program ? cfg.program : "(restart)");
		return EXIT_STUCK;
	}
	if (strcmp(cursha, p->prev) != 0) {
		warnx("release %.12s failed after the switch; switching back "
		    "to %.12s", p->sha, p->prev);
		open_log(p->prev, 0);
		step_begin("switch back");
		if (switch_current(p->prev) == -1) {
			*retry = 1;
			step_fail("switch back", "could not replace current", 0);
			warnx("could not switch back: current still points to "
			    "the failed release %s; run 'deploy activate %s'",
			    p->sha, p->prev);
			return EXIT_STUCK;
		}
		history_add(EV_ACTIVATE, p->prev);
		step_ok("switch back");
	} else
		open_log(p->prev, 0);
	if (step_restart(p->prev) == -1) {
		warnx("switched back to %s, but it does not run either: look "
		    "at program %s now", p->prev, cfg.program ? cfg.program :
		    "(restart)");
		return EXIT_STUCK;
	}
	return EXIT_SWITCHED_BACK;
}

/* Runs the machine from p->state to done, or to a signal. */
static int
finish_switch(struct pending *p)
{
	int st = EXIT_OK, retry;

	late = 1;
	while (p->state != P_NONE) {
		/* a signal stops it between states; what is left of "checked"
		 * and "back" is finished first */
		if (gotsig && p->state != P_BACK && p->state != P_CHECKED)
			return 128 + gotsig;	/* pending kept */
		switch (p->state) {
		case P_SWITCHED:
			if (step_restart(p->sha) == 0)
				pending_set(p, P_RESTARTED);
			else {
				pending_set(p, P_BACK);
				show_program_output();
			}
			break;
		case P_RESTARTED:
			st = step_check(p->sha);
			if (st == -1) {
				pending_set(p, P_BACK);
				show_program_output();
			} else if (st == 0)
				pending_set(p, P_CHECKED);
			st = EXIT_OK;	/* 1: interrupted, pending kept */
			break;
		case P_CHECKED:
			/* a failed release that passes again is complete again */
			if (release_state(p->sha) == R_FAILED)
				history_add(EV_COMPLETE, p->sha);
			if (p->prune && !gotsig)
				do_prune(1);	/* else the next prune does it */
			pending_set(p, P_NONE);
			break;
		case P_BACK:
			retry = 0;
			st = switch_back(p, &retry);
			if (retry)
				return st;	/* "back" kept for the next run */
			pending_set(p, P_NONE);
			break;
		}
	}
	late = 0;
	return st;
}

/* What a killed run left switched but unfinished, finished first. */
static int
finish_pending(void)
{
	struct pending p;

	int st;

	pending_load(&p, 1);
	if (p.state == P_NONE)
		return EXIT_OK;
	say("the last run stopped after switching to %.12s (%s): finishing "
	    "it now", p.sha, pnames[p.state]);
	open_log(p.sha, 0);
	notify_due = 1;
	st = finish_switch(&p);
	if (st != EXIT_OK) {
		/* the run ends here: notify names the release that failed,
		 * its log, and the one switched back to (now current) */
		copy_sha(notify_rev, p.sha);
		copy_sha(notify_prev, p.prev);
	}
	return st;
}

/*
 * migrate (when asked), switch current to a complete release, then
 * restart, check and prune (when asked) through the machine; prev ""
 * means nothing to go back to
 */
static int
activate_release(const char *sha, const char *prev, int prune, int migrate)
{
	struct pending p;
	int st;

	notify_due = 1;
	memset(&p, 0, sizeof(p));
	copy_sha(p.sha, sha);
	copy_sha(p.prev, prev);
	p.prune = prune;
	open_log(sha, 0);
	if (migrate && (st = step_migrate(sha)) != EXIT_OK)
		return st;
	if (gotsig)
		return 128 + gotsig;	/* current unchanged */
	if (strcmp(cursha, sha) != 0) {
		step_begin("switch");
		/* written first: a kill right after the rename is finished by
		 * the next run; one before it is dropped (current differs) */
		if (pending_set(&p, P_SWITCHED) == -1) {
			step_fail("switch", "cannot record it in .deploy/pending: "
			    "not switching", 0);
			return EXIT_FAILED;
		}
		if (switch_current(sha) == -1) {
			step_fail("switch", "could not replace current", 0);
			pending_set(&p, P_NONE);
			return EXIT_FAILED;
		}
		history_add(EV_ACTIVATE, sha);
		step_ok("switch");
	} else
		pending_set(&p, P_SWITCHED);
	return finish_switch(&p);
}

/*
 * ROOT/.deploy/audit holds one JSON object per line for every command
 * that changed something or was refused (a signature): appended with
 * O_APPEND in one write and fsynced, under an fcntl lock of the file so
 * that two writers never chain off the same line. Each line starts with
 * "prev", the SHA-256 of the line before it (64 zeros for the first), so
 * a changed or removed line breaks the chain at the next one; audit-head
 * holds the hash of the last line, which covers that one too. "observed"
 * is what the kernel says (uid, its name, the terminal, the host);
 * "claimed" is what the environment says, which whoever runs us can set.
 * Prune never touches the file.
 */
#define AUDIT_ZERO \
	"0000000000000000000000000000000000000000000000000000000000000000"

#define AUDIT_VAL	256	/* bytes kept of one environment value */

static const struct {
	const char	*var;
	const char	*key;
} audit_claims[] = {
	{ "SUDO_USER", "sudo_user" },
	{ "GITHUB_ACTOR", "github_actor" },
	{ "GITHUB_RUN_ID", "github_run_id" },
	{ "GITHUB_REPOSITORY", "github_repository" },
	{ "CIRCLE_USERNAME", "circle_username" },
	{ "CIRCLE_BUILD_URL", "circle_build_url" },
	{ "GITLAB_USER_LOGIN", "gitlab_user_login" },
	{ "CI_JOB_URL", "ci_job_url" },
	{ "DEPLOY_ACTOR", "deploy_actor" },
};

static const char *
env_or_null(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* The user name of our uid, or NULL. */
static const char *
login_name(void)
{
	struct passwd *pw = getpwuid(getuid());

	return pw != NULL ? pw->pw_name : NULL;
}

/* Who asked, in one word, for notify: the most specific claim first. */
static const char *
audit_actor(void)
{
	static const char *order[] = { "DEPLOY_ACTOR", "GITHUB_ACTOR",
	    "GITLAB_USER_LOGIN", "CIRCLE_USERNAME", "SUDO_USER" };
	const char *v;
	size_t i;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if ((v = env_or_null(order[i])) != NULL)
			return v;
	return (v = login_name()) != NULL ? v : "unknown";
}

/* "observed": {...}, "claimed": {...} */
static void
audit_who(struct sbuf *b)
{
	char num[64], host[256], *f[2], *copy;
	const char *ssh, *tty = isatty(0) ? ttyname(0) : isatty(2) ? ttyname(2) :
	    NULL;
	size_t i;

	snprintf(num, sizeof(num), ", \"observed\": {\"uid\": %ld",
	    (long)getuid());
	sb_add(b, num, strlen(num));
	if (geteuid() != getuid()) {
		snprintf(num, sizeof(num), ", \"euid\": %ld", (long)geteuid());
		sb_add(b, num, strlen(num));
	}
	sb_json(b, "user", login_name(), AUDIT_VAL);
	sb_json(b, "tty", tty, AUDIT_VAL);
	host[sizeof(host) - 1] = '\0';
	sb_json(b, "host", gethostname(host, sizeof(host) - 1) == 0 ? host :
	    NULL, AUDIT_VAL);
	sb_add(b, "}, \"claimed\": {\"actor\": ", 24);
	sb_jstr(b, audit_actor(), AUDIT_VAL);
	if ((ssh = env_or_null("SSH_CONNECTION")) != NULL) {
		copy = xstrdup(ssh);
		if (fields(copy, f, 2) == 2) {
			sb_json(b, "ssh_client", f[0], AUDIT_VAL);
			sb_json(b, "ssh_port", f[1], AUDIT_VAL);
		} else
			sb_json(b, "ssh_connection", ssh, AUDIT_VAL);
		free(copy);
	}
	for (i = 0; i < sizeof(audit_claims) / sizeof(audit_claims[0]); i++)
		if (env_or_null(audit_claims[i].var) != NULL)
			sb_json(b, audit_claims[i].key,
			    getenv(audit_claims[i].var), AUDIT_VAL);
	sb_add(b, "}", 1);
}

/*
 * The hash of the file's last line, into hex; *torn set when the file
 * does not end in a newline (a crash mid-write): that piece is hashed as
 * the last line, and the next line starts on a line of its own.
 */
static int
audit_last(int fd, char hex[65], int *torn)
{
	struct stat st;
	char *buf, *e, *s;
	size_t n;
	off_t off;

	*torn = 0;
	if (fstat(fd, &st) == -1)
		return -1;
	if (st.st_size == 0) {
		memcpy(hex, AUDIT_ZERO, 65);
		return 0;
	}
	n = st.st_size > (1 << 20) ? 1 << 20 : (size_t)st.st_size;
	off = st.st_size - (off_t)n;
	buf = xrealloc(NULL, n + 1);
	if (pread(fd, buf, n, off) != (ssize_t)n) {
		free(buf);
		return -1;
	}
	e = buf + n;
	if (e[-1] == '\n')
		e--;
	else
		*torn = 1;
	for (s = e; s > buf && s[-1] != '\n'; s--)
		;
	sha256_hex(s, (size_t)(e - s), hex);
	free(buf);
	return 0;
}

/* Appends {"prev": ..., REC} and moves audit-head to it; 0 when done. */
static int
audit_append(const char *rec, size_t n)
{
	char prev[65], head[66];
	struct sbuf b = { NULL, 0, 0 };
	struct flock fl;
	int fd, torn, r = -1;

	if ((fd = openat(statefd, "audit", O_RDWR | O_APPEND | O_CREAT |
	    O_CLOEXEC | O_NOFOLLOW, 0600)) == -1)
		return -1;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	while ((r = fcntl(fd, F_SETLKW, &fl)) == -1 && errno == EINTR)
		;
	if (r == 0 && (r = audit_last(fd, prev, &torn)) == 0) {
		sb_add(&b, "\n{\"prev\": \"", 11);
		sb_add(&b, prev, 64);
		sb_add(&b, "\"", 1);
		sb_add(&b, rec, n);
		sb_add(&b, "}\n", 2);
		sha256_hex(b.p + 1, b.n - 2, head);
		head[64] = '\n';
		r = write_all(fd, b.p + !torn, b.n - !torn) == -1 ||
		    fsync(fd) == -1 || replace_file_at(statefd, "audit-head",
		    head, 65, 1) == -1 ? -1 : 0;
	}
	if (close(fd) == -1)
		r = -1;
	free(b.p);
	return r;
}

/*
 * One line of the audit trail: event (the command), its exit status, the
 * revision it deployed and the one before, and a detail (a pause's
 * reason, say) or NULL. Never ends the run: a trail that cannot be
 * written is said on stderr.
 */
static void
audit_event(const char *event, int status, const char *rev, const char *prev,
    const char *detail)
{
	struct sbuf b = { NULL, 0, 0 };
	char t[32], num[64], who[1100] = "";
	time_t now_t = time(NULL);
	struct tm *tm = gmtime(&now_t);

	if (statefd == -1)
		return;
	if (tm == NULL || strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", tm) == 0)
		snprintf(t, sizeof(t), "@%lld", (long long)now_t);
	sb_json(&b, "time", t, sizeof(t));
	sb_json(&b, "event", event, AUDIT_VAL);
	snprintf(num, sizeof(num), ", \"status\": %d", status);
	sb_add(&b, num, strlen(num));
	sb_json(&b, "revision", rev && *rev ? rev : NULL, 64);
	sb_json(&b, "previous", prev && *prev ? prev : NULL, 64);
	snprintf(num, sizeof(num), ", \"duration\": %.2f", now() - audit_t0);
	sb_add(&b, num, strlen(num));
	if (signer[0] == '\0' && rev != NULL)
		signer_of(rev, who, sizeof(who));
	sb_json(&b, "signer", signer[0] ? signer : who[0] && rev ? who : NULL,
	    sizeof(who));
	sb_json(&b, "refused", refusal[0] ? refusal : NULL, sizeof(refusal));
	sb_json(&b, "detail", detail, 1024);
	audit_who(&b);
	if (audit_append(b.p, b.n) == -1)
		warnx("cannot append to %s/%s/audit: %s", root, STATE,
		    strerror(errno));
	free(b.p);
}

/*
 * Between runs a reboot (autostart=false), a crash that used up
 * startretries or a hand-typed "supervisorctl stop" can leave the program
 * down while current says all is well. So every command that takes the
 * lock and switches nothing itself ends by looking: every process of the
 * program RUNNING and, where /proc shows it, working in the release
 * current names. If not, it restarts the program and checks it, and says
 * so in one line. A release that already passed its check is never
 * switched away from here: when it does not come up the cause may be
 * elsewhere (a database down), so a person decides (exit 5).
 * Without program (restart = only) there is nothing to look at.
 */

/* The release a process works in, from /proc: its sha, or "" when it
 * works elsewhere or /proc does not say (another user's process). */
static void
proc_release(long pid, char sha[65])
{
	char path[64], cwd[PATH_MAX], *p, *e;
	size_t rl = strlen(root);
	ssize_t k;

	sha[0] = '\0';
	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%ld/cwd", pid);
	if ((k = readlink(path, cwd, sizeof(cwd) - 1)) <= 0)
		return;
	cwd[k] = '\0';
	if (strncmp(cwd, root, rl) != 0 || strncmp(cwd + rl, "/releases/",
	    10) != 0)
		return;
	p = cwd + rl + 10;
	if ((e = strchr(p, '/')) != NULL || (e = strchr(p, ' ')) != NULL)
		*e = '\0';	/* a pruned release reads "SHA (deleted)" */
	if (is_sha(p))
		copy_sha(sha, p);
}

/* what is wrong with the program, in what; 0 when nothing is */
static int
program_wrong(char *what, size_t wl)
{
	static struct member m[MAXMEMBERS];
	char rs[65];
	int n, i;

	if ((n = group_members(cursha, cfg.program, m, MAXMEMBERS)) <= 0) {
		snprintf(what, wl, "supervisorctl status %s names %s",
		    cfg.program, n == 0 ? "no process" : members_why);
		return 2;
	}
	for (i = 0; i < n; i++) {
		proc_release(m[i].pid, rs);
		if (strcmp(m[i].state, "RUNNING") != 0)
			snprintf(what, wl, "%s %.255s was %s", strcmp(m[i].name,
			    cfg.program) == 0 ? "program" : "process", m[i].name,
			    m[i].state);
		else if (rs[0] && strcmp(rs, cursha) != 0)
			snprintf(what, wl, "%s %.255s ran %.12s, not current",
			    strcmp(m[i].name, cfg.program) == 0 ? "program" :
			    "process", m[i].name, rs);
		else
			continue;
		return 1;
	}
	return 0;
}

/*
 * by_hand: a person asked for this run (activate, resume), so a pause
 * does not hold it. *acted (may be NULL): 1 when it restarted the program.
 * EXIT_OK, EXIT_STUCK, or 128+N.
 */
static int
converge(int by_hand, int *acted)
{
	char what[400], again[400], who[600];
	int st;

	if (acted != NULL)
		*acted = 0;
	if (cfg.program == NULL || cursha[0] == '\0' || nflag)
		return EXIT_OK;
	if ((st = program_wrong(what, sizeof(what))) == 0)
		return EXIT_OK;
	if (st == 2) {
		/* nothing to start: supervisord is down or lost the program */
		warnx("cannot see program %s (%s): is supervisord running, and "
		    "does it still define it?", cfg.program, what);
		return EXIT_STUCK;
	}
	if (!by_hand && paused_by(who, sizeof(who))) {
		warnx("%s; deploy is paused (%s): not starting it", what, who);
		return EXIT_OK;
	}
	if (acted != NULL)
		*acted = 1;
	notify_due = 1;		/* a restart: notify and the audit hear of it */
	say("%s: restarting %.12s (current) and checking it", what, cursha);
	open_log(cursha, 0);
	late = 1;
	if (step_restart(cursha) == 0 && (st = step_check(cursha)) != -1) {
		late = 0;
		if (st == 1)
			return 128 + gotsig;
		if (program_wrong(again, sizeof(again))) {
			warnx("%s after a restart: the program's directory must "
			    "be %s/current", again, root);
			return EXIT_STUCK;
		}
		/* even with -q: cron's mail should tell that the site was down */
		printf("%s: started %.12s and checked\n", what, cursha);
		return EXIT_OK;
	}
	late = 0;
	warnx("the current release %.12s does not run (%s); it passed its "
	    "check after its switch, so deploy does not switch away from it "
	    "on its own: find the cause (its output is below), then 'deploy "
	    "rollback' if the release is at fault", cursha, what);
	show_program_output();
	return EXIT_STUCK;
}

/*
 * .deploy/pause, while deploy is paused (written durably, 0600):
 *   deploy-pause 1        the format's name and version
 *   user NAME             who paused (the login name of the uid)
 *   uid N
 *   since EPOCH
 *   reason TEXT           to the end of the line; may be empty
 * A reader takes the lines whose key it knows and ignores the others, so
 * a later version 1 file adds keys; version 2 would be one this reader
 * refuses to take for "not paused" (it reads it as paused, reason
 * unknown). While paused, deploy and prepare refuse (exit 3), and no run
 * starts or restarts the program on its own; activate and rollback, by
 * hand, still work.
 */
struct pauserec {
	char		 user[64];
	long		 uid;
	long long	 since;
	char		 reason[256];
};

/* 1 and *p filled when paused; a pause file it cannot read is a pause */
static int
pause_read(struct pauserec *p)
{
	char *buf, *line, *save, *sp;
	size_t len;
	int version = 0;

	memset(p, 0, sizeof(*p));
	p->uid = -1;
	if (statefd == -1 || (buf = read_file_at(statefd, "pause", 4096, &len,
	    NULL)) == NULL)
		return statefd != -1 && errno != ENOENT;
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((sp = strchr(line, ' ')) == NULL)
			continue;
		*sp++ = '\0';
		if (strcmp(line, "deploy-pause") == 0)
			version = atoi(sp);
		else if (version == 1 && strcmp(line, "user") == 0)
			cut_utf8(p->user, printable(sp), sizeof(p->user));
		else if (version == 1 && strcmp(line, "uid") == 0)
			p->uid = strtol(sp, NULL, 10);
		else if (version == 1 && strcmp(line, "since") == 0)
			p->since = strtoll(sp, NULL, 10);
		else if (version == 1 && strcmp(line, "reason") == 0)
			cut_utf8(p->reason, printable(sp), sizeof(p->reason));
	}
	free(buf);
	if (version != 1)
		snprintf(p->reason, sizeof(p->reason), "(a pause file this "
		    "version does not read: %s/%s/pause)", root, STATE);
	return 1;
}

/* "alice (uid 1000) since 2026-11-30 16:00:00: REASON" when paused */
static int
paused_by(char *who, size_t wl)
{
	struct pauserec p;

	if (!pause_read(&p))
		return 0;
	snprintf(who, wl, "paused by %s (uid %ld) since %s%s%s",
	    p.user[0] ? p.user : "?", p.uid, p.since ? fmttime(p.since) : "?",
	    p.reason[0] ? ": " : "", p.reason);
	return 1;
}

/* deploy and prepare, before and after the lock: a pause refuses them */
static void
refuse_if_paused(void)
{
	char who[600];

	if (paused_by(who, sizeof(who)))
		die(EXIT_LOCKED, "deploy is %s; 'deploy resume' ends it "
		    "(activate and rollback still work)", who);
}

/*
 * The one place where a pause or a resume is known to be done (recorded
 * durably): what else must hear of it (an audit trail) hooks here.
 */
static void
pause_event(const char *event, const struct pauserec *p)
{
	if (strcmp(event, "pause") == 0)
		say("paused by %s (uid %ld)%s%s: deploy and prepare refuse "
		    "(exit 3) until 'deploy resume'", p->user, p->uid,
		    p->reason[0] ? ": " : "", p->reason);
	else
		say("resumed (was paused by %s since %s)", p->user,
		    p->since ? fmttime(p->since) : "?");
	if (strcmp(event, "pause") == 0)	/* resume: once its run ends */
		audit_event(event, EXIT_OK, cursha, NULL, p->reason[0] ?
		    p->reason : NULL);
}

static void need_deploy_root(void);

static int
cmd_pause(int argc, char **argv)
{
	struct pauserec p, old;
	char buf[1024];
	const char *r;
	size_t rl = 0;
	int i, n;

	need_deploy_root();
	if (nflag) {
		say("would pause: deploy and prepare would refuse (exit 3) "
		    "until 'deploy resume'");
		return EXIT_OK;
	}
	need_state();
	memset(&p, 0, sizeof(p));
	for (i = 1; i < argc && rl < sizeof(p.reason) - 1; i++)
		rl += (size_t)snprintf(p.reason + rl, sizeof(p.reason) - rl,
		    "%s%s", rl ? " " : "", argv[i]);
	cut_utf8(p.reason, printable(p.reason), sizeof(p.reason));
	p.uid = (long)getuid();
	if ((r = login_name()) == NULL)
		r = "?";
	cut_utf8(p.user, printable(r), sizeof(p.user));
	p.since = (long long)time(NULL);
	if (pause_read(&old))
		say("already paused by %s: recording this pause instead",
		    old.user);
	n = snprintf(buf, sizeof(buf), "deploy-pause 1\nuser %s\nuid %ld\n"
	    "since %lld\nreason %s\n", p.user, p.uid, p.since, p.reason);
	if (n < 0 || (size_t)n >= sizeof(buf) ||
	    replace_file_at(statefd, "pause", buf, (size_t)n, 1) == -1)
		die(FAIL_STATUS, "%s/%s/pause: %s", root, STATE, strerror(errno));
	pause_event("pause", &p);
	return EXIT_OK;
}

/* resume: the pause ends, then the run converges as one by hand does */
static int
cmd_resume(void)
{
	static struct pauserec p;	/* its reason outlives us: the audit */
	int st;

	need_current_sane();
	if (nflag) {
		say("would end the pause, if any, finish a pending switch and "
		    "make sure the program runs current");
		return EXIT_OK;
	}
	need_state();
	byhand = 1;
	lock_root("resume");
	audit_cmd = "resume";
	if (!pause_read(&p)) {
		say("not paused");
	} else {
		if (unlinkat(statefd, "pause", 0) == -1 || fsync(statefd) == -1)
			die(FAIL_STATUS, "%s/%s/pause: %s", root, STATE,
			    strerror(errno));
		pause_event("resume", &p);
		audit_detail = p.reason[0] ? p.reason : NULL;
	}
	if ((st = cleanup()) != EXIT_OK)
		return st;
	return converge(1, NULL);
}

static void
run_notify(int status)
{
	struct runopts o = opts(root, ENV_APP, NULL, NULL);
	char *env[7], **argv;
	struct result r;
	size_t i;

	env[0] = fmtpath("DEPLOY_EVENT=%s", notify_event);
	env[1] = fmtpath("DEPLOY_STATUS=%d", status);
	env[2] = fmtpath("DEPLOY_REVISION=%s", notify_rev);
	env[3] = fmtpath("DEPLOY_PREVIOUS=%s", notify_prev);
	env[4] = notify_rev[0] ? fmtpath("DEPLOY_LOG=%s/%s/logs/%s.log", root,
	    STATE, notify_rev) : xstrdup("DEPLOY_LOG=");
	env[5] = fmtpath("DEPLOY_ACTOR=%s", audit_actor());
	env[6] = NULL;
	o.extra = env;
	if (o.timeout == 0 || o.timeout > 60)
		o.timeout = 60;
	late = 1;	/* a signal that ends the run must not end this too */
	argv = words(cfg.notify);
	if (run_step("notify", argv, &o, &r) == -1)
		warnx("notify failed (%s); the exit status stays %d",
		    why_failed(&r, argv[0], o.timeout), status);
	free_words(argv);
	for (i = 0; i < 6; i++)
		free(env[i]);
}

/* Every exit of the program: the audit line first, when a command that
 * changes something took the lock, then notify for deploy, activate and
 * rollback. */
static void
finish(int status)
{
	static int leaving = -1;

	if (leaving != -1)	/* a die() inside notify: the first status holds */
		exit(leaving);
	if (build_failed) {	/* fail_build's: make sure current runs */
		build_failed = 0;
		if (converge(0, NULL) == EXIT_STUCK)
			status = EXIT_STUCK;
	}
	leaving = status;
	if (audit_cmd != NULL && !(audit_skip && status == EXIT_OK))
		audit_event(audit_cmd, status, notify_rev, notify_prev,
		    audit_detail);
	if (notify_event != NULL && notify_due && cfg.notify != NULL)
		run_notify(status);
	fflush(stdout);
	exit(status);
}

static void
need_current_sane(void)
{
	char why[PATH_MAX * 2];
	int c = read_current(why, sizeof(why));

	if (c == CUR_DIR || c == CUR_BAD)
		die(EXIT_USAGE, "%s", why);
}

/* Every key, commented out, with its default and what it means. */
static const char conf_template[] =
"# deploy(1) configuration: key = value; '#' starts a comment line.\n"
"# Commands are split into words as sh does (quotes, backslash) and run\n"
"# without a shell, in the release, with its .venv/bin first on PATH.\n"
"repo = %s\n"
"%s%s%s"
"# branch = (the remote's HEAD)  # branch, tag or commit deployed by default\n"
"# keep = 5                  # complete releases kept by prune (at least 2)\n"
"# virtualenv = virtualenv -p python3  # makes a venv; its path is appended\n"
"#                           # (python3 -m venv where virtualenv is missing)\n"
"# requirements = requirements.txt  # pip installs it; skipped when absent\n"
"# reuse_venv = yes          # share a venv between releases with the same\n"
"#                           # requirements (never with local paths)\n"
"# build =                   # run after pip, before the tests\n"
"# test = python -m pytest   # the app's tests; none: the step is skipped\n"
"# program = app             # supervisord program (or group:*) restarted\n"
"#                           # after the switch; none: no restart\n"
"# supervisorctl = supervisorctl  # e.g. supervisorctl -c /etc/supervisor/supervisord.conf\n"
"# restart =                 # a command used instead of supervisorctl restart\n"
"# check =                   # health check after the restart, retried until\n"
"#                           # it passes or check_timeout ends\n"
"# check_timeout = 30        # seconds\n"
"# link =                    # paths under shared/ linked into each release\n"
"# envfile =                 # KEY=VALUE file under shared/ for build, test\n"
"#                           # and check\n"
"# timeout = 1800            # seconds one step may run; 0 for none\n"
"# migrate =                 # after the tests, right before the switch\n"
"#                           # (python manage.py migrate --noinput)\n"
"# notify =                  # after every deploy, activate and rollback\n"
"#                           # that built, migrated, switched, restarted\n"
"#                           # or switched back a release; gets DEPLOY_EVENT,\n"
"#                           # DEPLOY_STATUS, DEPLOY_REVISION, DEPLOY_PREVIOUS,\n"
"#                           # DEPLOY_LOG, DEPLOY_ACTOR\n";

/* shared/deploy.conf: written when absent, else only compared */
static void
init_config(const char *url, const char *branch)
{
	const char *conf = "shared/deploy.conf";
	char *text, *buf, err[ERRLEN];
	struct config old;
	struct stat st;
	size_t len;
	int fd;

	if (fstatat(rootfd, conf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		config_init(&old);
		if ((buf = read_file_at(rootfd, conf, CONF_MAX, &len, NULL)) !=
		    NULL && config_parse(&old, buf, len, conf, err,
		    sizeof(err)) == 0 && strcmp(old.repo, url) != 0)
			say("shared/deploy.conf already there; left as it is: "
			    "it still names repo = %s, not %s (edit it to "
			    "deploy from %s)", old.repo, url, url);
		else
			say("shared/deploy.conf already there; left as it is");
		free(buf);
		config_free(&old);
		return;
	}
	text = fmtpath(conf_template, url, branch ? "branch = " : "",
	    branch ? branch : "", branch ? "\n" : "");
	if ((fd = openat(rootfd, conf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0644)) == -1 || write_all(fd, text, strlen(text)) == -1 ||
	    fsync(fd) == -1 || close(fd) == -1)
		die(FAIL_STATUS, "%s/%s: %s", root, conf, strerror(errno));
	say("created shared/deploy.conf: edit it, then run deploy");
	free(text);
}

static int
cmd_init(int argc, char **argv)
{
	struct stat st;
	struct runopts o;

	if (argc < 2 || argc > 3)
		die(EXIT_USAGE, "usage: deploy init URL [BRANCH]");
	if (argv[1][0] == '-' || argv[1][0] == '\0')
		die(EXIT_USAGE, "URL '%s' must not start with '-'",
		    printable(argv[1]));
	if (argc == 3 && !ref_ok(argv[2]))
		die(EXIT_USAGE, "branch '%s': not a usable ref",
		    printable(argv[2]));
	if (nflag) {
		say("would create %s with releases/, shared/, repo/ (mirror of "
		    "%s) and shared/deploy.conf", root, argv[1]);
		return EXIT_OK;
	}
	open_root(1);
	need_state();
	lock_root("init");
	if (mkdirat(rootfd, "releases", 0755) == 0)
		say("created releases/");
	else if (errno == EEXIST)
		say("releases/ already there");
	else
		die(FAIL_STATUS, "%s/releases: %s", root, strerror(errno));
	if (mkdirat(rootfd, "shared", 0755) == 0)
		say("created shared/");
	else if (errno == EEXIST)
		say("shared/ already there");
	else
		die(FAIL_STATUS, "%s/shared: %s", root, strerror(errno));
	if (fstatat(rootfd, "repo", &st, AT_SYMLINK_NOFOLLOW) == 0)
		say("repo/ already there; left as it is (deploy fetches from "
		    "the repo named in shared/deploy.conf)");
	else {
		cfg.timeout = 1800;
		o = opts(root, ENV_NONE, NULL, NULL);
		clone_mirror(argv[1], &o);
		say("created repo/ (a mirror of %s)", argv[1]);
	}
	init_config(argv[1], argc == 3 ? argv[2] : NULL);
	return EXIT_OK;
}

/*
 * What a deploy brings: how many commits lie between current and sha,
 * their subjects, and a warning when sha is behind current. From the
 * mirror; nothing when it does not have both.
 */
static int
say_commits_in(const char *gd, const char *sha)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char out[8192], *range, **argv, *line, *save;
	long behind = 0, ahead = 0, n = 0;
	struct result r;

	if (qflag || cursha[0] == '\0' || strcmp(cursha, sha) == 0)
		return 0;
	o.out = out;
	o.outlen = sizeof(out);
	o.timeout = 60;
	range = fmtpath("%s...%s", cursha, sha);
	argv = words_plus("git", gd, "rev-list", "--left-right", "--count",
	    "--end-of-options", range, (char *)NULL);
	out[0] = '\0';
	{
		char *f[2];

		if (run(argv, &o, &r) == -1 || fields(out, f, 2) != 2)
			behind = ahead = -1;
		else {
			behind = strtol(f[0], NULL, 10);
			ahead = strtol(f[1], NULL, 10);
		}
	}
	free_words(argv);
	free(range);
	if (ahead == -1)
		return -1;
	if (ahead == 0 && behind > 0)
		say("%.12s is %ld commit%s BEHIND current %.12s: this deploys an "
		    "older commit", sha, behind, behind == 1 ? "" : "s", cursha);
	if (ahead == 0)
		return 0;
	say("%ld new commit%s since %.12s%s:", ahead, ahead == 1 ? "" : "s",
	    cursha, behind > 0 ? ", which is not an ancestor" : "");
	range = fmtpath("%s..%s", cursha, sha);
	argv = words_plus("git", gd, "log", "--format=%s", "-n", "20",
	    "--end-of-options", range, (char *)NULL);
	out[0] = '\0';
	if (run(argv, &o, &r) == 0)
		for (line = strtok_r(out, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save), n++)
			say("  %s", printable(line));
	if (ahead > n && n > 0)
		say("  ... and %ld more", ahead - n);
	free_words(argv);
	free(range);
	return 0;
}

static void
say_commits(const char *sha)
{
	say_commits_in(gitdir(), sha);
}

/*
 * -n: whether the commands of the steps can run, as far as that is known
 * before the release exists.  An absolute path is a file here; a path in
 * the release is a file in git's tree at sha, with mode 100755 (or a
 * link); a bare name is on PATH, or left to the release's .venv/bin.
 * notify runs in the root, without the venv.
 */
static const char *treegd;	/* the mirror, or -n's temporary fetch */

static void
dry_run_tree_path(const char *what, const char *path, const char *sha)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char out[1024], why[PATH_MAX + 200], **argv, **l;
	struct result r;

	while (strncmp(path, "./", 2) == 0)
		path += 2;
	argv = words_plus("git", treegd ? treegd : gitdir(), "ls-tree", sha,
	    "--", path, (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	out[0] = '\0';
	if (run(argv, &o, &r) == -1) {
		say("preflight: %s: not checked: %.12s is not in the mirror yet",
		    what, sha);
		free_words(argv);
		return;
	}
	free_words(argv);
	why[0] = '\0';
	if (strncmp(out, "100755 ", 7) == 0 || strncmp(out, "120000 ", 7) == 0)
		;
	else if (strncmp(out, "100644 ", 7) == 0)
		snprintf(why, sizeof(why), "%s is not executable in the "
		    "repository at %.12s (git update-index --chmod=+x %s, then "
		    "commit)", printable(path), sha, printable(path));
	else if (out[0] != '\0')
		snprintf(why, sizeof(why), "%s is not a file in the repository "
		    "at %.12s", printable(path), sha);
	else {
		char **links = cfg.link ? words(cfg.link) : NULL;
		int linked = strncmp(path, ".venv/", 6) == 0;

		for (l = links; l && *l && !linked; l++)
			linked = strncmp(path, *l, strlen(*l)) == 0 &&
			    (path[strlen(*l)] == '/' || path[strlen(*l)] == '\0');
		free_words(links);
		if (linked || cfg.build != NULL) {
			say("preflight: %s: %s is not in the repository: left to "
			    "the %s", what, printable(path), linked ? "venv and "
			    "link steps" : "build command");
			return;
		}
		snprintf(why, sizeof(why), "%s is not in the repository at %.12s",
		    printable(path), sha);
	}
	preflight_result(what, why[0] ? why : NULL);
}

static void
dry_run_commands(const char *sha)
{
	const char *key[] = { "build", "test", "migrate", "restart", "check",
	    "notify" };
	char *cmd[6], **w, what[64], why[PATH_MAX + 64], found[PATH_MAX];
	struct stat st;
	size_t i;

	cmd[0] = cfg.build;
	cmd[1] = cfg.test;
	cmd[2] = cfg.migrate;
	cmd[3] = cfg.restart;
	cmd[4] = cfg.check;
	cmd[5] = cfg.notify;
	for (i = 0; i < 6; i++) {
		int notify = i == 5;

		if (cmd[i] == NULL || (i == 3 && cfg.restart != NULL &&
		    release_state(sha) == R_COMPLETE))
			continue;	/* an existing release: checked there */
		w = words(cmd[i]);
		snprintf(what, sizeof(what), "%s command", key[i]);
		why[0] = '\0';
		if (w[0][0] == '/' || (notify && strchr(w[0], '/') != NULL)) {
			if ((w[0][0] == '/' ? stat(w[0], &st) : fstatat(rootfd,
			    w[0], &st, 0)) == -1)
				snprintf(why, sizeof(why), "%s: %s", printable(
				    w[0]), strerror(errno));
			else if (!S_ISREG(st.st_mode) || (w[0][0] == '/' ?
			    access(w[0], X_OK) : faccessat(rootfd, w[0], X_OK,
			    0)) == -1)
				snprintf(why, sizeof(why), "%s is not an "
				    "executable file (chmod +x)", printable(w[0]));
			preflight_result(what, why[0] ? why : NULL);
		} else if (strchr(w[0], '/') != NULL)
			dry_run_tree_path(what, w[0], sha);
		else if (path_lookup(w[0], found, sizeof(found)) == 0)
			preflight_result(what, NULL);
		else if (notify) {
			snprintf(why, sizeof(why), "'%s' is not on PATH",
			    printable(w[0]));
			preflight_result(what, why);
		} else if (i != 3)	/* restart: preflight said it */
			say("preflight: %s: '%s' is not on PATH; left to the "
			    "release's .venv/bin", what, printable(w[0]));
		free_words(w);
	}
}

/*
 * For -n, when the mirror lacks the new commits: fetch REF into a
 * throwaway repository outside the root that borrows the mirror's objects
 * (alternates), so that nothing under the root changes.
 */
static void
say_commits_fetched(const char *ref, const char *sha)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	const char *tmp = getenv("TMPDIR");
	char dir[PATH_MAX], *alt, *objs, *gd, **argv;
	struct result r;
	int fd, ok;

	snprintf(dir, sizeof(dir), "%s/deploy-n.XXXXXX", tmp && *tmp == '/' ?
	    tmp : "/tmp");	/* never relative: git runs in the root */
	if (mkdtemp(dir) == NULL)
		return;
	o.timeout = cfg.timeout;
	argv = words_plus("git", "init", "--quiet", "--bare", dir, (char *)NULL);
	ok = run(argv, &o, &r) == 0;
	free_words(argv);
	alt = fmtpath("%s/objects/info/alternates", dir);
	objs = fmtpath("%s/repo/objects\n", root);
	if (ok && ((fd = open(alt, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1 || write_all(fd, objs, strlen(objs)) == -1 ||
	    close(fd) == -1))
		ok = 0;
	gd = fmtpath("--git-dir=%s", dir);
	argv = words_plus("git", gd, "fetch", "--quiet", "--no-tags",
	    "--end-of-options", cfg.repo, ref, (char *)NULL);
	if (ok && run(argv, &o, &r) == 0 && say_commits_in(gd, sha) == 0)
		;
	else
		say("(the commits since %.12s are not in the mirror yet)", cursha);
	treegd = gd;	/* the commit's tree is here, if the fetch worked */
	dry_run_commands(sha);
	treegd = NULL;
	free_words(argv);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		char *slash = strrchr(dir, '/');

		close(fd);
		*slash = '\0';
		if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
			remove_tree(fd, slash + 1, NULL);
			close(fd);
		}
	}
	free(gd);
	free(objs);
	free(alt);
}

/* -n: the signature's verdict, where the mirror has the commit already */
static int
dry_run_verify(const char *ref, const char *sha)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char out[128], *spec = fmtpath("%s^{commit}", sha), **argv;
	struct result r;
	int st;

	argv = words_plus("git", gitdir(), "rev-parse", "--verify", "--quiet",
	    spec, (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	st = run(argv, &o, &r) == 0 ? check_signature(ref, sha) : -2;
	free_words(argv);
	free(spec);
	if (st == 0)
		say("signature: good, by %s", signer);
	else if (st == -2)
		say("signature: not checked: %s is not in the mirror yet (a "
		    "deploy fetches it, then checks)", sha);
	else {
		warnx("would refuse %.12s: %s", sha, refusal);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

/* -n: what deploy would do, from the remote as it is now */

/* REF in the mirror without a step line or an error; 0 when found */
static int
mirror_sha(const char *ref, char *sha)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char out[256], *spec, **argv;
	struct result r;
	int found;

	if (resolve_local(ref, sha) == 0)
		return 0;
	spec = fmtpath("%s^{commit}", ref);
	argv = words_plus("git", gitdir(), "rev-parse", "--verify", "--quiet",
	    spec, (char *)NULL);	/* ref_ok: it never starts with '-' */
	o.out = out;
	o.outlen = sizeof(out);
	out[0] = '\0';
	found = run(argv, &o, &r) == 0;
	out[strcspn(out, "\n")] = '\0';
	if ((found = found && is_sha(out)))
		copy_sha(sha, out);
	free_words(argv);
	free(spec);
	return found ? 0 : -1;
}

/*
 * -n: what deploy would do, from the remote as it is now.  A remote that
 * cannot be reached is exit 1, the status the deploy itself would end
 * with at its fetch step (2 is kept for a wrong config or command line);
 * what the mirror knows is still shown, marked stale.
 */
static int
dry_run_deploy(const char *ref, int prepare_only)
{
	char sha[65], gerr[512];
	long i;
	int st, lr, unreachable = 0;

	history_load();
	scan_releases();
	say("would fetch %s into %s/repo", cfg.repo, root);
	ref = ref ? ref : cfg.branch ? cfg.branch : "HEAD";
	if (!ref_ok(ref))
		die(EXIT_USAGE, "ref '%s': not a usable ref", printable(ref));
	if ((lr = ls_remote(ref, sha, gerr, sizeof(gerr))) == 0)
		say("%s is %s on the remote", ref, sha);
	else if (lr == -2) {
		unreachable = 1;
		warnx("cannot reach the remote %s: %s; a deploy now would fail "
		    "at its fetch step", printable(cfg.repo), gerr);
		if (mirror_sha(ref, sha) == -1) {
			warnx("and the mirror does not know %s either",
			    printable(ref));
			return preflight_failed ? EXIT_USAGE : EXIT_FAILED;
		}
		say("%s was %s in the mirror at its last fetch (stale: the "
		    "remote could not be asked)", ref, sha);
	} else {
		resolve(ref, sha);
		say("%s is %s in the mirror, as of the last fetch", ref, sha);
	}
	if (say_commits_in(gitdir(), sha) == -1 && !unreachable)
		say_commits_fetched(ref, sha);	/* and dry_run_commands */
	else
		dry_run_commands(sha);
	if (cfg.verify != VERIFY_OFF && (st = dry_run_verify(ref, sha)) != 0)
		return st;
	i = release_find(rel, nrel, sha);
	if (strcmp(sha, cursha) == 0 && i >= 0 && rel[i].state == R_FAILED)
		say("%s is current but failed its last restart or check: "
		    "would %s", sha, prepare_only ? "do nothing (it is built)" :
		    "restart and check it again (a live release is never "
		    "rebuilt)");
	else if (strcmp(sha, cursha) == 0)
		say("%s is current: nothing to do", sha);
	else if (i >= 0 && rel[i].state == R_COMPLETE) {
		say("would switch to the existing release %s", sha);
		if (!prepare_only)
			need_restart_command(sha);
	} else
		say("would build releases/%s, test it, %s", sha, prepare_only ?
		    "and stop" : cfg.migrate ? "migrate, switch current to it, "
		    "restart and prune" : "switch current to it, restart and "
		    "prune");
	return preflight_failed ? EXIT_USAGE : unreachable ? EXIT_FAILED :
	    EXIT_OK;
}

/* A release that failed after its switch is built again from nothing. */
static void
drop_failed_release(const char *sha)
{
	int fd;

	say("release %.12s failed after an earlier switch: rebuilding it", sha);
	if (history_add(EV_REMOVE, sha) == -1)
		leave(EXIT_FAILED);
	fd = releases_fd(0);
	if (remove_in(fd, "releases", sha) == -1)
		die(EXIT_FAILED, "cannot remove %s/releases/%s; the next run "
		    "will try again", root, sha);
	close(fd);
	history_forget(sha);
	history_save();
}

static int
cmd_deploy(const char *ref, int prepare_only)
{
	char sha[65];
	long i;
	int st, acted;

	need_current_sane();
	refuse_if_paused();	/* building nothing */
	preflight(1, !prepare_only);
	load_keys();
	restart_needed = !prepare_only;
	if (nflag)
		return dry_run_deploy(ref, prepare_only);
	need_state();
	lock_root(prepare_only ? "prepare" : "deploy");
	refuse_if_paused();	/* paused while we waited for the lock */
	/* from here on, whatever ends the run is told (notify, audit) */
	audit_cmd = prepare_only ? "prepare" : "deploy";
	if (!prepare_only)
		notify_event = "deploy";
	copy_sha(notify_prev, cursha);
	if ((st = cleanup()) != EXIT_OK)
		return st;
	copy_sha(notify_prev, cursha);
	step_fetch();
	if (ref == NULL)
		ref = cfg.branch ? cfg.branch : "HEAD";
	resolve(ref, sha);
	copy_sha(notify_rev, sha);
	if (cfg.verify != VERIFY_OFF)
		step_verify(ref, sha);
	say_commits(sha);
	scan_releases();
	i = release_find(rel, nrel, sha);
	if (i >= 0 && rel[i].state == R_FAILED && strcmp(sha, cursha) == 0) {
		/* live, so never removed: give it another restart and check;
		 * prepare switches and restarts nothing */
		if (prepare_only) {
			say("%.12s is built (current, but it failed its last "
			    "restart or check)", sha);
			printf("%s\n", sha);
			return EXIT_OK;
		}
		say("%.12s is current but failed its last restart or check: "
		    "restarting and checking it again", sha);
		return activate_release(sha, "", 1, 0);
	}
	if (i >= 0 && rel[i].state == R_FAILED) {
		drop_failed_release(sha);
		i = -1;
	}
	if (signer[0] != '\0')
		signer_record(sha);
	if (i < 0 || rel[i].state != R_COMPLETE)
		build_release(sha);
	else if (prepare_only || strcmp(sha, cursha) != 0)
		say("release %s is already built", sha);
	if (gotsig)
		return 128 + gotsig;	/* built or not, nothing was switched */
	if (prepare_only) {
		printf("%s\n", sha);
		return EXIT_OK;
	}
	if (strcmp(sha, cursha) == 0) {
		if ((st = converge(0, &acted)) == EXIT_OK && !acted) {
			say("%s is already current: nothing to do", sha);
			audit_skip = !notify_due;
		}
		return st;
	}
	need_restart_command(sha);
	return activate_release(sha, cursha, 1, 1);
}

/* The subject line of each commit, from the mirror: "" where unknown. */
static void
subjects(const char *a, const char *b, char *sa, char *sb, size_t len)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char out[2048], *line, *save, **argv;
	struct result r;

	sa[0] = sb[0] = '\0';
	argv = words_plus("git", gitdir(), "log", "--no-walk=unsorted",
	    "--ignore-missing", "--format=%H %s", "--end-of-options", a, b,
	    (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	o.timeout = 30;
	out[0] = '\0';
	if (run(argv, &o, &r) == 0)
		for (line = strtok_r(out, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			if (strncmp(line, a, strlen(a)) == 0 && line[strlen(a)] == ' ')
				snprintf(sa, len, "%s", line + strlen(a) + 1);
			if (strncmp(line, b, strlen(b)) == 0 && line[strlen(b)] == ' ')
				snprintf(sb, len, "%s", line + strlen(b) + 1);
		}
	free_words(argv);
}

static void
say_from_to(const char *verb, const char *from, const char *to)
{
	char sf[80], st[80];

	if (qflag)
		return;		/* the git process is only for the message */
	if (from[0] == '\0') {
		subjects(to, to, st, st, sizeof(st));
		say("%s %.12s (%s)", verb, to, printable(st));
		return;
	}
	subjects(from, to, sf, st, sizeof(sf));
	say("%s from %.12s (%s) to %.12s (%s)", verb, from, printable(sf), to,
	    printable(st));
}

static long
find_rev(const char *rev)
{
	long i = rev_match(rel, nrel, rev);

	if (i == -3)
		die(EXIT_USAGE, "REV '%s': give a full sha or a prefix of at "
		    "least 7 hex digits", printable(rev));
	if (i == -2)
		die(EXIT_USAGE, "REV '%s' is ambiguous: give more digits",
		    printable(rev));
	if (i == -1)
		die(EXIT_USAGE, "REV '%s': no complete release has it "
		    "('deploy list' shows them)", printable(rev));
	if (rel[i].state == R_FAILED)
		die(EXIT_USAGE, "release %s failed after its switch; "
		    "'deploy deploy %s' %s", rel[i].name, rel[i].name,
		    strcmp(rel[i].name, cursha) == 0 ? "restarts and checks it "
		    "again" : "rebuilds it");
	return i;
}

static int
cmd_activate(const char *rev, int rollback)
{
	char sha[65], from[65], next[65];
	long i, cur;
	int st, acted;

	need_current_sane();
	preflight(0, 1);
	byhand = 1;	/* a pause does not hold it */
	if (!nflag) {
		need_state();
		lock_root(rollback ? "rollback" : "activate");
		notify_event = audit_cmd = rollback ? "rollback" : "activate";
		copy_sha(notify_prev, cursha);
		if ((st = cleanup()) != EXIT_OK)
			return st;
		copy_sha(notify_prev, cursha);
	} else {
		history_load();
		scan_releases();
	}
	cur = cur_index();
	if (rev != NULL)
		i = find_rev(rev);
	else if ((i = rollback_target(rel, nrel, cur)) < 0)
		die(EXIT_USAGE, "nothing to roll back to: no complete release "
		    "was completed before the current one ('deploy list')");
	copy_sha(sha, rel[i].name);
	copy_sha(notify_rev, sha);
	if (strcmp(sha, cursha) == 0 && !nflag) {
		/* by hand: it starts a program that is down, paused or not */
		if ((st = converge(1, &acted)) == EXIT_OK && !acted) {
			say("%s is already current: nothing to do", sha);
			audit_skip = !notify_due;
		}
		return st;
	}
	need_restart_command(sha);
	if (nflag) {
		say("would %sswitch current from %s to %s, restart and check",
		    !rollback && cfg.migrate && !Mflag ? "migrate, " : "",
		    cursha[0] ? cursha : "nothing", sha);
		return preflight_failed ? EXIT_USAGE : EXIT_OK;
	}
	say_from_to(rollback ? "rolling back" : "activating", cursha, sha);
	copy_sha(from, cursha);
	st = activate_release(sha, cursha, 0, !rollback);
	if (st == EXIT_OK && from[0] && resolve_local(cfg.branch ? cfg.branch :
	    "HEAD", next) == 0 && strcmp(next, from) == 0)
		warnx("%s still points to %.12s: the next plain 'deploy' brings "
		    "it back (push a fix, or deploy a REF)", cfg.branch ?
		    cfg.branch : "the remote's HEAD", from);
	return st;
}

/* migrate REV: only the migrate step, for a complete release, no switch */
static int
cmd_migrate(const char *rev)
{
	char sha[65];
	int st;

	if (rev == NULL)
		die(EXIT_USAGE, "usage: deploy migrate REV");
	if (cfg.migrate == NULL)
		die(EXIT_USAGE, "no migrate command in deploy.conf: nothing to run");
	need_current_sane();
	if (nflag) {
		history_load();
		scan_releases();
		say("would run migrate for %s", rel[find_rev(rev)].name);
		return EXIT_OK;
	}
	need_state();
	lock_root("migrate");
	audit_cmd = "migrate";
	if ((st = cleanup()) != EXIT_OK)
		return st;
	copy_sha(sha, rel[find_rev(rev)].name);
	copy_sha(notify_rev, sha);
	open_log(sha, 0);
	Mflag = 0;
	return step_migrate(sha);
}

static void need_readable(void);

/* log [REV]: a release's log (the newest log without REV); no lock */
static int
cmd_log(const char *rev)
{
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

/*
 * What status, list and log read must be readable: a partial answer
 * ("rollback: none", every release "foreign") would be believed.
 */
static void
unreadable(const char *name, int err)
{
	struct stat st;

	if (fstatat(rootfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		die(EXIT_USAGE, "%s/%s: %s (mode %04o, owner uid %ld, we are uid "
		    "%ld): run this as the deploy user", root, name,
		    strerror(err), (unsigned)(st.st_mode & 07777),
		    (long)st.st_uid, (long)geteuid());
	die(EXIT_USAGE, "%s/%s: %s (we are uid %ld)", root, name,
	    strerror(err), (long)geteuid());
}

static void
need_readable(void)
{
	const char *files[] = { STATE "/history", STATE "/logs" };
	size_t i;
	int fd;

	if (statefd == -1 && state_errno != ENOENT)
		unreadable(STATE, state_errno);
	if ((fd = openat(rootfd, "releases", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 && errno != ENOENT)
		unreadable("releases", errno);
	if (fd != -1)
		close(fd);
	for (i = 0; statefd != -1 && i < sizeof(files) / sizeof(files[0]);
	    i++) {
		if ((fd = openat(rootfd, files[i], O_RDONLY | O_CLOEXEC |
		    O_NONBLOCK)) == -1 && errno != ENOENT)
			unreadable(files[i], errno);
		if (fd != -1)
			close(fd);
	}
}

/* list and status answer only for a folder that is a deploy root */
static void
need_deploy_root(void)
{
	struct stat st;

	need_readable();
	if (statefd == -1 && fstatat(rootfd, "releases", &st,
	    AT_SYMLINK_NOFOLLOW) == -1 && fstatat(rootfd, "repo", &st,
	    AT_SYMLINK_NOFOLLOW) == -1)
		die(EXIT_USAGE, "%s is not a deploy root (no releases/, repo/ or "
		    "%s/): run 'deploy init URL' there, or give -C ROOT", root,
		    STATE);
}

#define SUBJ	61	/* a subject in list, cut to fit */

/* Each release's commit subject, from the mirror, in one git process. */
static char (*release_subjects(void))[SUBJ]
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char (*subj)[SUBJ] = xrealloc(NULL, (nrel + 1) * SUBJ), **argv;
	char *out, *line, *save;
	size_t i, n = 0;
	struct stat st;
	struct result r;
	long k;

	memset(subj, 0, (nrel + 1) * SUBJ);
	if (fstatat(rootfd, "repo", &st, 0) == -1)
		return subj;
	argv = words_plus("git", gitdir(), "log", "--no-walk=unsorted",
	    "--ignore-missing", "--format=%H %s", "--end-of-options",
	    (char *)NULL);
	for (n = 0; argv[n]; n++)
		;
	for (i = 0; i < nrel; i++)
		if (rel[i].state != R_FOREIGN) {
			argv = xrealloc(argv, (n + 2) * sizeof(*argv));
			argv[n++] = xstrdup(rel[i].name);
			argv[n] = NULL;
		}
	out = xrealloc(NULL, 1 << 20);
	out[0] = '\0';
	o.out = out;
	o.outlen = 1 << 20;
	o.timeout = 60;
	if (argv[n - 1][0] != '-' && run(argv, &o, &r) == 0)
		for (line = strtok_r(out, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			char *sp = strchr(line, ' ');

			if (sp == NULL)
				continue;
			*sp = '\0';
			if ((k = release_find(rel, nrel, line)) >= 0)
				cut_utf8(subj[k], sp + 1, SUBJ);
		}
	free(out);
	free_words(argv);
	return subj;
}

static int
cmd_list(void)
{
	char why[PATH_MAX * 2], row[PATH_MAX + 1400], (*subj)[SUBJ], who[1100];
	const char *mark;
	long cur, rb;
	size_t i;
	int n;

	need_deploy_root();
	if (statefd != -1)
		history_load();
	read_current(why, sizeof(why));
	scan_releases();
	cur = cur_index();
	rb = rollback_target(rel, nrel, cur);
	subj = release_subjects();
	if (jflag)
		printf("{\"root\": ");
	if (jflag) {
		json_str(root);
		printf(", \"releases\": [");
	}
	for (i = 0; i < nrel; i++) {
		mark = (long)i == cur ? "current" : (long)i == rb ? "rollback" :
		    "-";
		if (jflag) {
			printf("%s\n  {", i ? "," : "");
			json_field("sha", rel[i].name, 0);
			json_field("state", state_name(rel[i].state), 1);
			json_time("completed", rel[i].completed);
			json_time("activated", rel[i].activated);
			printf(", \"current\": %s, \"rollback\": %s",
			    (long)i == cur ? "true" : "false",
			    (long)i == rb ? "true" : "false");
			json_field("subject", subj[i], 1);
			json_field("signer", signer_of(rel[i].name, who,
			    sizeof(who)), 1);
			putchar('}');
			continue;
		}
		/* padded columns, but no trailing spaces */
		n = snprintf(row, sizeof(row), "%-40s  %-10s  %-19s  %-8s  %s%s%s",
		    rel[i].name, state_name(rel[i].state),
		    fmttime(rel[i].completed), mark, printable(subj[i]),
		    *signer_of(rel[i].name, who, sizeof(who)) ? "  signed by " : "",
		    who);
		if (n < 0)
			continue;
		if ((size_t)n >= sizeof(row))
			n = (int)sizeof(row) - 1;
		while (n > 0 && row[n - 1] == ' ')
			n--;
		printf("%.*s\n", n, row);
	}
	if (jflag)
		printf("\n]}\n");
	free(subj);
	return EXIT_OK;
}

static const char *
status_config(void)
{
	static char why[PATH_MAX + ERRLEN];
	char *path = confopt ? xstrdup(confopt) : fmtpath("%s/shared/deploy.conf",
	    root), *buf, err[ERRLEN + PATH_MAX];
	struct stat st;
	size_t len;
	int fd;

	config_init(&cfg);
	why[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1 ||
	    fstat(fd, &st) == -1)
		snprintf(why, sizeof(why), "%s: %s", path, strerror(errno));
	else if ((st.st_uid != geteuid() && st.st_uid != 0) ||
	    (st.st_mode & 022) != 0)
		snprintf(why, sizeof(why), "%s: not trusted (owner or mode)",
		    path);
	if (fd != -1)
		close(fd);
	buf = why[0] ? NULL : read_file_at(AT_FDCWD, path, CONF_MAX, &len,
	    NULL);
	if (why[0] == '\0' && buf == NULL)
		snprintf(why, sizeof(why), "%s: %s", path, strerror(errno));
	else if (buf != NULL && config_parse(&cfg, buf, len, path, err,
	    sizeof(err)) == -1)
		snprintf(why, sizeof(why), "%s", err);
	free(buf);
	if (why[0] == '\0' && cfg.supervisorctl == NULL)
		cfg.supervisorctl = xstrdup("supervisorctl");
	free(path);
	return why[0] ? why : NULL;
}

/* the program's processes: state, pid, release they run */
static void
status_program(void)
{
	static struct member m[MAXMEMBERS];
	const char *why = status_config();
	char rs[65];
	int n = 0, i;

	if (why == NULL && cfg.program != NULL && cursha[0] &&
	    (n = group_members(cursha, cfg.program, m, MAXMEMBERS)) < 0)
		why = members_why;	/* never a part of the group */
	if (jflag) {
		if (why != NULL || cfg.program == NULL) {
			printf(", \"program\": null");
			return;
		}
		printf(", \"program\": {");
		json_field("name", cfg.program, 0);
		printf(", \"processes\": [");
		for (i = 0; i < n; i++) {
			proc_release(m[i].pid, rs);
			printf("%s{", i ? ", " : "");
			json_field("name", m[i].name, 0);
			json_field("state", m[i].state, 1);
			if (m[i].pid > 0)
				printf(", \"pid\": %ld", m[i].pid);
			else
				printf(", \"pid\": null");
			json_field("release", rs, 1);
			printf(", \"current\": %s}", rs[0] &&
			    strcmp(rs, cursha) == 0 ? "true" : "false");
		}
		printf("]}");
		return;
	}
	if (why != NULL) {
		printf("program: unknown (%s)\n", why);
		return;
	}
	if (cfg.program == NULL) {
		printf("program: none\n");
		return;
	}
	if (n == 0)
		printf("program: %s: supervisorctl status names no process\n",
		    cfg.program);
	for (i = 0; i < n; i++) {
		proc_release(m[i].pid, rs);
		printf("program: %s %s", m[i].name, m[i].state);
		if (m[i].pid > 0)
			printf(" pid %ld", m[i].pid);
		if (rs[0])
			printf(" (releases/%s%s)", rs, strcmp(rs, cursha) == 0 ?
			    ", current" : ", NOT current");
		putchar('\n');
	}
}

/* a switch a run left unfinished, and a pause */
static void
status_pending_pause(void)
{
	static const char *next[] = { "", "restart next", "check next",
	    "prune next", "switch back next" };
	struct pending p;
	struct pauserec pr;
	int paused = pause_read(&pr);

	memset(&p, 0, sizeof(p));
	if (statefd != -1)
		pending_load(&p, 0);
	if (jflag) {
		if (p.state == P_NONE)
			printf(", \"pending\": null");
		else {
			printf(", \"pending\": {");
			json_field("state", pnames[p.state], 0);
			json_field("sha", p.sha, 1);
			json_field("previous", p.prev, 1);
			printf(", \"prune\": %s}", p.prune ? "true" : "false");
		}
		if (!paused) {
			printf(", \"paused\": null");
			return;
		}
		printf(", \"paused\": {");
		json_field("user", pr.user, 0);
		printf(", \"uid\": %ld", pr.uid);
		json_time("since", pr.since);
		json_field("reason", pr.reason, 1);
		putchar('}');
		return;
	}
	if (p.state == P_NONE)
		printf("pending: none\n");
	else
		printf("pending: %s %s from %s (%s)\n", pnames[p.state], p.sha,
		    p.prev[0] ? p.prev : "nothing", next[p.state]);
	if (paused)
		printf("paused: by %s (uid %ld) since %s%s%s\n", pr.user, pr.uid,
		    fmttime(pr.since), pr.reason[0] ? ": " : "", pr.reason);
	else
		printf("paused: no\n");
}

static int
cmd_status(void)
{
	char why[PATH_MAX * 2], what[64];
	long cur, rb, pid = 0;
	long long t = 0;
	int c, held, fd;

	need_deploy_root();
	if (statefd != -1)
		history_load();
	c = read_current(why, sizeof(why));
	scan_releases();
	cur = cur_index();
	rb = rollback_target(rel, nrel, cur);
	fd = statefd == -1 ? -1 : openat(statefd, "lock", O_RDONLY | O_CLOEXEC |
	    O_NOFOLLOW);
	held = lock_held(fd, &pid, &t, what, sizeof(what));
	if (fd != -1)
		close(fd);
	if (jflag) {
		printf("{");
		json_field("root", root, 0);
		json_field("current", c == CUR_OK ? cursha : NULL, 1);
		json_field("current_state", c == CUR_OK ? "ok" : c == CUR_NONE ?
		    "none" : "broken", 1);
		json_field("problem", c == CUR_OK || c == CUR_NONE ? NULL : why, 1);
		json_time("activated", c == CUR_OK && cur >= 0 ?
		    rel[cur].activated : 0);
		json_field("rollback", rb >= 0 ? rel[rb].name : NULL, 1);
		if (held) {
			printf(", \"running\": {\"pid\": %ld", pid);
			json_time("since", t);
			json_field("command", what, 1);
			printf("}");
		} else
			printf(", \"running\": null");
		status_program();
		status_pending_pause();
		printf("}\n");
	} else {
		if (c == CUR_OK)
			printf("current: %s (activated %s)\n", cursha,
			    cur >= 0 ? fmttime(rel[cur].activated) : "-");
		else if (c == CUR_NONE)
			printf("current: none\n");
		else
			printf("current: broken: %s\n", why);
		printf("rollback: %s\n", rb >= 0 ? rel[rb].name : "none");
		if (held)
			printf("running: pid %ld since %s (%s)\n", pid,
			    fmttime(t), what);
		else
			printf("running: no\n");
		status_program();
		status_pending_pause();
	}
	return c == CUR_OK || c == CUR_NONE ? EXIT_OK : EXIT_STUCK;
}

static int
cmd_prune(void)
{
	int st;

	need_current_sane();
	if (nflag) {
		history_load();
		scan_releases();
		do_prune(0);
		return EXIT_OK;
	}
	need_state();
	lock_root("prune");
	audit_cmd = "prune";
	if ((st = cleanup()) != EXIT_OK)
		return st;
	do_prune(0);
	return converge(0, NULL);
}

/* The value of "key" in a line deploy wrote, for showing: "" when it is
 * null or absent. Escapes inside a value keep the escaped character. */
static const char *
audit_get(const char *line, const char *key, char *buf, size_t len)
{
	char pat[64];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	buf[0] = '\0';
	if ((p = strstr(line, pat)) == NULL)
		return buf;
	p += strlen(pat);
	if (*p == '"') {
		for (p++; *p && *p != '"' && n + 1 < len; p++) {
			/* \" and \\ shown as the character; \uXXXX as is */
			if (*p == '\\' && p[1] != '\0' && p[1] != 'u')
				p++;
			buf[n++] = *p;
		}
	} else if (strncmp(p, "null", 4) != 0)
		while (*p && *p != ',' && *p != '}' && n + 1 < len)
			buf[n++] = *p++;
	buf[n] = '\0';
	return buf;
}

/* One line of the text view: when, what, status, revision, who. */
static void
audit_show(const char *line)
{
	static const char *extra[][2] = { { "actor", "by " },
	    { "sudo_user", "sudo from " }, { "ssh_client", "ssh " },
	    { "github_run_id", "github run " }, { "ci_job_url", "gitlab " },
	    { "circle_build_url", "circleci " }, { "tty", "on " },
	    { "signer", "signed by " }, { "refused", "REFUSED: " },
	    { "detail", "" } };
	char v[5][80], x[1100], port[16];
	size_t i;

	printf("%s  %-8s  %3s  %-12.12s  %s(%s)",
	    *audit_get(line, "time", v[0], sizeof(v[0])) ? v[0] : "?",
	    audit_get(line, "event", v[1], sizeof(v[1])),
	    audit_get(line, "status", v[2], sizeof(v[2])),
	    *audit_get(line, "revision", v[3], sizeof(v[3])) ? v[3] : "-",
	    audit_get(line, "user", x, sizeof(x)),
	    audit_get(line, "uid", v[4], sizeof(v[4])));
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		if (*audit_get(line, extra[i][0], x, sizeof(x)) == '\0' ||
		    (i == 0 && strcmp(x, audit_get(line, "user", v[0],
		    sizeof(v[0]))) == 0))
			continue;
		printf("  %s%s", extra[i][1], printable(x));
		if (i == 2 && *audit_get(line, "ssh_port", port, sizeof(port)))
			printf(":%s", printable(port));
	}
	putchar('\n');
}

/* Each line must start with the hash of the one before; 0 when all do. */
static int
audit_check(const char *buf, size_t len)
{
	char prev[65] = AUDIT_ZERO, before[65] = "", head[128], *h;
	const char *p = buf, *e = buf + len, *nl;
	size_t n, lineno = 0, hl;

	for (; p < e; p = nl + 1) {
		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(e - p))) == NULL)
			die(EXIT_FAILED, "%s/%s/audit line %zu: not ended by a "
			    "newline (a write cut short?)", root, STATE, lineno);
		/* cppcheck-suppress nullPointerArithmeticRedundantCheck */
		n = (size_t)(nl - p);
		if (n < 77 || strncmp(p, "{\"prev\": \"", 10) != 0 ||
		    p[74] != '"' || p[n - 1] != '}')
			die(EXIT_FAILED, "%s/%s/audit line %zu: not an audit "
			    "record", root, STATE, lineno);
		if (memcmp(p + 10, prev, 64) != 0) {
			if (lineno == 1)
				die(EXIT_FAILED, "%s/%s/audit line 1: does not "
				    "start the trail: a line before it was "
				    "removed, or it was changed", root, STATE);
			die(EXIT_FAILED, "%s/%s/audit line %zu: does not follow "
			    "line %zu: line %zu was changed or removed, or this "
			    "one was changed", root, STATE, lineno, lineno - 1,
			    lineno - 1);
		}
		memcpy(before, prev, sizeof(prev));
		sha256_hex(p, n, prev);
	}
	/* the last line has no next one: audit-head stands for it (or for
	 * the line before, when a crash came between the two writes) */
	h = read_file_at(statefd, "audit-head", 100, &hl, NULL);
	if (h != NULL)
		snprintf(head, sizeof(head), "%.64s", h);
	free(h);
	if (h == NULL && lineno > 0)
		die(EXIT_FAILED, "%s/%s/audit-head: %s", root, STATE,
		    strerror(errno));
	if (h != NULL && strcmp(head, prev) != 0 && strcmp(head, before) != 0)
		die(EXIT_FAILED, "%s/%s/audit line %zu (the last): does not "
		    "match audit-head: it was changed, or lines after it were "
		    "removed", root, STATE, lineno);
	say("%s/%s/audit: %zu lines, each follows the one before", root,
	    STATE, lineno);
	return EXIT_OK;
}

/* audit [--json] [-n N] | audit --verify */
static int
cmd_audit(const char *arg)
{
	const char *p, *nl, *e, **start = NULL;
	long want = LONG_MAX;
	size_t len = 0, nstart = 0, i;
	char *buf, *line = NULL;

	if (arg != NULL && (!nflag || parse_long(arg, 1, LONG_MAX, &want) == -1))
		die(EXIT_USAGE, "usage: deploy audit [--json] [-n N] | deploy "
		    "audit --verify");
	if (nflag && arg == NULL)
		die(EXIT_USAGE, "audit -n N: give how many lines");
	need_deploy_root();
	if (statefd == -1 || (buf = read_file_at(statefd, "audit", (size_t)1 <<
	    30, &len, NULL)) == NULL) {
		if (statefd != -1 && errno != ENOENT)
			die(EXIT_FAILED, "%s/%s/audit: %s", root, STATE,
			    strerror(errno));
		buf = xstrdup("");
	}
	if (verifyflag)
		return audit_check(buf, len);
	e = buf + len;
	for (p = buf; p < e; p = nl + 1) {
		start = xrealloc(start, (nstart + 1) * sizeof(*start));
		start[nstart++] = p;
		if ((nl = memchr(p, '\n', (size_t)(e - p))) == NULL)
			break;
	}
	for (i = nstart > (size_t)want ? nstart - (size_t)want : 0;
	    i < nstart; i++) {
		p = start[i];
		if ((nl = memchr(p, '\n', (size_t)(e - p))) == NULL)
			nl = e;
		line = xrealloc(line, (size_t)(nl - p) + 1);
		memcpy(line, p, (size_t)(nl - p));
		line[nl - p] = '\0';
		if (jflag)
			printf("%s\n", line);
		else
			audit_show(line);
	}
	free(start);
	free(line);
	free(buf);
	return EXIT_OK;
}

#ifndef VERSION
#define VERSION "unknown"
#endif

static void
usage(int status)
{
	fputs("usage: deploy [-C root] [-c config] [-k keep] [-w seconds] "
	    "[-nMqvV] [--json] [command [args]]\n"
	    "commands: init URL [BRANCH] | deploy [REF] | prepare [REF] | "
	    "activate REV\n"
	    "          rollback [REV] | migrate REV | list | status | log [REV] "
	    "| prune\n"
	    "          pause [REASON] | resume | help\n"
	    "          audit [--json] [-n N] | audit --verify\n",
	    status ? stderr : stdout);
	leave(status);
}

/* -C, else $DEPLOY_ROOT, else the parent of the shared/ we were run from */
static void
find_root(const char *copt, const char *argv0)
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

static void
parse_opts(int argc, char *argv[], const char **copt, const char **conf)
{
	int ch;

	opterr = 0;
	while ((ch = getopt(argc, argv, "+:C:c:k:w:nqvhMV")) != -1) {
		switch (ch) {
		case 'C':
			*copt = optarg;
			break;
		case 'c':
			*conf = optarg;
			break;
		case 'k':
			if (parse_long(optarg, 2, 10000, &kflag) == -1)
				die(EXIT_USAGE, "-k %s: keep is a number from 2 "
				    "to 10000", optarg);
			break;
		case 'w':
			if (parse_long(optarg, 0, 86400, &wflag) == -1)
				die(EXIT_USAGE, "-w %s: seconds from 0 to 86400",
				    optarg);
			break;
		case 'n':
			nflag = 1;
			break;
		case 'q':
			qflag = 1;
			vflag = 0;
			break;
		case 'v':
			vflag = 1;
			qflag = 0;
			break;
		case 'h':
			usage(0);
			break;
		case 'M':
			Mflag = 1;
			break;
		case 'V':
			printf("deploy %s\n", VERSION);
			leave(EXIT_OK);
		case ':':
			warnx("option -%c needs an argument", optopt);
			usage(EXIT_USAGE);
			break;
		default:
			warnx("unknown option '%s'", printable(optind < argc &&
			    argv[optind][0] == '-' && strchr(argv[optind], optopt) ?
			    argv[optind] : argv[optind - 1]));
			usage(EXIT_USAGE);
		}
	}
}

/*
 * The words after the command (argv[0]), options first: a word starting
 * with '-' is an option (with the word after it when it ends in -C, -c,
 * -k or -w), until "--". The other words follow a "--", in their order,
 * so that getopt stops there and takes none of them for an option.
 * Returns the new argc; *argvp is the new argv.
 */
static int
after_command(int argc, char ***argvp)
{
	static char dashes[] = "--", **v;
	char **argv = *argvp, **pos;
	int i, n = 0, np = 0, end = 0;
	const char *p;

	v = xrealloc(NULL, ((size_t)argc + 2) * sizeof(*v));
	pos = xrealloc(NULL, (size_t)argc * sizeof(*pos));
	v[n++] = argv[0];
	for (i = 1; i < argc; i++) {
		if (end || argv[i][0] != '-' || argv[i][1] == '\0') {
			pos[np++] = argv[i];
			continue;
		}
		if (strcmp(argv[i], "--") == 0) {
			end = 1;
			continue;
		}
		v[n++] = argv[i];
		for (p = argv[i] + 1; *p; p++) {
			if (strchr("Cckw", *p) == NULL)
				continue;
			if (p[1] != '\0')
				break;
			if (i + 1 == argc) {
				warnx("option -%c needs an argument", *p);
				usage(EXIT_USAGE);
			}
			v[n++] = argv[++i];
			break;
		}
	}
	v[n++] = dashes;
	for (i = 0; i < np; i++)
		v[n++] = pos[i];
	v[n] = NULL;
	free(pos);
	*argvp = v;
	return n;
}

/*
 * The long options, anywhere before "--": --json, --version, --help.
 * They are taken out of argv; getopt sees the rest.
 */
static int
long_opts(int argc, char **argv)
{
	int i, n = 1;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				argv[n++] = argv[i++];
			break;
		}
		if (strcmp(argv[i], "--json") == 0)
			jflag = 1;
		else if (strcmp(argv[i], "--verify") == 0)
			verifyflag = 1;
		else if (strcmp(argv[i], "--version") == 0) {
			printf("deploy %s\n", VERSION);
			leave(EXIT_OK);
		} else if (strcmp(argv[i], "--help") == 0)
			usage(0);
		else
			argv[n++] = argv[i];
	}
	argv[n] = NULL;
	return n;
}

enum { A_NONE, A_REF, A_REV };

static const struct command {
	const char	*name;
	const char	*synopsis;
	int		 maxargs;	/* words after the command */
	int		 minargs;
	int		 arg;		/* what they are */
	int		 conf;		/* reads deploy.conf */
} commands[] = {
	{ "init", "init URL [BRANCH]", 2, 1, A_NONE, 0 },
	{ "deploy", "deploy [REF]", 1, 0, A_REF, 1 },
	{ "prepare", "prepare [REF]", 1, 0, A_REF, 1 },
	{ "activate", "activate REV", 1, 1, A_REV, 1 },
	{ "rollback", "rollback [REV]", 1, 0, A_REV, 1 },
	{ "migrate", "migrate REV", 1, 1, A_REV, 1 },
	{ "list", "list", 0, 0, A_NONE, 0 },
	{ "status", "status", 0, 0, A_NONE, 0 },
	{ "log", "log [REV]", 1, 0, A_REV, 0 },
	{ "prune", "prune", 0, 0, A_NONE, 1 },
	{ "audit", "audit [--json] [-n N] | audit --verify", 1, 0, A_NONE, 0 },
	{ "pause", "pause [REASON]", 64, 0, A_NONE, 0 },
	{ "resume", "resume", 0, 0, A_NONE, 1 },
	{ "help", "help", 0, 0, A_NONE, 0 },
};

/*
 * Every argument checked before the root is opened and the lock taken:
 * a usage error waits for no other run and cleans up after none.
 */
static const struct command *
check_args(const char *cmd, int argc, char *argv[])
{
	const struct command *c;
	size_t i;

	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, cmd) == 0)
			break;
	if (i == sizeof(commands) / sizeof(commands[0])) {
		warnx("unknown command '%s'", printable(cmd));
		usage(EXIT_USAGE);
	}
	c = &commands[i];
	if (c->arg == A_NONE && c->conf == 0 && strcmp(cmd, "init") == 0)
		return c;	/* init checks its own */
	if (argc - 1 > c->maxargs || argc - 1 < c->minargs ||
	    (verifyflag && strcmp(cmd, "audit") != 0) ||
	    (verifyflag && (argc > 1 || jflag || nflag)))
		die(EXIT_USAGE, "usage: deploy %s", c->synopsis);
	if (argc == 2 && c->arg == A_REF && !ref_ok(argv[1]))
		die(EXIT_USAGE, "ref '%s': not a usable ref (empty, starts "
		    "with '-', or holds spaces or control characters)",
		    printable(argv[1]));
	if (argc == 2 && c->arg == A_REV && rev_match(NULL, 0, argv[1]) == -3)
		die(EXIT_USAGE, "REV '%s': give a full sha or a prefix of at "
		    "least 7 hex digits", printable(argv[1]));
	return c;
}

static int
run_command(const char *cmd, int argc, char *argv[])
{
	const char *arg = argc == 2 ? argv[1] : NULL;

	if (strcmp(cmd, "list") == 0)
		return cmd_list();
	if (strcmp(cmd, "status") == 0)
		return cmd_status();
	if (strcmp(cmd, "log") == 0)
		return cmd_log(arg);
	if (strcmp(cmd, "deploy") == 0 || strcmp(cmd, "prepare") == 0)
		return cmd_deploy(arg, strcmp(cmd, "prepare") == 0);
	if (strcmp(cmd, "activate") == 0)
		return cmd_activate(arg, 0);
	if (strcmp(cmd, "rollback") == 0)
		return cmd_activate(arg, 1);
	if (strcmp(cmd, "migrate") == 0)
		return cmd_migrate(arg);
	if (strcmp(cmd, "audit") == 0)
		return cmd_audit(arg);
	if (strcmp(cmd, "pause") == 0)
		return cmd_pause(argc, argv);
	if (strcmp(cmd, "resume") == 0)
		return cmd_resume();
	return cmd_prune();
}

int
main(int argc, char *argv[])
{
	const char *copt = NULL, *conf = NULL, *cmd;
	const struct command *c;
	char *prog = argv[0], *cpath;
	int st, ended;

	msg_on_leave(finish);
	audit_t0 = now();
	argc = long_opts(argc, argv);
	parse_opts(argc, argv, &copt, &conf);
	ended = optind > 1 && strcmp(argv[optind - 1], "--") == 0;
	argc -= optind;
	argv += optind;
	if (argc == 0) {	/* no command: deploy */
		static char dflt[] = "deploy", *dargv[] = { dflt, NULL };

		argc = 1;
		argv = dargv;
	}
	cmd = argv[0];
	if (argc > 1 && !ended) {
		/* options may follow the command too, as in "deploy prune
		 * -k 2" or "deploy rollback -n"; "--", before the command or
		 * after it, ends them */
		argc = after_command(argc, &argv);
		optind = 1;
		parse_opts(argc, argv, &copt, &conf);
		argv[optind - 1] = argv[0];
		argc -= optind - 1;
		argv += optind - 1;
	}
	cmdname = cmd;
	confopt = conf;
	c = check_args(cmd, argc, argv);
	if (strcmp(cmd, "help") == 0)
		usage(0);
	signals();
	find_root(copt, prog);
	if (strcmp(cmd, "init") == 0)
		return cmd_init(argc, argv);
	open_root(0);
	if (c->conf) {
		cpath = conf ? xstrdup(conf) : fmtpath("%s/shared/deploy.conf",
		    root);
		load_config(cpath);
		free(cpath);
	}
	st = run_command(cmd, argc, argv);
	if (gotsig && st == EXIT_OK)
		st = 128 + gotsig;
	leave(st);
}
