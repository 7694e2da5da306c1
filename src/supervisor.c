/*
 * supervisor.c: what supervisorctl's answers mean, and the state of the
 * program.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "supervisor.h"
#include "child.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "output.h"
#include "releases.h"
#include "root.h"

/*
 * supervisorctl says what went wrong in its own terms (a Python exception,
 * "no such process"); these turn the common ones into what the admin
 * should change.
 */

/* supervisorctl's "error: <class 'PermissionError'>, [Errno 13] ..." */
int
sv_denied(const char *out)
{
	return strstr(out, "PermissionError") != NULL ||
	    strstr(out, "Permission denied") != NULL;
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
close_programs(char *buf, size_t bl)
{
	struct runopts o = opts("/", ENV_NONE, NULL, NULL);
	char out[16384], *line, *save, name[256], want[256], mean[600] = "";
	char **argv, *colon;
	size_t n = 0, shown = 0;
	struct result r;
	int far;

	snprintf(want, sizeof(want), "%s", cfg.program);
	want[strcspn(want, ":")] = '\0';	/* "web:*", "web:x": web */
	far = strlen(want) < 5 ? 1 : 2;
	argv = words_plus(cfg.supervisorctl, "status", (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	o.timeout = 30;
	out[0] = '\0';
	run(argv, &o, &r);	/* non-zero when some are not running */
	free_words(argv);
	buf[0] = '\0';
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		char grp[256], sug[260];
		int k;

		if (two_words(line, name, sizeof(name), NULL, 0) < 1)
			continue;
		snprintf(grp, sizeof(grp), "%s", name);
		if ((colon = strchr(grp, ':')) != NULL)
			*colon = '\0';
		/* a typo: two edits away, one for a short name */
		if (strcmp(grp, want) != 0 && distance(grp, want) > far &&
		    distance(name, cfg.program) > far)
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
		if (strcmp(sug, cfg.program) != 0 && strstr(mean, sug) == NULL &&
		    strlen(mean) + strlen(sug) + 5 < sizeof(mean))
			snprintf(mean + strlen(mean), sizeof(mean) - strlen(mean),
			    "%s%s", mean[0] ? " or " : "", printable(sug));
	}
	if (shown > 6 && n < bl)
		snprintf(buf + n, bl - n, " and %zu more", shown - 6);
	n = strlen(buf);
	if (n > 0 && mean[0] && n < bl &&
	    snprintf(buf + n, bl - n, " -> did you mean %s?", mean) < 0)
		buf[n] = '\0';
}

/*
 * supervisorctl status PROGRAM: the worst state among its processes (a
 * group "web" or "web:*" has several), a fingerprint of their pids (it
 * changes when any of them restarts) and, for the log, the pids
 * themselves: "pid N", or "NAME pid N, ..." for a group.
 * supervisorctl runs without the release's venv on PATH, so that a
 * supervisor package in the requirements does not stand in for it, and
 * in "/": it reads ./supervisord.conf first, and a file the app commits
 * must not choose the server we restart and watch.
 */
int
program_state(const char *rdir, const char *sha, char *state, size_t sl,
    long *pid, char *pids, size_t pidl)
{
	struct runopts o = opts("/", ENV_NONE, rdir, sha);
	char out[8192], *p, *line, *save, **argv, name[256], word[32];
	size_t plen = strlen(cfg.program), pn = 0;
	unsigned long long fp = 1469598103934665603ULL;
	struct result r;
	int matched = 0, group;

	group = plen > 2 && strcmp(cfg.program + plen - 2, ":*") == 0;
	if (group)
		plen -= 1;	/* match "web:" */
	argv = words_plus(cfg.supervisorctl, "status", cfg.program, (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	out[0] = '\0';
	if (o.timeout == 0 || o.timeout > 60)
		o.timeout = 60;
	run(argv, &o, &r);	/* its status says not running as non-zero */
	free_words(argv);
	*pid = 0;
	snprintf(state, sl, "UNKNOWN");
	snprintf(pids, pidl, "no pid");
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		long lp = 0;

		if (two_words(line, name, sizeof(name), word, sizeof(word)) != 2)
			continue;
		if (!(strcmp(name, cfg.program) == 0 ||
		    (group && strncmp(name, cfg.program, plen) == 0) ||
		    (strncmp(name, cfg.program, plen) == 0 && name[plen] == ':')))
			continue;
		if (++matched == 1 || (strcmp(state, "RUNNING") == 0 &&
		    strcmp(word, "RUNNING") != 0))
			snprintf(state, sl, "%s", word);
		if ((p = strstr(line, "pid ")) != NULL)
			lp = strtol(p + 4, NULL, 10);
		fp = fnv(fp, &lp, sizeof(lp));
		if (lp > 0 && pn < pidl) {
			int k;

			if (strcmp(name, cfg.program) == 0)
				k = snprintf(pids + pn, pidl - pn, "%spid %ld",
				    pn ? ", " : "", lp);
			else
				k = snprintf(pids + pn, pidl - pn, "%s%s pid %ld",
				    pn ? ", " : "", name, lp);
			pn = k < 0 ? pidl : pn + (size_t)k;
		}
	}
	*pid = (long)(fp & LONG_MAX);
	return matched ? 0 : -1;
}

/*
 * supervisorctl's "ERROR (no such file)" (or "not executable") for a
 * restart: supervisord found nothing to exec, so the program never ran
 * and has no output to show.  And the process of a group whose restart
 * failed, so that its output can be shown before the switch back.
 */
int spawnerr;

void
note_spawn_error(void)
{
	if (find_bytes(tail, taillen, "(no such file)", 14) != NULL ||
	    find_bytes(tail, taillen, "(file is not executable)", 24) != NULL)
		spawnerr = 1;
}

const char *
spawn_why(void)
{
	static char buf[600];

	snprintf(buf, sizeof(buf), "supervisord found no file to run: the "
	    "command= of [program:%.*s] names a file that is not in the "
	    "release, or not executable (for .venv/bin/NAME: is the package "
	    "that provides NAME in %s?)", (int)strcspn(cfg.program, ":"),
	    cfg.program, cfg.requirements);
	return buf;
}

int
is_group(void)
{
	size_t n;

	if (cfg.program == NULL || cfg.restart != NULL)
		return 0;
	n = strlen(cfg.program);
	return n > 2 && strcmp(cfg.program + n - 2, ":*") == 0;
}

/* supervisorctl status NAME: one member per line that names NAME (or a
 * process of the group when NAME is "web:*"); returns how many, or -1
 * (said in the log and in members_why) when it cannot see them all: more
 * than max, a name of 256 bytes or more, an answer larger than it reads.
 * A roll must never restart part of a group and report it done. */
char members_why[160];

int
group_members(const char *sha, const char *name, struct member *m, int max)
{
	struct runopts o = opts("/", ENV_NONE, NULL, sha);
	char out[65536], *p, *line, *save, **argv, first[1024];
	size_t plen = strlen(name);
	struct result r;
	int n = 0;

	if (plen > 2 && strcmp(name + plen - 2, ":*") == 0)
		plen--;		/* "web:" */
	else
		plen = 0;	/* the exact name */
	argv = words_plus(cfg.supervisorctl, "status", name, (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	out[0] = '\0';
	if (o.timeout == 0 || o.timeout > 60)
		o.timeout = 60;
	run(argv, &o, &r);	/* non-zero when some are not running */
	free_words(argv);
	members_why[0] = '\0';
	if (strlen(out) >= sizeof(out) - 1)
		snprintf(members_why, sizeof(members_why), "supervisorctl "
		    "status %.40s says more than %zu bytes", name, sizeof(out));
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (n == max) {
			snprintf(members_why, sizeof(members_why), "more than "
			    "%d processes in %.40s", max, name);
			break;
		}
		if (two_words(line, m[n].name, sizeof(m[n].name), m[n].state,
		    sizeof(m[n].state)) != 2) {
			if (two_words(line, first, sizeof(first), NULL, 0) &&
			    strlen(first) >= sizeof(m[n].name) &&
			    strncmp(first, name, plen ? plen : strlen(name)) == 0)
				snprintf(members_why, sizeof(members_why),
				    "a process name of %zu bytes in %.40s",
				    strlen(first), name);
			continue;
		}
		/* the exact name, or a process of the group NAME ("web:web_0") */
		if (plen ? strncmp(m[n].name, name, plen) != 0 ||
		    m[n].name[plen] == '\0' : strcmp(m[n].name, name) != 0 &&
		    (strncmp(m[n].name, name, strlen(name)) != 0 ||
		    m[n].name[strlen(name)] != ':'))
			continue;
		m[n].pid = (p = strstr(line, "pid ")) ? strtol(p + 4, NULL,
		    10) : 0;
		n++;
	}
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
	int n = group_members(cursha, cfg.program, m, max), i;

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
		snprintf(what, wl, "supervisorctl status %s names %s",
		    cfg.program, n == 0 ? "no process" : members_why);
		return 2;
	}
	for (i = 0; i < n; i++) {
		if (strcmp(m[i].state, "RUNNING") != 0)
			snprintf(what, wl, "%s %.255s was %s", strcmp(m[i].name,
			    cfg.program) == 0 ? "program" : "process", m[i].name,
			    m[i].state);
		else if (rs[i][0] && strcmp(rs[i], cursha) != 0)
			snprintf(what, wl, "%s %.255s ran %.12s, not current",
			    strcmp(m[i].name, cfg.program) == 0 ? "program" :
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
