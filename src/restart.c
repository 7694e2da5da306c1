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

char failed_member[256];	/* the process or program whose restart failed */
char restart_why[SV_WHYLEN];	/* why the last restart step failed */

/* what the restart confirmed: each process (name, pid, start time), or
 * a program's fingerprint (whole[i]: pid is that of program_state); read
 * again after the check, so that one that died meanwhile is not
 * reported deployed */
static struct member confirmed[MAXMEMBERS];
static char whole[MAXMEMBERS];
static int nconfirmed;

static void
confirm(const char *name, int fingerprint, const struct member *m)
{
	if (nconfirmed == MAXMEMBERS)
		return;
	confirmed[nconfirmed] = *m;
	whole[nconfirmed] = (char)fingerprint;
	snprintf(confirmed[nconfirmed].name, sizeof(confirmed[0].name), "%s",
	    name);
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

/* one look at the restarted program name (fingerprint: all its
 * processes, as program_state) or process name: its state, pid and start
 * time as supervisord has them (for a program, a fingerprint of its pids
 * and start times) into m, and a line in the log */
static void
look(const char *name, int fingerprint, struct member *m)
{
	char pids[512];

	m->start = 0;
	if (fingerprint)
		program_state(name, m->state, sizeof(m->state), &m->pid, pids,
		    sizeof(pids));
	else {
		if (group_members(name, m, 1) != 1) {
			snprintf(m->state, sizeof(m->state), "UNKNOWN");
			m->pid = 0;
		}
		snprintf(pids, sizeof(pids), "pid %ld", m->pid);
	}
	logf_("%s is %s (%s)\n", name, m->state, pids);
}

/* waits until the program or process name is RUNNING with the same pid
 * and the same start time (supervisord's) SETTLE seconds later; why says
 * what went wrong, its time counted from from */
static int
wait_running(const char *name, int fingerprint, double from, char *why,
    size_t wl)
{
	struct member m;
	double end, settled = 0;
	long firstpid = -1, firststart = -1;
	int extended = 0;

	memset(&m, 0, sizeof(m));
	end = now() + (cfg.check_timeout > 10 ? cfg.check_timeout : 10);
	for (;;) {
		look(name, fingerprint, &m);
		if (strcmp(m.state, "RUNNING") == 0) {
			if (m.pid != firstpid || m.start != firststart) {
				firstpid = m.pid;
				firststart = m.start;
				settled = now() + SETTLE;
			} else if (now() >= settled) {
				confirm(name, fingerprint, &m);
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

/* restarts one process (or program: fingerprint) into sha (back: on a
 * switch back) and waits until it stays up; why says what went wrong */
static int
restart_one(const char *name, int fingerprint, const char *sha, int back,
    char *why, size_t wl)
{
	logf_("restarting %s\n", name);
	if (snprintf(failed_member, sizeof(failed_member), "%s", name) < 0)
		failed_member[0] = '\0';
	if (sv_restart(name, sha, back, why, wl) == -1)
		return -1;
	/* this process's own time, not the step's */
	if (wait_running(name, fingerprint, now(), why, wl) == -1)
		return -1;
	failed_member[0] = '\0';
	return 0;
}

/* a group: the processes that are down first (on a switch back, the one
 * that failed comes up on the old release before the one still serving
 * is touched), then the running ones; the first failure ends the roll */
static int
restart_rolling(const char *entry, const char *sha, int back, char *why,
    size_t wl)
{
	static struct member m[MAXMEMBERS];
	int n, i, pass;

	if ((n = group_members(entry, m, MAXMEMBERS)) <= 0) {
		if (n == 0)
			snprintf(why, wl, "supervisord names no process of %s",
			    entry);
		else
			snprintf(why, wl, "supervisord names %s", members_why);
		return -1;
	}
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < n; i++) {
			if ((strcmp(m[i].state, "RUNNING") == 0) != pass)
				continue;
			if (restart_one(m[i].name, 0, sha, back, why, wl) == -1)
				return -1;
		}
	return 0;
}

/* every entry of program, in its order: a group rolled, a program
 * stopped (as its stopwaitsecs allows) and started; the first failure
 * ends the restart, failed_member naming it */
static int
restart_programs(const char *sha, int back, char *why, size_t wl)
{
	char entry[256];
	int i;

	for (i = 0; program_entry(i, entry, sizeof(entry)) == 0; i++) {
		if (is_group(entry) ? restart_rolling(entry, sha, back, why,
		    wl) : restart_one(entry, 1, sha, back, why, wl))
			return -1;
	}
	return 0;
}

/* 6. restart, then wait until supervisord says it runs and stays up;
 * back: a switch back, onto sha, from a release that failed */
int
step_restart(const char *sha, int back)
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
	} else
		bad = restart_programs(sha, back, why, sizeof(why)) == -1;
	free(rdir);
	if (bad) {
		snprintf(restart_why, sizeof(restart_why), "%s", why);
		step_fail("restart", why, 1);
		return -1;
	}
	step_ok("restart");
	return 0;
}

/* a confirmed process (or program) name that is no longer up: the one
 * the failure is about, for the output shown, notify and the audit */
static int
gone(const char *name, const char *why)
{
	snprintf(failed_member, sizeof(failed_member), "%.255s", name);
	snprintf(restart_why, sizeof(restart_why), "%s", why);
	return -1;
}

/* after the check: every process the restart confirmed still RUNNING
 * with the pid (and start time) it was confirmed with; 0, or -1 and why */
static int
still_confirmed(char *why, size_t wl)
{
	static struct member m[MAXMEMBERS];
	struct member p;
	char pids[512];
	int i, k, n = 0;

	if (nconfirmed > 0 && (n = group_members(cfg.program, m,
	    MAXMEMBERS)) < 0) {
		snprintf(why, wl, "%s", members_why);
		return -1;
	}
	for (i = 0; i < nconfirmed; i++) {
		const struct member *c = &confirmed[i];

		if (whole[i]) {
			program_state(c->name, p.state, sizeof(p.state), &p.pid,
			    pids, sizeof(pids));
			if (strcmp(p.state, "RUNNING") == 0 && p.pid == c->pid)
				continue;
			snprintf(why, wl, "program %.255s restarted or stopped "
			    "after it was confirmed RUNNING (now %s, %s)",
			    c->name, p.state, pids);
			return gone(c->name, why);
		}
		for (k = 0; k < n && strcmp(m[k].name, c->name) != 0; k++)
			;
		if (k < n && strcmp(m[k].state, "RUNNING") == 0 &&
		    m[k].pid == c->pid && m[k].start == c->start)
			continue;
		snprintf(why, wl, "process %.255s died after it was confirmed "
		    "RUNNING with pid %ld (now %s, pid %ld)", c->name, c->pid,
		    k < n ? m[k].state : "gone", k < n ? m[k].pid : 0L);
		return gone(c->name, why);
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
