/* history.h: the durable history of releases and who signed them. */
#ifndef DEPLOY_HISTORY_H
#define DEPLOY_HISTORY_H

#include <stddef.h>
#include "order.h"

extern struct event *hist;
extern size_t nhist;
void history_load(void);
int history_save(void);
int history_add(int type, const char *sha);
void history_compact(void);
void signer_record(const char *sha, const char *who);
const char *signer_of(const char *sha, char *buf, size_t len);
void history_forget(const char *sha);
void history_drop_last(void);

/* A head whose last deploy failed after its build (issue 30). */
struct badhead {
	char		sha[65];
	long long	t;
	int		exit;
};
int badhead_read(struct badhead *b);
int badhead_skips(const char *ref, const char *sha, struct badhead *b);
void badhead_record(const char *sha, int st);
void badhead_clear(void);
void lastlog_record(const char *sha);
void lastlog_read(char sha[65]);
#endif
