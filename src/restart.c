/*
 * restart.c: restarting the program and checking it.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "restart.h"
#include "child.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "output.h"
#include "root.h"
#include "sig.h"
#include "supervisor.h"

#define SETTLE	1			/* seconds a restarted program must stay up */

char failed_member[256];	/* the group member whose restart failed */

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

/* one look at the restarted program, or at the member of its group named
 * member: its state and pid (for the program, a fingerprint of its pids)
 * into m, and a line in the log */
static void
look(const char *rdir, const char *sha, const char *member, struct member *m)
{
	char pids[512];

	if (member == NULL)
		program_state(rdir, sha, m->state, sizeof(m->state), &m->pid,
		    pids, sizeof(pids));
	else {
		if (group_members(sha, member, m, 1) != 1) {
			snprintf(m->state, sizeof(m->state), "UNKNOWN");
			m->pid = 0;
		}
		snprintf(pids, sizeof(pids), "pid %ld", m->pid);
	}
	logf_("%s is %s (%s)\n", member ? member : cfg.program, m->state, pids);
}

/* waits until the program (or one member) is RUNNING with the same pid
 * for SETTLE seconds; why says what went wrong, its time counted from
 * from */
static int
wait_running(const char *rdir, const char *sha, const char *member,
    double from, char *why, size_t wl)
{
	const char *name = member ? member : cfg.program;
	struct member m;
	double end, settled = 0;
	long firstpid = -1;
	int extended = 0;

	memset(&m, 0, sizeof(m));
	end = now() + (cfg.check_timeout > 10 ? cfg.check_timeout : 10);
	for (;;) {
		look(rdir, sha, member, &m);
		if (strcmp(m.state, "RUNNING") == 0) {
			if (m.pid != firstpid) {
				firstpid = m.pid;
				settled = now() + SETTLE;
			} else if (now() >= settled)
				return 0;
		} else if (strcmp(m.state, "STARTING") != 0) {
			snprintf(why, wl, "%s is %s, not RUNNING%s%s", name,
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
			/* first seen RUNNING late (a slow supervisorctl on a
			 * loaded host): one more settle to confirm it */
			extended = 1;
			end = settled + 1;
		}
		if (now() >= end) {
			snprintf(why, wl, "%s is still %s after %lds", name,
			    m.state, (long)(end - from));
			return -1;
		}
		wait_next_look(m.state, settled);
	}
}

/* restarts one process of the group and waits until it stays up; why
 * says what went wrong */
static int
restart_one(const char *sha, const char *name, char *why, size_t wl)
{
	struct runopts o = opts("/", ENV_NONE, NULL, sha);
	char **argv = words_plus(cfg.supervisorctl, "restart", name,
	    (char *)NULL);
	struct result r;

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
	/* this process's own time, not the step's */
	if (wait_running(NULL, sha, name, now(), why, wl) == -1)
		return -1;
	failed_member[0] = '\0';
	return 0;
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
int
step_restart(const char *sha)
{
	char *rdir = fmtpath("%s/releases/%s", root, sha), **argv;
	struct runopts o = opts(rdir, ENV_RELEASE, rdir, sha);
	char why[1024];
	struct result r;

	if (cfg.program == NULL && cfg.restart == NULL) {
		step_skip("restart", "no program or restart command");
		free(rdir);
		return 0;
	}
	step_begin("restart");
	spawn_forget();
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
	if (wait_running(rdir, sha, NULL, stepstart, why, sizeof(why)) == -1) {
		step_fail("restart", why, 1);
		free(rdir);
		return -1;
	}
	step_ok("restart");
	free(rdir);
	return 0;
}

/* 7. check: again and again until it passes or check_timeout ends;
 * 0 passed, -1 failed, 1 interrupted by a signal */
int
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
