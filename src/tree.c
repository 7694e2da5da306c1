/*
 * tree.c: the whole tree: checkout, submodules and Git LFS content.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <ftw.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tree.h"
#include "child.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "output.h"
#include "partial.h"
#include "rmtree.h"
#include "root.h"

/*
 * A release is the commit's tree with each submodule read in at its
 * pinned commit (recursively, SUBDEPTH deep at most) and each LFS file's
 * content in place of its pointer, or the build fails: never a silently
 * incomplete tree. Each submodule has a bare mirror of its own,
 * ROOT/modules/HASH.git (HASH: of its URL), fetched only when the pinned
 * commit is not in it yet; STATE/uses/SHA names the mirrors release SHA
 * was read from, so that prune keeps those. Only path and url are read
 * from the commit's .gitmodules, and every git run here has
 * GIT_ALLOW_PROTOCOL, so that no URL runs a program. The LFS filter is
 * given on the command line: no system or user config is needed or
 * trusted.
 */
#define SUBDEPTH	5

#define TREEMAX		((size_t)64 << 20)	/* bytes of ls-tree output */

#define LFSHEAD		"version https://git-lfs.github.com/spec/v1"

static char allowproto[] = "GIT_ALLOW_PROTOCOL=file:ssh:https:git";

struct tree {
	char		*gd;		/* "--git-dir=MIRROR" */
	char		*url;
	char		 sha[65];
	char		*path;		/* in the release; "" for the top */
	int		 depth;
	const struct tree *up;
};

struct submod {
	char	*name, *path, *url;
};

static const char *tree_rel;	/* the release being built */

static char top_path[] = "";	/* the superproject's path in the release */

static char *tree_uses;		/* the mirrors it reads, one a line */

static void tree_fail(const char *, const char *, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

/* The build fails: one line saying why, after the step's FAILED line. */
static void
tree_fail(const char *step, const char *fmt, ...)
{
	char why[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	step_fail(step, why, 1);
	fail_build(tree_rel, EXIT_FAILED);
}

/* git ARGS... (up to a NULL); 0 when it exited 0. A signal ends the build. */
static int
tree_git(char *out, size_t outlen, struct result *r, ...)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char *extra[2] = { allowproto, NULL }, **argv;
	va_list ap;
	int rc;

	va_start(ap, r);
	argv = append_words(words("git"), ap);
	va_end(ap);
	o.extra = extra;
	o.record = 1;
	o.out = out;
	o.outlen = outlen;
	o.quiet = out != NULL;
	if (out != NULL)
		out[0] = '\0';
	rc = run(argv, &o, r);
	free_words(argv);
	if (r->signo)
		fail_build(tree_rel, 128 + r->signo);
	return rc;
}

/* Whether a .gitattributes (its blob oid) routes a path through LFS. */
static int
attr_lfs(const char *gd, const char *oid)
{
	char buf[65536], *line, *save;
	struct result r;

	if (tree_git(buf, sizeof(buf), &r, gd, "cat-file", "blob", oid,
	    (char *)NULL) == -1)
		return 0;
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		if (line[strspn(line, " \t")] != '#' &&
		    strstr(line, "filter=lfs") != NULL)
			return 1;
	return 0;
}

/*
 * The gitlinks of t's commit ("SHA PATH" each, NULL-terminated) and in
 * *lfs whether any of its .gitattributes names the LFS filter.
 */
static char **
tree_scan(const struct tree *t, const char *step, int *lfs)
{
	char *out = xrealloc(NULL, TREEMAX), *line, *save, *tab, *base;
	char **links = xrealloc(NULL, sizeof(*links));
	size_t n = 0;
	struct result r;

	links[0] = NULL;
	*lfs = 0;
	if (tree_git(out, TREEMAX, &r, "-c", "core.quotePath=false", t->gd,
	    "ls-tree", "-r", "--full-tree", t->sha, (char *)NULL) == -1)
		tree_fail(step, "git ls-tree %.12s failed", t->sha);
	if (r.outn >= TREEMAX - 1)
		tree_fail(step, "the tree of %.12s lists more than %zu MB",
		    t->sha, TREEMAX >> 20);
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((tab = strchr(line, '\t')) == NULL || tab - line < 52)
			continue;
		*tab++ = '\0';
		base = strrchr(tab, '/') ? strrchr(tab, '/') + 1 : tab;
		if (strncmp(line, "160000 commit ", 14) == 0) {
			if (*tab == '"' || !is_sha(line + 14))
				tree_fail(step, "submodule '%s': a path with "
				    "characters git quotes", printable(tab));
			links = xrealloc(links, (n + 2) * sizeof(*links));
			links[n++] = fmtpath("%s %s", line + 14, tab);
			links[n] = NULL;
		} else if (strcmp(base, ".gitattributes") == 0 &&
		    strncmp(line + 7, "blob ", 5) == 0 && !*lfs)
			*lfs = attr_lfs(t->gd, line + 12);
	}
	free(out);
	return links;
}

/* A .gitmodules entry that could reach outside its place, or run code. */
static const char *
submod_bad(const struct submod *m)
{
	const char *s, *c;
	size_t n;

	if (*m->name == '\0' || strstr(m->name, "..") != NULL)
		return "a name that is empty or holds '..'";
	if (m->path == NULL || !relpath_ok(m->path) || *m->path == '-')
		return "a path that is missing, absolute, holds '..' or "
		    "starts with '-'";
	for (s = m->path; *s; s += n + (s[n] == '/')) {
		n = strcspn(s, "/");
		if ((n == 4 && strncasecmp(s, ".git", 4) == 0) ||
		    (n == 7 && strncmp(s, ".deploy", 7) == 0) ||
		    (s == m->path && n == 5 && strncmp(s, ".venv", 5) == 0))
			return "a path through .git, .deploy or .venv";
	}
	if (m->url == NULL || *m->url == '\0' || *m->url == '-')
		return "a url that is missing or starts with '-'";
	c = strstr(m->url, "::");
	if (c != NULL && memchr(m->url, '/', (size_t)(c - m->url)) == NULL)
		return "a url naming a transport helper (ext::, fd::)";
	for (s = m->url; *s; s++)
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			return "a url with control characters";
	return NULL;
}

static struct submod *
submod_of(struct submod **m, size_t *n, const char *name, size_t len)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (strlen((*m)[i].name) == len &&
		    strncmp((*m)[i].name, name, len) == 0)
			return &(*m)[i];
	*m = xrealloc(*m, (*n + 1) * sizeof(**m));
	(*m)[*n].name = fmtpath("%.*s", (int)len, name);
	(*m)[*n].path = (*m)[*n].url = NULL;
	return &(*m)[(*n)++];
}

/*
 * The commit's .gitmodules, read from the commit (never a working tree,
 * never its includes), every entry checked: a bad one fails the build.
 */
static size_t
gitmodules(const struct tree *t, const char *step, struct submod **m)
{
	char *out = xrealloc(NULL, 1 << 20), *spec, *p, *e, *key, *v, *dot;
	struct submod *s;
	struct result r;
	size_t n = 0, i;
	const char *why;

	*m = NULL;
	spec = fmtpath("%s:.gitmodules", t->sha);
	if (tree_git(out, 1 << 20, &r, t->gd, "config", "--no-includes", "-z",
	    "--blob", spec, "--list", (char *)NULL) == -1)
		tree_fail(step, "%s%s%.12s has submodules but no readable "
		    ".gitmodules", t->path, *t->path ? ": " : "", t->sha);
	for (p = out, e = out + r.outn; p < e; p += strlen(p) + 1) {
		key = p;
		v = strchr(p, '\n');
		if (v != NULL)
			*v++ = '\0';
		if (strncmp(key, "submodule.", 10) != 0 ||
		    (dot = strrchr(key + 10, '.')) == NULL)
			continue;
		if (strcmp(dot, ".path") != 0 && strcmp(dot, ".url") != 0)
			continue;	/* update, branch...: not ours to run */
		s = submod_of(m, &n, key + 10, (size_t)(dot - key - 10));
		if (dot[1] == 'p') {
			free(s->path);
			s->path = xstrdup(v ? v : "");
		} else {
			free(s->url);
			s->url = xstrdup(v ? v : "");
		}
	}
	for (i = 0; i < n; i++)
		if ((why = submod_bad(&(*m)[i])) != NULL)
			tree_fail(step, "%s.gitmodules of %.12s: submodule "
			    "'%s' has %s; refused", t->path, t->sha,
			    printable((*m)[i].name), why);
	free(spec);
	free(out);
	return n;
}

/*
 * url relative to the repository base came from ("../lib.git", "./x"),
 * resolved as git does; NULL when it climbs above base.
 */
static char *
sub_url(const char *base, const char *url)
{
	char *b, *s, *r;
	size_t len;
	int scp = 0;

	if (strncmp(url, "./", 2) != 0 && strncmp(url, "../", 3) != 0)
		return xstrdup(url);
	b = xstrdup(base);
	len = strlen(b);
	while (len > 0 && b[len - 1] == '/')
		b[--len] = '\0';
	for (;;) {
		if (strncmp(url, "./", 2) == 0)
			url += 2;
		else if (strncmp(url, "../", 3) == 0) {
			url += 3;
			if ((s = strrchr(b, '/')) != NULL && s > b &&
			    s[-1] != '/')
				*s = '\0';
			else if (strstr(b, "://") == NULL &&
			    (s = strrchr(b, ':')) != NULL && !scp) {
				s[1] = '\0';	/* host:app.git -> host: */
				scp = 1;
			} else {
				free(b);
				return NULL;
			}
		} else
			break;
	}
	r = fmtpath("%s%s%s", b, scp ? "" : "/", url);
	free(b);
	return r;
}

static int
has_commit(const struct tree *t)
{
	struct result r;
	char *spec = fmtpath("%s^{commit}", t->sha);
	int ok = tree_git(NULL, 0, &r, t->gd, "cat-file", "-e", spec,
	    (char *)NULL) == 0;

	free(spec);
	return ok;
}

/*
 * t's mirror under ROOT/modules, holding t's commit: cloned when new,
 * fetched only when the commit is missing.
 */
static void
sub_mirror(struct tree *t, const char *step)
{
	char name[32], *mrel, *tmp, *abs, *u;
	struct stat st;
	struct result r;
	int mfd;

	snprintf(name, sizeof(name), "%016llx.git",
	    fnv(14695981039346656037ULL, t->url, strlen(t->url)));
	mrel = fmtpath("modules/%s", name);
	t->gd = fmtpath("--git-dir=%s/%s", root, mrel);
	u = tree_uses;
	tree_uses = fmtpath("%s%s\n", u ? u : "", name);
	free(u);
	if (mkdirat(rootfd, "modules", 0755) == -1 && errno != EEXIST)
		tree_fail(step, "%s/modules: %s", root, strerror(errno));
	if (fstatat(rootfd, mrel, &st, AT_SYMLINK_NOFOLLOW) == -1) {
		tmp = fmtpath("%.16s.tmp", name);
		abs = fmtpath("%s/modules/%s", root, tmp);
		if ((mfd = open_dir_at(rootfd, "modules")) == -1)
			tree_fail(step, "%s/modules: %s", root, strerror(errno));
		remove_in(mfd, "modules", tmp);
		if (tree_git(NULL, 0, &r, "clone", "--mirror", "--quiet", "--",
		    t->url, abs, (char *)NULL) == -1) {
			remove_in(mfd, "modules", tmp);
			tree_fail(step, "submodule %s: cannot clone %s", t->path,
			    t->url);
		}
		if (renameat(mfd, tmp, mfd, name) == -1)
			tree_fail(step, "rename %s: %s", abs, strerror(errno));
		close(mfd);
		free(tmp);
		free(abs);
	} else if (has_commit(t))
		goto done;	/* the pointer did not move: no fetch */
	else if (tree_git(NULL, 0, &r, t->gd, "fetch", "--prune", "--quiet",
	    "--no-auto-maintenance", "--end-of-options", t->url,
	    "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*",
	    (char *)NULL) == -1)
		tree_fail(step, "submodule %s: cannot fetch %s", t->path, t->url);
	/* a commit no branch or tag holds: ask for it by name */
	if (!has_commit(t))
		tree_git(NULL, 0, &r, t->gd, "fetch", "--quiet",
		    "--no-auto-maintenance", "--end-of-options", t->url, t->sha,
		    (char *)NULL);
	if (!has_commit(t))
		tree_fail(step, "submodule %s: commit %s is not in %s", t->path,
		    t->sha, t->url);
done:
	free(mrel);
}

/*
 * The LFS objects t's commit needs, into its mirror. On failure, the
 * first file whose object did not come is named.
 */
static void
tree_lfs(const struct tree *t, const char *step)
{
	char *url = *t->url == '/' ? fmtpath("file://%s", t->url) :
	    xstrdup(t->url), out[65536], *line, *save, *obj;
	struct stat st;
	struct result r;

	if (tree_git(NULL, 0, &r, t->gd, "lfs", "fetch", url, t->sha,
	    (char *)NULL) == 0) {
		free(url);
		return;
	}
	if (tree_git(out, sizeof(out), &r, t->gd, "lfs", "ls-files", "--long",
	    t->sha, (char *)NULL) == 0)
		for (line = strtok_r(out, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			if (strlen(line) < 69 || line[64] != ' ')
				continue;
			line[64] = '\0';
			obj = fmtpath("%s/lfs/objects/%.2s/%.2s/%s", t->gd + 10,
			    line, line + 2, line);
			if (stat(obj, &st) == -1)
				tree_fail(step, "LFS file %s%s%s: object %.12s "
				    "is not in %s", t->path, *t->path ? "/" : "",
				    line + 67, line, t->url);
			free(obj);
		}
	tree_fail(step, "%s%sgit lfs fetch from %s failed", t->path,
	    *t->path ? ": " : "", t->url);
}

/* t's commit read into its place in the release, LFS smudged or not. */
static void
tree_checkout(const struct tree *t, int lfs, const char *step)
{
	char *idx = fmtpath("GIT_INDEX_FILE=%s/%s/index", root, STATE);
	char *extra[3] = { idx, allowproto, NULL }, **argv, *wt;
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	struct result r;

	wt = fmtpath("--work-tree=%s/releases/%s%s%s", root, tree_rel,
	    *t->path ? "/" : "", t->path);
	if (lfs)
		argv = words_plus("git", "-c",
		    "filter.lfs.smudge=git-lfs smudge -- %f", "-c",
		    "filter.lfs.process=git-lfs filter-process", "-c",
		    "filter.lfs.required=true", t->gd, wt, "read-tree",
		    "--reset", "-u", t->sha, (char *)NULL);
	else
		argv = words_plus("git", t->gd, wt, "read-tree", "--reset",
		    "-u", t->sha, (char *)NULL);
	o.extra = extra;
	o.record = 1;
	if (run(argv, &o, &r) == -1) {
		if (r.signo)
			fail_build(tree_rel, 128 + r.signo);
		tree_fail(step, "%s%s%s", t->path, *t->path ? ": " : "",
		    why_failed(&r, "git", o.timeout));
	}
	unlinkat(statefd, "index", 0);
	free_words(argv);
	free(wt);
	free(idx);
}

/* The release's folder at path: real folders all the way, no links. */
static void
sub_place(const struct tree *t, const char *step)
{
	char *p = fmtpath("releases/%s/%s", tree_rel, t->path), *s;
	struct stat st;

	for (s = strchr(p + 9 + strlen(tree_rel), '/'); ; s = strchr(s + 1, '/')) {
		if (s != NULL)
			*s = '\0';
		if (fstatat(rootfd, p, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
		    !S_ISDIR(st.st_mode))
			tree_fail(step, "submodule %s: %s/%s is not a folder",
			    t->path, root, p);
		if (s == NULL)
			break;
		*s = '/';
	}
	free(p);
}

static void tree_read(const struct tree *t, const char *step);

/* Each gitlink of t: its URL from t's .gitmodules, its mirror, its tree. */
static void
tree_subs(const struct tree *t, char **links)
{
	struct submod *m;
	struct tree s;
	const struct tree *u;
	size_t n, i, j, sl;
	const char *lp;
	char **l;

	n = gitmodules(t, "submodule", &m);
	for (l = links; *l; l++) {
		memset(&s, 0, sizeof(s));
		sl = strcspn(*l, " ");
		memcpy(s.sha, *l, sl);
		s.sha[sl] = '\0';
		lp = *l + sl + 1;
		s.path = fmtpath("%s%s%s", t->path, *t->path ? "/" : "", lp);
		s.depth = t->depth + 1;
		s.up = t;
		step_begin("submodule");
		/* gitmodules() refused an entry without a path; the
		 * analyzer cannot see that far */
		for (i = 0; i < n && (m[i].path == NULL ||
		    strcmp(m[i].path, lp) != 0); i++)
			;
		if (!cfg.submodules)
			tree_fail("submodule", "%s is a submodule, and "
			    "submodules = no", s.path);
		if (i == n)
			tree_fail("submodule", "%s is a submodule that "
			    ".gitmodules does not name: no url", s.path);
		if ((s.url = sub_url(t->url, m[i].url)) == NULL)
			tree_fail("submodule", "%s: url '%s' climbs above %s",
			    s.path, m[i].url, t->url);
		if (s.depth > SUBDEPTH)
			tree_fail("submodule", "%s: submodules nest deeper than "
			    "%d", s.path, SUBDEPTH);
		for (u = t; u != NULL; u = u->up)
			if (strcmp(u->url, s.url) == 0)
				tree_fail("submodule", "%s: %s is also a "
				    "repository around it (a cycle)", s.path,
				    s.url);
		sub_place(&s, "submodule");
		sub_mirror(&s, "submodule");
		tree_read(&s, "submodule");
		free(s.path);
		free(s.url);
		free(s.gd);
	}
	for (j = 0; j < n; j++) {
		free(m[j].name);
		free(m[j].path);
		free(m[j].url);
	}
	free(m);
}

static int
have_git_lfs(void)
{
	char found[PATH_MAX];

	return path_lookup("git-lfs", found, sizeof(found)) == 0;
}

/* t's tree, its LFS content and its submodules, into the release */
static void
tree_read(const struct tree *t, const char *step)
{
	char **links, **l;
	int lfs;

	links = tree_scan(t, step, &lfs);
	if (lfs && !cfg.lfs)
		tree_fail(step, "%s%s%.12s stores files in Git LFS, and lfs = no",
		    t->path, *t->path ? ": " : "", t->sha);
	if (lfs && cfg.lfs == 2 && !have_git_lfs()) {
		step_fail(step, "git-lfs is not on PATH and this commit stores "
		    "files in Git LFS: install the git-lfs package", 1);
		fail_build(tree_rel, EXIT_USAGE);
	}
	if (lfs)
		tree_lfs(t, step);
	tree_checkout(t, lfs, step);
	step_done(step, *t->path ? t->path : NULL);
	if (*links != NULL)
		tree_subs(t, links);
	for (l = links; *l; l++)
		free(*l);
	free(links);
}

static char *ptr_found;

static int
ptr_check(const char *p, const struct stat *st, int type, struct FTW *f)
{
	char head[sizeof(LFSHEAD) - 1];
	ssize_t k;
	int fd;

	(void)f;
	if (type != FTW_F || !S_ISREG(st->st_mode) ||
	    st->st_size < (off_t)sizeof(head) || st->st_size > 1024)
		return 0;
	if ((fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)) == -1)
		return 0;
	k = read(fd, head, sizeof(head));
	close(fd);
	if (k == (ssize_t)sizeof(head) && memcmp(head, LFSHEAD, sizeof(head)) == 0) {
		ptr_found = xstrdup(p);
		return 1;
	}
	return 0;
}

/*
 * The commit, its submodules and its LFS content, read into rdir; or the
 * build fails. Then no file may still be an LFS pointer.
 */
void
checkout_tree(const char *sha, const char *rdir)
{
	struct tree t;
	int fd;

	memset(&t, 0, sizeof(t));
	t.gd = gitdir();
	t.url = cfg.repo;
	copy_sha(t.sha, sha);
	t.path = top_path;
	tree_rel = sha;
	free(tree_uses);
	tree_uses = NULL;
	step_begin("checkout");
	tree_read(&t, "checkout");
	if (nftw(rdir, ptr_check, 16, FTW_PHYS) == 1) {
		step_begin("lfs");
		tree_fail("lfs", "%s is an LFS pointer, not its content (is "
		    "the file's object on the remote?)", ptr_found +
		    strlen(rdir) + 1);
	}
	if (tree_uses == NULL)
		return;
	mkdirat(statefd, "uses", 0700);
	if ((fd = open_dir_at(statefd, "uses")) == -1 ||
	    replace_file_at(fd, sha, tree_uses, strlen(tree_uses), 0) == -1)
		tree_fail("submodule", "%s/%s/uses/%s: %s", root, STATE, sha,
		    strerror(errno));
	close(fd);
}
