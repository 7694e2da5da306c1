/*
 * deploy: atomic deployments of a Python web app on a plain server.
 *
 * A release folder per git commit, a virtualenv and pip install per
 * release, the app's tests run before anything changes, an atomic switch
 * of the current link, a supervisord restart, a switch back when the new
 * release won't run, old releases pruned.
 *
 * Rules kept throughout: one deploy at a time per root (an fcntl lock that
 * dies with its holder); current is only ever replaced by rename(2); a
 * release counts only once the history says it is complete; no word from
 * the command line, the config or git ever reaches a shell.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE		/* d_type, so a tree walk needs no stat per entry */

#include <sys/types.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/time.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#ifndef FICLONE			/* <linux/fs.h>'s, which musl does not carry */
#define FICLONE	_IOW(0x94, 9, int)
#endif
#endif

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "deploy.h"

#define STATE	".deploy"		/* bookkeeping folder under the root */
#define TMPLINK	".current.tmp"
#define GRACE	5			/* seconds between SIGTERM and SIGKILL */
#define SETTLE	1			/* seconds a restarted program must stay up */
#define TAILMAX	8192

extern char **environ;

/* ---- the pure core (declared in deploy.h) ---- */

static char *
xstrdup(const char *s)
{
	char *p;

	if ((p = strdup(s)) == NULL) {
		fputs("deploy: out of memory\n", stderr);
		exit(EXIT_STUCK);
	}
	return p;
}

static void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n ? n : 1)) == NULL) {
		fputs("deploy: out of memory\n", stderr);
		exit(EXIT_STUCK);
	}
	return p;
}

void
config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->keep = 5;
	c->reuse_venv = 1;
	c->check_timeout = 30;
	c->timeout = 1800;
}

void
config_free(struct config *c)
{
	char **s[] = { &c->repo, &c->branch, &c->virtualenv, &c->requirements,
	    &c->build, &c->test, &c->program, &c->supervisorctl, &c->restart,
	    &c->check, &c->link, &c->envfile, &c->migrate, &c->notify };
	size_t i;

	for (i = 0; i < sizeof(s) / sizeof(s[0]); i++) {
		free(*s[i]);
		*s[i] = NULL;
	}
}

void
free_words(char **w)
{
	char **p;

	if (w == NULL)
		return;
	for (p = w; *p; p++)
		free(*p);
	free(w);
}

char **
split_words(const char *s, char *err, size_t errlen)
{
	char **w = NULL, *cur;
	size_t nw = 0, len = 0;
	int inword = 0, q = 0;

	cur = xrealloc(NULL, strlen(s) + 1);
	for (;; s++) {
		if (q == '\'') {
			if (*s == '\0')
				goto unterminated;
			if (*s == '\'')
				q = 0;
			else
				cur[len++] = *s;
			continue;
		}
		if (q == '"') {
			if (*s == '\0')
				goto unterminated;
			if (*s == '"')
				q = 0;
			else if (*s == '\\' && s[1] != '\0' &&
			    strchr("\\\"$`\n", s[1]) != NULL)
				cur[len++] = *++s;
			else
				cur[len++] = *s;
			continue;
		}
		if (*s == '\0' || *s == ' ' || *s == '\t' || *s == '\n') {
			if (inword) {
				cur[len] = '\0';
				w = xrealloc(w, (nw + 2) * sizeof(*w));
				w[nw++] = xstrdup(cur);
				w[nw] = NULL;
				len = 0;
				inword = 0;
			}
			if (*s == '\0')
				break;
			continue;
		}
		inword = 1;
		if (*s == '\'' || *s == '"')
			q = (unsigned char)*s;
		else if (*s == '\\') {
			if (s[1] == '\0') {
				snprintf(err, errlen, "trailing backslash");
				goto fail;
			}
			cur[len++] = *++s;
		} else
			cur[len++] = *s;
	}
	free(cur);
	if (nw == 0) {
		snprintf(err, errlen, "empty command");
		return NULL;
	}
	return w;
unterminated:
	snprintf(err, errlen, "unterminated %s quote",
	    q == '\'' ? "single" : "double");
fail:
	free(cur);
	free_words(w);
	return NULL;
}

int
is_sha(const char *s)
{
	size_t n;

	for (n = 0; s[n]; n++)
		if (!isdigit((unsigned char)s[n]) && (s[n] < 'a' || s[n] > 'f'))
			return 0;
	return n == 40 || n == 64;
}

int
ref_ok(const char *r)
{
	const unsigned char *p;

	if (*r == '\0' || *r == '-' || strlen(r) > 255)
		return 0;
	for (p = (const unsigned char *)r; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return 0;
	return 1;
}

int
relpath_ok(const char *p)
{
	const char *s;
	size_t n;

	if (*p == '\0' || *p == '/')
		return 0;
	for (s = p; *s; s += n + (s[n] == '/')) {
		n = strcspn(s, "/");
		if (n == 0 || (n == 1 && s[0] == '.') ||
		    (n == 2 && s[0] == '.' && s[1] == '.'))
			return 0;
	}
	return 1;
}

static int
parse_long(const char *v, long lo, long hi, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi)
		return -1;
	*out = n;
	return 0;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

enum { K_STR, K_CMD, K_NUM, K_BOOL, K_REF, K_PATH, K_PATHS };

static const struct key {
	const char	*name;
	int		 kind;
	size_t		 off;
	long		 lo, hi;
} keys[] = {
	{ "repo", K_STR, offsetof(struct config, repo), 0, 0 },
	{ "branch", K_REF, offsetof(struct config, branch), 0, 0 },
	{ "keep", K_NUM, offsetof(struct config, keep), 2, 10000 },
	{ "virtualenv", K_CMD, offsetof(struct config, virtualenv), 0, 0 },
	{ "requirements", K_PATH, offsetof(struct config, requirements), 0, 0 },
	{ "reuse_venv", K_BOOL, offsetof(struct config, reuse_venv), 0, 0 },
	{ "build", K_CMD, offsetof(struct config, build), 0, 0 },
	{ "test", K_CMD, offsetof(struct config, test), 0, 0 },
	{ "program", K_STR, offsetof(struct config, program), 0, 0 },
	{ "supervisorctl", K_CMD, offsetof(struct config, supervisorctl), 0, 0 },
	{ "restart", K_CMD, offsetof(struct config, restart), 0, 0 },
	{ "check", K_CMD, offsetof(struct config, check), 0, 0 },
	{ "check_timeout", K_NUM, offsetof(struct config, check_timeout), 0, 86400 },
	{ "link", K_PATHS, offsetof(struct config, link), 0, 0 },
	{ "envfile", K_PATH, offsetof(struct config, envfile), 0, 0 },
	{ "timeout", K_NUM, offsetof(struct config, timeout), 0, 604800 },
	{ "migrate", K_CMD, offsetof(struct config, migrate), 0, 0 },
	{ "notify", K_CMD, offsetof(struct config, notify), 0, 0 },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static int
set_key(struct config *c, const struct key *k, char *v, char *why, size_t wl)
{
	char **w, **p, werr[128];
	void *field = (char *)c + k->off;

	switch (k->kind) {
	case K_NUM:
		if (parse_long(v, k->lo, k->hi, (long *)field) == -1) {
			snprintf(why, wl, "%s must be a whole number from %ld "
			    "to %ld, not '%s'", k->name, k->lo, k->hi, v);
			return -1;
		}
		return 0;
	case K_BOOL:
		if (strcmp(v, "yes") == 0)
			*(int *)field = 1;
		else if (strcmp(v, "no") == 0)
			*(int *)field = 0;
		else {
			snprintf(why, wl, "%s must be yes or no, not '%s'",
			    k->name, v);
			return -1;
		}
		return 0;
	case K_CMD:
	case K_PATHS:
		if ((w = split_words(v, werr, sizeof(werr))) == NULL) {
			snprintf(why, wl, "%s: %s", k->name, werr);
			return -1;
		}
		for (p = w; k->kind == K_PATHS && *p; p++)
			if (!relpath_ok(*p)) {
				snprintf(why, wl, "%s: '%s' must be a path "
				    "under shared/ (relative, no '..')",
				    k->name, *p);
				free_words(w);
				return -1;
			}
		free_words(w);
		break;
	case K_PATH:
		if (!relpath_ok(v)) {
			snprintf(why, wl, "%s: '%s' must be a relative path "
			    "without '..'", k->name, v);
			return -1;
		}
		break;
	case K_REF:
		if (!ref_ok(v)) {
			snprintf(why, wl, "%s: '%s' is not a usable ref", k->name, v);
			return -1;
		}
		break;
	default:
		if (*v == '-') {
			snprintf(why, wl, "%s must not start with '-'", k->name);
			return -1;
		}
	}
	*(char **)field = xstrdup(v);
	return 0;
}

int
config_parse(struct config *c, const char *buf, size_t len, const char *file,
    char *err, size_t errlen)
{
	char line[4096], why[ERRLEN], *k, *v, *eq;
	int seen[NKEYS] = { 0 };
	size_t i, n, lineno = 0;
	const char *p = buf, *end = buf + len, *nl;

	if (len > CONF_MAX) {
		snprintf(err, errlen, "%s: larger than %d bytes", file, CONF_MAX);
		return -1;
	}
	if (memchr(buf, '\0', len) != NULL) {
		snprintf(err, errlen, "%s: holds a NUL byte", file);
		return -1;
	}
	for (; p < end; p = nl + 1) {
		lineno++;
		if ((nl = memchr(p, '\n', end - p)) == NULL)
			nl = end;
		n = nl - p;
		if (n >= sizeof(line)) {
			snprintf(why, sizeof(why), "line too long");
			goto bad;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		k = trim(line);
		if (*k == '\0' || *k == '#')
			continue;
		if ((eq = strchr(k, '=')) == NULL) {
			snprintf(why, sizeof(why), "expected 'key = value'");
			goto bad;
		}
		*eq = '\0';
		k = trim(k);
		v = trim(eq + 1);
		for (i = 0; i < NKEYS; i++)
			if (strcmp(keys[i].name, k) == 0)
				break;
		if (i == NKEYS) {
			snprintf(why, sizeof(why), "unknown key '%.64s'", k);
			goto bad;
		}
		if (seen[i]) {
			snprintf(why, sizeof(why), "%s is already set on line %d",
			    k, seen[i]);
			goto bad;
		}
		seen[i] = (int)lineno;
		if (*v == '\0') {
			snprintf(why, sizeof(why), "%s has no value", k);
			goto bad;
		}
		if (set_key(c, &keys[i], v, why, sizeof(why)) == -1)
			goto bad;
		if (nl == end)
			break;
	}
	if (c->repo == NULL) {
		snprintf(err, errlen, "%s: repo is not set", file);
		return -1;
	}
	return 0;
bad:
	snprintf(err, errlen, "%s:%zu: %s", file, lineno, why);
	return -1;
}

int
envfile_parse(const char *buf, size_t len, const char *file, char ***vars,
    char *err, size_t errlen)
{
	char line[4096], *k, *eq, **v = NULL;
	size_t n, nv = 0, lineno = 0;
	const char *p = buf, *end = buf + len, *nl, *why;

	if (len > CONF_MAX || memchr(buf, '\0', len) != NULL) {
		snprintf(err, errlen, "%s: too large or holds a NUL byte", file);
		return -1;
	}
	for (; p < end; p = nl + 1) {
		lineno++;
		if ((nl = memchr(p, '\n', end - p)) == NULL)
			nl = end;
		n = nl - p;
		why = "line too long";
		if (n >= sizeof(line))
			goto bad;
		memcpy(line, p, n);
		line[n] = '\0';
		if (n > 0 && line[n - 1] == '\r')
			line[n - 1] = '\0';
		k = line;
		while (*k == ' ' || *k == '\t')
			k++;
		if (*k == '\0' || *k == '#')
			continue;
		why = "expected KEY=VALUE";
		if ((eq = strchr(k, '=')) == NULL || eq == k)
			goto bad;
		why = "a KEY is letters, digits and _, not starting with a digit";
		if (isdigit((unsigned char)*k))
			goto bad;
		for (; k < eq; k++)
			if (!(isalnum((unsigned char)*k) || *k == '_'))
				goto bad;
		v = xrealloc(v, (nv + 2) * sizeof(*v));
		v[nv++] = xstrdup(line + (line[0] == ' ' || line[0] == '\t' ?
		    strspn(line, " \t") : 0));
		v[nv] = NULL;
		if (nl == end)
			break;
	}
	if (v == NULL) {
		v = xrealloc(NULL, sizeof(*v));
		v[0] = NULL;
	}
	*vars = v;
	return 0;
bad:
	snprintf(err, errlen, "%s:%zu: %s", file, lineno, why);
	free_words(v);
	return -1;
}

static const char *evnames[] = { "build", "complete", "activate", "failed",
    "remove" };

int
event_type(const char *s)
{
	int i;

	for (i = 0; i < 5; i++)
		if (strcmp(s, evnames[i]) == 0)
			return i;
	return -1;
}

const char *
event_name(int t)
{
	return t >= 0 && t < 5 ? evnames[t] : "?";
}

/*
 * Splits s in place at blanks into at most max words (sscanf would pull
 * a scanf with floating point into a static build); returns how many.
 */
static int
fields(char *s, char **f, int max)
{
	int n = 0;

	while (n < max) {
		s += strspn(s, " \t\r\n");
		if (*s == '\0')
			break;
		f[n++] = s;
		s += strcspn(s, " \t\r\n");
		if (*s != '\0')
			*s++ = '\0';
	}
	return n;
}


int
history_parse(const char *buf, size_t len, struct event **out, size_t *nout)
{
	struct event *ev = NULL, e;
	char line[256], *f[3], *num;
	const char *p = buf, *end = buf + len, *nl;
	size_t n, nev = 0;

	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', end - p)) == NULL)
			break;		/* a partial last line is not a record */
		n = nl - p;
		if (n >= sizeof(line))
			continue;
		memcpy(line, p, n);
		line[n] = '\0';
		if (fields(line, f, 3) != 3 || strlen(f[2]) > 64)
			continue;
		errno = 0;
		e.t = strtoll(f[0], &num, 10);
		if (errno != 0 || num == f[0] || *num != '\0' ||
		    (e.type = event_type(f[1])) == -1 || !is_sha(f[2]))
			continue;
		memcpy(e.sha, f[2], strlen(f[2]) + 1);
		ev = xrealloc(ev, (nev + 1) * sizeof(*ev));
		ev[nev++] = e;
	}
	*out = ev;
	*nout = nev;
	return 0;
}

static const char *statenames[] = { "complete", "failed", "incomplete",
    "foreign" };

const char *
state_name(int s)
{
	return s >= 0 && s < 4 ? statenames[s] : "?";
}

long
release_find(const struct release *r, size_t n, const char *sha)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(r[i].name, sha) == 0)
			return (long)i;
	return -1;
}

static int
release_cmp(const void *a, const void *b)
{
	const struct release *x = a, *y = b;

	if (x->state != y->state && (x->state >= R_INCOMPLETE ||
	    y->state >= R_INCOMPLETE)) {
		int kx = x->state < R_INCOMPLETE ? 0 : x->state;
		int ky = y->state < R_INCOMPLETE ? 0 : y->state;
		if (kx != ky)
			return kx < ky ? -1 : 1;
	}
	if (x->seq != y->seq)
		return x->seq > y->seq ? -1 : 1;
	return strcmp(x->name, y->name);
}

int
releases_build(const struct event *ev, size_t nev, char *const *names,
    const int *isdir, size_t n, struct release **out, size_t *nout)
{
	struct release *r;
	size_t i, j;

	r = xrealloc(NULL, (n + 1) * sizeof(*r));
	for (i = 0; i < n; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		snprintf(r[i].name, sizeof(r[i].name), "%s", names[i]);
		r[i].seq = -1;
		r[i].state = R_FOREIGN;
		if (!isdir[i] || !is_sha(names[i]))
			continue;
		for (j = 0; j < nev; j++) {
			if (strcmp(ev[j].sha, names[i]) != 0)
				continue;
			switch (ev[j].type) {
			case EV_BUILD:
				if (r[i].state == R_FOREIGN)
					r[i].state = R_INCOMPLETE;
				break;
			case EV_COMPLETE:
				/* a failed one that ran again is complete
				 * again, in its first place */
				if (r[i].state == R_FAILED)
					r[i].state = R_COMPLETE;
				if (r[i].state == R_INCOMPLETE ||
				    r[i].state == R_FOREIGN) {
					r[i].state = R_COMPLETE;
					r[i].seq = (long)j;
					r[i].completed = ev[j].t;
				}
				break;
			case EV_FAILED:
				if (r[i].state == R_COMPLETE)
					r[i].state = R_FAILED;
				break;
			case EV_ACTIVATE:
				r[i].activated = ev[j].t;
				break;
			case EV_REMOVE:	/* ours, being removed */
				r[i].state = R_INCOMPLETE;
				r[i].seq = -1;
				r[i].completed = r[i].activated = 0;
				break;
			}
		}
	}
	qsort(r, n, sizeof(*r), release_cmp);
	*out = r;
	*nout = n;
	return 0;
}

long
rev_match(const struct release *r, size_t n, const char *rev)
{
	size_t i, len = strlen(rev);
	long hit = -1;

	if (len < 7 || len > 64)
		return -3;
	for (i = 0; i < len; i++)
		if (!isdigit((unsigned char)rev[i]) &&
		    (rev[i] < 'a' || rev[i] > 'f'))
			return -3;
	for (i = 0; i < n; i++) {
		if (r[i].state != R_COMPLETE && r[i].state != R_FAILED)
			continue;
		if (strncmp(r[i].name, rev, len) != 0)
			continue;
		if (hit != -1)
			return -2;
		hit = (long)i;
	}
	return hit;
}

long
rollback_target(const struct release *r, size_t n, long cur)
{
	long best = -1;
	size_t i;

	if (cur < 0 || r[cur].seq < 0)
		return -1;
	for (i = 0; i < n; i++)
		if (r[i].state == R_COMPLETE && r[i].seq < r[cur].seq &&
		    (best == -1 || r[i].seq > r[best].seq))
			best = (long)i;
	return best;
}

size_t
prune_select(struct release *r, size_t n, long keep, long cur, long rb)
{
	size_t i, nrm = 0;
	long kept = 0;

	/* r is sorted newest first, so the first keep complete ones stay */
	for (i = 0; i < n; i++) {
		r[i].mark = 0;
		if ((long)i == cur || (long)i == rb || r[i].state == R_FOREIGN) {
			kept += r[i].state == R_COMPLETE;
			continue;
		}
		if (r[i].state == R_COMPLETE && kept < keep) {
			kept++;
			continue;
		}
		r[i].mark = 1;
		nrm++;
	}
	return nrm;
}

/*
 * Whether a requirements file may share a venv keyed by its bytes: an
 * allow-list, since pip reads many things as local paths (vendor/lib,
 * x-1.0-py3-none-any.whl, --find-links dir, -r other.txt, ${VAR}) whose
 * contents the key cannot see. Anything not understood is not shareable.
 */
#define RQ_WS(c)	((c) == ' ' || (c) == '\t' || (c) == '\r' || \
			    (c) == '\f' || (c) == '\v')
#define RQ_ALNUM(c)	(((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && \
			    (c) <= 'Z') || ((c) >= '0' && (c) <= '9'))

/* Whether the n bytes at s are all alnum or in set. */
static int
rq_chars(const char *s, size_t n, const char *set)
{
	for (; n > 0; s++, n--)
		if (!RQ_ALNUM(*s) && strchr(set, *s) == NULL)
			return 0;
	return 1;
}

/* Splits the next blank-separated token off [*p, e). */
static int
rq_token(const char **p, const char *e, const char **t, size_t *tn)
{
	while (*p < e && RQ_WS(**p))
		(*p)++;
	if (*p == e)
		return 0;
	*t = *p;
	while (*p < e && !RQ_WS(**p))
		(*p)++;
	*tn = (size_t)(*p - *t);
	return 1;
}

static int
rq_url(const char *v, size_t n)
{
	if (!(n > 7 && strncmp(v, "http://", 7) == 0) &&
	    !(n > 8 && strncmp(v, "https://", 8) == 0))
		return 0;
	return rq_chars(v, n, "-._~:/?[]@!&()*+,;=%");
}

/* Option tokens of an option line: each known, none naming a path. */
static int
rq_options(const char *p, const char *e)
{
	static const struct {
		const char *name;
		int arg;	/* 0 none, 1 URL, 2 binary list, 3 host */
	} ok[] = {
		{ "-i", 1 }, { "--index-url", 1 }, { "--extra-index-url", 1 },
		{ "--only-binary", 2 }, { "--no-binary", 2 },
		{ "--prefer-binary", 0 }, { "--pre", 0 }, { "--no-index", 0 },
		{ "--require-hashes", 0 }, { "--trusted-host", 3 }
	};
	const char *t, *v;
	size_t tn, vn, i, k;

	while (rq_token(&p, e, &t, &tn)) {
		for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
			k = strlen(ok[i].name);
			if (tn >= k && strncmp(t, ok[i].name, k) == 0 &&
			    (tn == k || (t[k] == '=' && ok[i].arg)))
				break;
		}
		if (i == sizeof(ok) / sizeof(ok[0]))
			return 0;
		if (ok[i].arg == 0)
			continue;
		if (tn > k) {
			v = t + k + 1;
			vn = tn - k - 1;
		} else if (!rq_token(&p, e, &v, &vn))
			return 0;
		if (ok[i].arg == 1 && !rq_url(v, vn))
			return 0;
		if (ok[i].arg == 2 && (vn == 0 || !rq_chars(v, vn, ",:._-")))
			return 0;
		if (ok[i].arg == 3 && (vn == 0 || !rq_chars(v, vn, ".-:[]")))
			return 0;
	}
	return 1;
}

/* name[extras] <version specs> ; markers, then only --hash options */
static int
rq_requirement(const char *p, const char *e)
{
	static const char *arch[] = { ".zip", ".whl", ".tar", ".tar.gz",
	    ".tgz", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tlz", ".tar.lz",
	    ".tar.lzma" };
	const char *s, *opt, *t, *v;
	size_t tn, i, k;

	/* pip splits the options off at the first token starting with '-' */
	for (opt = p; opt < e; opt++)
		if (*opt == '-' && (opt == p || RQ_WS(opt[-1])))
			break;
	for (s = opt; rq_token(&s, e, &t, &tn); ) {
		if (tn > 7 && strncmp(t, "--hash=", 7) == 0) {
			v = t + 7;
			tn -= 7;
		} else if (tn == 6 && strncmp(t, "--hash", 6) == 0 &&
		    rq_token(&s, e, &v, &tn))
			;
		else
			return 0;
		if (tn < 3 || memchr(v, ':', tn) == NULL ||
		    !rq_chars(v, tn, ":"))
			return 0;
	}
	e = opt;
	/* the name: a plain project name, never an archive file's */
	if (p == e || !RQ_ALNUM(*p))
		return 0;
	for (s = p; s < e && (RQ_ALNUM(*s) || strchr("._-", *s)); s++)
		;
	for (i = 0; i < sizeof(arch) / sizeof(arch[0]); i++) {
		k = strlen(arch[i]);
		if ((size_t)(s - p) >= k) {
			for (t = s - k, v = arch[i]; *v; t++, v++)
				if (tolower((unsigned char)*t) != *v)
					break;
			if (*v == '\0')
				return 0;
		}
	}
	while (s < e && RQ_WS(*s))
		s++;
	if (s < e && *s == '[') {
		for (t = s; t < e && *t != ']'; t++)
			;
		if (t == e || !rq_chars(s + 1, (size_t)(t - s - 1),
		    "._-, \t"))
			return 0;
		s = t + 1;
		while (s < e && RQ_WS(*s))
			s++;
	}
	if (s < e && *s != ';' && strchr("(<>=!~", *s) == NULL)
		return 0;
	for (t = s; t < e && *t != ';'; t++)
		;
	if (!rq_chars(s, (size_t)(t - s), "<>=!~,.*+_-() \t\r\f\v"))
		return 0;
	for (v = s; v < t; v++)		/* "==1.0 other": not one requirement */
		if (RQ_WS(*v) && v > s && (RQ_ALNUM(v[-1]) || v[-1] == '*')) {
			while (v < t && RQ_WS(*v))
				v++;
			if (v < t && RQ_ALNUM(*v))
				return 0;
		}
	/* environment markers: names, operators and quoted plain words */
	return t == e || rq_chars(t + 1, (size_t)(e - t - 1),
	    "<>=!~,.*+_-()'\" \t\r\f\v");
}

int
reqs_shareable(const char *buf, size_t len)
{
	const char *l, *p, *e, *end = buf + len;

	if (memchr(buf, '\0', len) != NULL)
		return 0;
	for (l = buf; l < end; l = p + 1) {
		if ((p = memchr(l, '\n', (size_t)(end - l))) == NULL)
			p = end;
		e = p;
		while (e > l && RQ_WS(e[-1]))
			e--;
		if (e > l && e[-1] == '\\')	/* pip joins lines: not followed */
			return 0;
		/* pip's comments: '#' at the start or after a blank */
		for (e = l; e < p; e++)
			if (*e == '#' && (e == l || RQ_WS(e[-1])))
				break;
		while (l < e && RQ_WS(*l))
			l++;
		while (e > l && RQ_WS(e[-1]))
			e--;
		if (l == e)
			continue;
		if (*l == '-' ? !rq_options(l, e) : !rq_requirement(l, e))
			return 0;
	}
	return 1;
}

#ifndef DEPLOY_CORE_ONLY

/* ---- the program ---- */

static int qflag, vflag, nflag, Mflag, jflag;
static long wflag = 0, kflag = 0;
static const char *cmdname = "deploy";

/* the first two words of line, copied when they fit: how many did */
static int
two_words(const char *line, char *a, size_t al, char *b, size_t bl)
{
	char copy[1024], *f[2];
	int n;

	snprintf(copy, sizeof(copy), "%s", line);
	n = fields(copy, f, 2);
	if (n < 1 || strlen(f[0]) >= al)
		return 0;
	memcpy(a, f[0], strlen(f[0]) + 1);
	if (n < 2 || b == NULL || strlen(f[1]) >= bl)
		return 1;
	memcpy(b, f[1], strlen(f[1]) + 1);
	return 2;
}


static struct config cfg;
static char *root;		/* absolute, resolved */
static int rootfd = -1, statefd = -1, lockfd = -1, logfd = -1;
static char **envvars;		/* from envfile */
static volatile sig_atomic_t gotsig;
static int stepno;
static int late;		/* after the switch: signals wait */
/* a failure is "a person must look" only once current has moved */
#define FAIL_STATUS	(late ? EXIT_STUCK : EXIT_FAILED)

static void
vmsg(FILE *f, const char *fmt, va_list ap)
{
	fputs("deploy: ", f);
	vfprintf(f, fmt, ap);
	fputc('\n', f);
	fflush(f);
}

static void
warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(stderr, fmt, ap);
	va_end(ap);
}

#ifdef __GNUC__
static void die(int, const char *, ...) __attribute__((noreturn));
static void leave(int) __attribute__((noreturn));
#else
static void leave(int);
#endif

static void
die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(stderr, fmt, ap);
	va_end(ap);
	leave(status);
}

static void
say(const char *fmt, ...)
{
	va_list ap;

	if (qflag)
		return;
	va_start(ap, fmt);
	vmsg(stdout, fmt, ap);
	va_end(ap);
}

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *
fmtpath(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	p = xrealloc(NULL, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

static const char *
fmttime(long long t)
{
	static char buf[32];
	time_t tt = (time_t)t;
	struct tm *tm;

	if (t == 0 || (tm = localtime(&tt)) == NULL)
		return "-";
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", tm);
	return buf;
}

/* Input echoed in a message stays on one line: control bytes as \\xNN. */
static const char *
printable(const char *s)
{
	static char buf[4][1100];
	static int k;
	char *b = buf[k++ % 4];
	size_t n = 0;

	for (; *s && n < sizeof(buf[0]) - 5; s++) {
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			n += (size_t)snprintf(b + n, 5, "\\x%02x", (unsigned char)*s);
		else
			b[n++] = *s;
	}
	b[n] = '\0';
	return b;
}

static int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static char *
read_file_at(int dfd, const char *name, size_t max, size_t *len,
    struct stat *st)
{
	char *buf;
	size_t n = 0;
	ssize_t r;
	int fd;

	struct stat sb;

	/* O_NONBLOCK and a regular-file check: a FIFO must not hang us */
	if ((fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK)) == -1)
		return NULL;
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		if (!S_ISREG(sb.st_mode))
			errno = EINVAL;
		close(fd);
		return NULL;
	}
	if (st != NULL)
		*st = sb;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	size_t cap = 4096;

	buf = xrealloc(NULL, cap + 1);
	while (n <= max) {
		if (n == cap) {
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			buf = xrealloc(buf, cap + 1);
		}
		r = read(fd, buf + n, cap - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/*
 * Writes a file under a temp name and renames it in, so that a kill never
 * leaves half of it. durable: fsyncs the file and the folder too; without,
 * the file must outlive our process, not the machine.
 */
static int
replace_file_at(int dfd, const char *name, const char *data, size_t len,
    int durable)
{
	char tmp[128];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	unlinkat(dfd, tmp, 0);
	if ((fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1)
		return -1;
	if (write_all(fd, data, len) == -1 || (durable && fsync(fd) == -1)) {
		close(fd);
		unlinkat(dfd, tmp, 0);
		return -1;
	}
	if (close(fd) == -1 || renameat(dfd, tmp, dfd, name) == -1) {
		unlinkat(dfd, tmp, 0);
		return -1;
	}
	return durable ? fsync(dfd) : 0;
}

/* ---- history: the durable order of releases ---- */

static struct event *hist;
static size_t nhist;

static void
history_load(void)
{
	size_t len;
	char *buf;

	free(hist);
	hist = NULL;
	nhist = 0;
	if (statefd == -1 || (buf = read_file_at(statefd, "history", 64 << 20,
	    &len, NULL)) == NULL) {
		if (statefd != -1 && errno != ENOENT)
			die(FAIL_STATUS, "%s/%s/history: %s", root, STATE,
			    strerror(errno));
		return;
	}
	history_parse(buf, len, &hist, &nhist);
	free(buf);
}

static int
history_save(void)
{
	char *buf = NULL;
	size_t i, len = 0;
	int n;

	buf = xrealloc(NULL, nhist * 100 + 1);
	for (i = 0; i < nhist; i++) {
		n = snprintf(buf + len, 100, "%lld %s %s\n", hist[i].t,
		    event_name(hist[i].type), hist[i].sha);
		len += (size_t)n;
	}
	if (replace_file_at(statefd, "history", buf, len, 1) == -1) {
		warnx("cannot write %s/%s/history: %s", root, STATE,
		    strerror(errno));
		free(buf);
		return -1;
	}
	free(buf);
	return 0;
}

/*
 * Appends one event and fsyncs it: one write and one fsync, where a
 * rewrite would cost two of each; prune compacts the file. A torn last
 * line (a crash mid-write) is ended first, so it stays one bad line.
 */
static int
history_add(int type, const char *sha)
{
	char line[128], last = '\n';
	struct stat st;
	int fd, n;

	hist = xrealloc(hist, (nhist + 1) * sizeof(*hist));
	hist[nhist].t = (long long)time(NULL);
	hist[nhist].type = type;
	snprintf(hist[nhist].sha, sizeof(hist[nhist].sha), "%s", sha);
	n = snprintf(line + 1, sizeof(line) - 1, "%lld %s %s\n", hist[nhist].t,
	    event_name(type), hist[nhist].sha);
	nhist++;
	if ((fd = openat(statefd, "history", O_RDWR | O_APPEND | O_CLOEXEC |
	    O_NOFOLLOW)) == -1)
		return history_save();	/* the first event makes the file */
	line[0] = '\n';
	if (fstat(fd, &st) == -1 || (st.st_size > 0 &&
	    pread(fd, &last, 1, st.st_size - 1) != 1) ||
	    write_all(fd, line + (last == '\n'), (size_t)n + (last != '\n')) == -1 ||
	    fsync(fd) == -1) {
		warnx("cannot write %s/%s/history: %s", root, STATE,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return close(fd);
}

/* Keeps what decides a release's state: one activate per release, and
 * nothing of releases that are gone. */
static void
history_compact(void)
{
	size_t i, j, k;
	struct stat st;
	char path[80];

	for (i = j = 0; i < nhist; i++) {
		snprintf(path, sizeof(path), "releases/%s", hist[i].sha);
		if (fstatat(rootfd, path, &st, AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		if (hist[i].type == EV_ACTIVATE) {
			for (k = i + 1; k < nhist; k++)
				if (hist[k].type == EV_ACTIVATE &&
				    strcmp(hist[k].sha, hist[i].sha) == 0)
					break;
			if (k < nhist)
				continue;
		}
		hist[j++] = hist[i];
	}
	if (j != nhist) {
		nhist = j;
		history_save();
	}
}

/* Drops every event of sha, so that the history does not grow forever. */
static void
history_forget(const char *sha)
{
	size_t i, j;

	for (i = j = 0; i < nhist; i++)
		if (strcmp(hist[i].sha, sha) != 0)
			hist[j++] = hist[i];
	nhist = j;
}

/* ---- the view of releases/ and current ---- */

static void
copy_sha(char dst[65], const char *src)
{
	size_t n = strlen(src);

	if (n > 64)
		n = 64;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static struct release *rel;
static size_t nrel;
static char cursha[65];		/* current's release, "" when none */

enum { CUR_NONE, CUR_OK, CUR_DIR, CUR_BAD };

/* What current is: absent, a link to releases/<sha>, or something else. */
static int
read_current(char *why, size_t wl)
{
	char buf[PATH_MAX];
	struct stat st;
	ssize_t n;

	cursha[0] = '\0';
	if (fstatat(rootfd, "current", &st, AT_SYMLINK_NOFOLLOW) == -1)
		return CUR_NONE;
	if (S_ISDIR(st.st_mode)) {
		snprintf(why, wl, "%s/current is a directory, not a link: "
		    "mv current releases/<sha> && ln -s releases/<sha> current "
		    "(in %s; deploy then adopts it; see deploy(1), MIGRATING)",
		    root, root);
		return CUR_DIR;
	}
	if (!S_ISLNK(st.st_mode) ||
	    (n = readlinkat(rootfd, "current", buf, sizeof(buf) - 1)) == -1) {
		snprintf(why, wl, "%s/current is not a symbolic link", root);
		return CUR_BAD;
	}
	buf[n] = '\0';
	if (buf[0] == '/') {
		/* the post's script links by absolute path: accept one that
		 * resolves to a release of this root */
		char real[PATH_MAX], *want = fmtpath("%s/releases/", root);

		if (realpath(buf, real) != NULL &&
		    strncmp(real, want, strlen(want)) == 0 &&
		    is_sha(real + strlen(want)))
			snprintf(buf, sizeof(buf), "releases/%s",
			    real + strlen(want));
		free(want);
	}
	if (strncmp(buf, "releases/", 9) != 0 || !is_sha(buf + 9)) {
		snprintf(why, wl, "%s/current points to '%s', not to a release "
		    "in %s/releases/: point it at one (ln -s releases/<sha> "
		    "current.new && mv -T current.new current) or remove it",
		    root, buf, root);
		return CUR_BAD;
	}
	if (fstatat(rootfd, buf, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISDIR(st.st_mode)) {
		snprintf(why, wl, "%s/current points to %s, which does not "
		    "exist: point it at a release that does, or remove it and "
		    "deploy", root, buf);
		return CUR_BAD;
	}
	copy_sha(cursha, buf + 9);
	return CUR_OK;
}

/* ROOT/releases, never through a link; -1 only when absent and absent_ok */
static int
releases_fd(int absent_ok)
{
	int fd = openat(rootfd, "releases", O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW);

	if (fd == -1 && !(absent_ok && errno == ENOENT))
		die(FAIL_STATUS, "%s/releases: %s", root, strerror(errno));
	return fd;
}

static void
scan_releases(void)
{
	char **names = NULL;
	int *isdir = NULL, fd;
	size_t n = 0, i;
	struct dirent *d;
	struct stat st;
	DIR *dp;

	free(rel);
	rel = NULL;
	nrel = 0;
	if ((fd = releases_fd(1)) == -1)
		return;
	if ((dp = fdopendir(fd)) == NULL)
		die(FAIL_STATUS, "%s/releases: %s", root, strerror(errno));
	while ((d = readdir(dp)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
		names = xrealloc(names, (n + 1) * sizeof(*names));
		isdir = xrealloc(isdir, (n + 1) * sizeof(*isdir));
		names[n] = xstrdup(d->d_name);
		isdir[n] = fstatat(dirfd(dp), d->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
		n++;
	}
	closedir(dp);
	releases_build(hist, nhist, names, isdir, n, &rel, &nrel);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(isdir);
}

static long
cur_index(void)
{
	return cursha[0] ? release_find(rel, nrel, cursha) : -1;
}

/* ---- removing a tree: descriptor-relative, never following a link ---- */

struct frame {
	char	**subs;
	size_t	  nsub, i;
	char	 *name;
	dev_t	  dev;
	ino_t	  ino;
};

static int
open_dir_at(int dfd, const char *name)
{
	int fd;

	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 && errno == EACCES &&
	    fchmodat(dfd, name, 0700, 0) == 0)	/* a mode 000 folder of ours */
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	return fd;
}

/* Removes the files of the folder fd, keeps its subfolders' names in f. */
static int
scan_dir(int fd, struct frame *f, dev_t dev)
{
	char **files = NULL;
	size_t nf = 0, i;
	struct dirent *d;
	struct stat st;
	int dfd, errs = 0, isdir;
	DIR *dp;

	f->subs = NULL;
	f->nsub = f->i = 0;
	/* a folder a build made read-only (chmod -R a-w) cannot be emptied
	 * as it is: make it ours to change first (root needs no such help) */
	if (fstat(fd, &st) == 0 && (st.st_mode & S_IRWXU) != S_IRWXU)
		(void)fchmod(fd, (st.st_mode & 07777) | S_IRWXU);
	if ((dfd = dup(fd)) == -1 || (dp = fdopendir(dfd)) == NULL) {
		if (dfd != -1)
			close(dfd);
		return 1;
	}
	while ((d = readdir(dp)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
#ifdef DT_DIR
		if (d->d_type != DT_UNKNOWN)
			isdir = d->d_type == DT_DIR;
		else
#endif
		isdir = fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode);
		if (isdir) {
			f->subs = xrealloc(f->subs, (f->nsub + 1) * sizeof(char *));
			f->subs[f->nsub++] = xstrdup(d->d_name);
		} else {
			files = xrealloc(files, (nf + 1) * sizeof(char *));
			files[nf++] = xstrdup(d->d_name);
		}
	}
	closedir(dp);
	(void)dev;
	for (i = 0; i < nf; i++) {
		if (unlinkat(fd, files[i], 0) == -1 && errno != ENOENT)
			errs++;
		free(files[i]);
	}
	free(files);
	return errs;
}

static void
frame_free(struct frame *f)
{
	size_t i;

	for (i = 0; i < f->nsub; i++)
		free(f->subs[i]);
	free(f->subs);
	free(f->name);
}

/*
 * Whether anything is mounted at or below path (a bind mount of the same
 * file system has the same st_dev, so st_dev alone cannot tell). Linux
 * lists mounts in /proc/self/mountinfo; elsewhere st_dev is the guard.
 */
static int
mounted_under(const char *path)
{
	char line[8192], mp[PATH_MAX], *p, *q;
	size_t n = strlen(path);
	int found = 0, f;
	FILE *fp;

	if ((fp = fopen("/proc/self/mountinfo", "re")) == NULL &&
	    (fp = fopen("/proc/self/mountinfo", "r")) == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		/* the fifth field, with spaces and such as \\ooo */
		for (p = line, f = 1; f < 5 && p != NULL; f++)
			if ((p = strchr(p, ' ')) != NULL)
				p++;
		if (p == NULL)
			continue;
		for (q = mp; *p && *p != ' ' && q < mp + sizeof(mp) - 1; p++) {
			if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' &&
			    p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
				*q++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 +
				    (p[3] - '0'));
				p += 3;
			} else
				*q++ = *p;
		}
		*q = '\0';
		found = strncmp(mp, path, n) == 0 && (mp[n] == '/' || mp[n] == '\0');
	}
	fclose(fp);
	return found;
}

/*
 * Removes dfd/name and all below it, holding one descriptor at a time so
 * that any depth works; climbs back with ".." and checks it is the folder
 * it came from. Never crosses into another file system.
 */
static int
remove_tree(int dfd, const char *name, const char *where)
{
	struct frame *st = NULL;
	size_t depth = 0;
	struct stat sb;
	int fd, cfd, up, errs = 0;
	dev_t dev;

	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    strchr(name, '/') != NULL || *name == '\0')
		return -1;
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(sb.st_mode))
		return unlinkat(dfd, name, 0);
	if (where != NULL && mounted_under(where)) {
		warnx("%s has a file system mounted in it: not removing it; "
		    "unmount it first", where);
		return -1;
	}
	if ((fd = open_dir_at(dfd, name)) == -1 || fstat(fd, &sb) == -1)
		return -1;
	dev = sb.st_dev;
	st = xrealloc(NULL, sizeof(*st));
	st[0].name = xstrdup(name);
	st[0].dev = sb.st_dev;
	st[0].ino = sb.st_ino;
	errs += scan_dir(fd, &st[0], dev);
	depth = 1;
	while (depth > 0) {
		struct frame *f = &st[depth - 1];

		if (f->i < f->nsub) {
			const char *child = f->subs[f->i++];

			if ((cfd = open_dir_at(fd, child)) == -1) {
				errs++;
				continue;
			}
			if (fstat(cfd, &sb) == -1 || sb.st_dev != dev) {
				close(cfd);	/* a mount point: leave it */
				errs++;
				continue;
			}
			close(fd);
			fd = cfd;
			st = xrealloc(st, (depth + 1) * sizeof(*st));
			f = &st[depth++];
			f->name = xstrdup(child);
			f->dev = sb.st_dev;
			f->ino = sb.st_ino;
			errs += scan_dir(fd, f, dev);
			continue;
		}
		if (depth == 1) {
			close(fd);
			fd = -1;
			if (unlinkat(dfd, f->name, AT_REMOVEDIR) == -1)
				errs++;
			frame_free(f);
			depth--;
			break;
		}
		up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (up == -1 || fstat(up, &sb) == -1 ||
		    sb.st_dev != st[depth - 2].dev ||
		    sb.st_ino != st[depth - 2].ino) {
			/* the tree moved under us: stop rather than guess */
			if (up != -1)
				close(up);
			errs++;
			break;
		}
		close(fd);
		fd = up;
		if (unlinkat(fd, f->name, AT_REMOVEDIR) == -1)
			errs++;
		frame_free(f);
		depth--;
	}
	while (depth > 0)
		frame_free(&st[--depth]);
	if (fd != -1)
		close(fd);
	free(st);
	return errs ? -1 : 0;
}

/* remove_tree of ROOT/dir/name, dfd being that dir */
static int
remove_in(int dfd, const char *dir, const char *name)
{
	char *where = fmtpath("%s/%s/%s", root, dir, name);
	int r = remove_tree(dfd, name, where);

	free(where);
	return r;
}

/* ---- children: own process group, timeout, output to the log ---- */

static char tail[TAILMAX];
static size_t taillen;

static void
tail_add(const char *p, size_t n)
{
	if (n >= TAILMAX) {
		memcpy(tail, p + n - TAILMAX, TAILMAX);
		taillen = TAILMAX;
		return;
	}
	if (taillen + n > TAILMAX) {
		memmove(tail, tail + (taillen + n - TAILMAX), TAILMAX - n);
		taillen = TAILMAX - n;
	}
	memcpy(tail + taillen, p, n);
	taillen += n;
}

/*
 * The last lines of a step's output on stderr, a run of identical lines
 * (a check that failed twenty times) shown once with its count.
 */
static void
tail_show(int lines)
{
	size_t i = taillen, start, b, len, plen = 0;
	const char *line, *nl, *prev = NULL;
	int seen = 0, rep = 0;

	while (i > 0 && (tail[i - 1] == '\n'))
		i--;
	/* back over whole lines until `lines` runs of equal lines are in */
	for (start = i; start > 0 && seen < lines; start = b) {
		if (start < i)
			start--;	/* the newline ending the line before */
		for (b = start; b > 0 && tail[b - 1] != '\n'; b--)
			;
		if (prev == NULL || start - b != plen ||
		    memcmp(tail + b, prev, plen) != 0)
			seen++;
		prev = tail + b;
		plen = start - b;
	}
	prev = NULL;
	for (line = tail + start; line < tail + i; line += len + 1) {
		nl = memchr(line, '\n', (size_t)(tail + i - line));
		len = nl != NULL ? (size_t)(nl - line) : (size_t)(tail + i - line);
		if (prev != NULL && len == plen && memcmp(line, prev, len) == 0) {
			rep++;
			continue;
		}
		if (rep > 0)
			fprintf(stderr, "  | ... repeated %d more time%s\n", rep,
			    rep == 1 ? "" : "s");
		rep = 0;
		fprintf(stderr, "  | %.*s\n", (int)len, line);
		prev = line;
		plen = len;
	}
	if (rep > 0)
		fprintf(stderr, "  | ... repeated %d more time%s\n", rep,
		    rep == 1 ? "" : "s");
	fflush(stderr);
}

static void
log_write(const char *p, size_t n)
{
	if (logfd != -1 && write_all(logfd, p, n) == -1) {
		warnx("log: %s; going on without it", strerror(errno));
		close(logfd);
		logfd = -1;
	}
}

static void
logf_(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		log_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

struct result {
	int	status;		/* wait status */
	int	timedout;
	int	signo;		/* we were signalled while it ran */
	int	execerr;	/* errno of a failed exec */
};

/*
 * When a process started, in clock ticks since boot, from /proc on Linux;
 * 0 where that is not known. It tells a recorded process group from a
 * later one that reuses its number.
 */
static unsigned long long
start_time(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long long t = 0;
	size_t len;
	char *s;
	int i;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((s = read_file_at(AT_FDCWD, path, sizeof(buf) - 1, &len, NULL)) == NULL)
		return 0;
	snprintf(buf, sizeof(buf), "%s", s);
	free(s);
	if ((p = strrchr(buf, ')')) == NULL)
		return 0;
	/* field 22; the text after ')' starts with field 3 */
	for (i = 3, p++; i < 22 && p != NULL; i++)
		p = strchr(p + 1, ' ');
	if (p != NULL)
		t = strtoull(p + 1, NULL, 10);
	return t;
}

/* Records the running step so that the next run can end it. */
static void
record_step(pid_t pgid)
{
	char buf[64];
	int n;

	if (statefd == -1)
		return;
	if (pgid == 0) {
		unlinkat(statefd, "step", 0);
		return;
	}
	n = snprintf(buf, sizeof(buf), "%ld %llu\n", (long)pgid,
	    start_time((long)pgid));
	replace_file_at(statefd, "step", buf, (size_t)n, 0);
}

/*
 * A guard process per step, not in the step's group: it waits on a pipe
 * only we hold, and when we die without saying goodbye (SIGKILL), it ends
 * the step's whole process group. It is in a session of its own, so that
 * a SIGKILL to our process group (timeout -s KILL, a CI runner) does not
 * take it with us.
 */
static int
start_guard(pid_t pgid, pid_t *gpid)
{
	int p[2];
	ssize_t k;
	pid_t pid;
	char c;

	if (pipe(p) == -1)
		return -1;
	fcntl(p[1], F_SETFD, FD_CLOEXEC);
	if ((pid = fork()) == -1) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		setsid();
		signal(SIGINT, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		close(p[1]);
		do
			k = read(p[0], &c, 1);
		while (k == -1 && errno == EINTR);
		/* a byte means the step ended normally; EOF means we died */
		if (k == 0 && kill(-pgid, 0) == 0) {
			kill(-pgid, SIGTERM);
			sleep(1);
			kill(-pgid, SIGKILL);
		}
		_exit(0);
	}
	close(p[0]);
	*gpid = pid;
	return p[1];
}

/* The goodbye byte, then the guard's exit: nothing of ours outlives us. */
static void
stop_guard(int g, pid_t gpid)
{
	if (g == -1)
		return;
	write_all(g, "k", 1);
	close(g);
	while (waitpid(gpid, NULL, 0) == -1 && errno == EINTR)
		;
}

static void
kill_group(pid_t pgid, int *st, pid_t pid)
{
	double end;
	pid_t r;

	kill(-pgid, SIGTERM);
	end = now() + GRACE;
	while (now() < end) {
		r = waitpid(pid, st, WNOHANG);
		if (r == pid || (r == -1 && errno == ECHILD))
			break;
		poll(NULL, 0, 50);
	}
	kill(-pgid, SIGKILL);
	if (waitpid(pid, st, WNOHANG) == 0)
		while (waitpid(pid, st, 0) == -1 && errno == EINTR)
			;
}

enum { ENV_NONE, ENV_RELEASE, ENV_APP };

struct runopts {
	const char	 *dir;		/* working directory */
	int		  env;		/* ENV_* */
	const char	 *release;	/* for ENV_RELEASE and ENV_APP */
	const char	 *sha;
	char *const	 *extra;	/* more "K=V" */
	long		  timeout;	/* seconds, 0 none */
	char		 *out;		/* capture stdout here (size outlen) */
	size_t		  outlen;
	int		  record;	/* record the group for the next run */
	int		  keepgroup;	/* after a clean exit, leave the group be */
};

static void
child_env(const struct runopts *o)
{
	char *const *e;
	char *p;

	setenv("DEPLOY_ROOT", root, 1);
	if (o->sha != NULL)
		setenv("DEPLOY_REVISION", o->sha, 1);
	if (o->env != ENV_NONE && o->release != NULL) {
		const char *path = getenv("PATH");

		setenv("DEPLOY_RELEASE", o->release, 1);
		p = fmtpath("%s/.venv", o->release);
		setenv("VIRTUAL_ENV", p, 1);
		p = fmtpath("%s/.venv/bin:%s", o->release,
		    path ? path : "/usr/bin:/bin");
		setenv("PATH", p, 1);
		unsetenv("PYTHONHOME");
	}
	if (o->env == ENV_APP && envvars != NULL)
		for (e = envvars; *e; e++)
			putenv(*e);
	for (e = o->extra; e && *e; e++)
		putenv(*e);
}

/* A step's output goes to the log, the tail, and the capture or -v. */
static void
take_output(const struct runopts *o, size_t *outn, const char *buf, size_t k)
{
	log_write(buf, k);
	tail_add(buf, k);
	if (o->out != NULL) {
		if (k > o->outlen - 1 - *outn)
			k = o->outlen - 1 - *outn;
		memcpy(o->out + *outn, buf, k);
		*outn += k;
		o->out[*outn] = '\0';
	} else if (vflag && !qflag) {
		fwrite(buf, 1, k, stdout);
		fflush(stdout);
	}
}

static void step_tick(void);

/*
 * The child of run(): its own process group, a parent-death signal,
 * default signals, stdin from /dev/null, output to our pipe, then exec.
 * An errno written to ep says the exec (or the chdir) failed.
 */
static void
exec_child(char *const argv[], const struct runopts *o, int outfd, int ep)
{
	pid_t parent = getppid();
	int devnull, n;

	setpgid(0, 0);
#ifdef __linux__
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
#endif
	(void)parent;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	if ((devnull = open("/dev/null", O_RDONLY)) != -1) {
		dup2(devnull, 0);
		if (devnull != 0)
			close(devnull);
	}
	/* captured output is stdout only; stderr then goes to the log */
	dup2(outfd, 1);
	if (o->out == NULL)
		dup2(outfd, 2);
	else if (logfd != -1)
		dup2(logfd, 2);
	else if ((devnull = open("/dev/null", O_WRONLY)) != -1)
		dup2(devnull, 2);
	close(outfd);
	if (o->dir == NULL || chdir(o->dir) == 0) {
		child_env(o);
		execvp(argv[0], argv);
	}
	n = errno;
	write_all(ep, (char *)&n, sizeof(n));
	_exit(127);
}

/*
 * Reads the step's output until it exits, a signal comes (before the
 * switch) or its time is up; the last two end its whole group. Returns
 * what waitpid returned.
 */
static pid_t
wait_step(pid_t pid, int outfd, const struct runopts *o, size_t *outn,
    struct result *res, int *st)
{
	double end = o->timeout > 0 ? now() + o->timeout : 0;
	struct pollfd pfd;
	char buf[4096];
	int eof = 0;
	pid_t r = 0;

	pfd.fd = outfd;
	pfd.events = POLLIN;
	for (;;) {
		if (gotsig && !late) {
			res->signo = gotsig;
			kill_group(pid, st, pid);
			return r;
		}
		if (end && now() >= end) {
			res->timedout = 1;
			logf_("deploy: timed out after %lds\n", o->timeout);
			kill_group(pid, st, pid);
			return r;
		}
		step_tick();
		if (!eof && poll(&pfd, 1, 100) > 0) {
			ssize_t k = read(outfd, buf, sizeof(buf));

			if (k <= 0)
				eof = k == 0 || errno != EINTR;
			else
				take_output(o, outn, buf, (size_t)k);
		}
		if (eof && end) {
			/* output is done: wait for the exit itself, with an
			 * alarm for the timeout (a signal ends the wait too) */
			double left = end - now();
			alarm(left < 1 ? 1 : (unsigned)left + 1);
		}
		r = waitpid(pid, st, eof ? 0 : WNOHANG);
		if (eof && end)
			alarm(0);
		if (r == pid || (r == -1 && errno != EINTR))
			return r;
	}
}

/* What is left in the pipe, for up to a second. */
static void
drain_output(int outfd, const struct runopts *o, size_t *outn)
{
	double dl = now() + 1;
	struct pollfd pfd;
	char buf[4096];
	ssize_t k;

	pfd.fd = outfd;
	pfd.events = POLLIN;
	while (now() < dl && poll(&pfd, 1, 100) > 0) {
		if ((k = read(outfd, buf, sizeof(buf))) <= 0)
			break;
		take_output(o, outn, buf, (size_t)k);
	}
}

/* Runs argv as a step of its own; 0 when it exited 0. */
static int
run(char *const argv[], const struct runopts *o, struct result *res)
{
	int out[2], ep[2], guard, st = 0, n;
	char *const *a;
	size_t outn = 0;
	pid_t pid, r, gpid = -1;

	memset(res, 0, sizeof(*res));
	if (argv[0] == NULL)
		die(FAIL_STATUS, "empty command");
	logf_("$");
	for (a = argv; *a; a++)
		logf_(" %s", *a);
	logf_("\n");
	if (pipe(out) == -1 || pipe(ep) == -1)
		die(FAIL_STATUS, "pipe: %s", strerror(errno));
	fcntl(out[0], F_SETFD, FD_CLOEXEC);
	fcntl(ep[0], F_SETFD, FD_CLOEXEC);
	fcntl(ep[1], F_SETFD, FD_CLOEXEC);
	fflush(NULL);
	if ((pid = fork()) == -1)
		die(FAIL_STATUS, "fork: %s", strerror(errno));
	if (pid == 0)
		exec_child(argv, o, out[1], ep[1]);
	setpgid(pid, pid);
	close(out[1]);
	close(ep[1]);
	guard = start_guard(pid, &gpid);
	if (o->record)
		record_step(pid);
	while ((n = (int)read(ep[0], &res->execerr, sizeof(res->execerr))) == -1 &&
	    errno == EINTR)
		;
	if (n != sizeof(res->execerr))
		res->execerr = 0;
	close(ep[0]);
	r = wait_step(pid, out[0], o, &outn, res, &st);
	/*
	 * Nothing the step started may outlive it; but a restart command
	 * that exits 0 may have started a daemon in the background.
	 */
	if (!o->keepgroup || r != pid || res->signo || res->timedout ||
	    !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		kill(-pid, SIGKILL);
	drain_output(out[0], o, &outn);
	close(out[0]);
	if (o->record)
		record_step(0);
	stop_guard(guard, gpid);
	res->status = st;
	if (res->execerr)
		logf_("deploy: cannot run %s: %s\n", argv[0],
		    strerror(res->execerr));
	return res->signo == 0 && !res->timedout && res->execerr == 0 &&
	    WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static const char *
why_failed(const struct result *r, const char *argv0, long tmo)
{
	static char buf[256];

	if (r->signo)
		snprintf(buf, sizeof(buf), "stopped by signal %d", r->signo);
	else if (r->timedout)
		snprintf(buf, sizeof(buf), "timed out after %lds (timeout)", tmo);
	else if (r->execerr)
		snprintf(buf, sizeof(buf), "cannot run %s: %s", argv0,
		    strerror(r->execerr));
	else if (WIFEXITED(r->status))
		snprintf(buf, sizeof(buf), "exit status %d",
		    WEXITSTATUS(r->status));
	else if (WIFSIGNALED(r->status))
		snprintf(buf, sizeof(buf), "killed by signal %d",
		    WTERMSIG(r->status));
	else
		snprintf(buf, sizeof(buf), "failed");
	return buf;
}

/* ---- step reporting ---- */

static double stepstart;

/* On a terminal (and not -q or -v), a running step's line counts the
 * seconds, so a long pip or test step does not look hung; ok and FAILED
 * are coloured unless NO_COLOR is set.  In a pipe or a cron log the lines
 * stay exactly as they were. */
static int live = -1, colour_out, colour_err;
static int liveshown;		/* the step's line is on screen, no newline */
static double livedrawn;
static char livename[32];

static void
live_init(void)
{
	const char *term = getenv("TERM"), *nc = getenv("NO_COLOR");
	int plain = (term != NULL && strcmp(term, "dumb") == 0) ||
	    (nc != NULL && *nc != '\0');

	if (live != -1)
		return;
	live = !qflag && !vflag && isatty(STDOUT_FILENO) &&
	    !(term != NULL && strcmp(term, "dumb") == 0);
	colour_out = !plain && isatty(STDOUT_FILENO);
	colour_err = !plain && isatty(STDERR_FILENO);
}

/* called from run()'s poll loop: redraws the line once a second */
static void
step_tick(void)
{
	double t;

	if (!liveshown || (t = now()) - livedrawn < 1)
		return;
	livedrawn = t;
	printf("\r\033[K[%d] %s ... %lds", stepno, livename,
	    (long)(t - stepstart));
	fflush(stdout);
}

static void
live_clear(void)
{
	if (!liveshown)
		return;
	printf("\r\033[K");
	fflush(stdout);
	liveshown = 0;
}

static void
step_begin(const char *name)
{
	stepno++;
	stepstart = now();
	taillen = 0;
	logf_("== [%d] %s\n", stepno, name);
	live_init();
	if (live) {
		snprintf(livename, sizeof(livename), "%s", name);
		printf("[%d] %s ...", stepno, name);
		fflush(stdout);
		liveshown = 1;
		livedrawn = stepstart;
	}
}

/* The step's time so far, "1.23s": integer arithmetic, so that a static
 * build need not carry printf's floating point */
static const char *
elapsed(void)
{
	static char buf[32];
	long long cs = (long long)((now() - stepstart) * 100 + 0.5);

	snprintf(buf, sizeof(buf), "%lld.%02llds", cs / 100, cs % 100);
	return buf;
}

/* "[N] NAME ok TIME", with a note in parentheses when there is one */
static void
step_done(const char *name, const char *note)
{
	const char *t = elapsed();

	logf_("== [%d] %s ok %s%s%s%s\n", stepno, name, t, note ? " (" : "",
	    note ? note : "", note ? ")" : "");
	live_clear();
	if (!qflag) {
		printf("[%d] %s %s %s%s%s%s\n", stepno, name, colour_out ?
		    "\033[32mok\033[0m" : "ok", t, note ? " (" : "",
		    note ? note : "", note ? ")" : "");
		fflush(stdout);
	}
}

static void
step_ok(const char *name)
{
	step_done(name, NULL);
}

static void
step_skip(const char *name, const char *why)
{
	stepno++;
	logf_("== [%d] %s skipped (%s)\n", stepno, name, why);
	live_clear();
	if (!qflag) {
		printf("[%d] %s skipped (%s)\n", stepno, name, why);
		fflush(stdout);
	}
}

static void
step_fail(const char *name, const char *why, int showtail)
{
	const char *t = elapsed();

	logf_("== [%d] %s FAILED %s: %s\n", stepno, name, t, why);
	live_clear();
	fprintf(stderr, "[%d] %s %s %s: %s\n", stepno, name, colour_err ?
	    "\033[1;31mFAILED\033[0m" : "FAILED", t, why);
	if (showtail && taillen > 0)
		tail_show(20);
	fflush(stderr);
}

/* Runs a config command (or argv) as a step; returns 0 on success. */
static int
run_step(const char *name, char *const argv[], struct runopts *o,
    struct result *res)
{
	step_begin(name);
	if (run(argv, o, res) == 0) {
		step_ok(name);
		return 0;
	}
	step_fail(name, why_failed(res, argv[0], o->timeout), 1);
	return -1;
}

static char **
words(const char *s)
{
	char err[128], **w;

	if ((w = split_words(s, err, sizeof(err))) == NULL)
		die(EXIT_USAGE, "command '%s': %s", s, err);
	return w;
}

/* w with the words of ap (up to a NULL) added */
static char **
append_words(char **w, va_list ap)
{
	size_t n;
	char *a;

	for (n = 0; w[n]; n++)
		;
	while ((a = va_arg(ap, char *)) != NULL) {
		w = xrealloc(w, (n + 2) * sizeof(*w));
		w[n++] = xstrdup(a);
		w[n] = NULL;
	}
	return w;
}

static char **
words_plus(const char *s, ...)
{
	char **w = words(s);
	va_list ap;

	va_start(ap, s);
	w = append_words(w, ap);
	va_end(ap);
	return w;
}

/* ---- signals ---- */

static void
onsig(int s)
{
	gotsig = s;
}

static void
onalarm(int s)
{
	(void)s;	/* only to interrupt waitpid */
}

static void
signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = onsig;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = onalarm;
	sigaction(SIGALRM, &sa, NULL);
	/* ssh dropped: a closed stdout must not stop a deploy half-way */
	signal(SIGPIPE, SIG_IGN);
}

/* ---- the lock ---- */

/* The lock's holder, when a run holds fd's lock: 1 and its pid, since
 * when, and its command (the lock file's "pid P started T COMMAND"). */
static int
lock_held(int fd, long *pid, long long *t, char *what, size_t wl)
{
	char buf[256], *f[5];
	struct flock fl;
	int n;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fd == -1 || fcntl(fd, F_GETLK, &fl) == -1 || fl.l_type == F_UNLCK)
		return 0;
	n = (int)pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	snprintf(what, wl, "?");
	*t = 0;
	if (fields(buf, f, 5) == 5 && strcmp(f[2], "started") == 0) {
		*t = strtoll(f[3], NULL, 10);
		snprintf(what, wl, "%s", f[4]);
	}
	*pid = (long)fl.l_pid;
	return 1;
}

/* "pid P (COMMAND, since LOCAL TIME)" of the lock's holder */
static const char *
lock_holder(void)
{
	static char desc[160];
	char what[64] = "?";
	long long t = 0;
	long pid = 0;

	lock_held(lockfd, &pid, &t, what, sizeof(what));
	snprintf(desc, sizeof(desc), "pid %ld (%s, since %s)", pid, what,
	    fmttime(t));
	return desc;
}

static void
lock_root(const char *what)
{
	struct flock fl;
	double end = now() + wflag;
	char buf[256];
	int n, said = 0;

	if ((lockfd = openat(statefd, "lock", O_RDWR | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0644)) == -1)
		die(FAIL_STATUS, "%s/%s/lock: %s", root, STATE, strerror(errno));
	for (;;) {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		if (fcntl(lockfd, F_SETLK, &fl) == 0)
			break;
		if (errno != EACCES && errno != EAGAIN)
			die(FAIL_STATUS, "lock %s/%s/lock: %s", root, STATE,
			    strerror(errno));
		if (now() < end && !gotsig) {
			if (!said++)
				say("waiting up to %lds for the deploy that holds "
				    "the lock on %s: %s", wflag, root, lock_holder());
			poll(NULL, 0, 100);
			continue;
		}
		if (gotsig)
			leave(128 + gotsig);
		die(EXIT_LOCKED, "another deploy holds the lock on %s: %s%s", root,
		    lock_holder(), wflag ? "; gave up waiting" :
		    "; use -w SECONDS to wait for it");
	}
	n = snprintf(buf, sizeof(buf), "pid %ld started %lld %s\n",
	    (long)getpid(), (long long)time(NULL), what);
	if (ftruncate(lockfd, 0) == -1 || pwrite(lockfd, buf, (size_t)n, 0) != n)
		warnx("%s/%s/lock: cannot record holder: %s", root, STATE,
		    strerror(errno));
}

/* ---- cleanup of what a killed run left behind ---- */

static void
end_stale_step(void)
{
	unsigned long long t = 0, now_t;
	long pgid = 0;
	size_t len;
	char *s;
	int i;

	if ((s = read_file_at(statefd, "step", 60, &len, NULL)) == NULL)
		return;
	{
		char *f[2];
		int nf = fields(s, f, 2);

		pgid = nf >= 1 ? strtol(f[0], NULL, 10) : 0;
		t = nf >= 2 ? strtoull(f[1], NULL, 10) : 0;
	}
	free(s);
	/* the leader alive but born later: that number is someone else's */
	now_t = pgid > 1 ? start_time(pgid) : 0;
	if (pgid > 1 && (t == 0 || now_t == 0 || now_t == t) &&
	    kill(-(pid_t)pgid, 0) == 0) {
		say("ending process group %ld left by an interrupted deploy",
		    pgid);
		kill(-(pid_t)pgid, SIGKILL);
		for (i = 0; i < 50 && kill(-(pid_t)pgid, 0) == 0; i++)
			poll(NULL, 0, 20);
	}
	unlinkat(statefd, "step", 0);
}

static int venv_done(int vfd, const char *key);
static int finish_pending(void);
static void need_current_sane(void);

/*
 * A git killed in the mirror leaves its *.lock files, and every later
 * fetch fails on them. Under our lock no git runs there: remove them.
 */
static int
unlock_refs(int dfd, int depth)
{
	struct dirent *d;
	struct stat st;
	size_t n;
	int fd, count = 0;
	DIR *dp;

	if (depth > 32 || (fd = dup(dfd)) == -1)
		return 0;
	if ((dp = fdopendir(fd)) == NULL) {
		close(fd);
		return 0;
	}
	while ((d = readdir(dp)) != NULL) {
		if (d->d_name[0] == '.' || fstatat(dfd, d->d_name, &st,
		    AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		n = strlen(d->d_name);
		if (S_ISREG(st.st_mode) && n > 5 &&
		    strcmp(d->d_name + n - 5, ".lock") == 0)
			count += unlinkat(dfd, d->d_name, 0) == 0;
		else if (S_ISDIR(st.st_mode) && depth > 0 &&
		    (fd = openat(dfd, d->d_name, O_RDONLY | O_DIRECTORY |
		    O_NOFOLLOW | O_CLOEXEC)) != -1) {
			count += unlock_refs(fd, depth + 1);
			close(fd);
		}
	}
	closedir(dp);
	return count;
}

static void
unlock_mirror(void)
{
	int gfd, rfd, n;

	if ((gfd = openat(rootfd, "repo", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		return;
	n = unlock_refs(gfd, 0);	/* packed-refs.lock, HEAD.lock, ... */
	if ((rfd = openat(gfd, "refs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) != -1) {
		n += unlock_refs(rfd, 1);
		close(rfd);
	}
	close(gfd);
	if (n > 0)
		say("removed %d stale lock file%s in repo/ left by a killed git",
		    n, n == 1 ? "" : "s");
}

/* ROOT/venvs to read, never through a link; NULL when absent */
static DIR *
venvs_dir(void)
{
	DIR *dp;
	int fd;

	if ((fd = openat(rootfd, "venvs", O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) == -1)
		return NULL;
	if ((dp = fdopendir(fd)) == NULL)
		close(fd);
	return dp;
}

/* Virtualenvs a killed run left half built: never reused, so removed. */
static void
remove_incomplete_venvs(void)
{
	struct dirent *d;
	DIR *dp;

	if ((dp = venvs_dir()) == NULL)
		return;
	while ((d = readdir(dp)) != NULL) {
		if (d->d_name[0] == '.' || venv_done(dirfd(dp), d->d_name))
			continue;
		if (remove_in(dirfd(dp), "venvs", d->d_name) == 0)
			say("removed incomplete virtualenv venvs/%s", d->d_name);
	}
	closedir(dp);
}

/*
 * Under the lock, before anything else: end what a killed run left
 * running, remove what it left half made, and finish a switch it left
 * unfinished. Returns that finish's status (EXIT_OK when none).
 */
static int
cleanup(void)
{
	long cur;
	size_t i;
	int fd;

	end_stale_step();
	unlock_mirror();
	need_current_sane();	/* read again: it may have moved while we waited */
	if (unlinkat(rootfd, TMPLINK, 0) == 0)
		say("removed %s left by an interrupted switch", TMPLINK);
	unlinkat(statefd, "index", 0);
	unlinkat(statefd, "index.lock", 0);	/* a killed read-tree's */
	unlinkat(statefd, "history.tmp", 0);
	remove_in(statefd, STATE, "repo.tmp");
	history_load();
	if (nhist > 512)	/* activations alone never prune: bound it here */
		history_compact();
	scan_releases();
	cur = cur_index();
	if (cur >= 0 && rel[cur].state == R_FOREIGN) {
		/* a live release we did not build (a migrated root) */
		say("adopting the current release %s", cursha);
		history_add(EV_COMPLETE, cursha);
		scan_releases();
	}
	fd = releases_fd(1);
	for (i = 0; fd != -1 && i < nrel; i++) {
		if (rel[i].state != R_INCOMPLETE || strcmp(rel[i].name, cursha) == 0)
			continue;
		if (remove_in(fd, "releases", rel[i].name) == 0) {
			say("removed incomplete release %s", rel[i].name);
			history_forget(rel[i].name);
			history_save();
		} else
			warnx("cannot remove incomplete release %s/releases/%s",
			    root, rel[i].name);
	}
	if (fd != -1)
		close(fd);
	scan_releases();
	remove_incomplete_venvs();
	return finish_pending();
}

/* ---- configuration and environment ---- */

/* The executable a command word names: a path, or looked up on PATH. */
static int
path_lookup(const char *name, char *out, size_t outlen)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save, *f;
	int found = 0;

	if (strchr(name, '/') != NULL) {
		snprintf(out, outlen, "%s", name);
		return access(name, X_OK) == 0 ? 0 : -1;
	}
	copy = xstrdup(path ? path : "/usr/bin:/bin");
	for (dir = strtok_r(copy, ":", &save); dir && !found;
	    dir = strtok_r(NULL, ":", &save)) {
		struct stat st;

		f = fmtpath("%s/%s", *dir ? dir : ".", name);
		if (stat(f, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(f, X_OK) == 0) {
			snprintf(out, outlen, "%s", f);
			found = 1;
		}
		free(f);
	}
	free(copy);
	return found ? 0 : -1;
}

/*
 * Reads a file whose words deploy runs or hands to what it runs (the
 * config, the envfile): a regular file, not a symbolic link, owned by us
 * or root, writable by no one else, at most CONF_MAX bytes. Anything else
 * ends the run with status 2 and one line naming the file (shown).
 */
static char *
read_trusted(int dfd, const char *name, const char *shown, const char *hint,
    size_t *lenp)
{
	struct stat st;
	size_t len;
	ssize_t n;
	char *buf;
	int fd;

	/* O_NONBLOCK: a FIFO in its place must not hang a cron job */
	if ((fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK |
	    O_NOFOLLOW)) == -1) {
		if (errno == ELOOP && fstatat(dfd, name, &st,
		    AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			die(EXIT_USAGE, "%s: is a symbolic link; refusing it",
			    shown);
		die(EXIT_USAGE, "%s: %s%s", shown, strerror(errno),
		    errno == ENOENT ? hint : "");
	}
	if (fstat(fd, &st) == -1)
		die(EXIT_USAGE, "%s: %s", shown, strerror(errno));
	if (!S_ISREG(st.st_mode))
		die(EXIT_USAGE, "%s: not a regular file", shown);
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		die(EXIT_USAGE, "%s: writable by group or others; refusing it "
		    "(chmod go-w %s)", shown, shown);
	if (st.st_uid != geteuid() && st.st_uid != 0)
		die(EXIT_USAGE, "%s: owned by uid %ld, not by you or root; "
		    "refusing it", shown, (long)st.st_uid);
	if (st.st_size > CONF_MAX)
		die(EXIT_USAGE, "%s: larger than %d bytes", shown, CONF_MAX);
	/* read what was checked, not whatever the path names by now */
	buf = xrealloc(NULL, CONF_MAX + 2);
	for (len = 0; len <= CONF_MAX; len += (size_t)n) {
		if ((n = read(fd, buf + len, CONF_MAX + 1 - len)) == -1 &&
		    errno == EINTR) {
			n = 0;
			continue;
		}
		if (n == -1)
			die(EXIT_USAGE, "%s: %s", shown, strerror(errno));
		if (n == 0)
			break;
	}
	close(fd);
	if (len > CONF_MAX)
		die(EXIT_USAGE, "%s: larger than %d bytes", shown, CONF_MAX);
	buf[len] = '\0';
	*lenp = len;
	return buf;
}

static void
load_config(const char *path)
{
	char err[ERRLEN + PATH_MAX], *buf;
	const char *vcmd;
	size_t len;

	config_init(&cfg);
	buf = read_trusted(AT_FDCWD, path, path,
	    " (run 'deploy init URL' first)", &len);
	if (config_parse(&cfg, buf, len, path, err, sizeof(err)) == -1)
		die(EXIT_USAGE, "%s", err);
	free(buf);
	if (kflag)
		cfg.keep = kflag;
	if (cfg.requirements == NULL)
		cfg.requirements = xstrdup("requirements.txt");
	if (cfg.supervisorctl == NULL)
		cfg.supervisorctl = xstrdup("supervisorctl");
	if (cfg.virtualenv == NULL) {
		char found[PATH_MAX];

		vcmd = path_lookup("virtualenv", found, sizeof(found)) == 0 ?
		    "virtualenv -p python3" : "python3 -m venv";
		cfg.virtualenv = xstrdup(vcmd);
	}
	if (cfg.envfile != NULL) {
		char *f = fmtpath("shared/%s", cfg.envfile);
		char *shown = fmtpath("%s/shared/%s", root, cfg.envfile);

		/* its PATH and such reach every command: trusted as the
		 * config is */
		buf = read_trusted(rootfd, f, shown, "", &len);
		free(f);
		f = shown;
		if (envfile_parse(buf, len, f, &envvars, err, sizeof(err)) == -1)
			die(EXIT_USAGE, "%s", err);
		free(f);
		free(buf);
	}
}

/* ---- the steps, in the order they run ---- */

static struct runopts
opts(const char *dir, int env, const char *release, const char *sha)
{
	struct runopts o;

	memset(&o, 0, sizeof(o));
	o.dir = dir;
	o.env = env;
	o.release = release;
	o.sha = sha;
	o.timeout = cfg.timeout;
	return o;
}

static char *
gitdir(void)
{
	static char *g;

	if (g == NULL)
		g = fmtpath("--git-dir=%s/repo", root);
	return g;
}

/*
 * ---- preflight: setup mistakes caught before anything is fetched ----
 *
 * Cheap checks of what a deploy will need, so that a misspelled program or
 * a missing command is refused (exit 2, nothing changed) instead of
 * costing a built release that then fails its restart. With -n each one
 * is reported.
 */

static int preflight_failed;

static void
preflight_result(const char *what, const char *why)
{
	if (why == NULL) {
		if (nflag)
			say("preflight: %s: ok", what);
		return;
	}
	if (!nflag)
		die(EXIT_USAGE, "%s: %s; nothing was changed", what, why);
	warnx("preflight: %s: %s", what, why);
	preflight_failed = 1;
}

static void
preflight_command(const char *key, const char *cmd)
{
	char **w = words(cmd), found[PATH_MAX], what[64], why[PATH_MAX + 64];

	snprintf(what, sizeof(what), "%s command", key);
	why[0] = '\0';
	if (strchr(w[0], '/') != NULL && w[0][0] != '/')
		;	/* relative to the release: not there yet */
	else if (path_lookup(w[0], found, sizeof(found)) == -1 &&
	    strchr(w[0], '/') != NULL)
		snprintf(why, sizeof(why), "'%s' is not an executable file",
		    printable(w[0]));
	else if (strchr(w[0], '/') == NULL && path_lookup(w[0], found,
	    sizeof(found)) == -1)
		snprintf(why, sizeof(why), "'%s' is not on PATH (install it, "
		    "or set %s in deploy.conf)", printable(w[0]), key);
	preflight_result(what, why[0] ? why : NULL);
	free_words(w);
}

static void
preflight_links(void)
{
	char **w, **p, why[PATH_MAX + 64];
	struct stat st;

	if (cfg.link == NULL)
		return;
	w = words(cfg.link);
	for (p = w; *p; p++) {
		char *src = fmtpath("shared/%s", *p);

		if (fstatat(rootfd, src, &st, 0) == -1) {
			snprintf(why, sizeof(why), "%s/%s: %s", root, src,
			    strerror(errno));
			preflight_result("link", why);
		} else
			preflight_result("link", NULL);
		free(src);
	}
	free_words(w);
}

/*
 * supervisorctl reaches its server, and the program (every process of a
 * group) is known to it; STOPPED or FATAL is fine for a first deploy.
 */
static void
preflight_program(void)
{
	struct runopts o = opts("/", ENV_NONE, NULL, NULL);
	char out[8192], *line, *save, name[256], why[600], first[200] = "";
	char what[300], **argv;
	size_t plen = strlen(cfg.program);
	int matched = 0, unknown = 0;
	struct result r;

	snprintf(what, sizeof(what), "program %s", cfg.program);
	if (plen > 2 && strcmp(cfg.program + plen - 2, ":*") == 0)
		plen -= 1;	/* "web:*" matches "web:web_00" */
	argv = words_plus(cfg.supervisorctl, "status", cfg.program, (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	o.timeout = 30;
	out[0] = '\0';
	run(argv, &o, &r);	/* non-zero for a process not running */
	free_words(argv);
	if (r.signo)
		leave(128 + r.signo);	/* no verdict: we were stopped */
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (first[0] == '\0')
			snprintf(first, sizeof(first), "%s", line);
		if (two_words(line, name, sizeof(name), NULL, 0) < 1 ||
		    !(strncmp(name, cfg.program, plen) == 0 &&
		    (name[plen] == '\0' || name[plen] == ':' ||
		    name[plen - 1] == ':')))
			continue;
		matched++;
		if (strstr(line, "no such process") || strstr(line, "no such group"))
			unknown++;
	}
	if (r.execerr)
		snprintf(why, sizeof(why), "cannot run %s: %s", cfg.supervisorctl,
		    strerror(r.execerr));
	else if (matched == 0)
		snprintf(why, sizeof(why), "'%s status' cannot reach "
		    "supervisord: %s", cfg.supervisorctl, first[0] ? printable(first) :
		    "no answer");
	else if (unknown)
		snprintf(why, sizeof(why), "supervisord does not know it (add a "
		    "[program:%.*s] section with autostart=false, then "
		    "'supervisorctl update'; see deploy(1))", (int)strcspn(cfg.program,
		    ":"), cfg.program);
	preflight_result(what, matched && !unknown && !r.execerr ? NULL : why);
}

/* build: what the build needs; switching: what the switch needs */
static void
preflight(int build, int switching)
{
	if (build) {
		preflight_command("virtualenv", cfg.virtualenv);
		preflight_links();
	}
	if (switching && cfg.program != NULL) {
		preflight_command("supervisorctl", cfg.supervisorctl);
		if (!preflight_failed)
			preflight_program();
	}
	if (switching && cfg.restart != NULL)
		preflight_command("restart", cfg.restart);
}

/* The bare mirror in repo/: cloned under a temp name, then renamed in. */
static void
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
static void
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
static int
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

/* 2. resolve: REF to a full object id, checked before it is a path */
static void
resolve(const char *ref, char *sha)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char out[256], *spec;
	struct result r;
	char **argv;

	if (!ref_ok(ref))
		die(EXIT_USAGE, "ref '%s': not a usable ref (empty, starts "
		    "with '-', or holds spaces or control characters)",
		    printable(ref));
	step_begin("resolve");
	if (resolve_local(ref, sha) == 0) {
		step_ok("resolve");
		return;
	}
	spec = fmtpath("%s^{commit}", ref);
	argv = words_plus("git", gitdir(), "rev-parse", "--verify", "--quiet",
	    spec, (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	out[0] = '\0';
	if (run(argv, &o, &r) == -1) {
		if (r.signo)
			leave(128 + r.signo);
		step_fail("resolve", "not found", 0);
		die(EXIT_USAGE, "ref '%s': no such branch, tag or commit in %s",
		    printable(ref), cfg.repo);
	}
	out[strcspn(out, "\n")] = '\0';
	if (!is_sha(out))
		die(EXIT_FAILED, "git rev-parse printed '%.80s', not an object id",
		    out);
	strcpy(sha, out);
	step_ok("resolve");
	free_words(argv);
	free(spec);
}

/*
 * For -n: what REF names on the remote now, asked with ls-remote so that
 * not even the mirror changes. 0 and sha set when found.
 */
static int
ls_remote(const char *ref, char *sha)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char *out, *line, *save, *tab, *want[4];
	size_t outlen = 1 << 20;
	struct result r;
	char **argv;
	int best = 4, i;

	want[0] = fmtpath("refs/tags/%s^{}", ref);
	want[1] = fmtpath("refs/tags/%s", ref);
	want[2] = fmtpath("refs/heads/%s", ref);
	want[3] = xstrdup(ref);
	argv = words_plus("git", "ls-remote", "--end-of-options", cfg.repo, ref,
	    (char *)NULL);
	out = xrealloc(NULL, outlen);
	out[0] = '\0';
	o.out = out;
	o.outlen = outlen;
	if (run(argv, &o, &r) == 0)
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
	return best < 4 ? 0 : -1;
}

/* A hash of the requirements, the python and the virtualenv command. */
static unsigned long long
fnv(unsigned long long h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n--)
		h = (h ^ *s++) * 1099511628211ULL;
	return h;
}

static void
python_id(unsigned long long *h)
{
	char **w = words(cfg.virtualenv), **p, found[PATH_MAX], real[PATH_MAX];
	const char *name = "python3";
	struct stat st;

	for (p = w; *p; p++)
		if ((strcmp(*p, "-p") == 0 || strcmp(*p, "--python") == 0) && p[1])
			name = p[1];
		else if (strncmp(*p, "--python=", 9) == 0)
			name = *p + 9;
		else if (p == w && strstr(*p, "python") != NULL)
			name = *p;
	if (path_lookup(name, found, sizeof(found)) == 0 &&
	    realpath(found, real) != NULL && stat(real, &st) == 0) {
		*h = fnv(*h, real, strlen(real));
		*h = fnv(*h, &st.st_size, sizeof(st.st_size));
		*h = fnv(*h, &st.st_mtime, sizeof(st.st_mtime));
	}
	free_words(w);
}

static int
venv_done(int vfd, const char *key)
{
	char *m = fmtpath("%s/.deploy-complete", key);
	struct stat st;
	int r = fstatat(vfd, m, &st, AT_SYMLINK_NOFOLLOW) == 0;

	free(m);
	return r;
}

/* Flushes the file system fd is on (Linux), or every one. */
static void
flush_fs(int fd)
{
#ifdef __linux__
	if (fd != -1 && syscall(SYS_syncfs, fd) == 0)
		return;
#else
	(void)fd;
#endif
	sync();
}

/*
 * The venv's files durable first, then its record (what it was built
 * with and from), then the mark that says it is complete: a crash never
 * leaves a mark on a venv whose files are not all on disk.
 */
static void
mark_venv_done(const char *key, const char *rec, size_t n)
{
	char *m = fmtpath("venvs/%s/.deploy-complete", key);
	char *b = fmtpath("venvs/%s/.deploy-built", key);
	char *d = fmtpath("venvs/%s", key);
	int fd, dfd;

	if ((dfd = openat(rootfd, d, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) == -1)
		die(EXIT_FAILED, "%s/%s: %s", root, d, strerror(errno));
	flush_fs(dfd);
	if ((fd = openat(rootfd, b, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0644)) == -1 || write_all(fd, rec, n) == -1 ||
	    fsync(fd) == -1 || close(fd) == -1)
		die(EXIT_FAILED, "%s/%s: %s", root, b, strerror(errno));
	if ((fd = openat(rootfd, m, O_WRONLY | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0644)) == -1 || fsync(fd) == -1 || close(fd) == -1)
		die(EXIT_FAILED, "%s/%s: %s", root, m, strerror(errno));
	fsync(dfd);
	close(dfd);
	free(m);
	free(b);
	free(d);
}

/* Removes the partial release and exits with status. */
static void fail_build(const char *sha, int status);

/* ---- a new venv derived from the most similar one ---- */

#define VREC	".deploy-built"	/* in venvs/KEY: built with what, from what */
#define DERIVE_MAX	(1 << 20)	/* requirements compared line by line */
#define DRYRUN_MAX	(1 << 20)	/* pip's dry-run output kept */

/* the first n bytes at w in the len bytes at s, or NULL */
static const char *
find_bytes(const char *s, size_t len, const char *w, size_t n)
{
	const char *p, *e = s + len;

	for (p = s; n > 0 && (size_t)(e - p) >= n; p++) {
		if ((p = memchr(p, w[0], (size_t)(e - p) - n + 1)) == NULL)
			return NULL;
		if (memcmp(p, w, n) == 0)
			return p;
	}
	return NULL;
}

struct vcopy {
	const char	*from, *to;	/* the old venv's absolute path, the new */
	size_t		 fromlen, tolen;
	char		 why[PATH_MAX + 128];
	double		 rewrite;	/* seconds finding and writing the path */
	size_t		 nrewrit;	/* files rewritten */
};

/* buf with every c->from made c->to, or NULL when it names none */
static char *
rewrite_path(const char *buf, size_t n, const struct vcopy *c, size_t *outn)
{
	const char *p = buf, *q, *e = buf + n;
	char *out = NULL;
	size_t on = 0;

	while ((q = find_bytes(p, (size_t)(e - p), c->from, c->fromlen)) != NULL) {
		out = xrealloc(out, on + (size_t)(q - p) + c->tolen + 1);
		memcpy(out + on, p, (size_t)(q - p));
		on += (size_t)(q - p);
		memcpy(out + on, c->to, c->tolen);
		on += c->tolen;
		p = q + c->fromlen;
	}
	if (out == NULL)
		return NULL;
	out = xrealloc(out, on + (size_t)(e - p) + 1);
	memcpy(out + on, p, (size_t)(e - p));
	*outn = on + (size_t)(e - p);
	return out;
}

static int
copy_fail(struct vcopy *c, const char *relp, const char *name, const char *why)
{
	snprintf(c->why, sizeof(c->why), "%s/%s%s%s: %s", c->from, relp,
	    *relp ? "/" : "", name, why);
	return -1;
}

/*
 * A file of the old venv into the new one, its mode and times kept (a
 * .pyc is checked against its source's mtime). One that names the old
 * venv is rewritten; a binary one only when both paths have one length
 * (they do: keys are fixed width), so offsets inside it hold. The rest is
 * a reflink where the file system has them, else a copy: never a hard
 * link, so a write in one venv never shows in another.
 */
static int
copy_file(int sfd, int dfd, const char *relp, const char *name,
    struct vcopy *c)
{
	struct timespec ts[2];
	struct stat st;
	char *buf = NULL, *nb = NULL;
	size_t n = 0, nn = 0;
	ssize_t k = 0;
	int in, out = -1, r = -1, done = 0;
	double t0;

	if ((in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    fstat(in, &st) == -1) {
		copy_fail(c, relp, name, strerror(errno));
		goto out;
	}
	buf = xrealloc(NULL, (size_t)st.st_size + 1);
	while (n < (size_t)st.st_size && ((k = read(in, buf + n,
	    (size_t)st.st_size - n)) > 0 || (k == -1 && errno == EINTR)))
		if (k > 0)
			n += (size_t)k;
	if (k == -1 || n != (size_t)st.st_size) {
		copy_fail(c, relp, name, k == -1 ? strerror(errno) :
		    "changed while copied");
		goto out;
	}
	if ((out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1) {
		copy_fail(c, relp, name, strerror(errno));
		goto out;
	}
	t0 = now();
	if (memchr(buf, '\0', n) == NULL || c->fromlen == c->tolen)
		nb = rewrite_path(buf, n, c, &nn);
	if (nb != NULL) {
		if (write_all(out, nb, nn) == -1)
			goto werr;
		done = 1;
		c->nrewrit++;
	}
	c->rewrite += now() - t0;	/* the search costs even when none */
#ifdef __linux__
	if (!done && n > 0 && ioctl(out, FICLONE, in) == 0)
		done = 1;
	if (!done && n > 0) {
		long long oi = 0, oo = 0;

		while ((size_t)oi < n && syscall(SYS_copy_file_range, in, &oi,
		    out, &oo, n - (size_t)oi, 0) > 0)
			;
		if ((size_t)oi == n)
			done = 1;
		else if (ftruncate(out, 0) == -1)
			goto werr;
	}
#endif
	if (!done && write_all(out, buf, n) == -1)
		goto werr;
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	if (fchmod(out, st.st_mode & 07777) == -1 || futimens(out, ts) == -1)
		goto werr;
	r = 0;
	goto out;
werr:
	copy_fail(c, relp, name, strerror(errno));
out:
	if (out != -1 && close(out) == -1 && r == 0)
		r = copy_fail(c, relp, name, strerror(errno));
	if (in != -1)
		close(in);
	free(nb);
	free(buf);
	return r;
}

/* the tree at sfd into the empty folder dfd: files, folders and links */
static int
copy_tree(int sfd, int dfd, const char *relp, struct vcopy *c)
{
	struct timespec ts[2];
	struct dirent *d;
	struct stat st;
	char *sub, lt[PATH_MAX + 1], *nl;
	ssize_t ll;
	DIR *dp;
	int fd, s2 = -1, d2 = -1, r = 0;

	if ((fd = dup(sfd)) == -1 || (dp = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return copy_fail(c, relp, ".", strerror(errno));
	}
	while (r == 0 && (errno = 0, d = readdir(dp)) != NULL) {
		const char *nm = d->d_name;

		if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0 ||
		    (*relp == '\0' && strncmp(nm, ".deploy-", 8) == 0))
			continue;
		if (gotsig)
			r = copy_fail(c, relp, nm, "interrupted");
		else if (fstatat(sfd, nm, &st, AT_SYMLINK_NOFOLLOW) == -1)
			r = copy_fail(c, relp, nm, strerror(errno));
		else if (S_ISREG(st.st_mode))
			r = copy_file(sfd, dfd, relp, nm, c);
		else if (S_ISLNK(st.st_mode)) {
			size_t nn;

			if ((ll = readlinkat(sfd, nm, lt, sizeof(lt) - 1)) == -1)
				r = copy_fail(c, relp, nm, strerror(errno));
			else {
				lt[ll] = '\0';
				/* an absolute target into the old venv */
				nl = strncmp(lt, c->from, c->fromlen) == 0 &&
				    (lt[c->fromlen] == '/' || lt[c->fromlen] ==
				    '\0') ? rewrite_path(lt, (size_t)ll, c, &nn) :
				    NULL;
				if (nl != NULL)
					nl[nn] = '\0';
				if (symlinkat(nl ? nl : lt, dfd, nm) == -1)
					r = copy_fail(c, relp, nm, strerror(errno));
				free(nl);
			}
		} else if (S_ISDIR(st.st_mode)) {
			sub = *relp ? fmtpath("%s/%s", relp, nm) : xstrdup(nm);
			if (mkdirat(dfd, nm, 0700) == -1 || (s2 = openat(sfd, nm,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
			    (d2 = openat(dfd, nm, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC)) == -1)
				r = copy_fail(c, relp, nm, strerror(errno));
			else if ((r = copy_tree(s2, d2, sub, c)) == 0) {
				ts[0] = st.st_atim;
				ts[1] = st.st_mtim;
				if (fchmod(d2, st.st_mode & 07777) == -1 ||
				    futimens(d2, ts) == -1)
					r = copy_fail(c, relp, nm, strerror(errno));
			}
			if (s2 != -1)
				close(s2);
			if (d2 != -1)
				close(d2);
			s2 = d2 = -1;
			free(sub);
		} else
			r = copy_fail(c, relp, nm, "not a file, folder or link");
	}
	if (r == 0 && errno != 0)
		r = copy_fail(c, relp, ".", strerror(errno));
	closedir(dp);
	return r;
}

/* PEP 503: lower case, each run of - _ . one - */
static void
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
static char **
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
static char *
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
static char *
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
static int
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
static void
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
static char **
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
static int
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

/* uninstalls what the venv has ("name version") and want lacks */
static int
derive_uninstall(const char *vpath, char **want, char **have,
    struct runopts *o, char *why, size_t wl)
{
	char **argv = venv_pip(vpath, "uninstall", "-y", (char *)NULL), **w, **h;
	size_t n, len;
	int r = 0;

	for (n = 0; argv[n]; n++)
		;
	for (h = have; *h; h++) {
		len = strcspn(*h, " ");
		if (is_seed(*h))
			continue;
		for (w = want; *w && (strncmp(*w, *h, len) != 0 ||
		    (*w)[len] != ' '); w++)
			;
		if (*w != NULL)
			continue;
		argv = xrealloc(argv, (n + 2) * sizeof(*argv));
		argv[n] = xstrdup(*h);
		argv[n++][len] = '\0';
		argv[n] = NULL;
	}
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
static int
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
	if (derive_run(argv, o, why, wl) == -1)
		goto out;
	o->out = NULL;
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
	free_words(argv);
	if (want != NULL)
		free_words(want);
	if (have != NULL)
		free_words(have);
	free(cpath);
	free(out);
	return r;
}

/* ---- the pinned fast path: no resolver when the file is the set ---- */

/*
 * Run by the venv's python as `python -c PINNED_RUN FILE ARGS`: pip's own
 * commands in one interpreter, since each start of pip costs about 0.25 s:
 * uninstall what ARGS name up to the first "--", install --no-deps
 * --force-reinstall what follows up to the second, then check; and for
 * each NAME[EXTRAS] after that, whether what the extras require is
 * installed, which pip check does not look at. Exit 3 when a check
 * fails, 1 when pip does. The parts' times go to the log.
 */
#define PINNED_RUN	"import sys; exec(compile(open(sys.argv.pop(1)).read(), " \
			    "'deploy-pinned', 'exec'))"
static const char pinned_py[] =
"import sys, time\n"
"a = sys.argv[1:]\n"
"i = a.index('--')\n"
"j = a.index('--', i + 1)\n"
"t = time.monotonic()\n"
"from pip._internal.cli.main import main\n"
"p = ['import %.3f' % (time.monotonic() - t)]\n"
"def part(name, argv, fail):\n"
"    t = time.monotonic()\n"
"    r = main(argv)\n"
"    p.append('%s %.3f' % (name, time.monotonic() - t))\n"
"    return fail if r else 0\n"
"r = a[:i] and part('uninstall', ['uninstall', '-y'] + a[:i], 1) or 0\n"
"if not r and a[i + 1:j]:\n"
"    r = part('install', ['install', '--no-deps', '--force-reinstall'] +\n"
"        a[i + 1:j], 1)\n"
"t = time.monotonic()\n"
"if not r:\n"
"    r = main(['check']) and 3\n"
"if not r and a[j + 1:]:\n"
"    from pip._internal.metadata import get_default_environment\n"
"    from pip._vendor.packaging.requirements import Requirement\n"
"    e = get_default_environment()\n"
"    for s in a[j + 1:]:\n"
"        q = Requirement(s)\n"
"        d = e.get_distribution(q.name)\n"
"        for w in d.iter_dependencies(q.extras) if d else ():\n"
"            g = e.get_distribution(w.name)\n"
"            if g is None or not w.specifier.contains(g.version, True):\n"
"                print('%s requires %s, which is not installed' % (s, w))\n"
"                r = 3\n"
"p.append('check %.3f' % (time.monotonic() - t))\n"
"print('pinned times: ' + ', '.join(p), flush=True)\n"
"sys.exit(r)\n";

struct pinned {
	char	**names;	/* normalized, of every requirement line */
	char	**gone;		/* installed, not named, not seeds */
	char	**extras;	/* "NAME[EXTRAS]" of the lines with extras */
	char	*inst;		/* pip's file: the options, changed lines */
	const char *old;	/* the source venv's requirements */
	size_t	 instn, nnames, ngone, nextras, nchanged, nhashed;
	int	 reqhashes;
};

static char **
push_word(char **v, size_t *n, char *w)
{
	v = xrealloc(v, (*n + 2) * sizeof(*v));
	v[(*n)++] = w;
	v[*n] = NULL;
	return v;
}

static void
push_line(struct pinned *p, const char *l, size_t n)
{
	p->inst = xrealloc(p->inst, p->instn + n + 2);
	memcpy(p->inst + p->instn, l, n);
	p->instn += n;
	p->inst[p->instn++] = '\n';
	p->inst[p->instn] = '\0';
}

/*
 * A requirement line [l, e), comment and blanks trimmed, that passed
 * reqs_shareable, when it pins one version: NAME[EXTRAS] == VERSION, then
 * markers and --hash options. The normalized name in n, the version in
 * v, *x the end of the extras (l when none). 0, or -1 for a range, a
 * wildcard, "===", two specifiers, anything else.
 */
static int
pin_line(const char *l, const char *e, char *n, size_t nl, char *v,
    size_t vl, const char **x)
{
	const char *s, *t, *opt, *v0;

	for (opt = l; opt < e; opt++)
		if (*opt == '-' && opt > l && RQ_WS(opt[-1]))
			break;
	for (t = l; t < opt && *t != ';'; t++)
		;
	for (s = l; s < t && (RQ_ALNUM(*s) || strchr("._-", *s)); s++)
		;
	if (s == l || (size_t)(s - l) >= nl)
		return -1;
	memcpy(n, l, (size_t)(s - l));
	n[s - l] = '\0';
	norm_name(n);
	while (s < t && RQ_WS(*s))
		s++;
	*x = l;
	if (s < t && *s == '[') {
		while (s < t && *s != ']')
			s++;
		if (s == t)
			return -1;
		*x = ++s;
		while (s < t && RQ_WS(*s))
			s++;
	}
	if (t - s < 3 || s[0] != '=' || s[1] != '=' || s[2] == '=')
		return -1;
	for (s += 2; s < t && RQ_WS(*s); s++)
		;
	for (v0 = s; s < t && (RQ_ALNUM(*s) || strchr("._+!-", *s)); s++)
		;
	if (s == v0 || (size_t)(s - v0) >= vl)
		return -1;
	memcpy(v, v0, (size_t)(s - v0));
	v[s - v0] = '\0';
	while (s < t && RQ_WS(*s))
		s++;
	return s == t ? 0 : -1;
}

/* whether the source's requirements had the line [l, e) as it is */
static int
old_line(const char *old, const char *l, const char *e)
{
	const char *q, *end = old + strlen(old);
	size_t n = (size_t)(e - l);

	for (q = old; (q = find_bytes(q, (size_t)(end - q), l, n)) != NULL;
	    q++)
		if ((q == old || q[-1] == '\n') && (q + n == end ||
		    strchr("\n\r#", q[n]) != NULL || RQ_WS(q[n])))
			return 1;
	return 0;
}

/* one line of a pinned file into the plan; -1 when it is not pinned */
static int
plan_line(struct pinned *p, const char *l, const char *e, char **have)
{
	char n[256], v[128], *nv, **h;
	const char *x;
	int hashed;

	if (*l == '-') {	/* an option: pip needs it to find the same */
		if ((size_t)(e - l) >= 16 && strncmp(l, "--require-hashes",
		    16) == 0)
			p->reqhashes = 1;
		push_line(p, l, (size_t)(e - l));
		return 0;
	}
	if (pin_line(l, e, n, sizeof(n), v, sizeof(v), &x) == -1)
		return -1;
	if ((hashed = find_bytes(l, (size_t)(e - l), "--hash", 6) != NULL))
		p->nhashed++;
	p->names = push_word(p->names, &p->nnames, xstrdup(n));
	if (x != l) {
		char *w = xrealloc(NULL, (size_t)(x - l) + 1);

		memcpy(w, l, (size_t)(x - l));
		w[x - l] = '\0';
		p->extras = push_word(p->extras, &p->nextras, w);
	}
	nv = fmtpath("%s %s", n, v);
	for (h = have; *h && strcmp(*h, nv) != 0; h++)
		;
	/* new, another version, or hashes the copy was not checked by */
	if (*h == NULL || (hashed && !old_line(p->old, l, e))) {
		push_line(p, l, (size_t)(e - l));
		p->nchanged++;
	}
	free(nv);
	return 0;
}

static void
plan_free(struct pinned *p)
{
	if (p->names != NULL)
		free_words(p->names);
	if (p->gone != NULL)
		free_words(p->gone);
	if (p->extras != NULL)
		free_words(p->extras);
	free(p->inst);
}

/*
 * What the fast path does to a venv holding have ("name version") for the
 * requirements buf: 0, or -1 when a line is not a plain pin (or an option
 * pip reads another file by, which reqs_shareable refused already).
 */
static int
pinned_plan(const char *buf, size_t len, char **have, const char *old,
    struct pinned *p)
{
	const char *l, *q, *e, *end = buf + len;
	char **h, **w;
	size_t nl;

	memset(p, 0, sizeof(*p));
	p->old = old;
	for (l = buf; l < end; l = q + 1) {
		if ((q = memchr(l, '\n', (size_t)(end - l))) == NULL)
			q = end;
		/* pip's comments: '#' at the start or after a blank */
		for (e = l; e < q; e++)
			if (*e == '#' && (e == l || RQ_WS(e[-1])))
				break;
		while (l < e && RQ_WS(*l))
			l++;
		while (e > l && RQ_WS(e[-1]))
			e--;
		if (l < e && plan_line(p, l, e, have) == -1)
			return -1;
	}
	/* hash checking is all or nothing: a line without a hash then
	 * fails a fresh build, and so the resolve */
	if (p->nnames == 0 || ((p->nhashed > 0 || p->reqhashes) &&
	    p->nhashed != p->nnames))
		return -1;
	for (h = have; *h; h++) {
		nl = strcspn(*h, " ");
		for (w = p->names; *w && (strlen(*w) != nl ||
		    strncmp(*w, *h, nl) != 0); w++)
			;
		if (*w == NULL && !is_seed(*h))
			p->gone = push_word(p->gone, &p->ngone,
			    fmtpath("%.*s", (int)nl, *h));
	}
	return 0;
}

/* the two files the pinned run reads, 0600, next to the venv's record */
static int
put_file(const char *path, const char *s, size_t n, char *why, size_t wl)
{
	int fd;

	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1 || write_all(fd, s, n) == -1 ||
	    close(fd) == -1) {
		snprintf(why, wl, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* argv of the pinned run: uninstall -- install -- extras */
static char **
pinned_argv(const char *vpath, const char *py, const char *req,
    struct pinned *p)
{
	char **argv = words_plus("x", "-c", PINNED_RUN, py, (char *)NULL);
	size_t n = 4, i;

	free(argv[0]);
	argv[0] = fmtpath("%s/bin/python", vpath);
	for (i = 0; i < p->ngone; i++)
		argv = push_word(argv, &n, xstrdup(p->gone[i]));
	argv = push_word(argv, &n, xstrdup("--"));
	if (p->nchanged > 0) {
		argv = push_word(argv, &n, xstrdup("-r"));
		argv = push_word(argv, &n, xstrdup(req));
	}
	argv = push_word(argv, &n, xstrdup("--"));
	for (i = 0; i < p->nextras; i++)
		argv = push_word(argv, &n, xstrdup(p->extras[i]));
	return argv;
}

/*
 * The copy to the pinned file's set, no resolver: what the copy has and
 * the file does not name is uninstalled, the lines whose version is not
 * the copy's, or whose hashes are not the ones the source was built
 * with, are installed --no-deps --force-reinstall (with their hashes, so
 * pip checks them), and pip check says the set is closed. 0 done; 1
 * the file is not all pins; -1 failed (why): resolve instead.
 */
static int
derive_pinned(const struct vcopy *c, const char *buf, size_t len,
    const char *seeds, struct runopts *o, char *why, size_t wl)
{
	const char *vpath = c->to;
	char *req = fmtpath("%s/.deploy-pinned", vpath), **argv = NULL;
	char *py = fmtpath("%s/.deploy-pinned.py", vpath), **have, *got;
	char *rec = fmtpath("%s/%s", c->from, VREC), *old = NULL, *q;
	struct pinned p;
	struct result r;
	double t0;
	size_t n;
	int rc = -1;

	if ((have = venv_dists(vpath, why, wl)) == NULL)
		goto out;
	/* what the source was built from: its hashes were checked */
	if ((old = read_file_at(AT_FDCWD, rec, DERIVE_MAX + 4096, &n,
	    NULL)) == NULL || (q = strstr(old, "\nrequirements\n")) == NULL) {
		snprintf(why, wl, "%s: %s", rec, old ? "no requirements" :
		    strerror(errno));
		goto out;
	}
	if (pinned_plan(buf, len, have, q + 14, &p) == -1) {
		plan_free(&p);
		rc = 1;
		goto out;
	}
	logf_("pinned: %zu lines, %zu to install, %zu to uninstall\n",
	    p.nnames, p.nchanged, p.ngone);
	if (put_file(req, p.inst ? p.inst : "", p.instn, why, wl) == -1 ||
	    put_file(py, pinned_py, sizeof(pinned_py) - 1, why, wl) == -1)
		goto done;
	argv = pinned_argv(vpath, py, req, &p);
	t0 = now();
	if (run(argv, o, &r) == -1) {
		snprintf(why, wl, "%s", !r.signo && !r.timedout && !r.execerr &&
		    WIFEXITED(r.status) && WEXITSTATUS(r.status) == 3 ? "pip check "
		    "failed: the requirements are not closed under their "
		    "dependencies" : why_failed(&r, "pip", o->timeout));
		goto done;
	}
	logf_("pinned: python and pip %.3fs\n", now() - t0);
	if (strcmp((got = venv_seeds(vpath)), seeds) != 0)
		snprintf(why, wl, "pip, setuptools or wheel differ from what "
		    "virtualenv installs (%s, not %s)", got, seeds);
	else
		rc = 0;
	free(got);
done:
	unlink(req);
	unlink(py);
	plan_free(&p);
out:
	if (argv != NULL)
		free_words(argv);
	if (have != NULL)
		free_words(have);
	free(old);
	free(rec);
	free(req);
	free(py);
	return rc;
}

/*
 * venvs/KEY from the venvs/SRC nearest to it, as the venv and pip steps:
 * 0 done; -1 failed (logged, the half-made venv removed): build from
 * nothing instead. A signal ends the build.
 */
static int
derive_venv(const char *sha, int vfd, const char *key, const char *src,
    const char *seeds, const char *reqpath, const char *buf, size_t len,
    struct runopts *o)
{
	char why[PATH_MAX + 256] = "";
	struct vcopy c;
	double t0;
	int r = -1;

	memset(&c, 0, sizeof(c));
	c.from = fmtpath("%s/venvs/%s", root, src);
	c.to = fmtpath("%s/venvs/%s", root, key);
	c.fromlen = strlen(c.from);
	c.tolen = strlen(c.to);
	step_begin("venv");
	logf_("deriving %s from %s\n", c.to, c.from);
	t0 = now();
	if (derive_copy(vfd, src, key, &c, why, sizeof(why)) == 0) {
		logf_("copy: %.3fs, of it %.3fs finding the old path and "
		    "rewriting %zu files\n", now() - t0, c.rewrite, c.nrewrit);
		step_ok_derived(src);
		step_begin("pip");
		/* a pinned file is the set: no resolver unless pip check
		 * says it is not closed */
		if ((r = derive_pinned(&c, buf, len, seeds, o, why,
		    sizeof(why))) == 0)
			step_done("pip", "pinned");
		else if (!gotsig) {
			if (r == -1)
				logf_("pinned fast path failed: %s; resolving "
				    "instead\n", why);
			if ((r = derive_pip(c.to, reqpath, seeds, o, why,
			    sizeof(why))) == 0)
				step_ok("pip");
		}
	}
	if (r == -1) {
		if (!gotsig) {
			logf_("venv derive failed: %s; building from nothing\n",
			    why);
			warnx("venv derive failed: %s; building from nothing",
			    printable(why));
		}
		remove_in(vfd, "venvs", key);
	}
	free((char *)c.from);
	free((char *)c.to);
	if (gotsig)
		fail_build(sha, 128 + gotsig);
	return r;
}

#define REQS_MAX	(64 << 20)	/* bytes of requirements a key covers */

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
    int haveq, struct runopts *o, char **seeds)
{
	struct result r;
	char **argv;

	argv = words_plus(cfg.virtualenv, vpath, (char *)NULL);
	if (run_step("venv", argv, o, &r) == -1)
		fail_build(sha, r.signo ? 128 + r.signo : EXIT_FAILED);
	free_words(argv);
	if (seeds != NULL)
		*seeds = venv_seeds(vpath);
	if (!haveq) {
		char why[PATH_MAX + 32];

		snprintf(why, sizeof(why), "no %s", cfg.requirements);
		step_skip("pip", why);
		return;
	}
	argv = venv_pip(vpath, "install", "-r", reqpath, (char *)NULL);
	if (run_step("pip", argv, o, &r) == -1)
		fail_build(sha, r.signo ? 128 + r.signo : EXIT_FAILED);
	free_words(argv);
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
static void
step_venv_pip(const char *sha, const char *rdir)
{
	char *reqpath, *buf, key[17], *vpath, src[17], *seeds = NULL, *rec;
	struct runopts o = opts(rdir, ENV_RELEASE, rdir, sha);
	unsigned long long h = 1469598103934665603ULL, base = h;
	char *extra[3] = { NULL, NULL, NULL };
	size_t len, recn;
	int shared, vfd = -1, ne = 0;

	buf = read_requirements(sha, rdir, &reqpath, &len);
	/* past REQS_MAX the key would not see all of it: never shared */
	shared = cfg.reuse_venv && (buf == NULL || (len <= REQS_MAX &&
	    reqs_shareable(buf, len)));
	if (buf != NULL)
		h = fnv(h, buf, len);
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
		build_venv(sha, vpath, reqpath, buf != NULL, &o, NULL);
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
		step_skip("pip", "requirements unchanged");
		goto done;
	}
	remove_in(vfd, "venvs", key);	/* a broken one is never reused */
	/* changed requirements: from the nearest venv when there is one */
	if (buf == NULL || derive_source(vfd, base, buf, len, key, src,
	    &seeds) == -1 || derive_venv(sha, vfd, key, src, seeds, reqpath,
	    buf, len, &o) == -1) {
		free(seeds);
		build_venv(sha, vpath, reqpath, buf != NULL, &o, &seeds);
	}
	rec = venv_record(base, seeds, buf ? buf : "", len, &recn);
	mark_venv_done(key, rec, recn);
	free(rec);
	free(seeds);
done:
	if (vfd != -1)
		close(vfd);
	free(extra[0]);
	free(extra[1]);
	free(vpath);
	free(buf);
	free(reqpath);
}

/*
 * Puts a link to target at rdir/path: the parents are made or entered
 * with O_NOFOLLOW (a symlink from the checkout must not lead us out of the
 * release), and what the checkout put at path is replaced.
 */
static int
link_one(const char *rdir, const char *path, const char *target)
{
	char *copy = xstrdup(path), *part, *next, *where;
	struct stat st;
	int fd, nfd, r = -1;

	if ((fd = open(rdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1) {
		free(copy);
		return -1;
	}
	for (part = copy; (next = strchr(part, '/')) != NULL; part = next + 1) {
		*next = '\0';
		if (mkdirat(fd, part, 0755) == -1 && errno != EEXIST)
			goto out;
		if ((nfd = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC)) == -1)
			goto out;	/* ELOOP/ENOTDIR: a symlink or a file */
		close(fd);
		fd = nfd;
	}
	if (fstatat(fd, part, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		where = fmtpath("%s/%s", rdir, path);
		r = remove_tree(fd, part, where);
		free(where);
		if (r == -1)
			goto out;
	}
	r = symlinkat(target, fd, part);
out:
	close(fd);
	free(copy);
	return r;
}

/* links shared/<path> into the release at the same relative path */
static void
step_link(const char *sha, const char *rdir)
{
	char **w, **p, *dst, *target, *slash;
	struct stat st;
	int depth;

	if (cfg.link == NULL) {
		step_skip("link", "nothing to link");
		return;
	}
	step_begin("link");
	w = words(cfg.link);
	for (p = w; *p; p++) {
		char *src = fmtpath("shared/%s", *p);

		if (fstatat(rootfd, src, &st, 0) == -1) {
			char why[PATH_MAX + 64];
			snprintf(why, sizeof(why), "%s/%s: %s (link)", root, src,
			    strerror(errno));
			step_fail("link", why, 0);
			fail_build(sha, EXIT_FAILED);
		}
		free(src);
		dst = fmtpath("%s/%s", rdir, *p);
		for (depth = 1, slash = *p; (slash = strchr(slash, '/')); slash++)
			depth++;
		target = xrealloc(NULL, (size_t)depth * 3 + 16 + strlen(*p));
		target[0] = '\0';
		while (depth-- > 0)
			strcat(target, "../");
		strcat(target, "../shared/");
		strcat(target, *p);
		if (link_one(rdir, *p, target) == -1) {
			char why[PATH_MAX + 64];
			snprintf(why, sizeof(why), "%s: %s", dst, strerror(errno));
			step_fail("link", why, 0);
			fail_build(sha, EXIT_FAILED);
		}
		logf_("%s -> %s\n", dst, target);
		free(target);
		free(dst);
	}
	free_words(w);
	step_ok("link");
}

static void
fail_build(const char *sha, int status)
{
	int fd = releases_fd(0);

	if (remove_in(fd, "releases", sha) == -1)
		warnx("could not remove all of %s/releases/%s: the next run "
		    "will try again", root, sha);
	else {
		history_forget(sha);
		history_save();
	}
	close(fd);
	if (status == EXIT_FAILED)
		warnx("deploy of %.12s failed before the switch; current is "
		    "unchanged", sha);
	else
		warnx("interrupted by signal %d; removed the partial release "
		    "%.12s; current is unchanged", status - 128, sha);
	if (logfd != -1 && status == EXIT_FAILED)
		warnx("full output: %s/%s/logs/%s.log", root, STATE, sha);
	leave(status);
}

static void
open_log(const char *sha, int truncate)
{
	char *p = fmtpath("logs/%s.log", sha);

	mkdirat(statefd, "logs", 0700);
	if (logfd != -1)
		close(logfd);
	/* 0600: build and test output may show the envfile's secrets */
	logfd = openat(statefd, p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
	    O_NOFOLLOW | (truncate ? O_TRUNC : 0), 0600);
	/* fchmod: a log an older deploy made 0644 */
	if (logfd == -1 || fchmod(logfd, 0600) == -1)
		warnx("%s/%s/%s: %s", root, STATE, p, strerror(errno));
	free(p);
	logf_("== %s %s %s\n", fmttime(time(NULL)), cmdname, sha);
}

/* REVISION: the full sha, for the app to read (as Capistrano has it) */
static void
write_revision(const char *sha, const char *rdir)
{
	char *p = fmtpath("%s/REVISION", rdir), *line = fmtpath("%s\n", sha);
	int fd;

	unlink(p);	/* whatever the checkout put there, even a link */
	if ((fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0644)) == -1 || write_all(fd, line, strlen(line)) == -1 ||
	    close(fd) == -1) {
		warnx("%s: %s", p, strerror(errno));
		fail_build(sha, EXIT_FAILED);
	}
	free(line);
	free(p);
}

/* 3-4. build releases/<sha> at its final path, then record it complete */
static void
build_release(const char *sha)
{
	char *rdir = fmtpath("%s/releases/%s", root, sha), *idx, **argv, *wt;
	struct runopts o = opts(rdir, ENV_RELEASE, rdir, sha);
	char *extra[2] = { NULL, NULL };
	struct stat st;
	struct result r;
	int fd;

	open_log(sha, 1);
	fd = releases_fd(0);
	if (fstatat(fd, sha, &st, AT_SYMLINK_NOFOLLOW) == 0)
		die(EXIT_FAILED, "%s exists, but deploy did not build it: move "
		    "it out of releases/ and deploy again", rdir);
	/* say it is ours before it exists, so a crash can be cleaned up */
	if (history_add(EV_BUILD, sha) == -1)
		leave(EXIT_FAILED);
	if (mkdirat(fd, sha, 0755) == -1)
		die(EXIT_FAILED, "%s: %s", rdir, strerror(errno));
	close(fd);

	/* a checkout of exactly sha, with no .git and no tie to the mirror */
	idx = fmtpath("%s/%s/index", root, STATE);
	extra[0] = fmtpath("GIT_INDEX_FILE=%s", idx);
	o.extra = extra;
	o.record = 1;
	o.env = ENV_NONE;
	o.dir = root;
	wt = fmtpath("--work-tree=%s", rdir);
	argv = words_plus("git", gitdir(), wt, "read-tree", "--reset", "-u",
	    sha, (char *)NULL);
	if (run_step("checkout", argv, &o, &r) == -1)
		fail_build(sha, r.signo ? 128 + r.signo : EXIT_FAILED);
	unlink(idx);
	free_words(argv);
	free(wt);
	free(extra[0]);
	if (gotsig)
		fail_build(sha, 128 + gotsig);
	write_revision(sha, rdir);

	step_venv_pip(sha, rdir);
	if (gotsig)
		fail_build(sha, 128 + gotsig);
	step_link(sha, rdir);

	o = opts(rdir, ENV_APP, rdir, sha);
	o.record = 1;
	if (cfg.build != NULL) {
		argv = words(cfg.build);
		if (run_step("build", argv, &o, &r) == -1)
			fail_build(sha, r.signo ? 128 + r.signo : EXIT_FAILED);
		free_words(argv);
	} else
		step_skip("build", "no build command");
	if (cfg.test != NULL) {
		argv = words(cfg.test);
		if (run_step("test", argv, &o, &r) == -1)
			fail_build(sha, r.signo ? 128 + r.signo : EXIT_FAILED);
		free_words(argv);
	} else
		step_skip("test", "no test command");
	if (gotsig)
		fail_build(sha, 128 + gotsig);

	/* make the tree durable before the history says it is complete:
	 * its file system only (a shared venv was flushed when marked) */
	if ((fd = open(rdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) == -1)
		sync();
	else {
		flush_fs(fd);
		close(fd);
	}
	if (history_add(EV_COMPLETE, sha) == -1) {
		nhist--;
		fail_build(sha, EXIT_FAILED);
	}
	logf_("== complete\n");
	free(rdir);
	free(idx);
}

/*
 * 5. migrate: after the tests, right before the switch, so that a commit
 * whose tests fail never touches the database. Never on rollback:
 * migrations go forward only. 0 done, else the exit status.
 */
static int
step_migrate(const char *sha)
{
	char *rdir = fmtpath("%s/releases/%s", root, sha), **argv;
	struct runopts o = opts(rdir, ENV_APP, rdir, sha);
	struct result r;
	int st = EXIT_OK;

	if (cfg.migrate == NULL) {
		free(rdir);
		return EXIT_OK;
	}
	if (Mflag) {
		step_skip("migrate", "-M");
		free(rdir);
		return EXIT_OK;
	}
	o.record = 1;
	argv = words(cfg.migrate);
	if (run_step("migrate", argv, &o, &r) == -1) {
		st = r.signo ? 128 + r.signo : EXIT_FAILED;
		if (!r.signo)
			warnx("migrate of %.12s failed; current is unchanged and "
			    "the release stays built: deploy or activate it "
			    "again to run migrate again", sha);
	}
	free_words(argv);
	free(rdir);
	return st;
}

/* 6. switch: a new link under a temp name, renamed over current */
static int
switch_current(const char *sha)
{
	char *target = fmtpath("releases/%s", sha);
	struct stat st;

	if (fstatat(rootfd, target, &st, AT_SYMLINK_NOFOLLOW) == -1 ||
	    !S_ISDIR(st.st_mode)) {
		warnx("%s/%s is not a release folder: not switching to it", root,
		    target);
		free(target);
		return -1;
	}
	unlinkat(rootfd, TMPLINK, 0);
	if (symlinkat(target, rootfd, TMPLINK) == -1) {
		warnx("%s/%s: %s", root, TMPLINK, strerror(errno));
		free(target);
		return -1;
	}
	if (renameat(rootfd, TMPLINK, rootfd, "current") == -1) {
		warnx("rename %s over %s/current: %s", TMPLINK, root,
		    strerror(errno));
		unlinkat(rootfd, TMPLINK, 0);
		free(target);
		return -1;
	}
	if (fsync(rootfd) == -1)
		warnx("fsync %s: %s", root, strerror(errno));
	snprintf(cursha, sizeof(cursha), "%s", sha);
	free(target);
	return 0;
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
static int
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
 * A group ("web:*") is restarted one process at a time, so that while one
 * restarts the others keep serving and keep open the listening socket
 * that supervisord holds for an [fcgi-program] (it closes with the last
 * process).  supervisorctl runs in "/", not in a release that prune may
 * remove.
 */
#define MAXMEMBERS	256

struct member {
	char		 name[256];
	char		 state[32];
	long		 pid;
};

static int
is_group(void)
{
	size_t n;

	if (cfg.program == NULL || cfg.restart != NULL)
		return 0;
	n = strlen(cfg.program);
	return n > 2 && strcmp(cfg.program + n - 2, ":*") == 0;
}

/* supervisorctl status NAME: one member per line that names NAME (or a
 * process of the group when NAME is "web:*"); returns how many */
static int
group_members(const char *sha, const char *name, struct member *m, int max)
{
	struct runopts o = opts("/", ENV_NONE, NULL, sha);
	char out[16384], *p, *line, *save, **argv;
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
	for (line = strtok_r(out, "\n", &save); line != NULL && n < max;
	    line = strtok_r(NULL, "\n", &save)) {
		if (two_words(line, m[n].name, sizeof(m[n].name), m[n].state,
		    sizeof(m[n].state)) != 2)
			continue;
		if (plen ? strncmp(m[n].name, name, plen) != 0 ||
		    m[n].name[plen] == '\0' : strcmp(m[n].name, name) != 0)
			continue;
		m[n].pid = (p = strstr(line, "pid ")) ? strtol(p + 4, NULL,
		    10) : 0;
		n++;
	}
	return n;
}

/* restarts one process and waits until it is RUNNING with the same pid
 * for SETTLE seconds; why says what went wrong */
static int
restart_one(const char *sha, const char *name, char *why, size_t wl)
{
	struct runopts o = opts("/", ENV_NONE, NULL, sha);
	char **argv = words_plus(cfg.supervisorctl, "restart", name,
	    (char *)NULL);
	struct member m;
	struct result r;
	double end, settled = 0;
	long firstpid = -1;

	memset(&m, 0, sizeof(m));
	logf_("restarting %s\n", name);
	if (run(argv, &o, &r) == -1 && (r.timedout || r.execerr)) {
		snprintf(why, wl, "%.255s: %s", name, why_failed(&r, argv[0],
		    o.timeout));
		free_words(argv);
		return -1;
	}
	free_words(argv);
	end = now() + (cfg.check_timeout > 10 ? cfg.check_timeout : 10);
	for (;;) {
		if (group_members(sha, name, &m, 1) != 1) {
			snprintf(m.state, sizeof(m.state), "UNKNOWN");
			m.pid = 0;
		}
		logf_("%s is %s (pid %ld)\n", name, m.state, m.pid);
		if (strcmp(m.state, "RUNNING") == 0) {
			if (m.pid != firstpid) {
				firstpid = m.pid;
				settled = now() + SETTLE;
			} else if (now() >= settled)
				return 0;
		} else if (strcmp(m.state, "STARTING") != 0) {
			snprintf(why, wl, "%.255s is %s, not RUNNING", name,
			    m.state);
			return -1;
		}
		if (gotsig && !late) {
			snprintf(why, wl, "stopped by signal %d", gotsig);
			return -1;
		}
		if (now() >= end) {
			snprintf(why, wl, "%.255s is still %s after %lds", name,
			    m.state, (long)(end - stepstart));
			return -1;
		}
		poll(NULL, 0, 200);
	}
}

/* the restart step for a group: the processes that are down first (on a
 * switch back, the one that failed comes up on the old release before
 * the one still serving is touched), then the running ones; the first
 * failure ends the roll */
static int
restart_rolling(const char *sha)
{
	static struct member m[MAXMEMBERS];
	char why[512];
	int n, i, pass;

	if ((n = group_members(sha, cfg.program, m, MAXMEMBERS)) == 0) {
		snprintf(why, sizeof(why), "supervisorctl status %s names no "
		    "process", cfg.program);
		step_fail("restart", why, 1);
		return -1;
	}
	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < n; i++) {
			if ((strcmp(m[i].state, "RUNNING") == 0) != pass)
				continue;
			if (restart_one(sha, m[i].name, why, sizeof(why)) == -1) {
				step_fail("restart", why, 1);
				return -1;
			}
		}
	step_ok("restart");
	return 0;
}

/* 6. restart, then wait until supervisord says it runs and stays up */
static int
step_restart(const char *sha)
{
	char *rdir = fmtpath("%s/releases/%s", root, sha), **argv;
	struct runopts o = opts(rdir, ENV_RELEASE, rdir, sha);
	char state[32], why[256], pids[512];
	double end, settled = 0;
	struct result r;
	long pid, firstpid = 0;

	if (cfg.program == NULL && cfg.restart == NULL) {
		step_skip("restart", "no program or restart command");
		free(rdir);
		return 0;
	}
	step_begin("restart");
	if (is_group()) {
		free(rdir);
		return restart_rolling(sha);
	}
	argv = cfg.restart ? words(cfg.restart) :
	    words_plus(cfg.supervisorctl, "restart", cfg.program, (char *)NULL);
	if (cfg.restart == NULL) {
		o.env = ENV_NONE;
		o.dir = "/";	/* as in program_state */
	} else
		o.keepgroup = 1;	/* it may start a daemon */
	if (run(argv, &o, &r) == -1 && (cfg.restart != NULL || r.timedout ||
	    r.execerr)) {
		step_fail("restart", why_failed(&r, argv[0], o.timeout), 1);
		free_words(argv);
		free(rdir);
		return -1;
	}
	free_words(argv);
	if (cfg.program == NULL) {
		step_ok("restart");
		free(rdir);
		return 0;
	}
	end = now() + (cfg.check_timeout > 10 ? cfg.check_timeout : 10);
	for (;;) {
		program_state(rdir, sha, state, sizeof(state), &pid, pids,
		    sizeof(pids));
		logf_("%s is %s (%s)\n", cfg.program, state, pids);
		if (strcmp(state, "RUNNING") == 0) {
			if (pid != firstpid) {
				firstpid = pid;
				settled = now() + SETTLE;
			} else if (now() >= settled)
				break;
		} else if (strcmp(state, "STARTING") != 0) {
			snprintf(why, sizeof(why), "%s is %s, not RUNNING",
			    cfg.program, state);
			step_fail("restart", why, 1);
			free(rdir);
			return -1;
		}
		if (now() >= end) {
			snprintf(why, sizeof(why), "%s is still %s after %lds",
			    cfg.program, state, (long)(end - stepstart));
			step_fail("restart", why, 1);
			free(rdir);
			return -1;
		}
		poll(NULL, 0, 200);
	}
	step_ok("restart");
	free(rdir);
	return 0;
}

/* 7. check: again and again until it passes or check_timeout ends;
 * 0 passed, -1 failed, 1 interrupted by a signal */
static int
step_check(const char *sha)
{
	char *rdir = fmtpath("%s/releases/%s", root, sha), **argv;
	struct runopts o = opts(rdir, ENV_APP, rdir, sha);
	struct result r;
	double end;
	int ok = -1, tries = 0;

	if (cfg.check == NULL) {
		step_skip("check", "no check command");
		free(rdir);
		return 0;
	}
	argv = words(cfg.check);
	step_begin("check");
	end = now() + cfg.check_timeout;
	for (;;) {
		double left = end - now();

		tries++;
		o.timeout = left < 1 ? 1 : (long)left + 1;
		if (cfg.timeout > 0 && o.timeout > cfg.timeout)
			o.timeout = cfg.timeout;
		if (run(argv, &o, &r) == 0) {
			ok = 0;
			break;
		}
		if (gotsig || now() >= end)
			break;
		poll(NULL, 0, 500);
	}
	if (ok == 0)
		step_ok("check");
	else if (gotsig) {
		/* not a verdict on the release: the next run checks again */
		step_fail("check", "interrupted by a signal", 0);
		ok = 1;
	} else {
		char why[300];
		snprintf(why, sizeof(why), "%s, %d tries in %lds",
		    why_failed(&r, argv[0], o.timeout), tries, cfg.check_timeout);
		step_fail("check", why, 1);
	}
	free_words(argv);
	free(rdir);
	return ok;
}

/*
 * Logs of builds that failed have no release to go with: the newest keep
 * of them stay for diagnosis, older ones go.
 */
struct orphan {
	char		 name[80];
	long long	 mtime;
};

static int
orphan_cmp(const void *a, const void *b)
{
	const struct orphan *x = a, *y = b;

	return x->mtime > y->mtime ? -1 : x->mtime < y->mtime;
}

static void
prune_logs(void)
{
	struct orphan *o = NULL;
	size_t n = 0, i;
	struct dirent *d;
	struct stat st;
	char sha[80];
	int fd;
	DIR *dp;

	if ((fd = openat(statefd, "logs", O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) == -1 || (dp = fdopendir(fd)) == NULL)
		return;
	scan_releases();
	while ((d = readdir(dp)) != NULL) {
		size_t len = strlen(d->d_name);

		if (len < 5 || len >= sizeof(sha) ||
		    strcmp(d->d_name + len - 4, ".log") != 0)
			continue;
		memcpy(sha, d->d_name, len - 4);
		sha[len - 4] = '\0';
		if (!is_sha(sha) || release_find(rel, nrel, sha) >= 0 ||
		    fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		o = xrealloc(o, (n + 1) * sizeof(*o));
		/* len < sizeof(sha) == sizeof(o[n].name): a copy, not a
		 * snprintf that gcc -Os thinks may truncate */
		memcpy(o[n].name, d->d_name, len + 1);
		o[n++].mtime = (long long)st.st_mtime;
	}
	if (n > 1)
		qsort(o, n, sizeof(*o), orphan_cmp);
	for (i = (size_t)cfg.keep; i < n; i++)
		unlinkat(dirfd(dp), o[i].name, 0);
	closedir(dp);
	free(o);
}

/* Virtualenvs that no remaining release links to. */
static void
prune_venvs(int asstep)
{
	char buf[PATH_MAX], *lk;
	struct dirent *d;
	size_t i;
	ssize_t k;
	int used;
	DIR *dp;

	if ((dp = venvs_dir()) == NULL)
		return;
	scan_releases();
	while ((d = readdir(dp)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		for (i = 0, used = 0; i < nrel && !used; i++) {
			lk = fmtpath("releases/%s/.venv", rel[i].name);
			k = readlinkat(rootfd, lk, buf, sizeof(buf) - 1);
			free(lk);
			if (k > 0) {
				buf[k] = '\0';
				used = strcmp(strrchr(buf, '/') ? strrchr(buf, '/') +
				    1 : buf, d->d_name) == 0;
			}
		}
		if (used)
			continue;
		lk = fmtpath("%s/.deploy-complete", d->d_name);
		unlinkat(dirfd(dp), lk, 0);
		free(lk);
		if (remove_in(dirfd(dp), "venvs", d->d_name) == 0) {
			logf_("removed venvs/%s\n", d->d_name);
			if (!asstep)
				say("removed unused virtualenv venvs/%s", d->d_name);
		}
	}
	closedir(dp);
}

/* 8. prune: oldest complete releases beyond keep, and failed ones */
static void
do_prune(int asstep)
{
	long cur, rb;
	size_t i, n;
	int fd;

	if (asstep)
		step_begin("prune");
	scan_releases();
	cur = cur_index();
	rb = rollback_target(rel, nrel, cur);
	n = prune_select(rel, nrel, cfg.keep, cur, rb);
	fd = releases_fd(0);
	for (i = 0; i < nrel; i++) {
		if (!rel[i].mark)
			continue;
		if (nflag) {
			say("would remove %s release %s", state_name(rel[i].state),
			    rel[i].name);
			continue;
		}
		/* say so first: a half-deleted release must not look
		 * complete, and the next run finishes the job */
		if (history_add(EV_REMOVE, rel[i].name) == -1)
			break;
		if (remove_in(fd, "releases", rel[i].name) == -1)
			warnx("could not remove all of %s/releases/%s: the next "
			    "run will try again", root, rel[i].name);
		else {
			history_forget(rel[i].name);
			history_save();
			char *lg = fmtpath("logs/%s.log", rel[i].name);
			unlinkat(statefd, lg, 0);
			free(lg);
			logf_("removed %s\n", rel[i].name);
			if (!asstep)
				say("removed %s release %s",
				    state_name(rel[i].state), rel[i].name);
		}
	}
	close(fd);
	if (!nflag)
		prune_venvs(asstep);
	if (!nflag) {
		history_compact();
		prune_logs();
		if (asstep) {
			struct runopts o = opts(root, ENV_NONE, NULL, NULL);
			struct result r;
			/* in the foreground: a detached gc would outlive
			 * our lock, and cleanup could take its lock files */
			char **argv = words_plus("git", "-c",
			    "gc.autoDetach=false", gitdir(), "gc", "--auto",
			    "--quiet", (char *)NULL);

			if (run(argv, &o, &r) == -1)
				warnx("git gc --auto in %s/repo: %s", root,
				    why_failed(&r, "git", o.timeout));
			free_words(argv);
		}
	}
	if (asstep)
		step_ok("prune");
	else if (n == 0)
		say("nothing to prune (keep = %ld)", cfg.keep);
}

/*
 * ---- finishing a switch: one state machine over .deploy/pending ----
 *
 * Once current has moved, .deploy/pending ("STATE SHA PREV PRUNE") says
 * how far the run got, and every command that takes the lock first drives
 * it to the end, so that a killed run is finished by the next one:
 *
 *   switched   current is SHA: restart it         -> restarted, or back
 *   restarted  check SHA                          -> checked, or back
 *   checked    SHA runs: prune if the deploy asked -> done
 *   back       SHA failed (recorded so): switch current to PREV and
 *              restart it                         -> done, exit 4; exit 5
 *              when there is no PREV or it will not run either
 *   done       pending removed
 *
 * A signal stops the machine between states, with pending kept and exit
 * 128+N (current is fully switched; the next run goes on from there). A
 * step that ran to its end and failed is never taken for an interruption:
 * the switch back runs, and 4 or 5 wins over 128+N.
 */
enum { P_NONE, P_SWITCHED, P_RESTARTED, P_CHECKED, P_BACK };

static const char *pnames[] = { "none", "switched", "restarted", "checked",
    "back" };

struct pending {
	int	state;
	char	sha[65];
	char	prev[65];	/* "" when there is nothing to go back to */
	int	prune;
};


/*
 * Moves the machine to p->state and writes it down; done removes it.
 * -1 when it could not be written (said so).
 */
static int
pending_set(struct pending *p, int state)
{
	char buf[200];
	int n;

	p->state = state;
	if (state == P_NONE) {
		if (unlinkat(statefd, "pending", 0) == -1 && errno != ENOENT)
			warnx("%s/%s/pending: %s", root, STATE, strerror(errno));
		return 0;
	}
	n = snprintf(buf, sizeof(buf), "%s %s %s %s\n", pnames[state], p->sha,
	    p->prev[0] ? p->prev : "-", p->prune ? "prune" : "-");
	/* no fsync: after a power cut supervisord starts current anyway */
	if (replace_file_at(statefd, "pending", buf, (size_t)n, 0) == -1) {
		warnx("%s/%s/pending: %s", root, STATE, strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * What a killed run left. A record that no longer fits current (a
 * switch that never happened, a hand-made change) is dropped.
 */
static void
pending_read(struct pending *p)
{
	char *buf, st[16] = "", a[80] = "", b[80] = "", c[16] = "", *f[4];
	size_t len;
	int i, ok;

	memset(p, 0, sizeof(*p));
	if ((buf = read_file_at(statefd, "pending", 300, &len, NULL)) == NULL)
		return;
	ok = fields(buf, f, 4) == 4 && strlen(f[0]) < sizeof(st) &&
	    strlen(f[1]) < sizeof(a) && strlen(f[2]) < sizeof(b) &&
	    strlen(f[3]) < sizeof(c);
	if (ok) {
		memcpy(st, f[0], strlen(f[0]) + 1);
		memcpy(a, f[1], strlen(f[1]) + 1);
		memcpy(b, f[2], strlen(f[2]) + 1);
		memcpy(c, f[3], strlen(f[3]) + 1);
		ok = is_sha(a);
	}
	free(buf);
	for (i = P_SWITCHED; ok && i <= P_BACK; i++)
		if (strcmp(st, pnames[i]) == 0)
			break;
	if (!ok || i > P_BACK || (i != P_BACK && strcmp(a, cursha) != 0) ||
	    (i == P_BACK && strcmp(a, cursha) != 0 && strcmp(b, cursha) != 0)) {
		unlinkat(statefd, "pending", 0);
		return;
	}
	p->state = i;
	copy_sha(p->sha, a);
	copy_sha(p->prev, is_sha(b) ? b : "");
	p->prune = strcmp(c, "prune") == 0;
}

static int
release_state(const char *sha)
{
	long i;

	scan_releases();
	i = release_find(rel, nrel, sha);
	return i < 0 ? R_FOREIGN : rel[i].state;
}

static int
tail_has_text(void)
{
	size_t i;

	for (i = 0; i < taillen; i++)
		if (!isspace((unsigned char)tail[i]))
			return 1;
	return 0;
}

/*
 * After a failed restart or check, the cause is usually in the program's
 * own output, which supervisord keeps: say where, and show its end.
 */
static void
show_program_output(void)
{
	struct runopts o = opts("/", ENV_NONE, NULL, NULL);
	const char *chan[] = { "stderr", "stdout" };
	char **argv;
	struct result r;
	size_t i;

	if (cfg.program == NULL || strchr(cfg.program, ':') != NULL) {
		if (cfg.program != NULL)
			warnx("the output of each process: supervisorctl tail "
			    "GROUP:PROCESS stderr");
		return;
	}
	o.timeout = 30;
	for (i = 0; i < 2; i++) {
		argv = words_plus(cfg.supervisorctl, "tail", "-1600",
		    cfg.program, chan[i], (char *)NULL);
		taillen = 0;
		if (run(argv, &o, &r) == 0 && tail_has_text()) {
			warnx("the end of program %s's output (supervisorctl "
			    "tail %s %s):", cfg.program, cfg.program, chan[i]);
			tail_show(10);
			free_words(argv);
			return;
		}
		free_words(argv);
	}
	warnx("program %s's own output (supervisorctl tail %s stderr) is "
	    "empty", cfg.program, cfg.program);
}

/*
 * back: the release failed; put the previous one back and restart it.
 * *retry: the switch itself failed, so the next run must try again.
 */
static int
switch_back(struct pending *p, int *retry)
{
	if (release_state(p->sha) != R_FAILED)
		history_add(EV_FAILED, p->sha);
	if (p->prev[0] == '\0') {
		warnx("release %s failed its restart or check, and there is no "
		    "release to go back to: current still points to it. Fix the "
		    "app and deploy again, or stop program %s by hand.", p->sha,
		    cfg.program ? cfg.program : "(restart)");
		return EXIT_STUCK;
	}
	if (strcmp(cursha, p->prev) != 0) {
		warnx("release %.12s failed after the switch; switching back "
		    "to %.12s", p->sha, p->prev);
		open_log(p->prev, 0);
		step_begin("switch back");
		if (switch_current(p->prev) == -1) {
			*retry = 1;
			step_fail("switch back", "could not replace current", 0);
			warnx("could not switch back: current still points to "
			    "the failed release %s; run 'deploy activate %s'",
			    p->sha, p->prev);
			return EXIT_STUCK;
		}
		history_add(EV_ACTIVATE, p->prev);
		step_ok("switch back");
	} else
		open_log(p->prev, 0);
	if (step_restart(p->prev) == -1) {
		warnx("switched back to %s, but it does not run either: look "
		    "at program %s now", p->prev, cfg.program ? cfg.program :
		    "(restart)");
		return EXIT_STUCK;
	}
	return EXIT_SWITCHED_BACK;
}

/* Runs the machine from p->state to done, or to a signal. */
static int
finish_switch(struct pending *p)
{
	int st = EXIT_OK, retry;

	late = 1;
	while (p->state != P_NONE) {
		/* a signal stops it between states; what is left of "checked"
		 * and "back" is finished first */
		if (gotsig && p->state != P_BACK && p->state != P_CHECKED)
			return 128 + gotsig;	/* pending kept */
		switch (p->state) {
		case P_SWITCHED:
			if (step_restart(p->sha) == 0)
				pending_set(p, P_RESTARTED);
			else {
				pending_set(p, P_BACK);
				show_program_output();
			}
			break;
		case P_RESTARTED:
			st = step_check(p->sha);
			if (st == -1) {
				pending_set(p, P_BACK);
				show_program_output();
			} else if (st == 0)
				pending_set(p, P_CHECKED);
			st = EXIT_OK;	/* 1: interrupted, pending kept */
			break;
		case P_CHECKED:
			/* a failed release that passes again is complete again */
			if (release_state(p->sha) == R_FAILED)
				history_add(EV_COMPLETE, p->sha);
			if (p->prune && !gotsig)
				do_prune(1);	/* else the next prune does it */
			pending_set(p, P_NONE);
			break;
		case P_BACK:
			retry = 0;
			st = switch_back(p, &retry);
			if (retry)
				return st;	/* "back" kept for the next run */
			pending_set(p, P_NONE);
			break;
		}
	}
	late = 0;
	return st;
}

/* What a killed run left switched but unfinished, finished first. */
static int
finish_pending(void)
{
	struct pending p;

	pending_read(&p);
	if (p.state == P_NONE)
		return EXIT_OK;
	say("the last run stopped after switching to %.12s (%s): finishing "
	    "it now", p.sha, pnames[p.state]);
	open_log(p.sha, 0);
	return finish_switch(&p);
}

/*
 * migrate (when asked), switch current to a complete release, then
 * restart, check and prune (when asked) through the machine; prev ""
 * means nothing to go back to
 */
static int
activate_release(const char *sha, const char *prev, int prune, int migrate)
{
	struct pending p;
	int st;

	memset(&p, 0, sizeof(p));
	copy_sha(p.sha, sha);
	copy_sha(p.prev, prev);
	p.prune = prune;
	open_log(sha, 0);
	if (migrate && (st = step_migrate(sha)) != EXIT_OK)
		return st;
	if (gotsig)
		return 128 + gotsig;	/* current unchanged */
	if (strcmp(cursha, sha) != 0) {
		step_begin("switch");
		/* written first: a kill right after the rename is finished by
		 * the next run; one before it is dropped (current differs) */
		if (pending_set(&p, P_SWITCHED) == -1) {
			step_fail("switch", "cannot record it in .deploy/pending: "
			    "not switching", 0);
			return EXIT_FAILED;
		}
		if (switch_current(sha) == -1) {
			step_fail("switch", "could not replace current", 0);
			pending_set(&p, P_NONE);
			return EXIT_FAILED;
		}
		history_add(EV_ACTIVATE, sha);
		step_ok("switch");
	} else
		pending_set(&p, P_SWITCHED);
	return finish_switch(&p);
}

/* ---- notify: told after every deploy, activate and rollback ---- */

static const char *notify_event;	/* set once the lock is ours */
static char notify_rev[65], notify_prev[65];

static void
run_notify(int status)
{
	struct runopts o = opts(root, ENV_APP, NULL, NULL);
	char *env[6], **argv;
	struct result r;
	size_t i;

	env[0] = fmtpath("DEPLOY_EVENT=%s", notify_event);
	env[1] = fmtpath("DEPLOY_STATUS=%d", status);
	env[2] = fmtpath("DEPLOY_REVISION=%s", notify_rev);
	env[3] = fmtpath("DEPLOY_PREVIOUS=%s", notify_prev);
	env[4] = notify_rev[0] ? fmtpath("DEPLOY_LOG=%s/%s/logs/%s.log", root,
	    STATE, notify_rev) : xstrdup("DEPLOY_LOG=");
	env[5] = NULL;
	o.extra = env;
	if (o.timeout == 0 || o.timeout > 60)
		o.timeout = 60;
	late = 1;	/* a signal that ends the run must not end this too */
	argv = words(cfg.notify);
	if (run_step("notify", argv, &o, &r) == -1)
		warnx("notify failed (%s); the exit status stays %d",
		    why_failed(&r, argv[0], o.timeout), status);
	free_words(argv);
	for (i = 0; i < 5; i++)
		free(env[i]);
}

/* Every exit of the program: notify first, when a deploy, activate or
 * rollback took the lock. */
static void
leave(int status)
{
	static int leaving = -1;

	if (leaving != -1)	/* a die() inside notify: the first status holds */
		exit(leaving);
	leaving = status;
	if (notify_event != NULL && cfg.notify != NULL)
		run_notify(status);
	fflush(stdout);
	exit(status);
}

/* ---- the commands ---- */

static void
open_root(int create)
{
	char real[PATH_MAX];

	if (create && mkdir(root, 0755) == 0)
		say("created %s", root);
	if (realpath(root, real) == NULL)
		die(EXIT_USAGE, "deploy root %s: %s", root, strerror(errno));
	free(root);
	root = xstrdup(real);
	if ((rootfd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) == -1)
		die(EXIT_USAGE, "deploy root %s: %s", root, strerror(errno));
	statefd = openat(rootfd, STATE, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
}

static void
need_state(void)
{
	struct stat st;

	/* 0700: the logs in it hold what build and test print */
	if (statefd == -1 && mkdirat(rootfd, STATE, 0700) == -1 &&
	    errno != EEXIST)
		die(FAIL_STATUS, "%s/%s: %s", root, STATE, strerror(errno));
	if (statefd == -1 && (statefd = openat(rootfd, STATE, O_RDONLY |
	    O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1)
		die(FAIL_STATUS, "%s/%s: %s", root, STATE, strerror(errno));
	/* one an older deploy made 0755 */
	if (fstat(statefd, &st) == -1)
		die(FAIL_STATUS, "%s/%s: %s", root, STATE, strerror(errno));
	if (st.st_uid == geteuid() && (st.st_mode & 07777) != 0700 &&
	    fchmod(statefd, 0700) == -1)
		die(FAIL_STATUS, "%s/%s: %s", root, STATE, strerror(errno));
}

static void
need_current_sane(void)
{
	char why[PATH_MAX * 2];
	int c = read_current(why, sizeof(why));

	if (c == CUR_DIR || c == CUR_BAD)
		die(EXIT_USAGE, "%s", why);
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
"# timeout = 1800            # seconds one step may run; 0 for none\n";

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

	if (qflag || cursha[0] == '\0' || strcmp(cursha, sha) == 0)
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

static void
say_commits(const char *sha)
{
	say_commits_in(gitdir(), sha);
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

/* -n: what deploy would do, from the remote as it is now */
static int
dry_run_deploy(const char *ref, int prepare_only)
{
	char sha[65];
	long i;

	history_load();
	scan_releases();
	say("would fetch %s into %s/repo", cfg.repo, root);
	ref = ref ? ref : cfg.branch ? cfg.branch : "HEAD";
	if (!ref_ok(ref))
		die(EXIT_USAGE, "ref '%s': not a usable ref", printable(ref));
	if (ls_remote(ref, sha) == 0)
		say("%s is %s on the remote", ref, sha);
	else {
		resolve(ref, sha);
		say("%s is %s in the mirror, as of the last fetch", ref, sha);
	}
	if (say_commits_in(gitdir(), sha) == -1)
		say_commits_fetched(ref, sha);
	i = release_find(rel, nrel, sha);
	if (strcmp(sha, cursha) == 0)
		say("%s is current: nothing to do", sha);
	else if (i >= 0 && rel[i].state == R_COMPLETE)
		say("would switch to the existing release %s", sha);
	else
		say("would build releases/%s, test it, %s", sha, prepare_only ?
		    "and stop" : cfg.migrate ? "migrate, switch current to it, "
		    "restart and prune" : "switch current to it, restart and "
		    "prune");
	return preflight_failed ? EXIT_USAGE : EXIT_OK;
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
	int st;

	need_current_sane();
	preflight(1, !prepare_only);
	if (nflag)
		return dry_run_deploy(ref, prepare_only);
	need_state();
	lock_root(prepare_only ? "prepare" : "deploy");
	/* from here on, whatever ends the run is told (notify) */
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
		say("%s is already current: nothing to do", sha);
		return EXIT_OK;
	}
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
	int st;

	need_current_sane();
	preflight(0, 1);
	if (!nflag) {
		need_state();
		lock_root(rollback ? "rollback" : "activate");
		notify_event = rollback ? "rollback" : "activate";
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
		say("%s is already current: nothing to do", sha);
		return EXIT_OK;
	}
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
	if ((st = cleanup()) != EXIT_OK)
		return st;
	copy_sha(sha, rel[find_rev(rev)].name);
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
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write_all(1, buf, (size_t)n) == -1)
			break;
	close(fd);
	return EXIT_OK;
}

/* list and status answer only for a folder that is a deploy root */
static void
need_deploy_root(void)
{
	struct stat st;

	if (statefd == -1 && fstatat(rootfd, "releases", &st,
	    AT_SYMLINK_NOFOLLOW) == -1 && fstatat(rootfd, "repo", &st,
	    AT_SYMLINK_NOFOLLOW) == -1)
		die(EXIT_USAGE, "%s is not a deploy root (no releases/, repo/ or "
		    "%s/): run 'deploy init URL' there, or give -C ROOT", root,
		    STATE);
}

/* bytes of the UTF-8 sequence at s, or 0 when it is not a valid one */
static int
utf8_len(const unsigned char *s)
{
	int n, i;

	if (s[0] < 0x80)
		return 1;
	n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 :
	    s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* a JSON string; what is not valid UTF-8 becomes U+FFFD */
static void
json_str(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	int n;

	putchar('"');
	for (; *p; p += n ? n : 1) {
		n = utf8_len(p);
		if (n == 0)
			fputs("\\ufffd", stdout);
		else if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			printf("\\u%04x", *p);
		else
			fwrite(p, 1, (size_t)n, stdout);
	}
	putchar('"');
}

/* a string field, or null when s is NULL or empty */
static void
json_field(const char *name, const char *s, int comma)
{
	printf("%s\"%s\": ", comma ? ", " : "", name);
	if (s == NULL || *s == '\0')
		fputs("null", stdout);
	else
		json_str(s);
}

static void
json_time(const char *name, long long t)
{
	json_field(name, t ? fmttime(t) : NULL, 1);
	if (t)
		printf(", \"%s_epoch\": %lld", name, t);
	else
		printf(", \"%s_epoch\": null", name);
}

/* src into dst (size n), cut to fit at a character boundary */
static void
cut_utf8(char *dst, const char *src, size_t n)
{
	size_t len = strlen(src);

	if (len >= n) {
		len = n - 1;
		while (len > 0 && ((unsigned char)src[len] & 0xc0) == 0x80)
			len--;	/* src[len] would start the cut character */
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
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
				cut_utf8(subj[k], printable(sp + 1), SUBJ);
		}
	free(out);
	free_words(argv);
	return subj;
}

static int
cmd_list(void)
{
	char why[PATH_MAX * 2], row[PATH_MAX + 256], (*subj)[SUBJ];
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
			putchar('}');
			continue;
		}
		/* padded columns, but no trailing spaces */
		n = snprintf(row, sizeof(row), "%-40s  %-10s  %-19s  %-8s  %s",
		    rel[i].name, state_name(rel[i].state),
		    fmttime(rel[i].completed), mark, subj[i]);
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
			printf("}}\n");
		} else
			printf(", \"running\": null}\n");
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
	if ((st = cleanup()) != EXIT_OK)
		return st;
	do_prune(0);
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
	    "| prune | help\n",
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

#ifndef DEPLOY_NO_MAIN
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
	if (argc - 1 > c->maxargs || argc - 1 < c->minargs)
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
	return cmd_prune();
}

int
main(int argc, char *argv[])
{
	const char *copt = NULL, *conf = NULL, *cmd;
	const struct command *c;
	char *prog = argv[0], *cpath;
	int st, ended;

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
#endif /* DEPLOY_NO_MAIN */
#endif /* DEPLOY_CORE_ONLY */
