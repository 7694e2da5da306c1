/* releases.h: the view of releases/, current and previous. */
#ifndef DEPLOY_RELEASES_H
#define DEPLOY_RELEASES_H

#include <stddef.h>

#define TMPLINK	".current.tmp"
#define PREVLINK	".previous.tmp"
#include "order.h"

enum { CUR_NONE, CUR_OK, CUR_DIR, CUR_BAD };
extern struct release *rel;
extern size_t nrel;
extern char cursha[65];
int read_current(char *why, size_t wl);
int releases_fd(int absent_ok);
void scan_releases(void);
long cur_index(void);
size_t keep_previous(void);
void previous_was(const char *sha);
int switch_current(const char *sha);
void need_current_sane(void);
#endif
