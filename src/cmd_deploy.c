/*
 * cmd_deploy.c: the deploy and prepare commands.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE		/* d_type, so a tree walk needs no stat per entry */

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd_deploy.h"
#include "core.h"
#include "order.h"
#include "run.h"
#include "msg.h"
#include "sig.h"
#include "root.h"
#include "report.h"
#include "config.h"
#include "history.h"
#include "lock.h"
#include "releases.h"
#include "rmtree.h"
#include "preflight.h"
#include "build.h"
#include "fetch.h"
#include "verify.h"
#include "switch.h"
#include "pause.h"
#include "converge.h"
#include "cleanup.h"
#include "dryrun.h"

/* A release that failed after its switch is built again from nothing. */
static void
drop_failed_release(const char *sha)
{
	int fd;

	say("release %.12s failed after an earlier switch: rebuilding it", sha);
	if (history_add(EV_REMOVE, sha) == -1)
		leave(EXIT_FAILED);
	fd = releases_fd(0);
	if (remove_in(fd, "releases", sha) == -1)
		die(EXIT_FAILED, "cannot remove %s/releases/%s; the next run "
		    "will try again", root, sha);
	close(fd);
	history_forget(sha);
	history_save();
}

int
cmd_deploy(const char *ref, int prepare_only)
{
	char sha[65];
	long i;
	int st, acted;

	need_current_sane();
	refuse_if_paused();	/* building nothing */
	preflight(1, !prepare_only);
	load_keys();
	restart_needed = !prepare_only;
	if (nflag)
		return dry_run_deploy(ref, prepare_only);
	need_state();
	lock_root(prepare_only ? "prepare" : "deploy");
	refuse_if_paused();	/* paused while we waited for the lock */
	/* from here on, whatever ends the run is told (notify, audit) */
	audit_cmd = prepare_only ? "prepare" : "deploy";
	if (!prepare_only)
		notify_event = "deploy";
	copy_sha(notify_prev, cursha);
	if ((st = cleanup()) != EXIT_OK)
		return st;
	copy_sha(notify_prev, cursha);
	step_fetch();
	if (ref == NULL)
		ref = cfg.branch ? cfg.branch : "HEAD";
	resolve(ref, sha);
	copy_sha(notify_rev, sha);
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
		signer_record(sha);
	if (i < 0 || rel[i].state != R_COMPLETE)
		build_release(sha);
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
			audit_skip = !notify_due;
		}
		return st;
	}
	need_restart_command(sha);
	return activate_release(sha, cursha, 1, 1);
}
