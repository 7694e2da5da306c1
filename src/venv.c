/*
 * venv.c: the virtualenv of a release: built, shared by key, or derived.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "venv.h"
#include "child.h"
#include "config.h"
#include "copytree.h"
#include "core.h"
#include "derive.h"
#include "files.h"
#include "msg.h"
#include "output.h"
#include "partial.h"
#include "pinned.h"
#include "reqs.h"
#include "rmtree.h"
#include "root.h"
#include "sig.h"
#include "venvs.h"

/* poetry's version line when the release's deps are poetry.lock: the
 * venv and pip steps then run poetry install where they ran pip */
static char poetry_ver[128];

/* poetry install, as locked, into the venv VIRTUAL_ENV names (o's) */
static char **
poetry_argv(void)
{
	return words("poetry install --only main --no-root --sync "
	    "--no-interaction");
}

/*
 * The venv and pip lines of a derive, written once pip is done: the venv
 * step's time is the copy's, the pip step's its own.
 */
static void
derive_lines(const char *src, double t0, double t1, const char *fail,
    const char *how)
{
	size_t keep = tail_length();

	step_started(now() - (t1 - t0));
	step_ok_derived(src);
	step_begin("pip");
	tail_keep(keep);	/* pip's output, for a failure's tail */
	step_started(t1);
	if (fail != NULL)
		step_fail("pip", fail, 1);
	else if (how != NULL)
		step_done("pip", how);
	else
		step_ok("pip");
}

/*
 * The requirements into the copy: the pinned fast path when the file is
 * all pins (*how "pinned"), else, or when pip check finds the pins not
 * closed, the resolver. 0 done, -1 failed (why says it).
 */
static int
derive_deps(struct vcopy *c, const char *buf, size_t len, const char *reqpath,
    const char *seeds, struct runopts *o, char *why, size_t wl,
    const char **how)
{
	int r;

	*how = NULL;
	if ((r = derive_pinned(c, buf, len, seeds, o, why, wl)) == 0) {
		*how = "pinned";
		return 0;
	}
	if (gotsig)
		return -1;
	if (r == -1)
		logf_("pinned fast path failed: %s; resolving instead\n", why);
	return derive_pip(c->to, reqpath, seeds, o, why, wl);
}

/* poetry install --sync into the copy: it removes what the lock dropped */
static int
derive_poetry(struct runopts *o, char *why, size_t wl)
{
	char **argv = poetry_argv();
	struct result r;
	int rc;

	rc = run(argv, o, &r);
	if (rc == -1)
		snprintf(why, wl, "%s", why_failed(&r, argv[0], o->timeout));
	free_words(argv);
	return rc;
}

/*
 * venvs/KEY from the venvs/SRC nearest to it, as the venv and pip steps:
 * 0 done; -1 failed (logged, the half-made venv removed) with the venv
 * step still open: build_venv builds from nothing in it, and note says
 * why. When pip failed for a reason a fresh build meets too (the index
 * unreachable, a hash mismatch, no matching distribution), the pip step
 * fails and so does the build. A signal ends the build.
 */
static int
derive_venv(const char *sha, int vfd, const char *key, const char *src,
    const char *seeds, const char *reqpath, const char *buf, size_t len,
    struct runopts *o, char *note, size_t nl)
{
	char why[PATH_MAX + 256] = "", fail[PATH_MAX + 384];
	const char *lasting = NULL, *how = NULL;
	double t0, t1;
	struct vcopy c;
	int r = -1;

	memset(&c, 0, sizeof(c));
	c.from = fmtpath("%s/venvs/%s", root, src);
	c.to = fmtpath("%s/venvs/%s", root, key);
	c.fromlen = strlen(c.from);
	c.tolen = strlen(c.to);
	step_begin("venv");
	t0 = stepstart;
	logf_("deriving %s from %s\n", c.to, c.from);
	if (derive_copy(vfd, src, key, &c, why, sizeof(why)) == 0) {
		t1 = now();
		logf_("copy: %.3fs, of it %.3fs finding the old path and "
		    "rewriting %zu files\n", t1 - t0, c.rewrite, c.nrewrit);
		logf_("%s, in the copy\n", poetry_ver[0] ? "poetry" : "pip");
		if ((r = poetry_ver[0] ? derive_poetry(o, why, sizeof(why)) :
		    derive_deps(&c, buf, len, reqpath, seeds, o, why,
		    sizeof(why), &how)) == 0)
			derive_lines(src, t0, t1, NULL, how);
		else if (!gotsig && (lasting = pip_lasting(tail, taillen)) !=
		    NULL) {
			snprintf(fail, sizeof(fail), "%s (%s: a venv built from "
			    "nothing would fail the same)", printable(why),
			    lasting);
			derive_lines(src, t0, t1, fail, NULL);
		}
	}
	if (r == -1) {
		remove_in(vfd, "venvs", key);
		if (!gotsig && lasting == NULL) {
			logf_("venv derive failed: %s; building from nothing\n",
			    why);
			snprintf(note, nl, "built from nothing: deriving from "
			    "venvs/%s failed: %s", src, printable(why));
		}
	}
	free((char *)c.from);
	free((char *)c.to);
	if (gotsig)
		fail_build(sha, 128 + gotsig);
	if (lasting != NULL)
		fail_build(sha, EXIT_FAILED);
	return r;
}

/*
 * The requirements file's bytes, or NULL when nothing is at its path
 * (the pip step is then skipped). A link is followed while it stays in
 * the release; *reqpath becomes the file pip must read, so that it reads
 * what was hashed. Anything else fails the build.
 */
static char *
read_requirements(const char *sha, const char *rdir, char **reqpath,
    size_t *len)
{
	char rreal[PATH_MAX], qreal[PATH_MAX], why[PATH_MAX + 128] = "";
	char *buf = NULL;
	struct stat st;
	size_t rl;

	*reqpath = fmtpath("%s/%s", rdir, cfg.requirements);
	*len = 0;
	if (lstat(*reqpath, &st) == -1 && errno == ENOENT)
		return NULL;
	if (realpath(rdir, rreal) == NULL)
		snprintf(why, sizeof(why), "%s: %s", rdir, strerror(errno));
	else if (realpath(*reqpath, qreal) == NULL)
		snprintf(why, sizeof(why), "%s: %s", cfg.requirements,
		    errno == ENOENT ? "a symbolic link to nothing" :
		    strerror(errno));
	else if (strncmp(qreal, rreal, rl = strlen(rreal)) != 0 ||
	    qreal[rl] != '/')
		snprintf(why, sizeof(why), "%s: a symbolic link out of the "
		    "release (to %s)", cfg.requirements, qreal);
	else if ((buf = read_file_at(AT_FDCWD, qreal, REQS_MAX, len,
	    NULL)) == NULL)
		snprintf(why, sizeof(why), "%s: %s", cfg.requirements,
		    strerror(errno));
	if (why[0] != '\0') {
		step_begin("pip");
		step_fail("pip", printable(why), 0);
		fail_build(sha, EXIT_FAILED);
	}
	free(*reqpath);
	*reqpath = xstrdup(qreal);
	return buf;
}

/*
 * The venv and pip steps from nothing: virtualenv, then pip install -r.
 * *seeds, when asked, gets what virtualenv put in, before pip changes it.
 */
static void
build_venv(const char *sha, const char *vpath, const char *reqpath,
    int haveq, struct runopts *o, char **seeds, const char *note)
{
	struct result r;
	char **argv;

	argv = words_plus(cfg.virtualenv, vpath, (char *)NULL);
	if (note == NULL)
		step_begin("venv");	/* else a failed derive's step goes on */
	if (run(argv, o, &r) == -1) {
		step_fail("venv", why_failed(&r, argv[0], o->timeout), 1);
		fail_build(sha, r.signo ? 128 + r.signo : EXIT_FAILED);
	}
	step_done("venv", note);
	free_words(argv);
	if (seeds != NULL)
		*seeds = venv_seeds(vpath);
	if (!haveq) {
		char why[PATH_MAX + 32];

		if (cfg.deps == DEPS_NONE)
			snprintf(why, sizeof(why), "deps = none");
		else
			snprintf(why, sizeof(why), "no %s", cfg.requirements);
		step_skip("pip", why);
		return;
	}
	argv = poetry_ver[0] ? poetry_argv() :
	    venv_pip(vpath, "install", "-r", reqpath, (char *)NULL);
	if (run_step("pip", argv, o, &r) == -1)
		fail_build(sha, r.signo ? 128 + r.signo : EXIT_FAILED);
	free_words(argv);
}

/* The sections of pyproject.toml that poetry reads ([tool.poetry...],
 * [project...]) into the key h */
static unsigned long long
poetry_sections(unsigned long long h, const char *rdir)
{
	char *p = fmtpath("%s/pyproject.toml", rdir), *buf, *l, *nl;
	size_t len;
	int in = 0;

	buf = read_file_at(AT_FDCWD, p, REQS_MAX, &len, NULL);
	free(p);
	if (buf == NULL)
		return fnv(h, "no pyproject", 12);
	for (l = buf; l < buf + len; l = nl + 1) {
		if ((nl = memchr(l, '\n', (size_t)(buf + len - l))) == NULL)
			nl = buf + len;
		if (*l == '[')
			in = strncmp(l, "[tool.poetry", 12) == 0 ||
			    strncmp(l, "[project", 8) == 0;
		if (in)
			h = fnv(h, l, (size_t)(nl - l) + 1);
	}
	free(buf);
	return h;
}

/*
 * poetry.lock's bytes (NULL and the build failed when it cannot be
 * read), poetry's version into poetry_ver, and into *h what else poetry
 * reads: the key covers them all.
 */
static char *
poetry_lock(const char *sha, const char *rdir, char **reqpath, size_t *len,
    unsigned long long *h)
{
	struct runopts o = opts(rdir, ENV_NONE, NULL, NULL);
	char **argv = words("poetry --version"), *buf;
	struct result r;

	o.out = poetry_ver;
	o.outlen = sizeof(poetry_ver);
	o.timeout = 60;
	if (run(argv, &o, &r) == -1 || poetry_ver[0] == '\0') {
		step_begin("pip");
		step_fail("pip", why_failed(&r, argv[0], o.timeout), 0);
		fail_build(sha, r.signo ? 128 + r.signo : EXIT_FAILED);
	}
	free_words(argv);
	poetry_ver[strcspn(poetry_ver, "\n")] = '\0';
	logf_("%s\n", poetry_ver);
	*reqpath = fmtpath("%s/poetry.lock", rdir);
	if ((buf = read_file_at(AT_FDCWD, *reqpath, REQS_MAX, len, NULL)) ==
	    NULL) {
		char why[PATH_MAX + 64];

		snprintf(why, sizeof(why), "poetry.lock: %s", strerror(errno));
		step_begin("pip");
		step_fail("pip", why, 0);
		fail_build(sha, EXIT_FAILED);
	}
	*h = fnv(*h, buf, *len);
	*h = fnv(*h, poetry_ver, strlen(poetry_ver));
	*h = poetry_sections(*h, rdir);
	return buf;
}

/*
 * What the venv is built from (the requirements or poetry.lock, NULL for
 * nothing), hashed into *h; poetry's venvs get a base of their own, never
 * derived from a pip-built one, and poetry's environment in extra.
 */
static char *
read_deps(const char *sha, const char *rdir, int way, char **reqpath,
    size_t *len, unsigned long long *h, unsigned long long *base,
    char **extra, int *ne)
{
	char *buf = NULL;

	poetry_ver[0] = '\0';
	*len = 0;
	if (way == DEPS_POETRY) {
		*base = fnv(*base, "poetry", 6);
		*h = fnv(*h, "poetry", 6);
		buf = poetry_lock(sha, rdir, reqpath, len, h);
		extra[(*ne)++] = xstrdup("POETRY_VIRTUALENVS_CREATE=false");
		extra[(*ne)++] = xstrdup("POETRY_NO_INTERACTION=1");
	} else if (way == DEPS_REQUIREMENTS) {
		if ((buf = read_requirements(sha, rdir, reqpath, len)) != NULL)
			*h = fnv(*h, buf, *len);
	} else
		*reqpath = fmtpath("%s/%s", rdir, cfg.requirements);
	return buf;
}

/* releases/SHA/.venv -> ../../venvs/KEY */
static void
link_venv(const char *sha, const char *rdir, const char *key)
{
	char *lnk = fmtpath("../../venvs/%s", key);
	char *dot = fmtpath("%s/.venv", rdir);

	if (symlink(lnk, dot) == -1) {
		warnx("%s: %s", dot, strerror(errno));
		fail_build(sha, EXIT_FAILED);
	}
	free(lnk);
	free(dot);
}

/*
 * 4. venv and pip: shared under venvs/KEY when the requirements allow
 * (reused as it is, or derived from the nearest one), else in the release
 */
void
step_venv_pip(const char *sha, const char *rdir, int way)
{
	char *reqpath, *buf, key[17], *vpath, src[17], *seeds = NULL, *rec;
	char note[PATH_MAX + 384];
	struct runopts o = opts(rdir, ENV_RELEASE, rdir, sha);
	unsigned long long h = 1469598103934665603ULL, base = h;
	char *extra[5] = { NULL, NULL, NULL, NULL, NULL };
	size_t len, recn;
	int shared, vfd = -1, ne = 0;

	buf = read_deps(sha, rdir, way, &reqpath, &len, &h, &base, extra, &ne);
	/* past REQS_MAX the key would not see all of it: never shared */
	shared = cfg.reuse_venv && (buf == NULL || (len <= REQS_MAX &&
	    (way == DEPS_POETRY ? lock_shareable(buf, len) :
	    reqs_shareable(buf, len))));
	h = fnv(h, cfg.virtualenv, strlen(cfg.virtualenv) + 1);
	python_id(&h);
	snprintf(key, sizeof(key), "%016llx", h);
	/* what a venv is derived from must share these: the same python
	 * and virtualenv command */
	base = fnv(base, cfg.virtualenv, strlen(cfg.virtualenv) + 1);
	python_id(&base);
	if (getenv("PIP_CACHE_DIR") == NULL && getenv("PIP_NO_CACHE_DIR") == NULL)
		extra[ne++] = fmtpath("PIP_CACHE_DIR=%s/%s/pip-cache", root, STATE);
	if (getenv("PIP_DISABLE_PIP_VERSION_CHECK") == NULL)
		extra[ne++] = xstrdup("PIP_DISABLE_PIP_VERSION_CHECK=1");
	o.extra = extra;
	o.record = 1;
	vpath = shared ? fmtpath("%s/venvs/%s", root, key) :
	    fmtpath("%s/.venv", rdir);
	if (!shared) {
		build_venv(sha, vpath, reqpath, buf != NULL, &o, NULL, NULL);
		goto done;
	}
	mkdirat(rootfd, "venvs", 0755);
	if ((vfd = openat(rootfd, "venvs", O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) == -1)
		die(EXIT_FAILED, "%s/venvs: %s", root, strerror(errno));
	link_venv(sha, rdir, key);
	if (venv_done(vfd, key)) {
		step_skip("venv", "reused venvs/");
		logf_("reusing %s\n", vpath);
		step_skip("pip", way == DEPS_POETRY ? "poetry.lock unchanged" :
		    "requirements unchanged");
		goto done;
	}
	remove_in(vfd, "venvs", key);	/* a broken one is never reused */
	/* changed requirements: from the nearest venv when there is one */
	note[0] = '\0';
	if (buf == NULL || derive_source(vfd, base, buf, len, key, src,
	    &seeds) == -1 || derive_venv(sha, vfd, key, src, seeds, reqpath,
	    buf, len, &o, note, sizeof(note)) == -1) {
		free(seeds);
		build_venv(sha, vpath, reqpath, buf != NULL, &o, &seeds,
		    note[0] ? note : NULL);
	}
	rec = venv_record(base, seeds, buf ? buf : "", len, &recn);
	mark_venv_done(key, rec, recn);
	free(rec);
	free(seeds);
done:
	if (vfd != -1)
		close(vfd);
	for (ne = 0; extra[ne] != NULL; ne++)
		free(extra[ne]);
	free(vpath);
	free(buf);
	free(reqpath);
}
