/*
 * cmd_init.c: the init command.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd_init.h"
#include "child.h"
#include "cmdline.h"
#include "core.h"
#include "fetch.h"
#include "files.h"
#include "msg.h"
#include "root.h"
#include "sig.h"

/* Every key, commented out, with its default and what it means. */
static const char conf_template[] =
"# deploy(1) configuration: key = value; '#' starts a comment line.\n"
"# Commands are split into words as sh does (quotes, backslash) and run\n"
"# without a shell, in the release, with its .venv/bin first on PATH.\n"
"repo = %s\n"
"%s%s\n"
"# keep = 5                  # complete releases kept by prune (at least 2)\n"
"# virtualenv = virtualenv -p python3  # makes a venv; its path is appended\n"
"#                           # (python3 -m venv where virtualenv is missing)\n"
"# requirements = requirements.txt  # pip installs it; skipped when absent\n""# deps = auto               # auto: the requirements file, else poetry.lock;\n"
"#                           # a commit that declares dependencies otherwise\n"
"#                           # (uv.lock, pyproject.toml, ...) is refused;\n"
"#                           # requirements, poetry or none\n"
"# reuse_venv = yes          # share a venv between releases with the same\n"
"#                           # requirements (never with local paths)\n"
"# build =                   # run after pip, before the tests\n"
"# test = python -m pytest   # the app's tests; none: the step is skipped\n"
"# program = app             # supervisord program (or group:*) restarted\n"
"#                           # after the switch; none: no restart\n"
"# supervisorctl = supervisorctl  # e.g. supervisorctl -c /etc/supervisor/supervisord.conf\n"
"# supervisor = unix:///run/supervisor.sock  # else the one supervisorctl finds\n"
"# restart =                 # a command run instead of supervisord's restart\n"
"# check =                   # health check after the restart, retried until\n"
"#                           # it passes or check_timeout ends\n"
"# check_timeout = 30        # seconds\n"
"# link =                    # paths under shared/ linked into each release\n"
"# envfile =                 # KEY=VALUE file under shared/ for build, test\n"
"#                           # check and deploy run\n"
"# timeout = 1800            # seconds one step may run; 0 for none\n"
"# migrate =                 # after the tests, right before the switch\n"
"#                           # (python manage.py migrate --noinput)\n"
"# notify =                  # after every deploy, activate and rollback\n"
"#                           # that built, migrated, switched, restarted\n"
"#                           # or switched back a release; gets DEPLOY_EVENT,\n"
"#                           # DEPLOY_STATUS, DEPLOY_REVISION, DEPLOY_PREVIOUS,\n"
"#                           # DEPLOY_LOG, DEPLOY_ACTOR\n"
"# verify = off              # commit or tag: deploy only what an allowed\n"
"#                           # key signed\n"
"# allowed_signers =         # file under shared/: ssh keys allowed to sign\n"
"# gpg_keyring =             # file or folder under shared/: OpenPGP keys\n"
"# submodules = yes          # no: a commit with submodules is refused\n"
"# lfs = yes                 # no: a commit with Git LFS files is refused\n";

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
	/* the branch line, written or commented out: never both */
	text = fmtpath(conf_template, url, branch ? "# the branch, tag or commit "
	    "deployed by default\nbranch = " : "# branch = (the remote's HEAD)  "
	    "# branch, tag or commit deployed by default", branch ? branch : "");
	if ((fd = openat(rootfd, conf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0644)) == -1 || write_all(fd, text, strlen(text)) == -1 ||
	    fsync(fd) == -1 || close(fd) == -1)
		die(FAIL_STATUS, "%s/%s: %s", root, conf, strerror(errno));
	say("created shared/deploy.conf: edit it, then run deploy");
	free(text);
}

/* Before the root is made: the words, and -n's answer. */
int
cmd_init_check(int argc, char **argv)
{
	if (argc < 2 || argc > 3)
		die(EXIT_USAGE, "usage: deploy init URL [BRANCH]");
	if (argv[1][0] == '-' || argv[1][0] == '\0')
		die(EXIT_USAGE, "URL '%s' must not start with '-'",
		    printable(argv[1]));
	if (argc == 3 && !ref_ok(argv[2]))
		die(EXIT_USAGE, "branch '%s': not a usable ref",
		    printable(argv[2]));
	if (options->dry_run) {
		say("would create %s with releases/, shared/, repo/ (mirror of "
		    "%s) and shared/deploy.conf", root, argv[1]);
		return EXIT_OK;
	}
	return GO_ON;
}

/* init: the root made and opened, under the lock. */
int
cmd_init(int argc, char **argv)
{
	struct stat st;
	struct runopts o;

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
		o = opts(root, ENV_NONE, NULL, NULL);
		o.timeout = 1800;	/* no deploy.conf yet: its default */
		clone_mirror(argv[1], &o);
		say("created repo/ (a mirror of %s)", argv[1]);
	}
	init_config(argv[1], argc == 3 ? argv[2] : NULL);
	return EXIT_OK;
}
