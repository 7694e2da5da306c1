/*
 * order.h: the release history and the order of releases: rollback and prune
 * choice, free of I/O.
 */
#ifndef DEPLOY_ORDER_H
#define DEPLOY_ORDER_H

#include <stddef.h>

enum { EV_BUILD, EV_COMPLETE, EV_ACTIVATE, EV_FAILED, EV_REMOVE };

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

struct release {
	char		 name[256];
	int		 state;
	long		 seq;		/* order of completion; -1 when none */
	long long	 completed;
	long long	 activated;
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
/* Index of the release named sha, or -1. */
long	release_find(const struct release *, size_t, const char *sha);
/* REV (full sha or unique prefix of >= 7) among complete and failed
 * releases: index, -1 none, -2 ambiguous, -3 malformed or too short. */
long	rev_match(const struct release *, size_t, const char *rev);
/* The complete release completed just before cur, or -1. */
long	rollback_target(const struct release *, size_t, long cur);
/* Sets mark on what prune removes; returns how many. */
size_t	prune_select(struct release *, size_t, long keep, long cur, long rb);

#endif
