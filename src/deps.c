/*
 * deps.c: how a commit's dependencies are installed, read from its tree
 * before anything is built: the requirements file, poetry.lock by poetry,
 * or nothing. What deploy cannot install as declared (uv.lock,
 * Pipfile.lock, pylock.toml, pyproject.toml's dependencies, setup.py)
 * is refused, never skipped in silence. git runs with argv only.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deps.h"
#include "child.h"
#include "cmdline.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "msg.h"
#include "preflight.h"
#include "root.h"

/* What a commit may hold that declares dependencies; the export line that
 * turns it into a requirements file ("%s": the requirements path). */
enum { F_POETRY, F_UV, F_PIPENV, F_PYLOCK, F_PYPROJECT, F_SETUP, F_REQS,
	NF };
static const struct declared {
	const char	*name;
	const char	*way_on;
} declared[NF - 1] = {
	{ "poetry.lock", "poetry export -o %s" },
	{ "uv.lock", "uv export --frozen --no-dev --no-emit-project -o %s" },
	{ "Pipfile.lock", "pipenv requirements > %s" },
	{ "pylock.toml", NULL },
	{ "pyproject.toml", NULL },
	{ "setup.py", NULL },
};

struct tree_has {
	int	 has[NF];
	char	 pyproject[65];		/* its blob's oid */
};

/* The names of t's commit at its top (and the requirements path): 0, or
 * -1 when git could not list them (the commit not in gd). */
static int
list_top(const char *gd, const char *sha, struct tree_has *t)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char out[8192], **argv, *line, *save, *tab;
	struct result r;
	int i;

	memset(t, 0, sizeof(*t));
	o.out = out;
	o.outlen = sizeof(out);
	o.quiet = 1;
	o.timeout = 60;
	argv = words_plus("git", "-c", "core.quotePath=false", gd, "ls-tree",
	    "--full-tree", sha, "--",
	    "poetry.lock", "uv.lock", "Pipfile.lock", "pylock.toml",
	    "pyproject.toml", "setup.py", cfg.requirements, (char *)NULL);
	out[0] = '\0';
	i = run(argv, &o, &r);
	free_words(argv);
	if (r.signo)
		leave(128 + r.signo);	/* no verdict: we were stopped */
	if (i == -1)
		return -1;
	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((tab = strchr(line, '\t')) == NULL)
			continue;
		*tab++ = '\0';
		if (strstr(line, " tree ") != NULL)
			continue;	/* a folder by that name declares nothing */
		for (i = 0; i < NF - 1; i++)
			if (strcmp(tab, declared[i].name) == 0)
				t->has[i] = 1;
		if (strcmp(tab, cfg.requirements) == 0)
			t->has[F_REQS] = 1;
		if (strcmp(tab, "pyproject.toml") == 0 && strlen(line) > 12 &&
		    strncmp(line + 7, "blob ", 5) == 0)
			snprintf(t->pyproject, sizeof(t->pyproject), "%s",
			    line + 12);
	}
	return 0;
}

/*
 * Whether pyproject.toml's text declares dependencies: a "dependencies"
 * key with a non-empty value under [project], or any key but python under
 * [tool.poetry.dependencies]. 1 [project], 2 poetry's, 0 none. A line-wise
 * read: enough for what people write, and it only ever refuses.
 */
static int
pyproject_declares(const char *text)
{
	const char *p = text, *nl;
	char line[1024], *l, *v;
	int sect = 0, found = 0;
	size_t n;

	for (; *p != '\0'; p = *nl ? nl + 1 : nl) {
		nl = p + strcspn(p, "\n");
		n = (size_t)(nl - p) < sizeof(line) ? (size_t)(nl - p) :
		    sizeof(line) - 1;
		memcpy(line, p, n);
		line[n] = '\0';
		l = trim(line);
		if (*l == '[') {
			sect = strncmp(l, "[project]", 9) == 0 ? 1 :
			    strncmp(l, "[tool.poetry.dependencies]", 26) == 0 ?
			    2 : 0;
			continue;
		}
		if (sect == 0 || *l == '#' || (v = strchr(l, '=')) == NULL)
			continue;
		*v++ = '\0';
		l = trim(l);
		v = trim(v);
		if (sect == 1 && strcmp(l, "dependencies") == 0 &&
		    strncmp(v, "[]", 2) != 0)
			found = found ? found : 1;
		else if (sect == 2 && strcmp(l, "python") != 0 && *l != '\0')
			found = 2;
	}
	return found;
}

/* pyproject.toml's dependencies, read from its blob: as pyproject_declares */
static int
pyproject_deps(const char *gd, const struct tree_has *t)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char *out, **argv;
	struct result r;
	int d = 0;

	if (!t->has[F_PYPROJECT] || t->pyproject[0] == '\0')
		return 0;
	out = xrealloc(NULL, CONF_MAX + 1);
	o.out = out;
	o.outlen = CONF_MAX + 1;
	o.quiet = 1;
	o.timeout = 60;
	out[0] = '\0';
	argv = words_plus("git", gd, "cat-file", "blob", t->pyproject,
	    (char *)NULL);
	if (run(argv, &o, &r) == 0)
		d = pyproject_declares(out);
	free_words(argv);
	free(out);
	return d;
}

/* "commit an exported requirements.txt (THE LINE)" for file f */
static void
export_hint(int f, char *buf, size_t bl)
{
	char line[PATH_MAX + 80];

	if (declared[f].way_on == NULL) {
		snprintf(buf, bl, "commit a %s exported from it", cfg.requirements);
		return;
	}
	snprintf(line, sizeof(line), declared[f].way_on, cfg.requirements);
	snprintf(buf, bl, "commit an exported %s (%s)", cfg.requirements, line);
}

/* The lock files t holds: how many; *one is the last of them. */
static int
locks_of(const struct tree_has *t, int *one)
{
	int i, n = 0;

	for (i = F_POETRY; i <= F_PYLOCK; i++)
		if (t->has[i]) {
			n++;
			*one = i;
		}
	return n;
}

/* deps = poetry, or auto with poetry.lock alone: poetry must be here */
static int
poetry_way(const char *sha, char *why, size_t wl)
{
	char found[PATH_MAX], hint[PATH_MAX + 128];

	if (path_lookup("poetry", found, sizeof(found)) == 0)
		return DEPS_POETRY;
	export_hint(F_POETRY, hint, sizeof(hint));
	snprintf(why, wl, "poetry.lock at %.12s: poetry is not on PATH: "
	    "install it (apt install python3-poetry), or %s, or set deps in "
	    "deploy.conf", sha, hint);
	return -1;
}

/* auto, no requirements file: exactly one lock, or nothing declared */
static int
auto_way(const char *gd, const char *sha, const struct tree_has *t,
    char *why, size_t wl)
{
	char hint[PATH_MAX + 128];
	int one = 0, n = locks_of(t, &one), pd;

	if (n > 1) {
		snprintf(why, wl, "%.12s holds more than one lock file (%s%s%s%s"
		    "): set deps = poetry in deploy.conf, or commit %s", sha,
		    t->has[F_POETRY] ? " poetry.lock" : "", t->has[F_UV] ?
		    " uv.lock" : "", t->has[F_PIPENV] ? " Pipfile.lock" : "",
		    t->has[F_PYLOCK] ? " pylock.toml" : "", cfg.requirements);
		return -1;
	}
	if (n == 1 && one == F_POETRY)
		return poetry_way(sha, why, wl);
	if (n == 1) {
		export_hint(one, hint, sizeof(hint));
		snprintf(why, wl, "%s at %.12s declares the dependencies, but "
		    "deploy cannot install it as locked and there is no %s: %s, "
		    "or set deps = none in deploy.conf if the app needs none of "
		    "it", declared[one].name, sha, cfg.requirements, hint);
		return -1;
	}
	if ((pd = pyproject_deps(gd, t)) != 0) {
		export_hint(pd == 2 ? F_POETRY : F_UV, hint, sizeof(hint));
		snprintf(why, wl, "pyproject.toml at %.12s declares dependencies "
		    "(%s) that deploy does not install, and there is no %s: %s%s, "
		    "or set deps = none in deploy.conf", sha, pd == 2 ?
		    "[tool.poetry.dependencies]" : "[project] dependencies",
		    cfg.requirements, pd == 2 ? "poetry lock, then commit "
		    "poetry.lock, or " : "uv lock, then ", hint);
		return -1;
	}
	if (t->has[F_SETUP]) {
		snprintf(why, wl, "setup.py at %.12s may declare dependencies "
		    "(install_requires) that deploy does not read, and there is "
		    "no %s: commit one (pip freeze > %s in a venv where the app "
		    "runs), or set deps = none in deploy.conf", sha,
		    cfg.requirements, cfg.requirements);
		return -1;
	}
	/* nothing declared where ls-tree looks: a requirements file it
	 * cannot see (behind a folder that is a link) is still read from
	 * the release, or pip is skipped, as before deps was checked */
	return DEPS_REQUIREMENTS;
}

/* -n: which file is used, and what beside it is not */
static void
say_way(int way, const struct tree_has *t)
{
	int one = 0, n = locks_of(t, &one);

	if (way == DEPS_POETRY)
		say("deps: poetry.lock, by poetry install --sync into the "
		    "release's venv");
	else if (way == DEPS_REQUIREMENTS && !t->has[F_REQS])
		say("deps: none: the commit declares no dependencies");
	else if (way == DEPS_REQUIREMENTS)
		say("deps: %s, by pip install -r%s%s%s", cfg.requirements,
		    n ? " (" : "", n ? declared[one].name : "", n ?
		    " beside it is not read)" : "");
	else
		say("deps: none: %s", cfg.deps == DEPS_NONE ? "deps = none" :
		    "the commit declares no dependencies");
}

/*
 * How sha's dependencies are installed (DEPS_REQUIREMENTS, DEPS_POETRY or
 * DEPS_NONE), read from its tree in gd. What cannot be installed as
 * declared is refused through preflight_result: exit 2, nothing built
 * (with -n, said, and the preflight fails). -n says what is used.
 */
int
deps_way(const char *gd, const char *sha)
{
	char why[PATH_MAX + 1024];
	struct tree_has t;
	int way;

	if (cfg.deps == DEPS_NONE) {
		if (options->dry_run)
			say("deps: none: deps = none");
		return DEPS_NONE;
	}
	if (list_top(gd, sha, &t) == -1) {
		if (!options->dry_run)
			die(EXIT_FAILED, "git ls-tree %.12s failed", sha);
		say("preflight: deps: not checked: %.12s is not in the mirror "
		    "yet", sha);
		return DEPS_AUTO;
	}
	why[0] = '\0';
	if (cfg.deps == DEPS_REQUIREMENTS || (cfg.deps == DEPS_AUTO &&
	    t.has[F_REQS]))
		way = t.has[F_REQS] ? DEPS_REQUIREMENTS : -1;
	else if (cfg.deps == DEPS_POETRY)
		way = t.has[F_POETRY] ? poetry_way(sha, why, sizeof(why)) : -1;
	else
		way = auto_way(gd, sha, &t, why, sizeof(why));
	if (way == -1 && why[0] == '\0')
		snprintf(why, sizeof(why), "deps = %s, but %.12s has no %s",
		    cfg.deps == DEPS_POETRY ? "poetry" : "requirements", sha,
		    cfg.deps == DEPS_POETRY ? "poetry.lock" : cfg.requirements);
	if (way == -1) {
		preflight_result("deps", why);
		return DEPS_AUTO;
	}
	if (options->dry_run)
		say_way(way, &t);
	return way;
}
