/*
 * deploy.c: the rest of the program, on its way to files of its own.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE		/* d_type, so a tree walk needs no stat per entry */

#include <sys/stat.h>
#include <ctype.h>
#include <dirent.h>
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
#include "releases.h"
#include "rmtree.h"
#include "supervisor.h"
#include "venvs.h"
#include "preflight.h"
#include "build.h"
#include "fetch.h"
#include "verify.h"

#define SETTLE	1			/* seconds a restarted program must stay up */

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

static int finish_pending(void);
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
