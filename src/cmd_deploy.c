/*
 * cmd_deploy.c: the deploy and prepare commands.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd_deploy.h"
#include "build.h"
#include "cmdline.h"
#include "config.h"
#include "converge.h"
#include "core.h"
#include "dryrun.h"
#include "fetch.h"
#include "history.h"
#include "msg.h"
#include "order.h"
#include "partial.h"
#include "preflight.h"
#include "releases.h"
#include "report.h"
#include "root.h"
#include "sig.h"
#include "switch.h"
#include "verify.h"

/* Before the lock: preflight, the keys, and -n's whole answer. */
int
cmd_deploy_check(int argc, char **argv)
{
	const char *ref = argc == 2 ? argv[1] : NULL;
	int prepare_only = strcmp(argv[0], "prepare") == 0;

	preflight(1, !prepare_only);
	load_keys();
	if (options->dry_run)
		return dry_run_deploy(ref, prepare_only);
	return GO_ON;
}

/* Under the lock, the root cleaned up: fetch, build, switch. */
int
cmd_deploy(int argc, char **argv)
{
	const char *ref = argc == 2 ? argv[1] : NULL;
	int prepare_only = strcmp(argv[0], "prepare") == 0;
	char sha[65];
	long i;
	int st, acted;

	step_fetch();
	if (ref == NULL)
		ref = cfg.branch ? cfg.branch : "HEAD";
	resolve(ref, sha);
	report_rev(sha);
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
		signer_record(sha, signer);
	if (i < 0 || rel[i].state != R_COMPLETE)
		build_release(sha, !prepare_only);
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
			report_nothing_done();
		}
		return st;
	}
	need_restart_command(sha);
	return activate_release(sha, cursha, 1, 1);
}
