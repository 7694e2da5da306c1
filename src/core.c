/*
 * core.c: the pure core, free of I/O: words, refs, paths, the config and
 * envfile parsers.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

char *
xstrdup(const char *s)
{
	char *p;

	if ((p = strdup(s)) == NULL) {
		fputs("deploy: out of memory\n", stderr);
		exit(EXIT_STUCK);
	}
	return p;
}

void *
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
	c->submodules = 1;
	c->lfs = 2;		/* yes, by default: git-lfs needed once a commit has LFS */
}

void
config_free(struct config *c)
{
	char **s[] = { &c->repo, &c->branch, &c->virtualenv, &c->requirements,
	    &c->build, &c->test, &c->program, &c->supervisorctl, &c->restart,
	    &c->supervisor,
	    &c->check, &c->link, &c->envfile, &c->migrate, &c->notify,
	    &c->allowed_signers, &c->gpg_keyring };
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

/*
 * The first word of s that a shell would take as an operator, written
 * unquoted as the whole word ("&&", "|", "2>&1"): without a shell it is
 * only an argument.  NULL when there is none (or s does not split).
 */
const char *
shell_operator(const char *s)
{
	static const char *ops[] = { "&&", "||", "|", ";", ">", ">>", "<",
	    "2>&1" };
	const char *b = NULL;
	size_t i;
	int q = 0, quoted = 0;

	for (;; s++) {
		if (q != 0) {
			if (*s == '\0')
				return NULL;
			if (q == '"' && *s == '\\' && s[1] != '\0')
				s++;
			else if (*s == q)
				q = 0;
			continue;
		}
		if (*s == '\0' || *s == ' ' || *s == '\t' || *s == '\n') {
			for (i = 0; b != NULL && !quoted &&
			    i < sizeof(ops) / sizeof(ops[0]); i++)
				if (strlen(ops[i]) == (size_t)(s - b) &&
				    strncmp(b, ops[i], (size_t)(s - b)) == 0)
					return ops[i];
			b = NULL;
			if (*s == '\0')
				return NULL;
			continue;
		}
		if (b == NULL) {
			b = s;
			quoted = 0;
		}
		if (*s == '\'' || *s == '"') {
			q = (unsigned char)*s;
			quoted = 1;
		} else if (*s == '\\') {
			quoted = 1;
			if (s[1] == '\0')
				return NULL;
			s++;
		}
	}
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

int
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

char *
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

enum { K_STR, K_CMD, K_NUM, K_BOOL, K_REF, K_PATH, K_PATHS, K_VERIFY, K_DEPS };

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
	{ "supervisor", K_STR, offsetof(struct config, supervisor), 0, 0 },
	{ "restart", K_CMD, offsetof(struct config, restart), 0, 0 },
	{ "check", K_CMD, offsetof(struct config, check), 0, 0 },
	{ "check_timeout", K_NUM, offsetof(struct config, check_timeout), 0, 86400 },
	{ "link", K_PATHS, offsetof(struct config, link), 0, 0 },
	{ "envfile", K_PATH, offsetof(struct config, envfile), 0, 0 },
	{ "timeout", K_NUM, offsetof(struct config, timeout), 0, 604800 },
	{ "migrate", K_CMD, offsetof(struct config, migrate), 0, 0 },
	{ "notify", K_CMD, offsetof(struct config, notify), 0, 0 },
	{ "verify", K_VERIFY, offsetof(struct config, verify), 0, 0 },
	{ "allowed_signers", K_PATH, offsetof(struct config, allowed_signers),
	    0, 0 },
	{ "gpg_keyring", K_PATH, offsetof(struct config, gpg_keyring), 0, 0 },
	{ "submodules", K_BOOL, offsetof(struct config, submodules), 0, 0 },
	{ "lfs", K_BOOL, offsetof(struct config, lfs), 0, 0 },
	{ "deps", K_DEPS, offsetof(struct config, deps), 0, 0 },
};

#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static int
set_deps(int *field, const char *v, char *why, size_t wl)
{
	static const char *way[] = { "auto", "requirements", "poetry", "none" };
	int i;

	for (i = 0; i < 4; i++)
		if (strcmp(v, way[i]) == 0) {
			*field = i;	/* DEPS_* in this order */
			return 0;
		}
	snprintf(why, wl, "deps must be auto, requirements, poetry or none, "
	    "not '%s'", v);
	return -1;
}

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
	case K_VERIFY:
		if (strcmp(v, "off") == 0)
			*(int *)field = VERIFY_OFF;
		else if (strcmp(v, "commit") == 0)
			*(int *)field = VERIFY_COMMIT;
		else if (strcmp(v, "tag") == 0)
			*(int *)field = VERIFY_TAG;
		else {
			snprintf(why, wl, "%s must be off, commit or tag, not "
			    "'%s'", k->name, v);
			return -1;
		}
		return 0;
	case K_DEPS:
		return set_deps((int *)field, v, why, wl);
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

/* Whether key names a command (build, test, check, ...). */
int
config_is_command(const char *key)
{
	size_t i;

	for (i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].name, key) == 0)
			return keys[i].kind == K_CMD;
	return 0;
}

/*
 * Splits s in place at blanks into at most max words (sscanf would pull
 * a scanf with floating point into a static build); returns how many.
 */
int
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

/* the first two words of line, copied when they fit: how many did */
int
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

/* A hash of the requirements, the python and the virtualenv command. */
unsigned long long
fnv(unsigned long long h, const void *p, size_t n)
{
	const unsigned char *s = p;

	while (n--)
		h = (h ^ *s++) * 1099511628211ULL;
	return h;
}

/* the first n bytes at w in the len bytes at s, or NULL */
const char *
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

void
copy_sha(char dst[65], const char *src)
{
	size_t n = strlen(src);

	if (n > 64)
		n = 64;
	memcpy(dst, src, n);
	dst[n] = '\0';
}
