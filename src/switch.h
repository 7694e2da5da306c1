/* switch.h: finishing a switch: one state machine over .deploy/pending. */
#ifndef DEPLOY_SWITCH_H
#define DEPLOY_SWITCH_H

#include <stddef.h>

/*
 * Once current has moved, .deploy/pending ("STATE SHA PREV PRUNE") says
 * how far the run got, and every command that takes the lock first drives
 * it to the end, so that a killed run is finished by the next one:
 *
 *   switched   current is SHA: restart it         -> restarted, or back
 *   restarted  check SHA                          -> checked, or back
 *   checked    SHA runs: prune if the deploy asked -> done
 *   back       SHA failed (recorded so): switch current to PREV and
 *              restart it                         -> done, exit 4; exit 5
 *              when there is no PREV or it will not run either
 *   done       pending removed
 *
 * A signal stops the machine between states, with pending kept and exit
 * 128+N (current is fully switched; the next run goes on from there). A
 * step that ran to its end and failed is never taken for an interruption:
 * the switch back runs, and 4 or 5 wins over 128+N.
 *
 * switched and back are written durably (file and .deploy/ fsynced)
 * before current moves; the other states are not (a lost one only makes
 * the next run restart and check again). 0098c49's "SHA PREV" enters the
 * machine as switched. While paused, only a command run by hand
 * (activate, rollback, resume) drives it; others stop with exit 3. After
 * done, a run that switched nothing itself converges (see below): that is
 * outside the machine, and never switches.
 */
enum { P_NONE, P_SWITCHED, P_RESTARTED, P_CHECKED, P_BACK };

struct pending {
	int	state;
	char	sha[65];
	char	prev[65];	/* "" when there is nothing to go back to */
	int	prune;
};

extern const char *pnames[];
void pending_load(struct pending *p, int drop);
int release_state(const char *sha);
void show_program_output(void);
int finish_pending(void);
int activate_release(const char *sha, const char *prev, int prune, int migrate);
#endif
