/*
 * deploy.c: the rest of the program, on its way to files of its own.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE		/* d_type, so a tree walk needs no stat per entry */

#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#ifndef FICLONE
#define FICLONE	_IOW(0x94, 9, int)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE	(1 << 1)
#endif
#endif

#include "core.h"
#include "order.h"
#include "sha256.h"
#include "json.h"
#include "run.h"
#include "msg.h"
#include "files.h"
#include "jsonout.h"
#include "sig.h"
#include "root.h"
#include "report.h"
#include "config.h"
#include "history.h"
#include "output.h"
#include "child.h"
#include "lock.h"
#include "releases.h"
#include "rmtree.h"
#include "supervisor.h"
#include "preflight.h"
#include "build.h"
#include "fetch.h"
#include "verify.h"
#include "prune.h"
#include "switch.h"
#include "audit.h"
#include "pause.h"
#include "converge.h"
#include "notify.h"
#include "cleanup.h"
#include "readroot.h"
#include "dryrun.h"

/*
 * The one place where a pause or a resume is known to be done (recorded
 * durably): what else must hear of it (an audit trail) hooks here.
 */
static void
pause_event(const char *event, const struct pauserec *p)
{
	if (strcmp(event, "pause") == 0)
		say("paused by %s (uid %ld)%s%s: deploy and prepare refuse "
		    "(exit 3) until 'deploy resume'", p->user, p->uid,
		    p->reason[0] ? ": " : "", p->reason);
	else
		say("resumed (was paused by %s since %s)", p->user,
		    p->since ? fmttime(p->since) : "?");
	if (strcmp(event, "pause") == 0)	/* resume: once its run ends */
		audit_event(event, EXIT_OK, cursha, NULL, p->reason[0] ?
		    p->reason : NULL);
}

static int
cmd_pause(int argc, char **argv)
{
	struct pauserec p, old;
	char buf[1024];
	const char *r;
	size_t rl = 0;
	int i, n;

	need_deploy_root();
	if (nflag) {
		say("would pause: deploy and prepare would refuse (exit 3) "
		    "until 'deploy resume'");
		return EXIT_OK;
	}
	need_state();
	memset(&p, 0, sizeof(p));
	for (i = 1; i < argc && rl < sizeof(p.reason) - 1; i++)
		rl += (size_t)snprintf(p.reason + rl, sizeof(p.reason) - rl,
		    "%s%s", rl ? " " : "", argv[i]);
	cut_utf8(p.reason, printable(p.reason), sizeof(p.reason));
	p.uid = (long)getuid();
	if ((r = login_name()) == NULL)
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
static int
cmd_resume(void)
{
	static struct pauserec p;	/* its reason outlives us: the audit */
	int st;

	need_current_sane();
	if (nflag) {
		say("would end the pause, if any, finish a pending switch and "
		    "make sure the program runs current");
		return EXIT_OK;
	}
	need_state();
	byhand = 1;
	lock_root("resume");
	audit_cmd = "resume";
	if (!pause_read(&p)) {
		say("not paused");
	} else {
		if (unlinkat(statefd, "pause", 0) == -1 || fsync(statefd) == -1)
			die(FAIL_STATUS, "%s/%s/pause: %s", root, STATE,
			    strerror(errno));
		pause_event("resume", &p);
		audit_detail = p.reason[0] ? p.reason : NULL;
	}
	if ((st = cleanup()) != EXIT_OK)
		return st;
	return converge(1, NULL);
}

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

/* Every key, commented out, with its default and what it means. */
static const char conf_template[] =
"# deploy(1) configuration: key = value; '#' starts a comment line.\n"
"# Commands are split into words as sh does (quotes, backslash) and run\n"
"# without a shell, in the release, with its .venv/bin first on PATH.\n"
"repo = %s\n"
"%s%s%s"
"# branch = (the remote's HEAD)  # branch, tag or commit deployed by default\n"
"# keep = 5                  # complete releases kept by prune (at least 2)\n"
"# virtualenv = virtualenv -p python3  # makes a venv; its path is appended\n"
"#                           # (python3 -m venv where virtualenv is missing)\n"
"# requirements = requirements.txt  # pip installs it; skipped when absent\n"
"# reuse_venv = yes          # share a venv between releases with the same\n"
"#                           # requirements (never with local paths)\n"
"# build =                   # run after pip, before the tests\n"
"# test = python -m pytest   # the app's tests; none: the step is skipped\n"
"# program = app             # supervisord program (or group:*) restarted\n"
"#                           # after the switch; none: no restart\n"
"# supervisorctl = supervisorctl  # e.g. supervisorctl -c /etc/supervisor/supervisord.conf\n"
"# restart =                 # a command used instead of supervisorctl restart\n"
"# check =                   # health check after the restart, retried until\n"
"#                           # it passes or check_timeout ends\n"
"# check_timeout = 30        # seconds\n"
"# link =                    # paths under shared/ linked into each release\n"
"# envfile =                 # KEY=VALUE file under shared/ for build, test\n"
"#                           # and check\n"
"# timeout = 1800            # seconds one step may run; 0 for none\n"
"# migrate =                 # after the tests, right before the switch\n"
"#                           # (python manage.py migrate --noinput)\n"
"# notify =                  # after every deploy, activate and rollback\n"
"#                           # that built, migrated, switched, restarted\n"
"#                           # or switched back a release; gets DEPLOY_EVENT,\n"
"#                           # DEPLOY_STATUS, DEPLOY_REVISION, DEPLOY_PREVIOUS,\n"
"#                           # DEPLOY_LOG, DEPLOY_ACTOR\n";

/* shared/deploy.conf: written when absent, else only compared */
static void
init_config(const char *url, const char *branch)
{
	const char *conf = "shared/deploy.conf";
	char *text, *buf, err[ERRLEN];
	struct config old;
	struct stat st;
	size_t len;
	int fd;

	if (fstatat(rootfd, conf, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		config_init(&old);
		if ((buf = read_file_at(rootfd, conf, CONF_MAX, &len, NULL)) !=
		    NULL && config_parse(&old, buf, len, conf, err,
		    sizeof(err)) == 0 && strcmp(old.repo, url) != 0)
			say("shared/deploy.conf already there; left as it is: "
			    "it still names repo = %s, not %s (edit it to "
			    "deploy from %s)", old.repo, url, url);
		else
			say("shared/deploy.conf already there; left as it is");
		free(buf);
		config_free(&old);
		return;
	}
	text = fmtpath(conf_template, url, branch ? "branch = " : "",
	    branch ? branch : "", branch ? "\n" : "");
	if ((fd = openat(rootfd, conf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0644)) == -1 || write_all(fd, text, strlen(text)) == -1 ||
	    fsync(fd) == -1 || close(fd) == -1)
		die(FAIL_STATUS, "%s/%s: %s", root, conf, strerror(errno));
	say("created shared/deploy.conf: edit it, then run deploy");
	free(text);
}

static int
cmd_init(int argc, char **argv)
{
	struct stat st;
	struct runopts o;

	if (argc < 2 || argc > 3)
		die(EXIT_USAGE, "usage: deploy init URL [BRANCH]");
	if (argv[1][0] == '-' || argv[1][0] == '\0')
		die(EXIT_USAGE, "URL '%s' must not start with '-'",
		    printable(argv[1]));
	if (argc == 3 && !ref_ok(argv[2]))
		die(EXIT_USAGE, "branch '%s': not a usable ref",
		    printable(argv[2]));
	if (nflag) {
		say("would create %s with releases/, shared/, repo/ (mirror of "
		    "%s) and shared/deploy.conf", root, argv[1]);
		return EXIT_OK;
	}
	open_root(1);
	need_state();
	lock_root("init");
	if (mkdirat(rootfd, "releases", 0755) == 0)
		say("created releases/");
	else if (errno == EEXIST)
		say("releases/ already there");
	else
		die(FAIL_STATUS, "%s/releases: %s", root, strerror(errno));
	if (mkdirat(rootfd, "shared", 0755) == 0)
		say("created shared/");
	else if (errno == EEXIST)
		say("shared/ already there");
	else
		die(FAIL_STATUS, "%s/shared: %s", root, strerror(errno));
	if (fstatat(rootfd, "repo", &st, AT_SYMLINK_NOFOLLOW) == 0)
		say("repo/ already there; left as it is (deploy fetches from "
		    "the repo named in shared/deploy.conf)");
	else {
		cfg.timeout = 1800;
		o = opts(root, ENV_NONE, NULL, NULL);
		clone_mirror(argv[1], &o);
		say("created repo/ (a mirror of %s)", argv[1]);
	}
	init_config(argv[1], argc == 3 ? argv[2] : NULL);
	return EXIT_OK;
}

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

static int
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

static int
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
static int
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

/* log [REV]: a release's log (the newest log without REV); no lock */
static int
cmd_log(const char *rev)
{
	char best[128] = "", buf[8192];
	long long bestt = -1;
	struct dirent *d;
	struct stat st;
	size_t len = rev ? strlen(rev) : 0;
	int fd, hits = 0;
	ssize_t n;
	DIR *dp;

	need_readable();
	if (statefd == -1 || (fd = openat(statefd, "logs", O_RDONLY |
	    O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) == -1 ||
	    (dp = fdopendir(fd)) == NULL)
		die(EXIT_USAGE, "%s/%s/logs: no logs yet", root, STATE);
	while ((d = readdir(dp)) != NULL) {
		size_t l = strlen(d->d_name);

		if (l < 5 || l >= sizeof(best) || strcmp(d->d_name + l - 4,
		    ".log") != 0 || (rev && strncmp(d->d_name, rev, len) != 0) ||
		    fstatat(dirfd(dp), d->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISREG(st.st_mode))
			continue;
		hits++;
		if ((long long)st.st_mtime > bestt) {
			bestt = (long long)st.st_mtime;
			memcpy(best, d->d_name, l + 1);	/* l < sizeof(best) */
		}
	}
	if (rev && hits > 1)
		die(EXIT_USAGE, "REV '%s' is ambiguous: give more digits",
		    printable(rev));
	if (best[0] == '\0')
		die(EXIT_USAGE, "no log %s%sin %s/%s/logs", rev ? "of " : "",
		    rev ? printable(rev) : "", root, STATE);
	if ((fd = openat(dirfd(dp), best, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1)
		die(EXIT_USAGE, "%s/%s/logs/%s: %s", root, STATE, best,
		    strerror(errno));
	closedir(dp);
	fflush(stdout);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		put_output(stdout, buf, (size_t)n);
		if (ferror(stdout))
			break;
	}
	fflush(stdout);
	close(fd);
	return EXIT_OK;
}

#define SUBJ	61	/* a subject in list, cut to fit */

/* Each release's commit subject, from the mirror, in one git process. */
static char (*release_subjects(void))[SUBJ]
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char (*subj)[SUBJ] = xrealloc(NULL, (nrel + 1) * SUBJ), **argv;
	char *out, *line, *save;
	size_t i, n = 0;
	struct stat st;
	struct result r;
	long k;

	memset(subj, 0, (nrel + 1) * SUBJ);
	if (fstatat(rootfd, "repo", &st, 0) == -1)
		return subj;
	argv = words_plus("git", gitdir(), "log", "--no-walk=unsorted",
	    "--ignore-missing", "--format=%H %s", "--end-of-options",
	    (char *)NULL);
	for (n = 0; argv[n]; n++)
		;
	for (i = 0; i < nrel; i++)
		if (rel[i].state != R_FOREIGN) {
			argv = xrealloc(argv, (n + 2) * sizeof(*argv));
			argv[n++] = xstrdup(rel[i].name);
			argv[n] = NULL;
		}
	out = xrealloc(NULL, 1 << 20);
	out[0] = '\0';
	o.out = out;
	o.outlen = 1 << 20;
	o.timeout = 60;
	if (argv[n - 1][0] != '-' && run(argv, &o, &r) == 0)
		for (line = strtok_r(out, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			char *sp = strchr(line, ' ');

			if (sp == NULL)
				continue;
			*sp = '\0';
			if ((k = release_find(rel, nrel, line)) >= 0)
				cut_utf8(subj[k], sp + 1, SUBJ);
		}
	free(out);
	free_words(argv);
	return subj;
}

static int
cmd_list(void)
{
	char why[PATH_MAX * 2], row[PATH_MAX + 1400], (*subj)[SUBJ], who[1100];
	const char *mark;
	long cur, rb;
	size_t i;
	int n;

	need_deploy_root();
	if (statefd != -1)
		history_load();
	read_current(why, sizeof(why));
	scan_releases();
	cur = cur_index();
	rb = rollback_target(rel, nrel, cur);
	subj = release_subjects();
	if (jflag)
		printf("{\"root\": ");
	if (jflag) {
		json_str(root);
		printf(", \"releases\": [");
	}
	for (i = 0; i < nrel; i++) {
		mark = (long)i == cur ? "current" : (long)i == rb ? "rollback" :
		    "-";
		if (jflag) {
			printf("%s\n  {", i ? "," : "");
			json_field("sha", rel[i].name, 0);
			json_field("state", state_name(rel[i].state), 1);
			json_time("completed", rel[i].completed);
			json_time("activated", rel[i].activated);
			printf(", \"current\": %s, \"rollback\": %s",
			    (long)i == cur ? "true" : "false",
			    (long)i == rb ? "true" : "false");
			json_field("subject", subj[i], 1);
			json_field("signer", signer_of(rel[i].name, who,
			    sizeof(who)), 1);
			putchar('}');
			continue;
		}
		/* padded columns, but no trailing spaces */
		n = snprintf(row, sizeof(row), "%-40s  %-10s  %-19s  %-8s  %s%s%s",
		    rel[i].name, state_name(rel[i].state),
		    fmttime(rel[i].completed), mark, printable(subj[i]),
		    *signer_of(rel[i].name, who, sizeof(who)) ? "  signed by " : "",
		    who);
		if (n < 0)
			continue;
		if ((size_t)n >= sizeof(row))
			n = (int)sizeof(row) - 1;
		while (n > 0 && row[n - 1] == ' ')
			n--;
		printf("%.*s\n", n, row);
	}
	if (jflag)
		printf("\n]}\n");
	free(subj);
	return EXIT_OK;
}

static const char *
status_config(void)
{
	static char why[PATH_MAX + ERRLEN];
	char *path = confopt ? xstrdup(confopt) : fmtpath("%s/shared/deploy.conf",
	    root), *buf, err[ERRLEN + PATH_MAX];
	struct stat st;
	size_t len;
	int fd;

	config_init(&cfg);
	why[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1 ||
	    fstat(fd, &st) == -1)
		snprintf(why, sizeof(why), "%s: %s", path, strerror(errno));
	else if ((st.st_uid != geteuid() && st.st_uid != 0) ||
	    (st.st_mode & 022) != 0)
		snprintf(why, sizeof(why), "%s: not trusted (owner or mode)",
		    path);
	if (fd != -1)
		close(fd);
	buf = why[0] ? NULL : read_file_at(AT_FDCWD, path, CONF_MAX, &len,
	    NULL);
	if (why[0] == '\0' && buf == NULL)
		snprintf(why, sizeof(why), "%s: %s", path, strerror(errno));
	else if (buf != NULL && config_parse(&cfg, buf, len, path, err,
	    sizeof(err)) == -1)
		snprintf(why, sizeof(why), "%s", err);
	free(buf);
	if (why[0] == '\0' && cfg.supervisorctl == NULL)
		cfg.supervisorctl = xstrdup("supervisorctl");
	free(path);
	return why[0] ? why : NULL;
}

/* the program's processes: state, pid, release they run */
static void
status_program(void)
{
	static struct member m[MAXMEMBERS];
	const char *why = status_config();
	char rs[65];
	int n = 0, i;

	if (why == NULL && cfg.program != NULL && cursha[0] &&
	    (n = group_members(cursha, cfg.program, m, MAXMEMBERS)) < 0)
		why = members_why;	/* never a part of the group */
	if (jflag) {
		if (why != NULL || cfg.program == NULL) {
			printf(", \"program\": null");
			return;
		}
		printf(", \"program\": {");
		json_field("name", cfg.program, 0);
		printf(", \"processes\": [");
		for (i = 0; i < n; i++) {
			proc_release(m[i].pid, rs);
			printf("%s{", i ? ", " : "");
			json_field("name", m[i].name, 0);
			json_field("state", m[i].state, 1);
			if (m[i].pid > 0)
				printf(", \"pid\": %ld", m[i].pid);
			else
				printf(", \"pid\": null");
			json_field("release", rs, 1);
			printf(", \"current\": %s}", rs[0] &&
			    strcmp(rs, cursha) == 0 ? "true" : "false");
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
		printf("program: %s: supervisorctl status names no process\n",
		    cfg.program);
	for (i = 0; i < n; i++) {
		proc_release(m[i].pid, rs);
		printf("program: %s %s", m[i].name, m[i].state);
		if (m[i].pid > 0)
			printf(" pid %ld", m[i].pid);
		if (rs[0])
			printf(" (releases/%s%s)", rs, strcmp(rs, cursha) == 0 ?
			    ", current" : ", NOT current");
		putchar('\n');
	}
}

/* a switch a run left unfinished, and a pause */
static void
status_pending_pause(void)
{
	static const char *next[] = { "", "restart next", "check next",
	    "prune next", "switch back next" };
	struct pending p;
	struct pauserec pr;
	int paused = pause_read(&pr);

	memset(&p, 0, sizeof(p));
	if (statefd != -1)
		pending_load(&p, 0);
	if (jflag) {
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
		printf("paused: by %s (uid %ld) since %s%s%s\n", pr.user, pr.uid,
		    fmttime(pr.since), pr.reason[0] ? ": " : "", pr.reason);
	else
		printf("paused: no\n");
}

static int
cmd_status(void)
{
	char why[PATH_MAX * 2], what[64];
	long cur, rb, pid = 0;
	long long t = 0;
	int c, held, fd;

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
	if (jflag) {
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
	}
	return c == CUR_OK || c == CUR_NONE ? EXIT_OK : EXIT_STUCK;
}

static int
cmd_prune(void)
{
	int st;

	need_current_sane();
	if (nflag) {
		history_load();
		scan_releases();
		do_prune(0);
		return EXIT_OK;
	}
	need_state();
	lock_root("prune");
	audit_cmd = "prune";
	if ((st = cleanup()) != EXIT_OK)
		return st;
	do_prune(0);
	return converge(0, NULL);
}

/* One line of the text view: when, what, status, revision, who. */
static void
audit_show(const char *line)
{
	static const char *extra[][2] = { { "actor", "by " },
	    { "sudo_user", "sudo from " }, { "ssh_client", "ssh " },
	    { "github_run_id", "github run " }, { "ci_job_url", "gitlab " },
	    { "circle_build_url", "circleci " }, { "tty", "on " },
	    { "signer", "signed by " }, { "refused", "REFUSED: " },
	    { "detail", "" } };
	char v[5][80], x[1100], port[16];
	size_t i;

	printf("%s  %-8s  %3s  %-12.12s  %s(%s)",
	    *audit_get(line, "time", v[0], sizeof(v[0])) ? v[0] : "?",
	    audit_get(line, "event", v[1], sizeof(v[1])),
	    audit_get(line, "status", v[2], sizeof(v[2])),
	    *audit_get(line, "revision", v[3], sizeof(v[3])) ? v[3] : "-",
	    audit_get(line, "user", x, sizeof(x)),
	    audit_get(line, "uid", v[4], sizeof(v[4])));
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		if (*audit_get(line, extra[i][0], x, sizeof(x)) == '\0' ||
		    (i == 0 && strcmp(x, audit_get(line, "user", v[0],
		    sizeof(v[0]))) == 0))
			continue;
		printf("  %s%s", extra[i][1], printable(x));
		if (i == 2 && *audit_get(line, "ssh_port", port, sizeof(port)))
			printf(":%s", printable(port));
	}
	putchar('\n');
}

/* Each line must start with the hash of the one before; 0 when all do. */
static int
audit_check(const char *buf, size_t len)
{
	char prev[65] = AUDIT_ZERO, before[65] = "", head[128], *h;
	const char *p = buf, *e = buf + len, *nl;
	size_t n, lineno = 0, hl;

	for (; p < e; p = nl + 1) {
		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(e - p))) == NULL)
			die(EXIT_FAILED, "%s/%s/audit line %zu: not ended by a "
			    "newline (a write cut short?)", root, STATE, lineno);
		/* cppcheck-suppress nullPointerArithmeticRedundantCheck */
		n = (size_t)(nl - p);
		if (n < 77 || strncmp(p, "{\"prev\": \"", 10) != 0 ||
		    p[74] != '"' || p[n - 1] != '}')
			die(EXIT_FAILED, "%s/%s/audit line %zu: not an audit "
			    "record", root, STATE, lineno);
		if (memcmp(p + 10, prev, 64) != 0) {
			if (lineno == 1)
				die(EXIT_FAILED, "%s/%s/audit line 1: does not "
				    "start the trail: a line before it was "
				    "removed, or it was changed", root, STATE);
			die(EXIT_FAILED, "%s/%s/audit line %zu: does not follow "
			    "line %zu: line %zu was changed or removed, or this "
			    "one was changed", root, STATE, lineno, lineno - 1,
			    lineno - 1);
		}
		memcpy(before, prev, sizeof(prev));
		sha256_hex(p, n, prev);
	}
	/* the last line has no next one: audit-head stands for it (or for
	 * the line before, when a crash came between the two writes) */
	h = read_file_at(statefd, "audit-head", 100, &hl, NULL);
	if (h != NULL)
		snprintf(head, sizeof(head), "%.64s", h);
	free(h);
	if (h == NULL && lineno > 0)
		die(EXIT_FAILED, "%s/%s/audit-head: %s", root, STATE,
		    strerror(errno));
	if (h != NULL && strcmp(head, prev) != 0 && strcmp(head, before) != 0)
		die(EXIT_FAILED, "%s/%s/audit line %zu (the last): does not "
		    "match audit-head: it was changed, or lines after it were "
		    "removed", root, STATE, lineno);
	say("%s/%s/audit: %zu lines, each follows the one before", root,
	    STATE, lineno);
	return EXIT_OK;
}

/* audit [--json] [-n N] | audit --verify */
static int
cmd_audit(const char *arg)
{
	const char *p, *nl, *e, **start = NULL;
	long want = LONG_MAX;
	size_t len = 0, nstart = 0, i;
	char *buf, *line = NULL;

	if (arg != NULL && (!nflag || parse_long(arg, 1, LONG_MAX, &want) == -1))
		die(EXIT_USAGE, "usage: deploy audit [--json] [-n N] | deploy "
		    "audit --verify");
	if (nflag && arg == NULL)
		die(EXIT_USAGE, "audit -n N: give how many lines");
	need_deploy_root();
	if (statefd == -1 || (buf = read_file_at(statefd, "audit", (size_t)1 <<
	    30, &len, NULL)) == NULL) {
		if (statefd != -1 && errno != ENOENT)
			die(EXIT_FAILED, "%s/%s/audit: %s", root, STATE,
			    strerror(errno));
		buf = xstrdup("");
	}
	if (verifyflag)
		return audit_check(buf, len);
	e = buf + len;
	for (p = buf; p < e; p = nl + 1) {
		start = xrealloc(start, (nstart + 1) * sizeof(*start));
		start[nstart++] = p;
		if ((nl = memchr(p, '\n', (size_t)(e - p))) == NULL)
			break;
	}
	for (i = nstart > (size_t)want ? nstart - (size_t)want : 0;
	    i < nstart; i++) {
		p = start[i];
		if ((nl = memchr(p, '\n', (size_t)(e - p))) == NULL)
			nl = e;
		line = xrealloc(line, (size_t)(nl - p) + 1);
		memcpy(line, p, (size_t)(nl - p));
		line[nl - p] = '\0';
		if (jflag)
			printf("%s\n", line);
		else
			audit_show(line);
	}
	free(start);
	free(line);
	free(buf);
	return EXIT_OK;
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
