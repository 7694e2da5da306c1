/*
 * output.c: what the admin reads of a step: its live line, its result, the
 * tail, the log.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "output.h"
#include "cmdline.h"
#include "core.h"
#include "files.h"
#include "history.h"
#include "json.h"
#include "msg.h"
#include "root.h"
#include "sig.h"
#include "tail.h"

int logfd = -1;

int stepno;

char tail[TAILMAX];

size_t taillen;

void
tail_add(const char *p, size_t n)
{
	if (n >= TAILMAX) {
		memcpy(tail, p + n - TAILMAX, TAILMAX);
		taillen = TAILMAX;
		return;
	}
	if (taillen + n > TAILMAX) {
		memmove(tail, tail + (taillen + n - TAILMAX), TAILMAX - n);
		taillen = TAILMAX - n;
	}
	memcpy(tail + taillen, p, n);
	taillen += n;
}

/* Output of a step written where a person reads it: on a terminal, its
 * control characters as cat -v shows them, so that an escape sequence or
 * a carriage return cannot overwrite deploy's own lines. */
void
put_output(FILE *f, const char *p, size_t n)
{
	char buf[2048];
	size_t k, m;

	if (!isatty(fileno(f))) {
		fwrite(p, 1, n, f);
		return;
	}
	for (; n > 0; p += k, n -= k) {
		k = n < sizeof(buf) / 2 ? n : sizeof(buf) / 2;
		m = cat_v(buf, p, k);
		fwrite(buf, 1, m, f);
	}
}

static void
tail_item(const struct tline *l, size_t p, size_t r)
{
	size_t j;

	for (j = 0; j < p; j++) {
		fputs("  | ", stderr);
		put_output(stderr, l[j].p, l[j].n);
		fputc('\n', stderr);
	}
	if (r > 0 && p == 1)
		fprintf(stderr, "  | ... repeated %zu more time%s\n", r,
		    r == 1 ? "" : "s");
	else if (r > 0)
		fprintf(stderr, "  | ... the %zu lines above repeated %zu more "
		    "time%s\n", p, r, r == 1 ? "" : "s");
}

/*
 * The last lines of a step's output on stderr, a run of identical lines
 * or of identical blocks of lines (a check that failed twenty times,
 * printing four lines each time) shown once with its count.
 */
void
tail_show(int lines)
{
	struct tline *l = xrealloc(NULL, (taillen + 1) * sizeof(*l));
	size_t *item = xrealloc(NULL, (taillen + 1) * 2 * sizeof(*item));
	size_t i = taillen, n = 0, ni = 0, k, r, shown = 0;
	const char *p, *nl;
	long e;

	while (i > 0 && tail[i - 1] == '\n')
		i--;
	for (p = tail; p < tail + i; p = nl + 1) {
		if ((nl = memchr(p, '\n', (size_t)(tail + i - p))) == NULL)
			nl = tail + i;
		l[n].p = p;
		l[n++].n = (size_t)(nl - p);
	}
	for (k = 0; k < n; k += item[2 * ni] * (r + 1), ni++) {
		item[2 * ni] = tail_block(l, n, k, &r);
		item[2 * ni + 1] = r;
	}
	/* back over whole items until `lines` lines are in */
	for (k = ni; k > 0 && shown + item[2 * (k - 1)] +
	    (item[2 * k - 1] > 0) <= (size_t)lines; k--)
		shown += item[2 * (k - 1)] + (item[2 * k - 1] > 0);
	if (k == ni && ni > 0)
		k--;	/* one item at least, however long */
	for (i = 0, r = 0; r < k; r++)
		i += item[2 * r] * (item[2 * r + 1] + 1);
	if ((e = tail_exception(l, n, i)) >= 0) {	/* the cause, scrolled out */
		fputs("  | ... ", stderr);
		put_output(stderr, l[e].p, l[e].n);
		fputc('\n', stderr);
	}
	for (; k < ni; k++) {
		tail_item(l + i, item[2 * k], item[2 * k + 1]);
		i += item[2 * k] * (item[2 * k + 1] + 1);
	}
	free(l);
	free(item);
	fflush(stderr);
}

void
log_write(const char *p, size_t n)
{
	if (logfd != -1 && write_all(logfd, p, n) == -1) {
		warnx("log: %s; going on without it", strerror(errno));
		close(logfd);
		logfd = -1;
	}
}

void
logf_(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		log_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

double stepstart;

/* On a terminal (and not -q or -v), a running step's line counts the
 * seconds, so a long pip or test step does not look hung; ok and FAILED
 * are coloured unless NO_COLOR is set.  In a pipe or a cron log the lines
 * stay exactly as they were. */
static int live = -1;

static int colour_out;

static int colour_err;

static int liveshown;		/* the step's line is on screen, no newline */

static double livedrawn;

static char livename[32];

static void
live_init(void)
{
	const char *term = getenv("TERM"), *nc = getenv("NO_COLOR");
	int plain = (term != NULL && strcmp(term, "dumb") == 0) ||
	    (nc != NULL && *nc != '\0');

	if (live != -1)
		return;
	live = !options->quiet && !options->verbose && isatty(STDOUT_FILENO) &&
	    !(term != NULL && strcmp(term, "dumb") == 0);
	colour_out = !plain && isatty(STDOUT_FILENO);
	colour_err = !plain && isatty(STDERR_FILENO);
}

/* called from run()'s poll loop: redraws the line once a second */
void
step_tick(void)
{
	double t;

	if (!liveshown || (t = now()) - livedrawn < 1)
		return;
	livedrawn = t;
	printf("\r\033[K[%d] %s ... %lds", stepno, livename,
	    (long)(t - stepstart));
	fflush(stdout);
}

void
live_clear(void)
{
	if (!liveshown)
		return;
	printf("\r\033[K");
	fflush(stdout);
	liveshown = 0;
}

void
step_begin(const char *name)
{
	stepno++;
	stepstart = now();
	taillen = 0;
	logf_("== [%d] %s\n", stepno, name);
	live_init();
	if (live) {
		snprintf(livename, sizeof(livename), "%s", name);
		printf("[%d] %s ...", stepno, name);
		fflush(stdout);
		liveshown = 1;
		livedrawn = stepstart;
	}
	sig_watch(0);
}

/* The step's time so far, "1.23s": integer arithmetic, so that a static
 * build need not carry printf's floating point */
static const char *
elapsed(void)
{
	static char buf[32];
	long long cs = (long long)((now() - stepstart) * 100 + 0.5);

	snprintf(buf, sizeof(buf), "%lld.%02llds", cs / 100, cs % 100);
	return buf;
}

/* "[N] NAME ok TIME", with a note in parentheses when there is one */
void
step_done(const char *name, const char *note)
{
	const char *t = elapsed();

	logf_("== [%d] %s ok %s%s%s%s\n", stepno, name, t, note ? " (" : "",
	    note ? note : "", note ? ")" : "");
	live_clear();
	if (!options->quiet) {
		printf("[%d] %s %s %s%s%s%s\n", stepno, name, colour_out ?
		    "\033[32mok\033[0m" : "ok", t, note ? " (" : "",
		    note ? note : "", note ? ")" : "");
		sig_watch(fflush(stdout) == EOF ? errno : 0);
	}
}

void
step_ok(const char *name)
{
	step_done(name, NULL);
}

void
step_skip(const char *name, const char *why)
{
	stepno++;
	logf_("== [%d] %s skipped (%s)\n", stepno, name, why);
	live_clear();
	if (!options->quiet) {
		printf("[%d] %s skipped (%s)\n", stepno, name, why);
		fflush(stdout);
	}
}

void
step_fail(const char *name, const char *why, int showtail)
{
	const char *t = elapsed();
	int intr = gotsig && !late;

	/* a step ended by our own signal did not fail: it was stopped */
	if (intr && strncmp(why, "interrupted ", 12) == 0)
		why += 12;
	logf_("== [%d] %s %s %s: %s\n", stepno, name, intr ? "interrupted" :
	    "FAILED", t, why);
	live_clear();
	fprintf(stderr, "[%d] %s %s %s: %s\n", stepno, name, intr ?
	    "interrupted" : colour_err ? "\033[1;31mFAILED\033[0m" : "FAILED",
	    t, why);
	if (showtail && taillen > 0)
		tail_show(20);
	fflush(stderr);
}

void
open_log(const char *sha, int truncate)
{
	char *p = fmtpath("logs/%s.log", sha), who[1100];

	mkdirat(statefd, "logs", 0700);
	if (logfd != -1)
		close(logfd);
	/* 0600: build and test output may show the envfile's secrets */
	logfd = openat(statefd, p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
	    O_NOFOLLOW | (truncate ? O_TRUNC : 0), 0600);
	/* fchmod: a log an older deploy made 0644 */
	if (logfd == -1 || fchmod(logfd, 0600) == -1)
		warnx("%s/%s/%s: %s", root, STATE, p, strerror(errno));
	free(p);
	logf_("== %s %s %s\n", fmttime(time(NULL)), options->command, sha);
	if (*signer_of(sha, who, sizeof(who)) != '\0')
		logf_("== signed by %s\n", who);
}

/* How much of the step's output the tail holds. */
size_t
tail_length(void)
{
	return taillen;
}

/* The tail's length set to n: a new step's line empties the tail but
 * leaves its bytes, so a step can keep what ran before its line was
 * drawn (0 empties it). */
void
tail_keep(size_t n)
{
	if (n <= sizeof(tail))
		taillen = n;
}

/* The step began at t (now()'s clock), not when its line was drawn. */
void
step_started(double t)
{
	stepstart = t;
}
