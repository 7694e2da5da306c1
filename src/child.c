/*
 * child.c: children: own process group, timeout, output to the step log.
 *
 * Rule: no word from the command line, the config or git ever reaches a
 * shell: argv arrays and execvp only. Each child gets its own process
 * group, so a timeout or a signal reaches its grandchildren too.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "child.h"
#include "cmdline.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "msg.h"
#include "output.h"
#include "root.h"
#include "sig.h"

#define GRACE	5			/* seconds between SIGTERM and SIGKILL */

/*
 * When a process started, in clock ticks since boot, from /proc on Linux;
 * 0 where that is not known. It tells a recorded process group from a
 * later one that reuses its number.
 */
unsigned long long
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
	if (!o->quiet) {
		log_write(buf, k);
		tail_add(buf, k);
	}
	if (o->out != NULL) {
		if (k > o->outlen - 1 - *outn)
			k = o->outlen - 1 - *outn;
		memcpy(o->out + *outn, buf, k);
		*outn += k;
		o->out[*outn] = '\0';
	} else if (options->verbose && !options->quiet) {
		put_output(stdout, buf, k);
		fflush(stdout);
	}
}

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
	if (o->out == NULL || o->bothout)
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
		sig_watch(0);
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
int
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
	res->outn = outn;
	if (res->execerr)
		logf_("deploy: cannot run %s: %s\n", argv[0],
		    strerror(res->execerr));
	return res->signo == 0 && !res->timedout && res->execerr == 0 &&
	    WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* what a signal that stopped deploy means to the person who sent it */
static const char *
sig_said(int s)
{
	static char buf[64];

	if (s == SIGINT)
		return "interrupted by SIGINT (Ctrl-C)";
	if (s == SIGTERM)
		return "interrupted by SIGTERM";
	if (s == SIGHUP)
		return reader_gone ? "interrupted by SIGHUP (the reader of "
		    "deploy's output went away)" : "interrupted by SIGHUP (the "
		    "terminal went away)";
	snprintf(buf, sizeof(buf), "interrupted by signal %d", s);
	return buf;
}

const char *
why_failed(const struct result *r, const char *argv0, long tmo)
{
	static char buf[256];

	if (r->signo)
		snprintf(buf, sizeof(buf), "%s", sig_said(r->signo));
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

/* Runs a config command (or argv) as a step; returns 0 on success. */
int
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

char **
words(const char *s)
{
	char err[128], **w;

	if ((w = split_words(s, err, sizeof(err))) == NULL)
		die(EXIT_USAGE, "command '%s': %s", s, err);
	return w;
}

/* w with the words of ap (up to a NULL) added */
char **
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

char **
words_plus(const char *s, ...)
{
	char **w = words(s);
	va_list ap;

	va_start(ap, s);
	w = append_words(w, ap);
	va_end(ap);
	return w;
}

struct runopts
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

char *
gitdir(void)
{
	static char *g;

	if (g == NULL)
		g = fmtpath("--git-dir=%s/repo", root);
	return g;
}
