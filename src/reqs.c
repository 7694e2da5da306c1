/*
 * reqs.c: reading requirements files and pip's output, free of I/O.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <ctype.h>
#include <string.h>

#include "reqs.h"

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

void
reqs_trim(const char **l, const char **e)
{
	const char *s = *l, *t;

	/* pip's comments: '#' at the start or after a blank */
	for (t = s; t < *e; t++)
		if (*t == '#' && (t == s || RQ_WS(t[-1])))
			break;
	while (s < t && RQ_WS(*s))
		s++;
	while (t > s && RQ_WS(t[-1]))
		t--;
	*l = s;
	*e = t;
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
		e = p;
		reqs_trim(&l, &e);
		if (l == e)
			continue;
		if (*l == '-' ? !rq_options(l, e) : !rq_requirement(l, e))
			return 0;
	}
	return 1;
}

/*
 * A poetry.lock pins versions and hashes, except for a package from a
 * folder, a file or a URL of the app's own (its [package.source] type)
 * and one installed for development (develop = true, a .pth pointing
 * into the release that built it): a venv shared between releases would
 * keep the first release's copy, or point into a folder prune removes.
 */
int
lock_shareable(const char *buf, size_t len)
{
	static const char *const local[] = { "type = \"directory\"",
	    "type = \"file\"", "type = \"url\"", "develop = true" };
	const char *l, *p, *e, *end = buf + len;
	size_t i, n;

	if (memchr(buf, '\0', len) != NULL)
		return 0;
	for (l = buf; l < end; l = p + 1) {
		if ((p = memchr(l, '\n', (size_t)(end - l))) == NULL)
			p = end;
		e = p;
		reqs_trim(&l, &e);
		for (i = 0; i < sizeof(local) / sizeof(local[0]); i++) {
			n = strlen(local[i]);
			if ((size_t)(e - l) >= n && memcmp(l, local[i], n) == 0)
				return 0;
		}
	}
	return 1;
}

static int
has_text(const char *buf, size_t len, const char *w)
{
	size_t n = strlen(w), i;

	for (i = 0; n <= len && i <= len - n; i++)
		if (memcmp(buf + i, w, n) == 0)
			return 1;
	return 0;
}

const char *
pip_lasting(const char *buf, size_t len)
{
	static const char *const net[] = {
	    "Failed to establish a new connection",
	    "Temporary failure in name resolution",
	    "Name or service not known", "Network is unreachable",
	    "Connection refused", "Read timed out", "ConnectTimeoutError",
	    "ProxyError", "Could not fetch URL", NULL };
	const char *const *w;

	for (w = net; *w != NULL; w++)
		if (has_text(buf, len, *w))
			return "the package index could not be reached";
	if (has_text(buf, len, "DO NOT MATCH THE HASHES") ||
	    has_text(buf, len, "Hashes are required in --require-hashes"))
		return "a hash does not match";
	if (has_text(buf, len, "No matching distribution found") ||
	    has_text(buf, len, "Could not find a version that satisfies"))
		return "no matching distribution";
	return NULL;
}
