/*
 * config.c: loading deploy.conf and the envfile, trusted only when their
 * owner and mode are.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "cmdline.h"
#include "core.h"
#include "files.h"
#include "msg.h"
#include "root.h"

struct config cfg;

char **envvars;		/* from envfile */

/* The name of uid in the password database, as it is there, or NULL. */
const char *
login_name(uid_t uid)
{
	struct passwd *pw = getpwuid(uid);

	return pw != NULL ? pw->pw_name : NULL;
}

/* A user's name for messages: a bare number says too little. */
const char *
user_name(uid_t uid, char *buf, size_t len)
{
	const char *name = login_name(uid);

	snprintf(buf, len, "%s", name != NULL ? printable(name) :
	    "no such user in the password database");
	return buf;
}

/*
 * What is wrong with the owner and mode of a file deploy trusts (as ssh
 * does a key): 0 nothing, 1 writable by group or others, 2 owned by
 * neither root nor the user running deploy.
 */
static int
untrusted(const struct stat *st)
{
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return 1;
	if (st->st_uid != geteuid() && st->st_uid != 0)
		return 2;
	return 0;
}

/*
 * Reads a file whose words deploy runs or hands to what it runs (the
 * config, the envfile): a regular file, not a symbolic link, owned by us
 * or root, writable by no one else, at most CONF_MAX bytes. Anything else
 * ends the run with status 2 and one line naming the file (shown).
 */
char *
read_trusted(int dfd, const char *name, const char *shown, const char *hint,
    size_t *lenp)
{
	struct stat st;
	size_t len;
	ssize_t n;
	char *buf;
	int fd, bad;

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
	if ((bad = untrusted(&st)) == 1)
		die(EXIT_USAGE, "%s: writable by group or others; refusing it "
		    "(chmod go-w %s)", shown, shown);
	if (bad == 2) {
		char owner[64], me[64];

		die(EXIT_USAGE, "%s: owned by uid %ld (%s), not by root or by "
		    "the user running deploy (uid %ld, %s); refusing it",
		    shown, (long)st.st_uid, user_name(st.st_uid, owner,
		    sizeof(owner)), (long)geteuid(), user_name(geteuid(), me,
		    sizeof(me)));
	}
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

/*
 * "check = curl -f URL && echo ok" parses, but && reaches curl as an
 * argument: said at load, with the line, since the config stays valid.
 * The lines are those config_parse already accepted.
 */
static void
warn_shell_words(const char *buf, size_t len, const char *path)
{
	const char *p = buf, *end = buf + len, *nl, *op;
	char line[4096], *k, *eq, err[64], **w;
	size_t lineno = 0, n;

	for (; p < end; p = nl + 1) {
		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		if ((n = (size_t)(nl - p)) >= sizeof(line))
			continue;
		memcpy(line, p, n);
		line[n] = '\0';
		k = trim(line);
		if (*k == '#' || (eq = strchr(k, '=')) == NULL)
			continue;
		*eq = '\0';
		k = trim(k);
		if (config_is_command(k) &&
		    (op = shell_operator(trim(eq + 1))) != NULL &&
		    (w = split_words(trim(eq + 1), err, sizeof(err))) != NULL) {
			warnx("warning: %s:%zu: %s: '%s' is a shell operator, but "
			    "commands run without a shell: %s gets it as an "
			    "argument; put the command line in a script and name "
			    "the script", path, lineno, k, op, printable(w[0]));
			free_words(w);
		}
		if (nl == end)
			break;
	}
}

void
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
	warn_shell_words(buf, len, path);
	free(buf);
	if (options->keep)
		cfg.keep = options->keep;
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

/*
 * status reads deploy.conf only for program and supervisorctl, and never
 * dies of it: it must answer on a root whose config is broken. A config
 * it would not trust for a deploy is not used to run supervisorctl.
 * Returns why it could not be used, or NULL.
 */
const char *
config_for_status(void)
{
	static char why[PATH_MAX + ERRLEN];
	char *path = options->config ? xstrdup(options->config) :
	    fmtpath("%s/shared/deploy.conf", root), *buf, err[ERRLEN + PATH_MAX];
	struct stat st;
	size_t len;
	int fd;

	config_init(&cfg);
	why[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) == -1 ||
	    fstat(fd, &st) == -1)
		snprintf(why, sizeof(why), "%s: %s", path, strerror(errno));
	else if (untrusted(&st))
		snprintf(why, sizeof(why), "%s: not trusted (owner or mode)",
		    path);
	if (fd != -1)
		close(fd);
	buf = why[0] ? NULL : read_file_at(AT_FDCWD, path, CONF_MAX, &len,
	    NULL);
	if (why[0] == '\0' && buf == NULL)
		snprintf(why, sizeof(why), "%s: %s", path, strerror(errno));
	else if (buf != NULL && config_parse(&cfg, buf, len, path, err,
	    sizeof(err)) == -1)
		snprintf(why, sizeof(why), "%s", err);
	free(buf);
	if (why[0] == '\0' && cfg.supervisorctl == NULL)
		cfg.supervisorctl = xstrdup("supervisorctl");
	free(path);
	return why[0] ? why : NULL;
}
