/*
 * pinned.c: the pinned fast path: no resolver when the file is the set.
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

#include "pinned.h"
#include "child.h"
#include "copytree.h"
#include "core.h"
#include "derive.h"
#include "files.h"
#include "output.h"
#include "reqs.h"
#include "venvs.h"

/*
 * Run by the venv's python as `python -c PINNED_RUN FILE ARGS`: pip's own
 * commands in one interpreter, since each start of pip costs about 0.25 s:
 * uninstall what ARGS name up to the first "--", and what the lines after
 * the second "--" (the requirements with extras or markers) name when
 * pip's packaging says each of their markers is false here, as pip then
 * ignores them; install --no-deps --force-reinstall what follows the
 * first "--" up to the second, then check; and for each requirement with
 * extras and no false marker, whether what the extras require is
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
"on, off = [], set()\n"
"if a[j + 1:]:\n"
"    from pip._internal.metadata import get_default_environment\n"
"    from pip._vendor.packaging.requirements import Requirement\n"
"    from pip._vendor.packaging.utils import canonicalize_name as cn\n"
"    q = [Requirement(s) for s in a[j + 1:]]\n"
"    on = [x for x in q if not x.marker or x.marker.evaluate()]\n"
"    off = set(cn(x.name) for x in q) - set(cn(x.name) for x in on)\n"
"p = ['import %.3f' % (time.monotonic() - t)]\n"
"if off:\n"
"    e = get_default_environment()\n"
"    a[:i] = a[:i] + sorted(n for n in off if e.get_distribution(n))\n"
"    i = a.index('--')\n"
"    j = a.index('--', i + 1)\n"
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
"if not r and any(x.extras for x in on):\n"
"    e = get_default_environment()\n"
"    for x in on:\n"
"        d = e.get_distribution(x.name) if x.extras else None\n"
"        for w in d.iter_dependencies(x.extras) if d else ():\n"
"            g = e.get_distribution(w.name)\n"
"            if g is None or not w.specifier.contains(g.version, True):\n"
"                print('%s requires %s, which is not installed' % (x, w))\n"
"                r = 3\n"
"p.append('check %.3f' % (time.monotonic() - t))\n"
"print('pinned times: ' + ', '.join(p), flush=True)\n"
"sys.exit(r)\n";

struct pinned {
	char	**names;	/* normalized, of every requirement line */
	char	**gone;		/* installed, not named, not seeds */
	char	**extras;	/* the requirement of lines with extras or markers */
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
 * v, *x the end of the extras (l when none), *re the end of the
 * requirement with its markers (before the options), *m whether it has
 * markers. 0, or -1 for a range, a wildcard, "===", two specifiers,
 * anything else.
 */
static int
pin_line(const char *l, const char *e, char *n, size_t nl, char *v,
    size_t vl, const char **x, const char **re, int *m)
{
	const char *s, *t, *opt, *v0;

	for (opt = l; opt < e; opt++)
		if (*opt == '-' && opt > l && RQ_WS(opt[-1]))
			break;
	for (t = l; t < opt && *t != ';'; t++)
		;
	*m = t < opt;
	for (*re = opt; *re > l && RQ_WS((*re)[-1]); (*re)--)
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
	const char *x, *re;
	int hashed, marked;

	if (*l == '-') {	/* an option: pip needs it to find the same */
		if ((size_t)(e - l) >= 16 && strncmp(l, "--require-hashes",
		    16) == 0)
			p->reqhashes = 1;
		push_line(p, l, (size_t)(e - l));
		return 0;
	}
	if (pin_line(l, e, n, sizeof(n), v, sizeof(v), &x, &re, &marked) == -1)
		return -1;
	if ((hashed = find_bytes(l, (size_t)(e - l), "--hash", 6) != NULL))
		p->nhashed++;
	p->names = push_word(p->names, &p->nnames, xstrdup(n));
	if (x != l || marked) {
		char *w = xrealloc(NULL, (size_t)(re - l) + 1);

		memcpy(w, l, (size_t)(re - l));
		w[re - l] = '\0';
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

	memset(p, 0, sizeof(*p));
	p->old = old;
	for (l = buf; l < end; l = q + 1) {
		if ((q = memchr(l, '\n', (size_t)(end - l))) == NULL)
			q = end;
		e = q;
		reqs_trim(&l, &e);
		if (l < e && plan_line(p, l, e, have) == -1)
			return -1;
	}
	/* hash checking is all or nothing: a line without a hash then
	 * fails a fresh build, and so the resolve */
	if (p->nnames == 0 || ((p->nhashed > 0 || p->reqhashes) &&
	    p->nhashed != p->nnames))
		return -1;
	p->gone = venv_gone(NULL, &p->ngone, have, p->names);
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
int
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
