/*
 * cmd_activate.c: the activate, rollback and migrate commands.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <string.h>

#include "cmd_activate.h"
#include "build.h"
#include "child.h"
#include "cmdline.h"
#include "config.h"
#include "converge.h"
#include "core.h"
#include "fetch.h"
#include "files.h"
#include "history.h"
#include "msg.h"
#include "order.h"
#include "output.h"
#include "preflight.h"
#include "releases.h"
#include "report.h"
#include "root.h"
#include "switch.h"
#include "verify.h"

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

	if (options->quiet)
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

/*
 * With verify on, a release is switched to or migrated only when the
 * mirror verifies it afresh under today's keys (verify_release): it may
 * have been built while verify was off, or signed by a key since removed.
 * A refusal changes nothing: exit 1 (-n: says it would refuse).
 */
static int
refuse_unverified(const char *sha, const char *what)
{
	if (verify_release(sha) == 0)
		return EXIT_OK;
	if (options->dry_run) {
		warnx("would refuse %.12s: %s", sha, refusal);
		return EXIT_FAILED;
	}
	die(EXIT_FAILED, "refused %.12s: %s; nothing was %s", sha, refusal,
	    what);
}

/* Before the lock (activate, rollback): preflight, the keys. */
int
cmd_activate_check(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	preflight(0, 1);
	load_keys();
	return GO_ON;
}

/* activate REV, rollback [REV]: under the lock, or with -n what it would
 * do; the releases are read either way. */
int
cmd_activate(int argc, char **argv)
{
	const char *rev = argc == 2 ? argv[1] : NULL;
	int rollback = strcmp(argv[0], "rollback") == 0;
	char sha[65], from[65], next[65];
	long i, cur;
	int st, acted;

	cur = cur_index();
	if (rev != NULL)
		i = find_rev(rev);
	else if ((i = rollback_target(rel, nrel, cur)) < 0)
		die(EXIT_USAGE, "nothing to roll back to: no release was live "
		    "before the current one ('deploy list')");
	if (rollback && rel[i].life == L_UNMIGRATED)
		die(EXIT_USAGE, "release %s never went live: its migrate "
		    "failed; rollback does not run migrate: 'deploy activate "
		    "%s' migrates and switches to it", rel[i].name, rel[i].name);
	copy_sha(sha, rel[i].name);
	report_rev(sha);
	if (strcmp(sha, cursha) == 0 && !options->dry_run) {
		/* by hand: it starts a program that is down, paused or not */
		if ((st = converge(1, &acted)) == EXIT_OK && !acted) {
			say("%s is already current: nothing to do", sha);
			report_nothing_done();
		}
		return st;
	}
	need_restart_command(sha);
	if ((st = refuse_unverified(sha, "switched")) != EXIT_OK)
		return st;
	if (options->dry_run) {
		say("would %sswitch current from %s to %s, restart and check",
		    !rollback && cfg.migrate && !options->no_migrate ?
		    "migrate, " : "",
		    cursha[0] ? cursha : "nothing", sha);
		return preflight_failed ? EXIT_USAGE : EXIT_OK;
	}
	say_from_to(rollback ? "rolling back" : "activating", cursha, sha);
	copy_sha(from, cursha);
	lastlog_record(sha);
	st = activate_release(sha, cursha, 0, !rollback);
	if (st == EXIT_OK && from[0] && resolve_local(cfg.branch ? cfg.branch :
	    "HEAD", next) == 0 && strcmp(next, from) == 0)
		warnx("%s still points to %.12s: the next plain 'deploy' brings "
		    "it back (push a fix, or deploy a REF)", cfg.branch ?
		    cfg.branch : "the remote's HEAD", from);
	return st;
}

/* migrate REV: only the migrate step, for a complete release, no switch */
/* Before the lock: there must be a migrate command. */
int
cmd_migrate_check(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (cfg.migrate == NULL)
		die(EXIT_USAGE, "no migrate command in deploy.conf: nothing to run");
	load_keys();
	return GO_ON;
}

/* migrate REV: under the lock, even with -M; -n says what it would run. */
int
cmd_migrate(int argc, char **argv)
{
	char sha[65];

	int st;

	(void)argc;
	copy_sha(sha, rel[find_rev(argv[1])].name);
	if (!options->dry_run)
		report_rev(sha);
	if ((st = refuse_unverified(sha, "migrated")) != EXIT_OK)
		return st;
	if (options->dry_run) {
		say("would run migrate for %s", sha);
		return EXIT_OK;
	}
	open_log(sha, 0);
	return step_migrate(sha, 0);
}
