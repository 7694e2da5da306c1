/*
 * dryrun.c: deploy -n: what a deploy would do, changing nothing.
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

#include "dryrun.h"
#include "child.h"
#include "cmdline.h"
#include "config.h"
#include "core.h"
#include "deps.h"
#include "fetch.h"
#include "files.h"
#include "history.h"
#include "msg.h"
#include "order.h"
#include "preflight.h"
#include "releases.h"
#include "rmtree.h"
#include "root.h"
#include "switch.h"
#include "verify.h"

/*
 * What a deploy brings: how many commits lie between current and sha,
 * their subjects, and a warning when sha is behind current. From the
 * mirror; nothing when it does not have both.
 */
static int
say_commits_in(const char *gd, const char *sha)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char out[8192], *range, **argv, *line, *save;
	long behind = 0, ahead = 0, n = 0;
	struct result r;

	if (options->quiet || cursha[0] == '\0' || strcmp(cursha, sha) == 0)
		return 0;
	o.out = out;
	o.outlen = sizeof(out);
	o.timeout = 60;
	range = fmtpath("%s...%s", cursha, sha);
	argv = words_plus("git", gd, "rev-list", "--left-right", "--count",
	    "--end-of-options", range, (char *)NULL);
	out[0] = '\0';
	{
		char *f[2];

		if (run(argv, &o, &r) == -1 || fields(out, f, 2) != 2)
			behind = ahead = -1;
		else {
			behind = strtol(f[0], NULL, 10);
			ahead = strtol(f[1], NULL, 10);
		}
	}
	free_words(argv);
	free(range);
	if (ahead == -1)
		return -1;
	if (ahead == 0 && behind > 0)
		say("%.12s is %ld commit%s BEHIND current %.12s: this deploys an "
		    "older commit", sha, behind, behind == 1 ? "" : "s", cursha);
	if (ahead == 0)
		return 0;
	say("%ld new commit%s since %.12s%s:", ahead, ahead == 1 ? "" : "s",
	    cursha, behind > 0 ? ", which is not an ancestor" : "");
	range = fmtpath("%s..%s", cursha, sha);
	argv = words_plus("git", gd, "log", "--format=%s", "-n", "20",
	    "--end-of-options", range, (char *)NULL);
	out[0] = '\0';
	if (run(argv, &o, &r) == 0)
		for (line = strtok_r(out, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save), n++)
			say("  %s", printable(line));
	if (ahead > n && n > 0)
		say("  ... and %ld more", ahead - n);
	free_words(argv);
	free(range);
	return 0;
}

void
say_commits(const char *sha)
{
	say_commits_in(gitdir(), sha);
}

/*
 * -n: whether the commands of the steps can run, as far as that is known
 * before the release exists.  An absolute path is a file here; a path in
 * the release is a file in git's tree at sha, with mode 100755 (or a
 * link); a bare name is on PATH, or left to the release's .venv/bin.
 * notify runs in the root, without the venv.
 */
static const char *treegd;	/* the mirror, or -n's temporary fetch */

static void
dry_run_tree_path(const char *what, const char *path, const char *sha)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char out[1024], why[PATH_MAX + 200], **argv, **l;
	struct result r;

	while (strncmp(path, "./", 2) == 0)
		path += 2;
	argv = words_plus("git", treegd ? treegd : gitdir(), "ls-tree", sha,
	    "--", path, (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	out[0] = '\0';
	if (run(argv, &o, &r) == -1) {
		say("preflight: %s: not checked: %.12s is not in the mirror yet",
		    what, sha);
		free_words(argv);
		return;
	}
	free_words(argv);
	why[0] = '\0';
	if (strncmp(out, "100755 ", 7) == 0 || strncmp(out, "120000 ", 7) == 0)
		;
	else if (strncmp(out, "100644 ", 7) == 0)
		snprintf(why, sizeof(why), "%s is not executable in the "
		    "repository at %.12s (git update-index --chmod=+x %s, then "
		    "commit)", printable(path), sha, printable(path));
	else if (out[0] != '\0')
		snprintf(why, sizeof(why), "%s is not a file in the repository "
		    "at %.12s", printable(path), sha);
	else {
		char **links = cfg.link ? words(cfg.link) : NULL;
		int linked = strncmp(path, ".venv/", 6) == 0;

		for (l = links; l && *l && !linked; l++)
			linked = strncmp(path, *l, strlen(*l)) == 0 &&
			    (path[strlen(*l)] == '/' || path[strlen(*l)] == '\0');
		free_words(links);
		if (linked || cfg.build != NULL) {
			say("preflight: %s: %s is not in the repository: left to "
			    "the %s", what, printable(path), linked ? "venv and "
			    "link steps" : "build command");
			return;
		}
		snprintf(why, sizeof(why), "%s is not in the repository at %.12s",
		    printable(path), sha);
	}
	preflight_result(what, why[0] ? why : NULL);
}

static void
dry_run_commands(const char *sha)
{
	const char *key[] = { "build", "test", "migrate", "restart", "check",
	    "notify" };
	char *cmd[6], **w, what[64], why[PATH_MAX + 64], found[PATH_MAX];
	struct stat st;
	size_t i;

	cmd[0] = cfg.build;
	cmd[1] = cfg.test;
	cmd[2] = cfg.migrate;
	cmd[3] = cfg.restart;
	cmd[4] = cfg.check;
	cmd[5] = cfg.notify;
	for (i = 0; i < 6; i++) {
		int notify = i == 5;

		if (cmd[i] == NULL || (i == 3 && cfg.restart != NULL &&
		    release_state(sha) == R_COMPLETE))
			continue;	/* an existing release: checked there */
		w = words(cmd[i]);
		snprintf(what, sizeof(what), "%s command", key[i]);
		why[0] = '\0';
		if (w[0][0] == '/' || (notify && strchr(w[0], '/') != NULL)) {
			if ((w[0][0] == '/' ? stat(w[0], &st) : fstatat(rootfd,
			    w[0], &st, 0)) == -1)
				snprintf(why, sizeof(why), "%s: %s", printable(
				    w[0]), strerror(errno));
			else if (!S_ISREG(st.st_mode) || (w[0][0] == '/' ?
			    access(w[0], X_OK) : faccessat(rootfd, w[0], X_OK,
			    0)) == -1)
				snprintf(why, sizeof(why), "%s is not an "
				    "executable file (chmod +x)", printable(w[0]));
			preflight_result(what, why[0] ? why : NULL);
		} else if (strchr(w[0], '/') != NULL)
			dry_run_tree_path(what, w[0], sha);
		else if (path_lookup(w[0], found, sizeof(found)) == 0)
			preflight_result(what, NULL);
		else if (notify) {
			snprintf(why, sizeof(why), "'%s' is not on PATH",
			    printable(w[0]));
			preflight_result(what, why);
		} else if (i != 3)	/* restart: preflight said it */
			say("preflight: %s: '%s' is not on PATH; left to the "
			    "release's .venv/bin", what, printable(w[0]));
		free_words(w);
	}
	if (release_state(sha) != R_COMPLETE)	/* else nothing is built */
		deps_way(treegd ? treegd : gitdir(), sha);
}

/*
 * For -n, when the mirror lacks the new commits: fetch REF into a
 * throwaway repository outside the root that borrows the mirror's objects
 * (alternates), so that nothing under the root changes.
 */
static void
say_commits_fetched(const char *ref, const char *sha)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	const char *tmp = getenv("TMPDIR");
	char dir[PATH_MAX], *alt, *objs, *gd, **argv;
	struct result r;
	int fd, ok;

	snprintf(dir, sizeof(dir), "%s/deploy-n.XXXXXX", tmp && *tmp == '/' ?
	    tmp : "/tmp");	/* never relative: git runs in the root */
	if (mkdtemp(dir) == NULL)
		return;
	o.timeout = cfg.timeout;
	argv = words_plus("git", "init", "--quiet", "--bare", dir, (char *)NULL);
	ok = run(argv, &o, &r) == 0;
	free_words(argv);
	alt = fmtpath("%s/objects/info/alternates", dir);
	objs = fmtpath("%s/repo/objects\n", root);
	if (ok && ((fd = open(alt, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0644)) == -1 || write_all(fd, objs, strlen(objs)) == -1 ||
	    close(fd) == -1))
		ok = 0;
	gd = fmtpath("--git-dir=%s", dir);
	argv = words_plus("git", gd, "fetch", "--quiet", "--no-tags",
	    "--end-of-options", cfg.repo, ref, (char *)NULL);
	if (ok && run(argv, &o, &r) == 0 && say_commits_in(gd, sha) == 0)
		;
	else
		say("(the commits since %.12s are not in the mirror yet)", cursha);
	treegd = gd;	/* the commit's tree is here, if the fetch worked */
	dry_run_commands(sha);
	treegd = NULL;
	free_words(argv);
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
		char *slash = strrchr(dir, '/');

		close(fd);
		*slash = '\0';
		if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) != -1) {
			remove_tree(fd, slash + 1, NULL);
			close(fd);
		}
	}
	free(gd);
	free(objs);
	free(alt);
}

static int
in_mirror(const char *sha)
{
	char out[RP_OUT];
	struct result r;

	return rev_parse_commit(sha, out, &r) == 0;
}

/* -n: the signature's verdict, where the mirror has the commit already */
static int
dry_run_verify(const char *ref, const char *sha)
{
	char out[RP_OUT];
	struct result r;
	int st;

	st = rev_parse_commit(sha, out, &r) == 0 ? check_signature(ref, sha) :
	    -3;
	if (st == 0)
		say("signature: good, by %s", signer);
	else if (st == -3)
		say("signature: not checked: %s is not in the mirror yet (a "
		    "deploy fetches it, then checks)", sha);
	else if (st == -2)	/* the remote moved the tag since the fetch */
		say("signature: not checked: the mirror's %s (the remote "
		    "moved it since the last fetch: a deploy fetches it, then "
		    "checks)", refusal);
	else {
		warnx("would refuse %.12s: %s", sha, refusal);
		return EXIT_FAILED;
	}
	return EXIT_OK;
}

/*
 * -n: what deploy would do, from the remote as it is now.  A remote that
 * cannot be reached is exit 1, the status the deploy itself would end
 * with at its fetch step (2 is kept for a wrong config or command line);
 * what the mirror knows is still shown, marked stale.
 */
int
dry_run_deploy(const char *ref, int prepare_only)
{
	char sha[65], gerr[512];
	const char *arg = ref;
	struct badhead b;
	long i;
	int st, lr, unreachable = 0;

	history_load();
	scan_releases();
	say("would fetch %s into %s/repo", cfg.repo, root);
	ref = ref ? ref : cfg.branch ? cfg.branch : "HEAD";
	if (!ref_ok(ref))
		die(EXIT_USAGE, "ref '%s': not a usable ref", printable(ref));
	if ((lr = ls_remote(ref, sha, gerr, sizeof(gerr))) == 0)
		say("%s is %s on the remote", ref, sha);
	else if (lr == -2) {
		unreachable = 1;
		warnx("cannot reach the remote %s: %s; a deploy now would fail "
		    "at its fetch step", printable(cfg.repo), gerr);
		if (mirror_sha(ref, sha) == -1) {
			warnx("and the mirror does not know %s either",
			    printable(ref));
			return preflight_failed ? EXIT_USAGE : EXIT_FAILED;
		}
		say("%s was %s in the mirror at its last fetch (stale: the "
		    "remote could not be asked)", ref, sha);
	} else {
		resolve(ref, sha);
		say("%s is %s in the mirror, as of the last fetch", ref, sha);
	}
	if ((say_commits_in(gitdir(), sha) == -1 || !in_mirror(sha)) &&
	    !unreachable)	/* its tree is read for the deps */
		say_commits_fetched(ref, sha);	/* and dry_run_commands */
	else
		dry_run_commands(sha);
	if (cfg.verify != VERIFY_OFF && (st = dry_run_verify(ref, sha)) != 0)
		return st;
	i = release_find(rel, nrel, sha);
	if (!prepare_only && strcmp(sha, cursha) != 0 &&
	    badhead_skips(arg, sha, &b))
		say("%s failed at %s (exit %d): would skip it (build, migrate "
		    "and switch nothing); retry: deploy %s, or push a new "
		    "commit", sha, fmttime(b.t), b.exit, sha);
	else if (strcmp(sha, cursha) == 0 && i >= 0 && rel[i].state == R_FAILED)
		say("%s is current but failed its last restart or check: "
		    "would %s", sha, prepare_only ? "do nothing (it is built)" :
		    "restart and check it again (a live release is never "
		    "rebuilt)");
	else if (strcmp(sha, cursha) == 0)
		say("%s is current: nothing to do", sha);
	else if (i >= 0 && rel[i].state == R_COMPLETE) {
		say("would switch to the existing release %s", sha);
		if (!prepare_only)
			need_restart_command(sha);
	} else
		say("would build releases/%s, test it, %s", sha, prepare_only ?
		    "and stop" : cfg.migrate ? "migrate, switch current to it, "
		    "restart and prune" : "switch current to it, restart and "
		    "prune");
	return preflight_failed ? EXIT_USAGE : unreachable ? EXIT_FAILED :
	    EXIT_OK;
}
