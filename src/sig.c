/*
 * sig.c: signals: what a signal means at each point of a run.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "sig.h"

volatile sig_atomic_t gotsig;

int late;		/* after the switch: signals wait */
int reader_gone;	/* SIGHUP came from the output's reader going away */

static int watched[2];	/* stdout, stderr: a pipe or a socket */

static void
onsig(int s)
{
	gotsig = s;
}

/* stdout and stderr: watched when they are pipes or sockets */
static void
watch_init(void)
{
	struct stat st;
	int i;

	for (i = 0; i < 2; i++)
		watched[i] = fstat(i + 1, &st) == 0 && (S_ISFIFO(st.st_mode) ||
		    S_ISSOCK(st.st_mode));
}

static void
onalarm(int s)
{
	(void)s;	/* only to interrupt waitpid */
}

void
signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = onsig;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = onalarm;
	sigaction(SIGALRM, &sa, NULL);
	/* ssh dropped: a closed stdout must not kill a deploy half-way;
	 * sig_watch makes it a SIGHUP, which stops one before the switch */
	signal(SIGPIPE, SIG_IGN);
	watch_init();
}

/*
 * Whether the reader of stdout or stderr went away: a pipe or a socket
 * whose other end closed (POLLERR, POLLHUP), or err is EPIPE (a write
 * that failed). That is a cancelled CI job whose ssh had no terminal,
 * so no SIGHUP came: it counts as one. Called while a step runs and
 * between steps.
 */
void
sig_watch(int err)
{
	struct pollfd p[2];
	int i;

	if (gotsig || late)	/* after the switch a failed check still
				 * switches back: only a signal stops that */
		return;
	for (i = 0; i < 2; i++) {
		p[i].fd = watched[i] ? i + 1 : -1;
		p[i].events = 0;
		p[i].revents = 0;
	}
	if (err == EPIPE || (poll(p, 2, 0) > 0 &&
	    ((p[0].revents | p[1].revents) & (POLLERR | POLLHUP)))) {
		reader_gone = 1;
		gotsig = SIGHUP;
	}
}

/* After the switch, a signal waits for the step to end (1); before
 * it, and once the program is checked, it ends the run (0). */
void
sig_late(int on)
{
	late = on;
}
