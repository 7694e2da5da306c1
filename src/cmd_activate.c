/*
 * cmd_activate.c: the activate, rollback and migrate commands.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE		/* d_type, so a tree walk needs no stat per entry */

#include <sys/stat.h>
#include <string.h>

#include "cmd_activate.h"
#include "core.h"
#include "order.h"
#include "run.h"
#include "msg.h"
#include "files.h"
#include "root.h"
#include "report.h"
#include "config.h"
#include "history.h"
#include "output.h"
#include "child.h"
#include "lock.h"
#include "releases.h"
#include "preflight.h"
#include "build.h"
#include "fetch.h"
#include "switch.h"
#include "converge.h"
#include "cleanup.h"

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

int
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
int
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
