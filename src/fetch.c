/*
 * fetch.c: the mirror: fetch, and turning a REF into a commit.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fetch.h"
#include "child.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "msg.h"
#include "output.h"
#include "rmtree.h"
#include "root.h"
#include "sig.h"

/* The bare mirror in repo/: cloned under a temp name, then renamed in. */
void
clone_mirror(const char *url, struct runopts *o)
{
	char *tmp = fmtpath("%s/%s/repo.tmp", root, STATE);
	char **av = words_plus("git", "clone", "--mirror", "--quiet", "--",
	    url, tmp, (char *)NULL);
	struct result r;

	remove_in(statefd, STATE, "repo.tmp");
	if (run_step("clone", av, o, &r) == -1) {
		remove_in(statefd, STATE, "repo.tmp");
		leave(r.signo ? 128 + r.signo : EXIT_FAILED);
	}
	if (renameat(statefd, "repo.tmp", rootfd, "repo") == -1)
		die(FAIL_STATUS, "rename %s to %s/repo: %s", tmp, root,
		    strerror(errno));
	if (fsync(rootfd) == -1)
		warnx("fsync %s: %s", root, strerror(errno));
	free_words(av);
	free(tmp);
}

/* 1. fetch: every fetch happens in the mirror, never in a release */
void
step_fetch(void)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	struct stat st;
	struct result r;
	char **argv;

	o.record = 1;	/* a killed fetch's helpers are ended by the next run */
	if (fstatat(rootfd, "repo", &st, 0) == -1) {
		clone_mirror(cfg.repo, &o);
		return;
	}
	/* the mirror's housekeeping waits for prune, off the no-op path */
	argv = words_plus("git", gitdir(), "fetch", "--prune", "--quiet",
	    "--no-auto-maintenance", "--end-of-options", cfg.repo,
	    "+refs/heads/*:refs/heads/*",
	    "+refs/tags/*:refs/tags/*", (char *)NULL);
	if (run_step("fetch", argv, &o, &r) == -1)
		leave(r.signo ? 128 + r.signo : EXIT_FAILED);
	free_words(argv);
}

/*
 * A branch name git's rules would make a path of: no "..", no part that
 * starts with '.' or ends in ".lock", none of ~^:?*[\\ or "@{".
 */
static int
plain_branch(const char *r)
{
	const char *p;

	if (strstr(r, "..") || strstr(r, "//") || strstr(r, "@{") ||
	    strstr(r, "/.") || strstr(r, ".lock") || *r == '.' || *r == '/' ||
	    r[strlen(r) - 1] == '/' || strpbrk(r, "~^:?*[\\") != NULL)
		return 0;
	for (p = r; *p; p++)
		if (!isdigit((unsigned char)*p) && (*p < 'a' || *p > 'f'))
			return 1;
	return 0;	/* all hex: git may read it as an object name */
}

/* The sha of a full refname in the mirror, loose or packed; 0 when found. */
static int
read_ref(int gfd, const char *name, char *sha)
{
	char *buf, *line, *save, *sp;
	size_t len;
	int found = -1;

	if ((buf = read_file_at(gfd, name, 200, &len, NULL)) != NULL) {
		buf[strcspn(buf, "\n")] = '\0';
		if (is_sha(buf)) {
			copy_sha(sha, buf);
			found = 0;
		}
		free(buf);
		return found;	/* a loose ref wins; a symref is not for here */
	}
	if ((buf = read_file_at(gfd, "packed-refs", 256 << 20, &len, NULL)) == NULL)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line != NULL && found;
	    line = strtok_r(NULL, "\n", &save))
		if ((sp = strchr(line, ' ')) != NULL && strcmp(sp + 1, name) == 0) {
			*sp = '\0';
			if (is_sha(line)) {
				copy_sha(sha, line);
				found = 0;
			}
		}
	free(buf);
	return found;
}

/*
 * REF without a git process, where that is unambiguous: HEAD, or a branch
 * that no tag and no other ref git looks at first shares a name with.
 * Anything else is git's to resolve. 0 when resolved.
 */
int
resolve_local(const char *ref, char *sha)
{
	char *head = NULL, *name = NULL, *alt, tmp[65];
	struct stat st;
	const char *try[] = { "%s", "refs/%s", "refs/tags/%s" };
	int gfd, r = -1;
	size_t len, i;

	if ((gfd = openat(rootfd, "repo", O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) == -1)
		return -1;
	if (strcmp(ref, "HEAD") == 0) {
		if ((head = read_file_at(gfd, "HEAD", 300, &len, NULL)) != NULL &&
		    strncmp(head, "ref: refs/heads/", 16) == 0) {
			head[strcspn(head, "\n")] = '\0';
			if (plain_branch(head + 16))
				name = xstrdup(head + 5);
		}
	} else if (plain_branch(ref)) {
		name = fmtpath("refs/heads/%s", ref);
		for (i = 0; i < sizeof(try) / sizeof(try[0]); i++) {
			alt = fmtpath(try[i], ref);
			if (read_ref(gfd, alt, tmp) == 0 ||
			    fstatat(gfd, alt, &st, AT_SYMLINK_NOFOLLOW) == 0) {
				free(name);
				name = NULL;
			}
			free(alt);
		}
	}
	if (name != NULL)
		r = read_ref(gfd, name, sha);
	free(name);
	free(head);
	close(gfd);
	return r;
}

/*
 * The one runner of git rev-parse --verify --quiet SPEC^{commit} in the
 * mirror (spec never starts with '-': ref_ok, or a sha): 0 when git names
 * a commit, its first line of output in out (RP_OUT bytes); -1 when not,
 * r saying how git ended.
 */
int
rev_parse_commit(const char *spec, char out[RP_OUT], struct result *r)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char *arg = fmtpath("%s^{commit}", spec), **argv;
	int st;

	argv = words_plus("git", gitdir(), "rev-parse", "--verify", "--quiet",
	    arg, (char *)NULL);
	o.out = out;
	o.outlen = RP_OUT;
	out[0] = '\0';
	st = run(argv, &o, r);
	out[strcspn(out, "\n")] = '\0';
	free_words(argv);
	free(arg);
	return st;
}

/* 2. resolve: REF to a full object id, checked before it is a path */
void
resolve(const char *ref, char *sha)
{
	char out[RP_OUT];
	struct result r;

	if (!ref_ok(ref))
		die(EXIT_USAGE, "ref '%s': not a usable ref (empty, starts "
		    "with '-', or holds spaces or control characters)",
		    printable(ref));
	step_begin("resolve");
	if (resolve_local(ref, sha) == 0) {
		step_ok("resolve");
		return;
	}
	if (rev_parse_commit(ref, out, &r) == -1) {
		if (r.signo)
			leave(128 + r.signo);
		step_fail("resolve", "not found", 0);
		die(EXIT_USAGE, "ref '%s': no such branch, tag or commit in %s",
		    printable(ref), cfg.repo);
	}
	if (!is_sha(out))
		die(EXIT_FAILED, "git rev-parse printed '%.80s', not an object id",
		    out);
	strcpy(sha, out);
	step_ok("resolve");
}

/*
 * For -n: what REF names on the remote now, asked with ls-remote so that
 * not even the mirror changes. 0 and sha set when found; -1 when the
 * remote does not list it (a commit id); -2 when git could not ask the
 * remote, its last line of error in gerr.
 */
int
ls_remote(const char *ref, char *sha, char *gerr, size_t gl)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char *out, *line, *save, *tab, *want[4], *peeled;
	size_t outlen = 1 << 20;
	struct result r;
	char **argv;
	int best = 4, i;

	want[0] = fmtpath("refs/tags/%s^{}", ref);
	want[1] = fmtpath("refs/tags/%s", ref);
	want[2] = fmtpath("refs/heads/%s", ref);
	want[3] = xstrdup(ref);
	/* an annotated tag's commit is listed only when asked by its "^{}"
	 * name: without it, -n would name the tag object, not the commit */
	peeled = fmtpath("%s^{}", ref);
	argv = words_plus("git", "ls-remote", "--end-of-options", cfg.repo, ref,
	    peeled, (char *)NULL);
	free(peeled);
	out = xrealloc(NULL, outlen);
	out[0] = '\0';
	o.out = out;
	o.outlen = outlen;
	o.bothout = 1;
	gerr[0] = '\0';
	if (run(argv, &o, &r) == -1) {
		if (r.signo)
			leave(128 + r.signo);
		/* git's first "fatal:" line says why; the rest is advice */
		for (line = strtok_r(out, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save))
			if (strchr(line, '\t') == NULL && *trim(line) != '\0' &&
			    (gerr[0] == '\0' || (strncmp(gerr, "fatal:", 6) != 0 &&
			    strncmp(trim(line), "fatal:", 6) == 0)))
				snprintf(gerr, gl, "%s", printable(trim(line)));
		if (gerr[0] == '\0')
			snprintf(gerr, gl, "%s", why_failed(&r, "git", o.timeout));
		best = 5;
	} else
		for (line = strtok_r(out, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			if ((tab = strchr(line, '\t')) == NULL)
				continue;
			*tab++ = '\0';
			for (i = 0; i < best; i++)
				if (strcmp(tab, want[i]) == 0 && is_sha(line)) {
					best = i;
					copy_sha(sha, line);
				}
		}
	for (i = 0; i < 4; i++)
		free(want[i]);
	free_words(argv);
	free(out);
	return best < 4 ? 0 : best == 5 ? -2 : -1;
}

/* -n: what deploy would do, from the remote as it is now */

/* REF in the mirror without a step line or an error; 0 when found */
int
mirror_sha(const char *ref, char *sha)
{
	char out[RP_OUT];
	struct result r;

	if (resolve_local(ref, sha) == 0)
		return 0;
	if (rev_parse_commit(ref, out, &r) == -1 || !is_sha(out))
		return -1;
	copy_sha(sha, out);
	return 0;
}
