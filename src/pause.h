/* pause.h: pause: a pause record, read by converge and status. */
#ifndef DEPLOY_PAUSE_H
#define DEPLOY_PAUSE_H

#include <stddef.h>

/*
 * .deploy/pause, while deploy is paused (written durably, 0600):
 *   deploy-pause 1        the format's name and version
 *   user NAME             who paused (the login name of the uid)
 *   uid N
 *   since EPOCH
 *   reason TEXT           to the end of the line; may be empty
 * A reader takes the lines whose key it knows and ignores the others, so
 * a later version 1 file adds keys; version 2 would be one this reader
 * refuses to take for "not paused" (it reads it as paused, reason
 * unknown). While paused, deploy and prepare refuse (exit 3), and no run
 * starts or restarts the program on its own; activate and rollback, by
 * hand, still work.
 */
struct pauserec {
	char		 user[64];
	long		 uid;
	long long	 since;
	char		 reason[256];
};

int pause_read(struct pauserec *p);
int pause_read_at(const char *name, struct pauserec *p);
#define PAUSE_SINCE	1	/* pause_who: " since TIME" */
#define PAUSE_ASK	2	/* pause_who: what the record lacks as "?" */
#define PAUSE_WHO	600	/* pause_who's text fits in this */
const char *pause_who(const struct pauserec *p, int how, char *buf, size_t len);
int paused_by(char *who, size_t wl);
void refuse_if_paused(void);
#endif
