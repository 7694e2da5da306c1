/*
 * derive.c: a new venv derived from the most similar one.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "derive.h"
#include "child.h"
#include "copytree.h"
#include "core.h"
#include "files.h"
#include "output.h"
#include "root.h"
#include "venvs.h"

#define DRYRUN_MAX	(1 << 20)	/* pip's dry-run output kept */

/* PEP 503: lower case, each run of - _ . one - */
void
norm_name(char *s)
{
	char *d = s;

	for (; *s; s++)
		if (*s == '-' || *s == '_' || *s == '.') {
			if (d == s || d[-1] != '-')
				*d++ = '-';
		} else
			*d++ = (char)tolower((unsigned char)*s);
	*d = '\0';
}

static int
strp_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The distributions installed in the venv at vpath, as sorted
 * "name version" words (names normalized), read from the names of the
 * .dist-info folders in site-packages. NULL, with why, for anything pip
 * may have made otherwise (an .egg-info, two pythons).
 */
char **
venv_dists(const char *vpath, char *why, size_t wl)
{
	char **v = NULL, *lib = fmtpath("%s/lib", vpath), *sp = NULL, *e, *w;
	struct dirent *d;
	size_t n = 0;
	DIR *dp;

	if ((dp = opendir(lib)) == NULL) {
		snprintf(why, wl, "%s: %s", lib, strerror(errno));
		goto fail;
	}
	while ((d = readdir(dp)) != NULL)
		if (strncmp(d->d_name, "python", 6) == 0) {
			if (sp != NULL) {
				snprintf(why, wl, "%s: two pythons", lib);
				closedir(dp);
				goto fail;
			}
			sp = fmtpath("%s/%s/site-packages", lib, d->d_name);
		}
	closedir(dp);
	if (sp == NULL || (dp = opendir(sp)) == NULL) {
		snprintf(why, wl, "%s: %s", sp ? sp : lib,
		    sp ? strerror(errno) : "no site-packages");
		goto fail;
	}
	v = xrealloc(NULL, sizeof(*v));
	while ((d = readdir(dp)) != NULL) {
		size_t l = strlen(d->d_name);

		if (l > 9 && strcmp(d->d_name + l - 9, ".egg-info") == 0) {
			snprintf(why, wl, "%s/%s: not a wheel's install", sp,
			    d->d_name);
			closedir(dp);
			goto fail;
		}
		if (l <= 10 || strcmp(d->d_name + l - 10, ".dist-info") != 0)
			continue;
		w = xstrdup(d->d_name);
		w[l - 10] = '\0';
		/* the wheel spec escapes '-' in both: the first splits */
		if ((e = strchr(w, '-')) == NULL) {
			snprintf(why, wl, "%s/%s: no version", sp, d->d_name);
			free(w);
			closedir(dp);
			goto fail;
		}
		*e = '\0';
		norm_name(w);
		v[n] = fmtpath("%s %s", w, e + 1);
		free(w);
		v = xrealloc(v, (++n + 1) * sizeof(*v));
	}
	closedir(dp);
	v[n] = NULL;
	qsort(v, n, sizeof(*v), strp_cmp);
	free(lib);
	free(sp);
	return v;
fail:
	if (v != NULL) {
		v[n] = NULL;
		free_words(v);
	}
	free(lib);
	free(sp);
	return NULL;
}

static int
is_seed(const char *nv)
{
	static const char *seeds[] = { "pip ", "setuptools ", "wheel ",
	    "distribute ", NULL };
	const char **s;

	for (s = seeds; *s; s++)
		if (strncmp(nv, *s, strlen(*s)) == 0)
			return 1;
	return 0;
}

/* what virtualenv put in: "pip 23.0.1,setuptools 66.1.1,..." or "?" */
char *
venv_seeds(const char *vpath)
{
	char why[PATH_MAX + 64], **v = venv_dists(vpath, why, sizeof(why)), **p;
	char *s = xstrdup(""), *t;

	if (v == NULL) {
		free(s);
		return xstrdup("?");
	}
	for (p = v; *p; p++)
		if (is_seed(*p)) {
			t = fmtpath("%s%s%s", s, *s ? "," : "", *p);
			free(s);
			s = t;
		}
	free_words(v);
	return s;
}

/* the record a complete shared venv keeps: base, seeds, requirements */
char *
venv_record(unsigned long long base, const char *seeds, const char *reqs,
    size_t len, size_t *n)
{
	char *h = fmtpath("deploy-venv 1\nbase %016llx\nseeds %s\n"
	    "requirements\n", base, seeds), *r;
	size_t hl = strlen(h);

	r = xrealloc(NULL, hl + len + 1);
	memcpy(r, h, hl);
	if (len > 0)
		memcpy(r + hl, reqs, len);
	r[hl + len] = '\0';
	*n = hl + len;
	free(h);
	return r;
}

/* lines of b (not blank) that a has too */
static size_t
common_lines(const char *a, size_t al, const char *b, size_t bl)
{
	const char *l, *p, *e = b + bl, *q, *ae = a + al, *m;
	size_t score = 0, n;

	for (l = b; l < e; l = p + 1) {
		if ((p = memchr(l, '\n', (size_t)(e - l))) == NULL)
			p = e;
		n = (size_t)(p - l);
		if (n == 0 || (n == 1 && *l == '\r'))
			continue;
		for (q = a; q < ae; q = m + 1) {
			if ((m = memchr(q, '\n', (size_t)(ae - q))) == NULL)
				m = ae;
			if ((size_t)(m - q) == n && memcmp(q, l, n) == 0) {
				score++;
				break;
			}
		}
	}
	return score;
}

/*
 * The complete venv to derive the new one from: built by the same python
 * and virtualenv command (base), from requirements sharing the most lines
 * with reqs, the current release's first. Its key in src, its seeds in
 * *seeds; -1 when there is none.
 */
int
derive_source(int vfd, unsigned long long base, const char *reqs, size_t len,
    const char *key, char src[17], char **seeds)
{
	char cur[PATH_MAX], *rec, *p, *q, *name, want[32];
	size_t n, score, best = 0;
	ssize_t cl;
	struct dirent *d;
	DIR *dp;
	int fd;

	if (len > DERIVE_MAX || (fd = dup(vfd)) == -1)
		return -1;
	if ((dp = fdopendir(fd)) == NULL) {
		close(fd);
		return -1;
	}
	cur[0] = '\0';
	if ((cl = readlinkat(rootfd, "current/.venv", cur, sizeof(cur) - 1)) > 0) {
		cur[cl] = '\0';
		if ((p = strrchr(cur, '/')) != NULL)
			memmove(cur, p + 1, strlen(p));
	} else
		cur[0] = '\0';
	snprintf(want, sizeof(want), "base %016llx\n", base);
	*seeds = NULL;
	rewinddir(dp);
	while ((d = readdir(dp)) != NULL) {
		name = d->d_name;
		if (name[0] == '.' || strlen(name) != 16 ||
		    strcmp(name, key) == 0 || !venv_done(dirfd(dp), name))
			continue;
		p = fmtpath("%s/%s", name, VREC);
		rec = read_file_at(dirfd(dp), p, DERIVE_MAX + 4096, &n, NULL);
		free(p);
		if (rec == NULL)
			continue;
		/* "deploy-venv 1\nbase X\nseeds S\nrequirements\n" */
		if (strncmp(rec, "deploy-venv 1\n", 14) != 0 ||
		    strncmp(rec + 14, want, strlen(want)) != 0 ||
		    strncmp(p = rec + 14 + strlen(want), "seeds ", 6) != 0 ||
		    (q = strchr(p, '\n')) == NULL || q - p == 7 ||
		    strncmp(q + 1, "requirements\n", 13) != 0 ||
		    strncmp(p + 6, "?\n", 2) == 0) {
			free(rec);
			continue;
		}
		*q = '\0';
		score = common_lines(q + 14, n - (size_t)(q + 14 - rec), reqs, len);
		if (strcmp(name, cur) == 0 && score > 0)
			score = (size_t)-1;	/* the venv running now */
		if (score > best) {
			best = score;
			memcpy(src, name, 17);
			free(*seeds);
			*seeds = xstrdup(p + 6);
		}
		free(rec);
	}
	closedir(dp);
	return best > 0 ? 0 : -1;
}

/* the "name version" words of pip's "Would install a-1.0 b_c-2.0" line */
static char **
dryrun_dists(const char *out)
{
	const char *l, *p;
	char **v, **w, *dash, err[128];
	size_t n;

	for (l = out; l != NULL; l = (l = strchr(l, '\n')) ? l + 1 : NULL)
		if (strncmp(l, "Would install ", 14) == 0)
			break;
	if (l == NULL)
		return NULL;
	p = strchr(l, '\n');
	{
		char *line = xrealloc(NULL, (p ? (size_t)(p - l) : strlen(l)) + 1);

		memcpy(line, l + 14, (p ? (size_t)(p - l) : strlen(l)) - 14);
		line[(p ? (size_t)(p - l) : strlen(l)) - 14] = '\0';
		v = split_words(line, err, sizeof(err));
		free(line);
	}
	if (v == NULL)
		return NULL;
	for (n = 0, w = v; *w; w++, n++) {
		/* versions have no '-': the last one splits */
		if ((dash = strrchr(*w, '-')) == NULL || dash == *w) {
			free_words(v);
			return NULL;
		}
		*dash = '\0';
		norm_name(*w);
		dash = fmtpath("%s %s", *w, dash + 1);
		free(*w);
		*w = dash;
	}
	qsort(v, n, sizeof(*v), strp_cmp);
	return v;
}

/* the venv step's line for a derived venv */
void
step_ok_derived(const char *src)
{
	char note[128];

	snprintf(note, sizeof(note), "derived from venvs/%.64s", src);
	step_done("venv", note);
}

/* runs argv in the venv being derived; why says what failed */
static int
derive_run(char **argv, struct runopts *o, char *why, size_t wl)
{
	struct result r;

	if (run(argv, o, &r) == 0)
		return 0;
	snprintf(why, wl, "pip: %s", why_failed(&r, argv[0], o->timeout));
	return -1;
}

/* argv for the venv's own pip: VENV/bin/python -m pip WORDS... */
char **
venv_pip(const char *vpath, ...)
{
	char **argv = words_plus("x", "-m", "pip", (char *)NULL);
	va_list ap;

	free(argv[0]);
	argv[0] = fmtpath("%s/bin/python", vpath);
	va_start(ap, vpath);
	argv = append_words(argv, ap);
	va_end(ap);
	return argv;
}

/* the copy: the source venv into venvs/KEY, paths rewritten */
int
derive_copy(int vfd, const char *src, const char *key, struct vcopy *c,
    char *why, size_t wl)
{
	struct stat st;
	int sfd, dfd = -1, r = -1;

	if ((sfd = openat(vfd, src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1 || fstat(sfd, &st) == -1)
		snprintf(why, wl, "%s: %s", c->from, strerror(errno));
	else if (mkdirat(vfd, key, 0700) == -1 || (dfd = openat(vfd, key,
	    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		snprintf(why, wl, "mkdir %s: %s", c->to, strerror(errno));
	else if (copy_tree(sfd, dfd, "", c) == -1)
		snprintf(why, wl, "copy: %s", c->why);
	else if (fchmod(dfd, st.st_mode & 07777) == -1)
		snprintf(why, wl, "%s: %s", c->to, strerror(errno));
	else
		r = 0;
	if (sfd != -1)
		close(sfd);
	if (dfd != -1)
		close(dfd);
	return r;
}

/*
 * Appends to v (n words and a NULL, or NULL) the name of each "name
 * version" of have that want names neither as "name" nor as "name
 * version", seeds apart: what a venv holding have loses to become want.
 */
char **
venv_gone(char **v, size_t *n, char **have, char **want)
{
	char **h, **w;
	size_t len;

	for (h = have; *h; h++) {
		len = strcspn(*h, " ");
		for (w = want; *w && (strcspn(*w, " ") != len ||
		    strncmp(*w, *h, len) != 0); w++)
			;
		if (*w != NULL || is_seed(*h))
			continue;
		v = xrealloc(v, (*n + 2) * sizeof(*v));
		v[(*n)++] = fmtpath("%.*s", (int)len, *h);
		v[*n] = NULL;
	}
	return v;
}

/* uninstalls what the venv has ("name version") and want lacks */
static int
derive_uninstall(const char *vpath, char **want, char **have,
    struct runopts *o, char *why, size_t wl)
{
	char **argv = venv_pip(vpath, "uninstall", "-y", (char *)NULL);
	size_t n;
	int r = 0;

	for (n = 0; argv[n]; n++)
		;
	argv = venv_gone(argv, &n, have, want);
	if (n > 5)
		r = derive_run(argv, o, why, wl);
	free_words(argv);
	return r;
}

/* pip constraints pinning every non-seed "name version" of want */
static int
write_constraints(const char *cpath, char **want, char *why, size_t wl)
{
	size_t cn = 0;
	char *cons, *sp, **w;
	int fd, r = 0;

	for (w = want; *w; w++)
		cn += strlen(*w) + 2;
	cons = xrealloc(NULL, cn + 1);
	for (w = want, cn = 0; *w; w++)
		if (!is_seed(*w) && (sp = strchr(*w, ' ')) != NULL)
			cn += (size_t)sprintf(cons + cn, "%.*s==%s\n",
			    (int)(sp - *w), *w, sp + 1);
	if ((fd = open(cpath, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1 || write_all(fd, cons, cn) == -1 ||
	    close(fd) == -1) {
		snprintf(why, wl, "%s: %s", cpath, strerror(errno));
		r = -1;
	}
	free(cons);
	return r;
}

/*
 * The copy to what a fresh build would hold: pip's dry run over the new
 * requirements says what that is; what else the copy has is uninstalled;
 * an install pinned to the dry run's versions does the rest.
 */
int
derive_pip(const char *vpath, const char *reqpath, const char *seeds,
    struct runopts *o, char *why, size_t wl)
{
	char *out = xrealloc(NULL, DRYRUN_MAX), **argv, **want = NULL;
	char **have = NULL, *cpath = fmtpath("%s/.deploy-constraints", vpath);
	char *got;
	double t0 = now(), t1, t2;
	int r = -1;

	out[0] = '\0';
	argv = venv_pip(vpath, "install", "--dry-run", "--ignore-installed",
	    "-r", reqpath, (char *)NULL);
	o->out = out;
	o->outlen = DRYRUN_MAX;
	o->bothout = 1;	/* pip's ERROR lines say whether to build from nothing */
	if (derive_run(argv, o, why, wl) == -1)
		goto out;
	o->out = NULL;
	o->bothout = 0;
	if (strlen(out) >= DRYRUN_MAX - 1 || (want = dryrun_dists(out)) == NULL) {
		snprintf(why, wl, "pip's dry run did not say what it would "
		    "install");
		goto out;
	}
	t1 = now();
	if ((have = venv_dists(vpath, why, wl)) == NULL ||
	    derive_uninstall(vpath, want, have, o, why, wl) == -1 ||
	    write_constraints(cpath, want, why, wl) == -1)
		goto out;
	free_words(argv);
	argv = venv_pip(vpath, "install", "-r", reqpath, "-c", cpath,
	    (char *)NULL);
	t2 = now();
	if (derive_run(argv, o, why, wl) == -1)
		goto out;
	logf_("resolve times: dry-run %.3f, uninstall %.3f, install %.3f\n",
	    t1 - t0, t2 - t1, now() - t2);
	unlink(cpath);
	if (strcmp((got = venv_seeds(vpath)), seeds) != 0)
		snprintf(why, wl, "pip, setuptools or wheel differ from what "
		    "virtualenv installs (%s, not %s)", got, seeds);
	else
		r = 0;
	free(got);
out:
	o->out = NULL;
	o->outlen = 0;
	o->bothout = 0;
	free_words(argv);
	if (want != NULL)
		free_words(want);
	if (have != NULL)
		free_words(have);
	free(cpath);
	free(out);
	return r;
}
