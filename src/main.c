/*
 * main.c: the command line, the command table and the runner.
 *
 * deploy: atomic deployments of a Python web app on a plain server.
 * A release folder per git commit, a virtualenv and pip install per
 * release, the app's tests run before anything changes, an atomic switch
 * of the current link, a supervisord restart, a switch back when the new
 * release won't run, old releases pruned. The rules it keeps live where
 * they are enforced: lock.c, releases.c, history.c, child.c.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "child.h"
#include "cleanup.h"
#include "cmd_activate.h"
#include "cmd_audit.h"
#include "cmd_deploy.h"
#include "cmd_init.h"
#include "cmd_list.h"
#include "cmd_log.h"
#include "cmd_pause.h"
#include "cmd_run.h"
#include "cmd_status.h"
#include "cmdline.h"
#include "config.h"
#include "converge.h"
#include "core.h"
#include "files.h"
#include "history.h"
#include "lock.h"
#include "msg.h"
#include "notify.h"
#include "order.h"
#include "pause.h"
#include "prune.h"
#include "releases.h"
#include "report.h"
#include "root.h"
#include "sig.h"

/*
 * Whether the way out still converges after a run that ended with status.
 * Not after a run that went well (the job converged, or switched and
 * restarted and checked), nor after a switch back (4: the restart of the
 * release switched back to was checked) or exit 5 (a person must look),
 * nor after a signal (the run was asked to stop). After everything else
 * (a fetch, a verify, a build, a migrate that failed, a die() anywhere
 * under the lock) current must run: issue 29.
 */
static int
converge_due(int status)
{
	/* a pending record on disk: a switch is half-way, and the next
	 * run's cleanup finishes it (switching back if it must); converging
	 * now would restart a release that was never checked */
	return status != EXIT_OK && status != EXIT_SWITCHED_BACK &&
	    status != EXIT_STUCK && status < 128 && !gotsig &&
	    (statefd == -1 || faccessat(statefd, "pending", F_OK, 0) == -1);
}

/* Every exit of the program: a command that CONVERGES and took the lock
 * makes sure the program runs current, whatever ended the run; then the
 * audit line, when a command that changes something took the lock, then
 * notify. */
static void
finish(int status)
{
	static int leaving = -1;
	int how;

	if (leaving != -1)	/* a die() inside notify: the first status holds */
		exit(leaving);
	/* asked once, so a die() inside converge ends here next time */
	how = report_take_converge();
	if (how != 0 && converge_due(status) &&
	    converge(how == 2, NULL) == EXIT_STUCK)
		status = EXIT_STUCK;
	leaving = status;
	if (report->command != NULL && !(report->skip && status == EXIT_OK))
		audit_event(report->command, status, report->rev, report->prev,
		    report->detail);
	if (report->event != NULL && report->due && cfg.notify != NULL)
		run_notify(status);
	fflush(stdout);
	exit(status);
}

enum { A_NONE, A_REF, A_REV };

/*
 * What the runner does around a command's job, in this order:
 *
 *   (root opened, deploy.conf read: main)
 *   TAKES_LOCK    current must be sane (a link into releases/), first
 *   PAUSE_REFUSES exit 3 while paused: before the lock, and under it
 *   check()       before the lock: usage, preflight, and -n's answer;
 *                 GO_ON to go on, else the exit status
 *   CREATES_ROOT  the root is made if absent, then opened (init)
 *   TAKES_LOCK    the lock, unless -n (then the releases are read);
 *                 under it: AUDITED names the audit line, NOTIFIES
 *                 notify's event, NAMES_PREVIOUS records current as the
 *                 previous release, locked() runs, then CLEANS_UP brings
 *                 the root to a known state (a killed run's leftovers
 *                 removed, a pending switch finished)
 *   run()         the job
 *   CONVERGES     the program made to run current, whatever the outcome
 *                 (armed once the lock is ours): right after a job that
 *                 went well when it is AFTER_JOB (prune, resume: their job
 *                 looks at no program), else on the way out (finish)
 *                 after a run that failed (see converge_due)
 *
 * BY_HAND: a person asked, so a pause does not hold cleanup or converge.
 * NOTIFIES: notify hears of the run when it attempted something (a build,
 * a migrate, a switch, a switch back), and a restart by convergence is
 * news whoever ran: every command that CONVERGES NOTIFIES.
 * The way out of every run (finish, above) writes the audit line and
 * runs notify, from what the run reported.
 */
#define TAKES_LOCK	0x001
#define PAUSE_REFUSES	0x002
#define CREATES_ROOT	0x004
#define READS_CONF	0x008
#define AUDITED		0x010
#define NOTIFIES	0x020
#define NAMES_PREVIOUS	0x040
#define CLEANS_UP	0x080
#define CONVERGES	0x100
#define BY_HAND		0x200
#define READS_ONLY	0x400	/* no lock, no audit: list, status, log, audit */
#define NO_ROOT		0x800	/* help */
#define AFTER_JOB	0x1000	/* CONVERGES right after a job that went well */
#define EXECS		0x2000	/* becomes the app (run): its signals untouched */

/* deploy, prepare, activate, rollback, migrate, prune and resume */
#define CHANGES	(TAKES_LOCK | READS_CONF | AUDITED | CLEANS_UP)

static int help(int argc, char **argv) __attribute__((noreturn));

static int
help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	usage(0);
}

static const struct command {
	const char	*name;
	const char	*synopsis;
	int		 maxargs;	/* words after the command */
	int		 minargs;
	int		 arg;		/* what they are */
	int		 flags;
	int		(*check)(int, char **);
	void		(*locked)(void);
	int		(*run)(int, char **);
} commands[] = {
	{ "init", "init URL [BRANCH]", 2, 1, A_NONE,
	    CREATES_ROOT | TAKES_LOCK, cmd_init_check, NULL, cmd_init },
	{ "deploy", "deploy [REF]", 1, 0, A_REF,
	    CHANGES | PAUSE_REFUSES | NOTIFIES | NAMES_PREVIOUS | CONVERGES,
	    cmd_deploy_check, NULL, cmd_deploy },
	{ "prepare", "prepare [REF]", 1, 0, A_REF,
	    CHANGES | PAUSE_REFUSES | NAMES_PREVIOUS,
	    cmd_deploy_check, NULL, cmd_deploy },
	{ "activate", "activate REV", 1, 1, A_REV,
	    CHANGES | BY_HAND | NOTIFIES | NAMES_PREVIOUS | CONVERGES,
	    cmd_activate_check, NULL, cmd_activate },
	{ "rollback", "rollback [REV]", 1, 0, A_REV,
	    CHANGES | BY_HAND | NOTIFIES | NAMES_PREVIOUS | CONVERGES,
	    cmd_activate_check, NULL, cmd_activate },
	{ "migrate", "migrate REV", 1, 1, A_REV,
	    CHANGES, cmd_migrate_check, NULL, cmd_migrate },
	{ "list", "list", 0, 0, A_NONE, READS_ONLY, NULL, NULL, cmd_list },
	{ "status", "status", 0, 0, A_NONE, READS_ONLY, NULL, NULL,
	    cmd_status },
	{ "log", "log [REV]", 1, 0, A_REV, READS_ONLY, NULL, NULL, cmd_log },
	{ "prune", "prune", 0, 0, A_NONE,
	    CHANGES | NOTIFIES | CONVERGES | AFTER_JOB, NULL, NULL, cmd_prune },
	{ "audit", "audit [--json] [-n N] | audit --verify", 1, 0, A_NONE,
	    READS_ONLY, NULL, NULL, cmd_audit },
	/* pause writes its file and its audit line itself, without the
	 * lock: a deploy that holds it must not keep a pause waiting */
	{ "pause", "pause [REASON]", 64, 0, A_NONE, 0, NULL, NULL, cmd_pause },
	{ "resume", "resume", 0, 0, A_NONE,
	    CHANGES | BY_HAND | NOTIFIES | CONVERGES | AFTER_JOB,
	    cmd_resume_check, cmd_resume, NULL },
	{ "run", "run [--] COMMAND [ARG...]", INT_MAX, 1, A_NONE,
	    READS_CONF | EXECS, NULL, NULL, cmd_run },
	{ "help", "help", 0, 0, A_NONE, NO_ROOT, NULL, NULL, help },
};

/*
 * Every argument checked before the root is opened and the lock taken:
 * a usage error waits for no other run and cleans up after none.
 */
static const struct command *
check_args(int argc, char *argv[])
{
	const char *cmd = argv[0];
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
	if (c->flags & CREATES_ROOT)
		return c;	/* init checks its own */
	if (argc - 1 > c->maxargs || argc - 1 < c->minargs ||
	    (options->verify && strcmp(cmd, "audit") != 0) ||
	    (options->verify && (argc > 1 || options->json ||
	    options->dry_run)))
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

/* Under the lock, before the job: the report named, the root cleaned up. */
static int
take_lock(const struct command *c, int by_hand)
{
	int st;

	need_state();
	lock_root(c->name);
	if (c->flags & PAUSE_REFUSES)
		refuse_if_paused();	/* paused while we waited for it */
	/* from here on, whatever ends the run is told (notify, audit) */
	report_names(c->flags & AUDITED ? c->name : NULL,
	    c->flags & NOTIFIES ? c->name : NULL);
	if (c->flags & NAMES_PREVIOUS)
		report_prev(cursha);
	if (c->flags & CONVERGES)
		report_converge(by_hand);
	if (c->locked != NULL)
		c->locked();
	if ((c->flags & CLEANS_UP) && (st = cleanup(by_hand)) != EXIT_OK)
		return st;
	if (c->flags & NAMES_PREVIOUS)
		report_prev(cursha);	/* cleanup may have moved it */
	return GO_ON;
}

/* The one runner: what the table says, around the command's job. */
static int
run_command(const struct command *c, int argc, char **argv)
{
	int st, by_hand = (c->flags & BY_HAND) != 0;

	if ((c->flags & TAKES_LOCK) && !(c->flags & CREATES_ROOT))
		need_current_sane();
	if (c->flags & PAUSE_REFUSES)
		refuse_if_paused();	/* building nothing */
	if (c->check != NULL && (st = c->check(argc, argv)) != GO_ON)
		return st;
	if (c->flags & CREATES_ROOT)
		open_root(1);
	if ((c->flags & TAKES_LOCK) && options->dry_run) {
		history_load();	/* what cleanup would have read */
		scan_releases();
	} else if ((c->flags & TAKES_LOCK) &&
	    (st = take_lock(c, by_hand)) != GO_ON)
		return st;
	st = c->run != NULL ? c->run(argc, argv) : EXIT_OK;
	if ((c->flags & AFTER_JOB) && st == EXIT_OK && report_take_converge())
		st = converge(by_hand, NULL);
	return st;
}

int
main(int argc, char *argv[])
{
	const struct command *c;
	char *prog = argv[0], *cpath;
	int st;

	msg_on_leave(finish);
	report_begin();
	cmdline_parse(&argc, &argv);
	c = check_args(argc, argv);
	if (c->flags & NO_ROOT)
		return c->run(argc, argv);
	if (!(c->flags & EXECS))	/* the app gets the dispositions we got */
		signals();
	root_find(options->root, prog);
	if (c->flags & CREATES_ROOT)	/* it makes the root: no way out */
		return run_command(c, argc, argv);
	open_root(0);
	if (c->flags & READS_CONF) {
		cpath = options->config ? xstrdup(options->config) :
		    fmtpath("%s/shared/deploy.conf", root);
		load_config(cpath);
		free(cpath);
	}
	st = run_command(c, argc, argv);
	if (gotsig && st == EXIT_OK)
		st = 128 + gotsig;
	leave(st);
}
