/* switch.h: finishing a switch: one state machine over .deploy/pending. */
#ifndef DEPLOY_SWITCH_H
#define DEPLOY_SWITCH_H

#include <stddef.h>

/* The states of .deploy/pending; the machine and its transitions are
 * written down in switch.c, above finish_switch(). */
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
