/*
 * build.c: building a release: links, the revision, build and test, migrate.
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

#include "build.h"
#include "child.h"
#include "config.h"
#include "core.h"
#include "deps.h"
#include "files.h"
#include "history.h"
#include "msg.h"
#include "order.h"
#include "output.h"
#include "partial.h"
#include "preflight.h"
#include "releases.h"
#include "report.h"
#include "rmtree.h"
#include "root.h"
#include "sig.h"
#include "tree.h"
#include "venv.h"

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
/* will_switch: a deploy that switches; its restart command is looked
 * for in the release once the venv is built, before the tests are paid
 * for */
void
build_release(const char *sha, int will_switch)
{
	char *rdir = fmtpath("%s/releases/%s", root, sha), **argv;
	struct runopts o = opts(rdir, ENV_RELEASE, rdir, sha);
	char why[PATH_MAX + 256];
	struct stat st;
	struct result r;
	int fd, way;

	/* what the commit declares, installable as declared, or refused
	 * before anything of the release exists */
	way = deps_way(gitdir(), sha);
	open_log(sha, 1);
	report_due();
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
	checkout_tree(sha, rdir);
	if (gotsig)
		fail_build(sha, 128 + gotsig);
	write_revision(sha, rdir);

	step_venv_pip(sha, rdir, way);
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
	if (will_switch && cfg.restart != NULL &&
	    release_command_ok("restart", cfg.restart, sha, why, sizeof(why))
	    == -1) {
		warnx("%s", why);
		fail_build(sha, EXIT_FAILED);
	}
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
		history_drop_last();
		fail_build(sha, EXIT_FAILED);
	}
	logf_("== complete\n");
	free(rdir);
}

/*
 * 5. migrate: after the tests, right before the switch, so that a commit
 * whose tests fail never touches the database. Never on rollback:
 * migrations go forward only. 0 done, else the exit status.
 */
int
step_migrate(const char *sha, int skip)
{
	char *rdir = fmtpath("%s/releases/%s", root, sha), **argv;
	struct runopts o = opts(rdir, ENV_APP, rdir, sha);
	struct result r;
	int st = EXIT_OK;

	if (cfg.migrate == NULL) {
		free(rdir);
		return EXIT_OK;
	}
	if (skip) {		/* -M */
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
