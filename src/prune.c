/*
 * prune.c: prune: old releases, logs, venvs and module mirrors.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "prune.h"
#include "child.h"
#include "cmdline.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "history.h"
#include "msg.h"
#include "order.h"
#include "output.h"
#include "releases.h"
#include "rmtree.h"
#include "root.h"
#include "venvs.h"

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

/*
 * Submodule mirrors no remaining release was read from, and the uses/
 * records of releases that are gone.
 */
static void
prune_modules(int asstep)
{
	char *all = xstrdup(""), *u, *p, name[300];
	struct dirent *d;
	size_t i, len;
	int ufd, mfd;
	DIR *dp;

	scan_releases();
	if ((ufd = open_dir_at(statefd, "uses")) != -1 &&
	    (dp = fdopendir(ufd)) != NULL) {
		while ((d = readdir(dp)) != NULL)
			if (d->d_name[0] != '.' && release_find(rel, nrel,
			    d->d_name) < 0)
				unlinkat(ufd, d->d_name, 0);
		closedir(dp);
		ufd = open_dir_at(statefd, "uses");
	}
	for (i = 0; ufd != -1 && i < nrel; i++)
		if ((u = read_file_at(ufd, rel[i].name, 1 << 20, &len,
		    NULL)) != NULL) {
			p = all;
			all = fmtpath("%s%s", p, u);
			free(p);
			free(u);
		}
	if (ufd != -1)
		close(ufd);
	if ((mfd = open_dir_at(rootfd, "modules")) == -1 ||
	    (dp = fdopendir(mfd)) == NULL) {
		if (mfd != -1)
			close(mfd);
		free(all);
		return;
	}
	while ((d = readdir(dp)) != NULL) {
		snprintf(name, sizeof(name), "\n%s\n", d->d_name);
		if (d->d_name[0] == '.' || strstr(all, name + 1) == all ||
		    strstr(all, name) != NULL)
			continue;
		if (remove_in(dirfd(dp), "modules", d->d_name) == 0) {
			logf_("removed modules/%s\n", d->d_name);
			if (!asstep)
				say("removed unused submodule mirror modules/%s",
				    d->d_name);
		}
	}
	closedir(dp);
	free(all);
}

/* 8. prune: oldest complete releases beyond keep, and failed ones */
void
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
	n -= keep_previous();
	fd = releases_fd(0);
	for (i = 0; i < nrel; i++) {
		if (!rel[i].mark)
			continue;
		if (options->dry_run) {
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
	if (!options->dry_run) {
		prune_venvs(asstep);
		prune_modules(asstep);
	}
	if (!options->dry_run) {
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

/* prune: under the lock, or with -n what it would remove; the runner
 * then makes sure the program runs current. */
int
cmd_prune(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	do_prune(0);
	return EXIT_OK;
}
