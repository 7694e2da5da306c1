/*
 * cmd_status.c: the status command.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_status.h"
#include "cmdline.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "history.h"
#include "jsonout.h"
#include "lock.h"
#include "order.h"
#include "pause.h"
#include "readroot.h"
#include "releases.h"
#include "root.h"
#include "supervisor.h"
#include "switch.h"

/* the program's processes: state, pid, release they run */
static void
status_program(void)
{
	static struct member m[MAXMEMBERS];
	static char rs[MAXMEMBERS][65];
	const char *why = config_for_status();
	int n = 0, i;

	if (why == NULL && cfg.program != NULL && cursha[0] &&
	    (n = program_members(m, rs, MAXMEMBERS)) < 0)
		why = members_why;	/* never a part of the group */
	if (options->json) {
		if (why == NULL && cfg.program == NULL) {
			printf(", \"program\": null");	/* none configured */
			return;
		}
		if (why != NULL) {	/* configured, or perhaps: not seen */
			printf(", \"program\": {");
			json_field("name", cfg.program, 0);
			printf(", \"processes\": null");
			json_field("unknown", why, 1);
			printf("}");
			return;
		}
		printf(", \"program\": {");
		json_field("name", cfg.program, 0);
		printf(", \"processes\": [");
		for (i = 0; i < n; i++) {
			printf("%s{", i ? ", " : "");
			json_field("name", m[i].name, 0);
			json_field("state", m[i].state, 1);
			if (m[i].pid > 0)
				printf(", \"pid\": %ld", m[i].pid);
			else
				printf(", \"pid\": null");
			json_field("release", rs[i], 1);
			printf(", \"current\": %s}", rs[i][0] &&
			    strcmp(rs[i], cursha) == 0 ? "true" : "false");
		}
		printf("]}");
		return;
	}
	if (why != NULL) {
		printf("program: unknown (%s)\n", why);
		return;
	}
	if (cfg.program == NULL) {
		printf("program: none\n");
		return;
	}
	if (n == 0)
		printf("program: %s: supervisord names no such process\n",
		    cfg.program);
	for (i = 0; i < n; i++) {
		printf("program: %s %s", m[i].name, m[i].state);
		if (m[i].pid > 0)
			printf(" pid %ld", m[i].pid);
		if (rs[i][0])
			printf(" (releases/%s%s)", rs[i], strcmp(rs[i],
			    cursha) == 0 ? ", current" : ", NOT current");
		putchar('\n');
	}
}

/* a head whose last deploy failed after its build: skipped by a plain
 * deploy until retried */
static void
status_failed_head(void)
{
	struct badhead b;
	int bad = badhead_read(&b);

	if (options->json) {
		if (!bad) {
			printf(", \"failed_head\": null");
			return;
		}
		printf(", \"failed_head\": {");
		json_field("sha", b.sha, 0);
		json_time("at", b.t);
		printf(", \"exit\": %d}", b.exit);
		return;
	}
	if (bad)
		printf("failed head: %s at %s (exit %d): a plain deploy skips "
		    "it; retry: deploy %s, or push a new commit\n", b.sha,
		    fmttime(b.t), b.exit, b.sha);
}

/* a switch a run left unfinished, and a pause */
static void
status_pending_pause(void)
{
	static const char *next[] = { "", "restart next", "check next",
	    "prune next", "switch back next" };
	struct pending p;
	struct pauserec pr;
	char by[PAUSE_WHO];
	int paused = pause_read(&pr);

	memset(&p, 0, sizeof(p));
	if (statefd != -1)
		pending_load(&p, 0);
	if (options->json) {
		if (p.state == P_NONE)
			printf(", \"pending\": null");
		else {
			printf(", \"pending\": {");
			json_field("state", pnames[p.state], 0);
			json_field("sha", p.sha, 1);
			json_field("previous", p.prev, 1);
			printf(", \"prune\": %s}", p.prune ? "true" : "false");
		}
		if (!paused) {
			printf(", \"paused\": null");
			return;
		}
		printf(", \"paused\": {");
		json_field("user", pr.user, 0);
		printf(", \"uid\": %ld", pr.uid);
		json_time("since", pr.since);
		json_field("reason", pr.reason, 1);
		putchar('}');
		return;
	}
	if (p.state == P_NONE)
		printf("pending: none\n");
	else
		printf("pending: %s %s from %s (%s)\n", pnames[p.state], p.sha,
		    p.prev[0] ? p.prev : "nothing", next[p.state]);
	if (paused)
		printf("paused: %s\n", pause_who(&pr, PAUSE_SINCE, by,
		    sizeof(by)));
	else
		printf("paused: no\n");
}

int
cmd_status(int argc, char **argv)
{
	char why[PATH_MAX * 2], what[64];
	long cur, rb, pid = 0;
	long long t = 0;
	int c, held, fd;

	(void)argc;
	(void)argv;
	need_deploy_root();
	if (statefd != -1)
		history_load();
	c = read_current(why, sizeof(why));
	scan_releases();
	cur = cur_index();
	rb = rollback_target(rel, nrel, cur);
	fd = statefd == -1 ? -1 : openat(statefd, "lock", O_RDONLY | O_CLOEXEC |
	    O_NOFOLLOW);
	held = lock_held(fd, &pid, &t, what, sizeof(what));
	if (fd != -1)
		close(fd);
	if (options->json) {
		printf("{");
		json_field("root", root, 0);
		json_field("current", c == CUR_OK ? cursha : NULL, 1);
		json_field("current_state", c == CUR_OK ? "ok" : c == CUR_NONE ?
		    "none" : "broken", 1);
		json_field("problem", c == CUR_OK || c == CUR_NONE ? NULL : why, 1);
		json_time("activated", c == CUR_OK && cur >= 0 ?
		    rel[cur].activated : 0);
		json_field("rollback", rb >= 0 ? rel[rb].name : NULL, 1);
		if (held) {
			printf(", \"running\": {\"pid\": %ld", pid);
			json_time("since", t);
			json_field("command", what, 1);
			printf("}");
		} else
			printf(", \"running\": null");
		status_program();
		status_pending_pause();
		status_failed_head();
		printf("}\n");
	} else {
		if (c == CUR_OK)
			printf("current: %s (activated %s)\n", cursha,
			    cur >= 0 ? fmttime(rel[cur].activated) : "-");
		else if (c == CUR_NONE)
			printf("current: none\n");
		else
			printf("current: broken: %s\n", why);
		printf("rollback: %s\n", rb >= 0 ? rel[rb].name : "none");
		if (held)
			printf("running: pid %ld since %s (%s)\n", pid,
			    fmttime(t), what);
		else
			printf("running: no\n");
		status_program();
		status_pending_pause();
		status_failed_head();
	}
	return c == CUR_OK || c == CUR_NONE ? EXIT_OK : EXIT_STUCK;
}
