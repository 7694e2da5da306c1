/*
 * preflight.c: preflight: setup mistakes caught before anything is fetched.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "preflight.h"
#include "child.h"
#include "cmdline.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "msg.h"
#include "root.h"
#include "supervisor.h"
#include "xmlrpc.h"

/*
 * Cheap checks of what a deploy will need, so that a misspelled program or
 * a missing command is refused (exit 2, nothing changed) instead of
 * costing a built release that then fails its restart. With -n each one
 * is reported.
 */
int preflight_failed;

void
preflight_result(const char *what, const char *why)
{
	if (why == NULL) {
		if (options->dry_run)
			say("preflight: %s: ok", what);
		return;
	}
	if (!options->dry_run)
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
	else if (strcmp(key, "restart") == 0 && strchr(w[0], '/') == NULL &&
	    path_lookup(w[0], found, sizeof(found)) == -1) {
		/* it runs with the release's .venv/bin first on PATH: a
		 * console script of the app's own wheel is looked for there
		 * once the release has its venv (release_command_ok) */
		if (options->dry_run)
			say("preflight: %s: '%s' is not on PATH; looked for in "
			    "the release's .venv/bin once it is built", what,
			    printable(w[0]));
		free_words(w);
		return;
	}
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
 * supervisord answers on its socket, and the program (every process of a
 * group) is known to it; STOPPED or FATAL is fine for a first deploy.
 */
static void
preflight_program(void)
{
	static struct member m[MAXMEMBERS];
	char why[SV_WHYLEN + 300], what[300], near[600], entry[256];
	int n, i;

	for (i = 0; program_entry(i, entry, sizeof(entry)) == 0; i++) {
		snprintf(what, sizeof(what), "program %s", entry);
		n = group_members(entry, m, MAXMEMBERS);
		if (n == -1 && sv_denied())
			sv_denied_why(why, sizeof(why));
		else if (n == -1)
			snprintf(why, sizeof(why), "%s", members_why);
		else if (n == 0 && (close_programs(entry, near, sizeof(near)),
		    near[0]))
			snprintf(why, sizeof(why), "supervisord does not know "
			    "it; it knows %s", near);
		else if (n == 0)
			snprintf(why, sizeof(why), "supervisord does not know "
			    "it (add a [program:%.*s] section with "
			    "autostart=false, then 'supervisorctl update'; see "
			    "deploy(1))", (int)strcspn(entry, ":"), entry);
		preflight_result(what, n > 0 ? NULL : why);
		if (n == -1)
			break;	/* the same for every entry */
	}
}

/*
 * The restart command as the release will run it: its .venv/bin first on
 * PATH, a relative path in the release.  0 when it can run; else -1 and
 * why.
 */
int
release_command_ok(const char *key, const char *cmd, const char *sha,
    char *why, size_t wl)
{
	char **w = words(cmd), found[PATH_MAX], *f;
	struct stat st;
	int ok;

	if (w[0][0] == '/')
		f = xstrdup(w[0]);
	else if (strchr(w[0], '/') != NULL)
		f = fmtpath("%s/releases/%s/%s", root, sha, w[0]);
	else
		f = fmtpath("%s/releases/%s/.venv/bin/%s", root, sha, w[0]);
	ok = stat(f, &st) == 0 && S_ISREG(st.st_mode) && access(f, X_OK) == 0;
	if (!ok && strchr(w[0], '/') == NULL)
		ok = path_lookup(w[0], found, sizeof(found)) == 0;
	if (!ok && strchr(w[0], '/') == NULL)
		snprintf(why, wl, "%s command: '%s' is neither in the release's "
		    ".venv/bin nor on PATH (add the package that provides it to "
		    "%s, or set %s in deploy.conf)", key, printable(w[0]),
		    cfg.requirements, key);
	else if (!ok)
		snprintf(why, wl, "%s command: %s is not an executable file",
		    key, printable(f));
	free(f);
	free_words(w);
	return ok ? 0 : -1;
}

/* Before a built release is switched to: its restart command can run */
void
need_restart_command(const char *sha)
{
	char why[PATH_MAX + 256];

	if (cfg.restart == NULL)
		return;
	if (release_command_ok("restart", cfg.restart, sha, why,
	    sizeof(why)) == 0) {
		if (options->dry_run)
			say("preflight: restart command: ok in releases/%.12s",
			    sha);
		return;
	}
	if (!options->dry_run)
		die(EXIT_USAGE, "%s; nothing was changed", why);
	warnx("preflight: %s", why);
	preflight_failed = 1;
}

/*
 * With lfs = yes written in deploy.conf, git-lfs before anything is
 * fetched. By default (no lfs line) a server without git-lfs keeps
 * deploying apps that have no LFS files; one that has them is refused
 * by tree_read, before its tree is checked out.
 */
static void
preflight_lfs(void)
{
	char found[PATH_MAX];

	if (cfg.lfs == 1)
		preflight_result("git-lfs", path_lookup("git-lfs", found,
		    sizeof(found)) == 0 ? NULL : "not on PATH (install the "
		    "git-lfs package, or set lfs = no in "
		    "deploy.conf for an app without LFS files)");
}

/* build: what the build needs; switching: what the switch needs */
void
preflight(int build, int switching)
{
	if (build) {
		preflight_command("virtualenv", cfg.virtualenv);
		preflight_links();
		preflight_lfs();
	}
	if (switching && cfg.program != NULL) {
		/* it names supervisord's config, unless supervisor = does */
		if (cfg.supervisor == NULL)
			preflight_command("supervisorctl", cfg.supervisorctl);
		if (!preflight_failed)
			preflight_program();
	}
	if (switching && cfg.restart != NULL)
		preflight_command("restart", cfg.restart);
}
