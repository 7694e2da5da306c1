/*
 * sig.c: signals: what a signal means at each point of a run.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <string.h>

#include "sig.h"

volatile sig_atomic_t gotsig;

int late;		/* after the switch: signals wait */

static void
onsig(int s)
{
	gotsig = s;
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
	/* ssh dropped: a closed stdout must not stop a deploy half-way */
	signal(SIGPIPE, SIG_IGN);
}

/* After the switch, a signal waits for the step to end (1); before
 * it, and once the program is checked, it ends the run (0). */
void
sig_late(int on)
{
	late = on;
}
