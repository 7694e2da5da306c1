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
#include "xmlrpc.h"

#define SETTLE	1			/* seconds a restarted program must stay up */

char failed_member[256];	/* the group member whose restart failed */

/* what the restart confirmed: each process of a group (name, pid, start
 * time), or the program's fingerprint (name ""); read again after the
 * check, so that one that died meanwhile is not reported deployed */
static struct member confirmed[MAXMEMBERS];
static int nconfirmed;

static void
confirm(const char *member, const struct member *m)
{
	if (nconfirmed == MAXMEMBERS)
		return;
	confirmed[nconfirmed] = *m;
	snprintf(confirmed[nconfirmed].name, sizeof(confirmed[0].name), "%s",
	    member ? member : "");
	nconfirmed++;
}

/* sleeps until the next look at a restarted program: 200 ms while it
 * starts; once it is RUNNING, until its settle second is over */
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
 * member: its state, pid and start time as supervisord has them (for the
 * program, a fingerprint of its pids and start times) into m, and a line
 * in the log */
static void
look(const char *member, struct member *m)
{
	char pids[512];

	m->start = 0;
	if (member == NULL)
		program_state(m->state, sizeof(m->state), &m->pid, pids,
		    sizeof(pids));
	else {
		if (group_members(member, m, 1) != 1) {
			snprintf(m->state, sizeof(m->state), "UNKNOWN");
			m->pid = 0;
		}
		snprintf(pids, sizeof(pids), "pid %ld", m->pid);
	}
	logf_("%s is %s (%s)\n", member ? member : cfg.program, m->state, pids);
}

/* waits until the program (or one member) is RUNNING with the same pid
 * and the same start time (supervisord's) SETTLE seconds later; why says
 * what went wrong, its time counted from from */
static int
wait_running(const char *member, double from, char *why, size_t wl)
{
	const char *name = member ? member : cfg.program;
	struct member m;
	double end, settled = 0;
	long firstpid = -1, firststart = -1;
	int extended = 0;

	memset(&m, 0, sizeof(m));
	end = now() + (cfg.check_timeout > 10 ? cfg.check_timeout : 10);
	for (;;) {
		look(member, &m);
		if (strcmp(m.state, "RUNNING") == 0) {
			if (m.pid != firstpid || m.start != firststart) {
				firstpid = m.pid;
				firststart = m.start;
				settled = now() + SETTLE;
			} else if (now() >= settled) {
				confirm(member, &m);
				return 0;
			}
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
			/* first seen RUNNING late (a slow supervisord on a
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
restart_one(const char *name, char *why, size_t wl)
{
	logf_("restarting %s\n", name);
	if (snprintf(failed_member, sizeof(failed_member), "%s", name) < 0)
		failed_member[0] = '\0';
	if (sv_restart(name, why, wl) == -1)
		return -1;
	/* this process's own time, not the step's */
	if (wait_running(name, now(), why, wl) == -1)
		return -1;
	failed_member[0] = '\0';
	return 0;
}

/* the restart step for a group: the processes that are down first (on a
 * switch back, the one that failed comes up on the old release before
 * the one still serving is touched), then the running ones; the first
 * failure ends the roll */
static int
restart_rolling(void)
{
	static struct member m[MAXMEMBERS];
	char why[SV_WHYLEN];
	int n, i, pass;

	if ((n = group_members(cfg.program, m, MAXMEMBERS)) <= 0) {
		snprintf(why, sizeof(why), "supervisord names %s", n == 0 ?
		    "no process of it" : members_why);
		step_fail("restart", why, 1);
		return -1;
	}
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < n; i++) {
			if ((strcmp(m[i].state, "RUNNING") == 0) != pass)
				continue;
			if (restart_one(m[i].name, why, sizeof(why)) == -1) {
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
	char why[SV_WHYLEN];
	struct result r;
	int bad = 0;

	if (cfg.program == NULL && cfg.restart == NULL) {
		step_skip("restart", "no program or restart command");
		free(rdir);
		return 0;
	}
	step_begin("restart");
	spawn_forget();
	failed_member[0] = '\0';
	nconfirmed = 0;
	if (cfg.restart != NULL) {
		argv = words(cfg.restart);
		o.keepgroup = 1;	/* it may start a daemon */
		if ((bad = run(argv, &o, &r) == -1))
			snprintf(why, sizeof(why), "%s", why_failed(&r, argv[0],
			    o.timeout));
		free_words(argv);
	} else if (!is_group()) {
		logf_("restarting %s\n", cfg.program);
		bad = sv_restart(cfg.program, why, sizeof(why)) == -1;
	}
	free(rdir);
	if (!bad && is_group())
		return restart_rolling();
	if (!bad && cfg.program != NULL)
		bad = wait_running(NULL, stepstart, why, sizeof(why)) == -1;
	if (bad) {
		step_fail("restart", why, 1);
		return -1;
	}
	step_ok("restart");
	return 0;
}

/* after the check: every process the restart confirmed still RUNNING
 * with the pid (and start time) it was confirmed with; 0, or -1 and why */
static int
still_confirmed(char *why, size_t wl)
{
	static struct member m[MAXMEMBERS];
	char pids[512];
	int i, k, n = 0;

	if (nconfirmed > 0 && confirmed[0].name[0] == '\0') {
		program_state(m[0].state, sizeof(m[0].state), &m[0].pid, pids,
		    sizeof(pids));
		if (strcmp(m[0].state, "RUNNING") == 0 &&
		    m[0].pid == confirmed[0].pid)
			return 0;
		snprintf(why, wl, "program %s restarted or stopped after it was "
		    "confirmed RUNNING (now %s, %s)", cfg.program, m[0].state,
		    pids);
		return -1;
	}
	if (nconfirmed > 0 && (n = group_members(cfg.program, m,
	    MAXMEMBERS)) < 0) {
		snprintf(why, wl, "%s", members_why);
		return -1;
	}
	for (i = 0; i < nconfirmed; i++) {
		for (k = 0; k < n && strcmp(m[k].name, confirmed[i].name); k++)
			;
		if (k < n && strcmp(m[k].state, "RUNNING") == 0 &&
		    m[k].pid == confirmed[i].pid && m[k].start ==
		    confirmed[i].start)
			continue;
		snprintf(why, wl, "process %.255s died after it was confirmed "
		    "RUNNING with pid %ld (now %s, pid %ld)", confirmed[i].name,
		    confirmed[i].pid, k < n ? m[k].state : "gone", k < n ?
		    m[k].pid : 0L);
		return -1;
	}
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
	char gone[SV_WHYLEN];

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
	if (ok == 0 && still_confirmed(gone, sizeof(gone)) == -1) {
		step_fail("check", gone, 0);
		ok = -1;
	} else if (ok == 0)
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
