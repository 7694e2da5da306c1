/*
 * supervisor.c: what supervisord's answers mean, and the state of the
 * program.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <sys/types.h>
#include <poll.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor.h"
#include "xmlrpc.h"
#include "child.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "output.h"
#include "releases.h"
#include "root.h"

/*
 * supervisord's answers (supervisor.getAllProcessInfo: one struct per
 * process, name, group, statename, pid, start...) turned into what deploy
 * judges, and its faults into what the admin should change.
 */

/* connecting to supervisord's socket was refused: not ours to use */
int
sv_denied(void)
{
	return sv_errno == EACCES || sv_errno == EPERM;
}

void
sv_denied_why(char *why, size_t wl)
{
	char me[64];

	snprintf(why, wl, "the user running deploy (uid %ld, %s) may not use "
	    "supervisord's socket (permission denied): give it that user or "
	    "group with chown=USER:GROUP and chmod=0770 under "
	    "[unix_http_server] in supervisord.conf, then restart supervisord",
	    (long)geteuid(), user_name(geteuid(), me, sizeof(me)));
}

/* getAllProcessInfo into a: 0, or -1 and why (sv_why, or its fault) */
static int
all_info(struct svans *a)
{
	int r = sv_call(SV_LOOK, a, "supervisor.getAllProcessInfo", "");

	if (r == 1)
		snprintf(sv_why, sizeof(sv_why), "supervisord: "
		    "getAllProcessInfo: %s", printable(a->faultstr));
	else if (r == 0 && a->v[0].type != RPC_ARRAY)
		snprintf(sv_why, sizeof(sv_why), "supervisord: "
		    "getAllProcessInfo gave no list");
	if (r == 0 && a->v[0].type == RPC_ARRAY)
		return 0;
	sv_free(a);
	return -1;
}

/* the name supervisorctl shows for process at: NAME, or GROUP:NAME */
static const char *
spec(const struct rpcval *v, int at)
{
	static char buf[600];
	const char *n = rpc_str(v, at, "name"), *g = rpc_str(v, at, "group");

	if (strcmp(n, g) == 0)
		return n;
	snprintf(buf, sizeof(buf), "%.290s:%.290s", g, n);
	return buf;
}

/* name is want (one entry, l bytes), or a process of it when want is a
 * group ("web:*" for "web:x"); a bare "web" is not its group's processes,
 * as for supervisorctl: preflight's did-you-mean says "web:*" */
static int
named_one(const char *name, const char *want, size_t l)
{
	if (l > 2 && strncmp(want + l - 2, ":*", 2) == 0)
		return strncmp(name, want, l - 1) == 0 && name[l - 1] != '\0';
	return strncmp(name, want, l) == 0 && name[l] == '\0';
}

/* name is one of the entries of want ("web:* worker"), or a process of
 * one */
static int
named(const char *name, const char *want)
{
	size_t l;

	for (; *want; want += l) {
		want += strspn(want, " \t");
		if ((l = strcspn(want, " \t")) > 0 && named_one(name, want, l))
			return 1;
	}
	return 0;
}

/*
 * The entries of program, in restart order ("web:* worker": "web:*",
 * then "worker"): entry i into buf, 0; -1 past the last one.
 */
int
program_entry(int i, char *buf, size_t bl)
{
	const char *p = cfg.program;
	size_t l = 0;

	if (p == NULL)
		return -1;
	for (;; i--) {
		p += l;
		p += strspn(p, " \t");
		if ((l = strcspn(p, " \t")) == 0)
			return -1;
		if (i == 0)
			break;
	}
	snprintf(buf, bl, "%.*s", (int)l, p);
	return 0;
}

/* Levenshtein distance, for names up to 63 bytes; 99 for longer ones */
static int
distance(const char *a, const char *b)
{
	int d[64][64];
	size_t i, j, la = strlen(a), lb = strlen(b);

	if (la >= 64 || lb >= 64)
		return 99;
	for (i = 0; i <= la; i++)
		d[i][0] = (int)i;
	for (j = 0; j <= lb; j++)
		d[0][j] = (int)j;
	for (i = 1; i <= la; i++)
		for (j = 1; j <= lb; j++) {
			int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			d[i][j] = best;
		}
	return d[la][lb];
}

/*
 * For a program supervisord does not know: the names it knows that are
 * close to it (same group, or a letter or two away), and what to write
 * instead ("web:*" for the processes of group web). "" when none is.
 */
void
close_programs(const char *entry, char *buf, size_t bl)
{
	char name[600], want[256], mean[600] = "", *colon;
	size_t n = 0, shown = 0;
	struct svans a;
	int far, at;

	buf[0] = '\0';
	snprintf(want, sizeof(want), "%s", entry);
	want[strcspn(want, ":")] = '\0';	/* "web:*", "web:x": web */
	far = strlen(want) < 5 ? 1 : 2;
	if (all_info(&a) == -1)
		return;
	for (at = a.v[0].kid; at != -1; at = a.v[at].next) {
		char grp[600], sug[604];
		int k;

		snprintf(name, sizeof(name), "%s", spec(a.v, at));
		snprintf(grp, sizeof(grp), "%s", name);
		if ((colon = strchr(grp, ':')) != NULL)
			*colon = '\0';
		/* a typo: two edits away, one for a short name */
		if (strcmp(grp, want) != 0 && distance(grp, want) > far &&
		    distance(name, entry) > far)
			continue;
		if (shown++ < 6 && n < bl) {
			k = snprintf(buf + n, bl - n, "%s%s", n ? ", " : "",
			    printable(name));
			n = k < 0 ? bl : n + (size_t)k;
		}
		if (colon != NULL)
			snprintf(sug, sizeof(sug), "%s:*", grp);
		else
			snprintf(sug, sizeof(sug), "%s", name);
		if (strcmp(sug, entry) != 0 && strstr(mean, sug) == NULL &&
		    strlen(mean) + strlen(sug) + 5 < sizeof(mean))
			snprintf(mean + strlen(mean), sizeof(mean) - strlen(mean),
			    "%s%s", mean[0] ? " or " : "", printable(sug));
	}
	sv_free(&a);
	if (shown > 6 && n < bl)
		snprintf(buf + n, bl - n, " and %zu more", shown - 6);
	n = strlen(buf);
	if (n > 0 && mean[0] && n < bl &&
	    snprintf(buf + n, bl - n, " -> did you mean %s?", mean) < 0)
		buf[n] = '\0';
}

/*
 * The program's processes as supervisord has them: the worst state among
 * them (a group "web" or "web:*" has several), a fingerprint of their
 * pids and start times (it changes when any of them restarts) and, for
 * the log, the pids themselves: "pid N", or "NAME pid N, ..." for a
 * group.  -1 when supervisord names none, or cannot be asked.
 */
int
program_state(const char *prog, char *state, size_t sl, long *pid,
    char *pids, size_t pidl)
{
	unsigned long long fp = 1469598103934665603ULL;
	size_t pn = 0;
	struct svans a;
	int matched = 0, at;

	*pid = 0;
	snprintf(state, sl, "UNKNOWN");
	snprintf(pids, pidl, "no pid");
	if (all_info(&a) == -1) {
		logf_("%s\n", sv_why);
		return -1;
	}
	for (at = a.v[0].kid; at != -1; at = a.v[at].next) {
		const char *name = spec(a.v, at), *word = rpc_str(a.v, at,
		    "statename");
		long lp = (long)rpc_int(a.v, at, "pid");
		long long st = rpc_int(a.v, at, "start");
		int k;

		if (!named(name, prog))
			continue;
		if (++matched == 1 || (strcmp(state, "RUNNING") == 0 &&
		    strcmp(word, "RUNNING") != 0))
			snprintf(state, sl, "%s", word);
		fp = fnv(fp, &lp, sizeof(lp));
		fp = fnv(fp, &st, sizeof(st));
		if (lp <= 0 || pn >= pidl)
			continue;
		if (strcmp(name, prog) == 0)
			k = snprintf(pids + pn, pidl - pn, "%spid %ld", pn ?
			    ", " : "", lp);
		else
			k = snprintf(pids + pn, pidl - pn, "%s%s pid %ld", pn ?
			    ", " : "", name, lp);
		pn = k < 0 ? pidl : pn + (size_t)k;
	}
	sv_free(&a);
	*pid = (long)(fp & LONG_MAX);
	return matched ? 0 : -1;
}

/*
 * A restart whose start supervisord refused for want of a file to run
 * (NO_FILE, NOT_EXECUTABLE, SPAWN_ERROR): the program never ran and has
 * no output to show. spawn_name: the process or program it was.
 */
int spawnerr;
static char spawn_name[256];

const char *
spawn_why(void)
{
	static char buf[600];

	snprintf(buf, sizeof(buf), "supervisord found no file to run: the "
	    "command= of [program:%.*s] names a file that is not in the "
	    "release, or not executable (for .venv/bin/NAME: is the package "
	    "that provides NAME in %s?)", (int)strcspn(spawn_name, ":"),
	    spawn_name, cfg.requirements);
	return buf;
}

static void proc_release(long pid, char sha[65]);

/*
 * A process supervisord is itself starting (autorestart, after a crash):
 * STARTING_INTO when it starts from sha, the release it is to run
 * (nothing to stop, only to watch until it is RUNNING: stopping it would
 * cost up to its stopwaitsecs, or be lost in its next respawn);
 * STARTING_ELSE when it starts from another release (*pid is its pid);
 * else 0.
 */
#define STARTING_INTO	1
#define STARTING_ELSE	2

/* supervisord's getProcessInfo of the process name: its state into state
 * ("" when there is none to read) and its pid (0); the call's result: 0,
 * 1 for a fault, -1 (sv_why says why) */
static int
process_info(const char *name, char *state, size_t sl, long *pid)
{
	struct svans a;
	int r;

	state[0] = '\0';
	*pid = 0;
	r = sv_call(SV_LOOK, &a, "supervisor.getProcessInfo", "s", name);
	if (r == 0 && a.v[0].type == RPC_STRUCT) {
		snprintf(state, sl, "%s", rpc_str(a.v, 0, "statename"));
		*pid = (long)rpc_int(a.v, 0, "pid");
	}
	sv_free(&a);
	return r;
}

static int
starting_where(const char *name, const char *sha, long *pid)
{
	char rs[65] = "", state[32];

	if (sha == NULL || strchr(name, '*') != NULL)
		return 0;
	if (process_info(name, state, sizeof(state), pid) != 0 ||
	    strcmp(state, "STARTING") != 0)
		return 0;
	proc_release(*pid, rs);
	return strcmp(rs, sha) == 0 ? STARTING_INTO : STARTING_ELSE;
}

/*
 * On a switch back, a process only STARTING, from the release that
 * failed, is killed, with its process group (supervisord made it the
 * group's leader), rather than stopped: it never came up, and a stop
 * would wait out its stopwaitsecs if it ignores the stop signal while it
 * starts. Where deploy may not signal it, supervisord kills the process.
 */
static void
kill_starting(const char *name, long pid)
{
	struct svans a;

	logf_("%s is only STARTING, in the release that failed: killing it "
	    "rather than waiting out its stopwaitsecs\n", name);
	if (pid > 1 && getpgid((pid_t)pid) == (pid_t)pid &&
	    kill(-(pid_t)pid, SIGKILL) == 0)
		return;
	if (sv_call(SV_LOOK, &a, "supervisor.signalProcess", "ss", name,
	    "KILL") == 1)
		logf_("supervisord: signalProcess %s KILL: %s\n", name,
		    a.faultstr);
	sv_free(&a);
}

/*
 * Stops one process (or program NAME) and waits, up to t seconds, until
 * it has left STOPPING (as long as its stopwaitsecs allows). Not by a
 * waiting stopProcess: supervisord serves that by polling it in a busy
 * loop, a core of CPU for the whole stop, taken from the app's other
 * processes; asked without waiting, then looked at every 100 ms, it
 * costs nothing. 0, or -1 and why.
 */
static int
stop_process(const char *name, long t, char *why, size_t wl)
{
	double end = now() + (double)t;
	char state[32];
	struct svans a;
	long pid;
	int r;

	r = sv_call(SV_LOOK, &a, "supervisor.stopProcess", "sb", name, 0);
	if (r == 1 && a.fault != SV_NOT_RUNNING) {
		snprintf(why, wl, "supervisord could not stop %.255s: %s", name,
		    printable(a.faultstr));
		sv_free(&a);
		return -1;
	}
	sv_free(&a);
	for (; r != -1; poll(NULL, 0, 100)) {
		r = process_info(name, state, sizeof(state), &pid);
		if (r != -1 && strcmp(state, "STOPPING") != 0)
			return 0;	/* down (or a name the start explains) */
		if (r != -1 && now() >= end) {
			snprintf(why, wl, "supervisord could not stop %.255s "
			    "within %lds (timeout)", name, t);
			return -1;
		}
	}
	snprintf(why, wl, "%s", sv_why);
	return -1;
}

/*
 * Restarts one process (or program NAME), as supervisorctl restart does:
 * stopped, and waited for until it is down (within timeout), then
 * startProcess without waiting: whether it comes up and stays up is the
 * caller's to watch. A process already starting in sha (when not NULL)
 * is left to start; on a switch back (back) one starting in another
 * release is killed first. A BACKOFF one stops at once. 0, or -1 and why.
 */
int
sv_restart(const char *name, const char *sha, int back, char *why,
    size_t wl)
{
	long t = cfg.timeout > 0 ? cfg.timeout : 3600, pid = 0;
	struct svans a;
	int r;

	switch (starting_where(name, sha, &pid)) {
	case STARTING_INTO:
		logf_("%s is STARTING in %.12s already (supervisord's own "
		    "restart): not stopping it\n", name, sha);
		return 0;
	case STARTING_ELSE:
		if (back)
			kill_starting(name, pid);
		break;
	}
	if (stop_process(name, t, why, wl) == -1)
		return -1;
	r = sv_call(SV_LOOK, &a, "supervisor.startProcess", "sb", name, 0);
	if (r == -1) {
		snprintf(why, wl, "%s", sv_why);
		return -1;
	}
	if (r == 1 && (a.fault == SV_NO_FILE || a.fault == SV_NOT_EXECUTABLE ||
	    a.fault == SV_SPAWN_ERROR)) {
		spawnerr = 1;
		snprintf(spawn_name, sizeof(spawn_name), "%s", name);
	}
	else if (r == 1 && a.fault != SV_ALREADY_STARTED) {
		snprintf(why, wl, "supervisord could not start %.255s: %s", name,
		    printable(a.faultstr));
		sv_free(&a);
		return -1;
	}
	if (r == 1)
		logf_("supervisord: startProcess %s: %s\n", name, a.faultstr);
	sv_free(&a);
	return 0;
}

/* entry is a group rolled one process at a time: "web:*" */
int
is_group(const char *entry)
{
	size_t n = strlen(entry);

	return n > 2 && strcmp(entry + n - 2, ":*") == 0;
}

/* The processes named NAME (the exact name, or a process of the group
 * NAME, or every process of "web:*"), one member each: how many, or -1
 * (said in the log and in members_why) when it cannot see them all:
 * supervisord cannot be asked, more than max, a name of 256 bytes or
 * more. A roll must never restart part of a group and report it done. */
char members_why[SV_WHYLEN];

int
group_members(const char *name, struct member *m, int max)
{
	struct svans a;
	int n = 0, at;

	members_why[0] = '\0';
	if (all_info(&a) == -1) {
		snprintf(members_why, sizeof(members_why), "%s", sv_why);
		logf_("%s\n", members_why);
		return -1;
	}
	for (at = a.v[0].kid; at != -1; at = a.v[at].next) {
		const char *sp = spec(a.v, at);

		if (!named(sp, name))
			continue;
		if (n == max) {
			snprintf(members_why, sizeof(members_why), "more than "
			    "%d processes in %.40s", max, name);
			break;
		}
		if (strlen(sp) >= sizeof(m[n].name)) {
			snprintf(members_why, sizeof(members_why), "a process "
			    "name of %zu bytes in %.40s", strlen(sp), name);
			break;
		}
		snprintf(m[n].name, sizeof(m[n].name), "%s", sp);
		snprintf(m[n].state, sizeof(m[n].state), "%s", rpc_str(a.v, at,
		    "statename"));
		m[n].pid = (long)rpc_int(a.v, at, "pid");
		m[n].start = (long)rpc_int(a.v, at, "start");
		n++;
	}
	sv_free(&a);
	if (members_why[0]) {
		logf_("%s\n", members_why);
		return -1;
	}
	return n;
}

/*
 * Between runs a reboot (autostart=false), a crash that used up
 * startretries or a hand-typed "supervisorctl stop" can leave the program
 * down while current says all is well. So every command that takes the
 * lock and switches nothing itself ends by looking: every process of the
 * program RUNNING and, where /proc shows it, working in the release
 * current names. If not, it restarts the program and checks it, and says
 * so in one line. A release that already passed its check is never
 * switched away from here: when it does not come up the cause may be
 * elsewhere (a database down), so a person decides (exit 5).
 * Without program (restart = only) there is nothing to look at.
 */

/* The release a process works in, from /proc: its sha, or "" when it
 * works elsewhere or /proc does not say (another user's process). */
static void
proc_release(long pid, char sha[65])
{
	char path[64], cwd[PATH_MAX], *p, *e;
	size_t rl = strlen(root);
	ssize_t k;

	sha[0] = '\0';
	if (pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%ld/cwd", pid);
	if ((k = readlink(path, cwd, sizeof(cwd) - 1)) <= 0)
		return;
	cwd[k] = '\0';
	if (strncmp(cwd, root, rl) != 0 || strncmp(cwd + rl, "/releases/",
	    10) != 0)
		return;
	p = cwd + rl + 10;
	if ((e = strchr(p, '/')) != NULL || (e = strchr(p, ' ')) != NULL)
		*e = '\0';	/* a pruned release reads "SHA (deleted)" */
	if (is_sha(p))
		copy_sha(sha, p);
}

/* The program's processes for current (group_members), and in rs[i]
 * the release each works in (proc_release): how many, or -1 as
 * group_members. What status shows and program_wrong judges. */
int
program_members(struct member *m, char (*rs)[65], int max)
{
	int n = group_members(cfg.program, m, max), i;

	for (i = 0; i < n; i++)
		proc_release(m[i].pid, rs[i]);
	return n;
}

/* what is wrong with the program, in what; 0 when nothing is */
int
program_wrong(char *what, size_t wl)
{
	static struct member m[MAXMEMBERS];
	static char rs[MAXMEMBERS][65];
	int n, i;

	if ((n = program_members(m, rs, MAXMEMBERS)) <= 0) {
		snprintf(what, wl, "supervisord names %s", n == 0 ?
		    "no such process" : members_why);
		return 2;
	}
	for (i = 0; i < n; i++) {
		if (strcmp(m[i].state, "RUNNING") != 0)
			snprintf(what, wl, "%s %.255s was %s", strchr(m[i].name,
			    ':') == NULL ? "program" : "process", m[i].name,
			    m[i].state);
		else if (rs[i][0] && strcmp(rs[i], cursha) != 0)
			snprintf(what, wl, "%s %.255s ran %.12s, not current",
			    strchr(m[i].name, ':') == NULL ? "program" :
			    "process", m[i].name, rs[i]);
		else
			continue;
		return 1;
	}
	return 0;
}

/* A new restart: no spawn error seen yet. */
void
spawn_forget(void)
{
	spawnerr = 0;
}
