/*
 * report.h: what this run will report at its end, to the audit and to
 * notify.
 */
#ifndef DEPLOY_REPORT_H
#define DEPLOY_REPORT_H

/*
 * Filled in as the run goes, through the functions below only; read by
 * the runner's way out (main.c), which hands it to the audit and notify.
 */
struct report {
	const char	*command;	/* the audit line's; NULL: no line */
	const char	*event;		/* notify's DEPLOY_EVENT; NULL: none */
	const char	*detail;	/* the audit's detail: a pause's reason */
	char		 rev[65];	/* the release the run is about */
	char		 prev[65];	/* current's release when it began */
	int		 due;		/* something was attempted: notify */
	int		 skip;		/* it found nothing to do */
	int		 converge;	/* 1, 2 by hand: the way out converges */
	double		 t0;		/* when the run began */
};

extern const struct report *const report;

void	report_begin(void);
/* Once the lock is ours: the audit line's command, notify's event. */
void	report_names(const char *command, const char *event);
void	report_rev(const char *sha);
void	report_prev(const char *sha);
void	report_detail(const char *detail);
/* A build, a migrate, a switch, a restart, a switch back was attempted:
 * notify hears of it; not after a typo (issue 18). */
void	report_due(void);
/* Nothing to do: no audit line, unless something was attempted. */
void	report_nothing_done(void);
/* The lock is ours and the command converges (by_hand: a pause does not
 * hold it): whatever ends the run, current must run. */
void	report_converge(int by_hand);
/* 0 when the way out need not converge, 1, or 2 by hand; asked once. */
int	report_take_converge(void);

#endif
