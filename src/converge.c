/*
 * converge.c: converging: the program runs the release current names.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <stdio.h>
#include <string.h>

#include "converge.h"
#include "cmdline.h"
#include "config.h"
#include "core.h"
#include "msg.h"
#include "output.h"
#include "pause.h"
#include "releases.h"
#include "report.h"
#include "restart.h"
#include "root.h"
#include "sig.h"
#include "supervisor.h"
#include "switch.h"

/*
 * Every process of a group that is not running current, into what (left
 * as program_wrong() said when none is found): the restart starts each of
 * them, and the message names each.
 */
static void
wrong_members(char *what, size_t wl)
{
	static struct member m[MAXMEMBERS];
	static char rs[MAXMEMBERS][65];
	char buf[2048];
	size_t len = 0;
	int n, i, r;

	if ((n = program_members(m, rs, MAXMEMBERS)) <= 1)	/* one: as said */
		return;
	buf[0] = '\0';
	for (i = 0; i < n && len < sizeof(buf); i++, len += (size_t)r) {
		r = 0;
		if (strcmp(m[i].state, "RUNNING") != 0)
			r = snprintf(buf + len, sizeof(buf) - len, "%sprocess "
			    "%.255s was %s", len ? ", " : "", m[i].name,
			    m[i].state);
		else if (rs[i][0] && strcmp(rs[i], cursha) != 0)
			r = snprintf(buf + len, sizeof(buf) - len, "%sprocess "
			    "%.255s ran %.12s, not current", len ? ", " : "",
			    m[i].name, rs[i]);
		if (r < 0)
			break;
	}
	if (buf[0] != '\0')
		snprintf(what, wl, "%s", buf);
}

/*
 * by_hand: a person asked for this run (activate, resume), so a pause
 * does not hold it. *acted (may be NULL): 1 when it restarted the program.
 * EXIT_OK, EXIT_STUCK, or 128+N.
 */
int
converge(int by_hand, int *acted)
{
	char what[2048], again[400], who[600];
	int st;

	if (acted != NULL)
		*acted = 0;
	if (cfg.program == NULL || cursha[0] == '\0' || options->dry_run)
		return EXIT_OK;
	if ((st = program_wrong(what, sizeof(what))) == 0)
		return EXIT_OK;
	if (st == 1)
		wrong_members(what, sizeof(what));
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
	report_due();		/* a restart: notify and the audit hear of it */
	say("%s: restarting %.12s (current) and checking it", what, cursha);
	open_log(cursha, 0);
	sig_late(1);
	if (step_restart(cursha, 0) == 0 && (st = step_check(cursha)) != -1) {
		sig_late(0);
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
	sig_late(0);
	warnx("the current release %.12s does not run (%s); it passed its "
	    "check after its switch, so deploy does not switch away from it "
	    "on its own: find the cause (its output is below), then 'deploy "
	    "rollback' if the release is at fault", cursha, what);
	show_program_output();
	return EXIT_STUCK;
}
