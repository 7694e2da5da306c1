/*
 * switch.c: finishing a switch: one state machine over .deploy/pending.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "switch.h"
#include "build.h"
#include "child.h"
#include "cmdline.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "history.h"
#include "msg.h"
#include "order.h"
#include "output.h"
#include "prune.h"
#include "releases.h"
#include "report.h"
#include "restart.h"
#include "root.h"
#include "sig.h"
#include "supervisor.h"
#include "xmlrpc.h"

const char *pnames[] = { "none", "switched", "restarted", "checked",
    "back" };

/*
 * Moves the machine to p->state and writes it down; done removes it.
 * -1 when it could not be written (said so).
 */
static int
pending_set(struct pending *p, int state)
{
	char buf[200];
	int n, was = p->state;

	p->state = state;
	if (state == P_NONE) {
		if (unlinkat(statefd, "pending", 0) == -1 && errno != ENOENT)
			warnx("%s/%s/pending: %s", root, STATE, strerror(errno));
		/* done after back, durable: lost to a power cut, the next run
		 * would switch back again (restart, exit 4, notify again) */
		else if (was == P_BACK && fsync(statefd) == -1)
			warnx("%s/%s: fsync: %s", root, STATE, strerror(errno));
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
void
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

int
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
void
show_program_output(void)
{
	const char *chan[] = { "stderr", "stdout" };
	static struct member m[MAXMEMBERS];
	char name[256], method[64];
	struct svans a;
	size_t i;
	int n, k;

	if (cfg.program == NULL)
		return;
	snprintf(name, sizeof(name), "%s", cfg.program);
	if (failed_member[0] != '\0')
		snprintf(name, sizeof(name), "%s", failed_member);
	else if (strpbrk(cfg.program, ": \t") != NULL) {
		n = group_members(cfg.program, m, MAXMEMBERS);
		for (k = 0; k < n && strcmp(m[k].state, "RUNNING") == 0; k++)
			;
		if (n <= 0) {
			warnx("the output of each process: supervisorctl tail "
			    "GROUP:PROCESS stderr");
			return;
		}
		memcpy(name, m[k < n ? k : 0].name, sizeof(name));
	}
	for (i = 0; i < 2; i++) {
		/* [bytes, offset, overflow]: the last 1600 bytes */
		snprintf(method, sizeof(method), "supervisor.tailProcess%sLog",
		    i ? "Stdout" : "Stderr");
		tail_keep(0);
		if (sv_call(SV_LOOK, &a, method, "sii", name, 0, 1600) == 0 &&
		    a.v[0].type == RPC_ARRAY && a.v[0].kid != -1) {
			const char *t = a.v[a.v[0].kid].s;

			tail_add(t, strlen(t));
		}
		sv_free(&a);
		if (tail_has_text()) {
			warnx("the end of program %s's output (supervisorctl "
			    "tail %s %s):", name, name, chan[i]);
			tail_show(10);
			return;
		}
	}
	if (spawnerr)
		warnx("program %s has no output: it never started, because %s",
		    name, spawn_why());
	else
		warnx("program %s's own output (supervisorctl tail %s stderr) "
		    "is empty", name, name);
}

/* for the audit and notify: which program failed its restart, and why */
static void
failed_detail(void)
{
	static char d[sizeof(failed_member) + 600];

	if (cfg.program == NULL)
		return;
	snprintf(d, sizeof(d), "program %s failed: %.500s", failed_member[0] ?
	    failed_member : cfg.program, restart_why);
	report_detail(d);
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
	if (step_restart(p->prev, 1) == -1) {
		warnx("switched back to %s, but it does not run either: look "
		    "at program %s now", p->prev, cfg.program ? cfg.program :
		    "(restart)");
		return EXIT_STUCK;
	}
	return EXIT_SWITCHED_BACK;
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
 * before current moves, and done after back is (else the next run would
 * switch back again); the other states are not (a lost one only makes
 * the next run restart and check again). 0098c49's "SHA PREV" enters the
 * machine as switched. While paused, only a command run by hand
 * (activate, rollback, resume) drives it; others stop with exit 3. After
 * done, a run that switched nothing itself converges (see below): that is
 * outside the machine, and never switches.
 */

/* Runs the machine from p->state to done, or to a signal. */
static int
finish_switch(struct pending *p)
{
	int st = EXIT_OK, retry;

	sig_late(1);
	while (p->state != P_NONE) {
		/* a signal stops it between states; what is left of "checked"
		 * and "back" is finished first */
		if (gotsig && p->state != P_BACK && p->state != P_CHECKED)
			return 128 + gotsig;	/* pending kept */
		switch (p->state) {
		case P_SWITCHED:
			if (step_restart(p->sha, 0) == 0)
				pending_set(p, P_RESTARTED);
			else {
				failed_detail();
				pending_set(p, P_BACK);
				show_program_output();
			}
			break;
		case P_RESTARTED:
			st = step_check(p->sha);
			if (st == -1) {
				if (failed_member[0] != '\0')
					failed_detail();	/* one died */
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
			history_add(EV_LIVE, p->sha);	/* it ran: rollback's */
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
	sig_late(0);
	return st;
}

/* What a killed run left switched but unfinished, finished first. */
int
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
	report_due();
	st = finish_switch(&p);
	if (st == EXIT_OK && strcmp(cursha, p.sha) == 0)
		previous_was(p.prev);	/* 0098c49's record named none */
	if (st != EXIT_OK) {
		/* the run ends here: notify names the release that failed,
		 * its log, and the one switched back to (now current) */
		report_rev(p.sha);
		report_prev(p.prev);
	}
	return st;
}

/*
 * migrate (when asked), switch current to a complete release, then
 * restart, check and prune (when asked) through the machine; prev ""
 * means nothing to go back to
 */
int
activate_release(const char *sha, const char *prev, int prune, int migrate)
{
	struct pending p;
	int st;

	report_due();
	memset(&p, 0, sizeof(p));
	copy_sha(p.sha, sha);
	copy_sha(p.prev, prev);
	p.prune = prune;
	open_log(sha, 0);
	if (migrate && (st = step_migrate(sha, options->no_migrate)) != EXIT_OK) {
		if (st == EXIT_FAILED)	/* never live: rollback skips it */
			history_add(EV_UNMIGRATED, sha);
		return st;
	}
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
		sig_late(1);	/* switched: the ok line's look at the reader
				 * must not stop what follows (finish_switch) */
		step_ok("switch");
	} else
		pending_set(&p, P_SWITCHED);
	return finish_switch(&p);
}
