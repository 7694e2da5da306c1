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
#define _DEFAULT_SOURCE		/* d_type, so a tree walk needs no stat per entry */

#include <sys/stat.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "order.h"
#include "run.h"
#include "msg.h"
#include "files.h"
#include "sig.h"
#include "root.h"
#include "report.h"
#include "config.h"
#include "audit.h"
#include "converge.h"
#include "notify.h"
#include "cmd_pause.h"
#include "cmd_prune.h"
#include "cmd_init.h"
#include "cmd_deploy.h"
#include "cmd_activate.h"
#include "cmd_log.h"
#include "cmd_list.h"
#include "cmd_status.h"
#include "cmd_audit.h"

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
