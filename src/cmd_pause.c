/*
 * cmd_pause.c: the pause and resume commands.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd_pause.h"
#include "audit.h"
#include "cmdline.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "json.h"
#include "msg.h"
#include "pause.h"
#include "readroot.h"
#include "releases.h"
#include "report.h"
#include "root.h"
#include "sig.h"

/*
 * The one place where a pause or a resume is known to be done (recorded
 * durably): what else must hear of it (an audit trail) hooks here.
 */
static void
pause_event(const char *event, const struct pauserec *p)
{
	char by[PAUSE_WHO];

	if (strcmp(event, "pause") == 0)
		say("paused %s: deploy and prepare refuse (exit 3) until "
		    "'deploy resume'", pause_who(p, 0, by, sizeof(by)));
	else
		say("resumed (was paused by %s since %s)", p->user,
		    p->since ? fmttime(p->since) : "?");
	if (strcmp(event, "pause") == 0)	/* resume: once its run ends */
		audit_event(event, EXIT_OK, cursha, NULL, p->reason[0] ?
		    p->reason : NULL);
}

int
cmd_pause(int argc, char **argv)
{
	struct pauserec p, old;
	char buf[1024];
	char why[PATH_MAX + 300];
	const char *r;
	size_t rl = 0;
	int i, n;

	need_deploy_root();
	if (options->dry_run) {
		say("would pause: deploy and prepare would refuse (exit 3) "
		    "until 'deploy resume'");
		return EXIT_OK;
	}
	need_state();
	read_current(why, sizeof(why));	/* the audit line's revision */
	memset(&p, 0, sizeof(p));
	for (i = 1; i < argc && rl < sizeof(p.reason) - 1; i++)
		rl += (size_t)snprintf(p.reason + rl, sizeof(p.reason) - rl,
		    "%s%s", rl ? " " : "", argv[i]);
	cut_utf8(p.reason, printable(p.reason), sizeof(p.reason));
	p.uid = (long)getuid();
	if ((r = login_name(getuid())) == NULL)
		r = "?";
	cut_utf8(p.user, printable(r), sizeof(p.user));
	p.since = (long long)time(NULL);
	if (pause_read(&old))
		say("already paused by %s: recording this pause instead",
		    old.user);
	n = snprintf(buf, sizeof(buf), "deploy-pause 1\nuser %s\nuid %ld\n"
	    "since %lld\nreason %s\n", p.user, p.uid, p.since, p.reason);
	if (n < 0 || (size_t)n >= sizeof(buf) ||
	    replace_file_at(statefd, "pause", buf, (size_t)n, 1) == -1)
		die(FAIL_STATUS, "%s/%s/pause: %s", root, STATE, strerror(errno));
	pause_event("pause", &p);
	return EXIT_OK;
}

/* resume: the pause ends, then the run converges as one by hand does */
/* resume -n: what it would do. */
int
cmd_resume_check(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	if (options->dry_run) {
		say("would end the pause, if any, finish a pending switch and "
		    "make sure the program runs current");
		return EXIT_OK;
	}
	return GO_ON;
}

/*
 * resume: the pause ends first under the lock, then the runner cleans up
 * and converges, by hand. pause takes no lock, so a pause written while
 * resume runs must survive it: the record is first moved aside (one
 * rename), and only what was moved is read and removed (issue 29).
 */
void
cmd_resume(void)
{
	static struct pauserec p;	/* its reason outlives us: the audit */

	if (renameat(statefd, "pause", statefd, "pause.ended") == -1) {
		if (errno != ENOENT)
			die(FAIL_STATUS, "%s/%s/pause: %s", root, STATE,
			    strerror(errno));
		say("not paused");
		return;
	}
	pause_read_at("pause.ended", &p);
	if (unlinkat(statefd, "pause.ended", 0) == -1 || fsync(statefd) == -1)
		die(FAIL_STATUS, "%s/%s/pause.ended: %s", root, STATE,
		    strerror(errno));
	pause_event("resume", &p);
	report_detail(p.reason[0] ? p.reason : NULL);
}
