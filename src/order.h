/*
 * order.h: the release history and the order of releases: rollback and prune
 * choice, free of I/O.
 */
#ifndef DEPLOY_ORDER_H
#define DEPLOY_ORDER_H

#include <stddef.h>

/* live: it passed its check after a switch; unmigrated: its migrate
 * failed (both from issue 30; older versions skip these lines) */
enum { EV_BUILD, EV_COMPLETE, EV_ACTIVATE, EV_FAILED, EV_REMOVE, EV_LIVE,
    EV_UNMIGRATED };

struct event {
	long long	 t;
	int		 type;
	char		 sha[65];
};

/* Parses the history file; malformed lines are skipped. */
int	history_parse(const char *buf, size_t len, struct event **, size_t *);
int	event_type(const char *);
const char *event_name(int);

enum { R_COMPLETE, R_FAILED, R_INCOMPLETE, R_FOREIGN };

/*
 * A release's life: it was live (passed its check after a switch, or an
 * older history that cannot tell: counts as live, as before issue 30),
 * was prepared and never switched to, had its migrate fail, or failed
 * after its switch. Live now is current's.
 */
enum { L_NONE, L_WASLIVE, L_PREPARED, L_UNMIGRATED, L_FAILED };

struct release {
	char		 name[256];
	int		 state;
	long		 seq;		/* order of completion; -1 when none */
	long long	 completed;
	long long	 activated;
	int		 life;		/* L_*; L_NONE unless complete/failed */
	long		 order;		/* when it first went live: rollback */
	long long	 lived;		/* when it last went live; 0 unknown */
	int		 mark;		/* prune: 1 = remove */
};

/*
 * Merges the history with what releases/ holds: names[i] is an entry,
 * isdir[i] says whether it is a real directory. An entry the history
 * never saw being built is foreign: not ours to delete. Sorted newest
 * first: complete and failed ones by completion, then incomplete, then
 * foreign.
 */
int	releases_build(const struct event *, size_t, char *const *names,
	    const int *isdir, size_t n, struct release **, size_t *);
const char *state_name(int);
/* "live" for current, else the L_* name ("-" for L_NONE). */
const char *life_name(int life, int current);
/* Index of the release named sha, or -1. */
long	release_find(const struct release *, size_t, const char *sha);
/* REV (full sha or unique prefix of >= 7) among complete and failed
 * releases: index, -1 none, -2 ambiguous, -3 malformed or too short. */
long	rev_match(const struct release *, size_t, const char *rev);
/* The newest release that went live before cur did, skipping never-live
 * and failed ones, or -1. */
long	rollback_target(const struct release *, size_t, long cur);
/* Sets mark on what prune removes; returns how many. Kept: the keep
 * newest that were live, cur, rb, foreign entries, and prepared releases
 * newer than cur. */
size_t	prune_select(struct release *, size_t, long keep, long cur, long rb);

#endif
