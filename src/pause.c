/*
 * pause.c: pause: a pause record, read by converge and status.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pause.h"
#include "core.h"
#include "files.h"
#include "json.h"
#include "msg.h"
#include "root.h"

/* 1 and *p filled when paused; a pause file it cannot read is a pause */
int
pause_read(struct pauserec *p)
{
	return pause_read_at("pause", p);
}

/* The same, from the pause record name in .deploy/ (resume's, moved) */
int
pause_read_at(const char *name, struct pauserec *p)
{
	char *buf, *line, *save, *sp;
	size_t len;
	int version = 0;

	memset(p, 0, sizeof(*p));
	p->uid = -1;
	if (statefd == -1 || (buf = read_file_at(statefd, name, 4096, &len,
	    NULL)) == NULL)
		return statefd != -1 && errno != ENOENT;
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((sp = strchr(line, ' ')) == NULL)
			continue;
		*sp++ = '\0';
		if (strcmp(line, "deploy-pause") == 0)
			version = atoi(sp);
		else if (version == 1 && strcmp(line, "user") == 0)
			cut_utf8(p->user, printable(sp), sizeof(p->user));
		else if (version == 1 && strcmp(line, "uid") == 0)
			p->uid = strtol(sp, NULL, 10);
		else if (version == 1 && strcmp(line, "since") == 0)
			p->since = strtoll(sp, NULL, 10);
		else if (version == 1 && strcmp(line, "reason") == 0)
			cut_utf8(p->reason, printable(sp), sizeof(p->reason));
	}
	free(buf);
	if (version != 1)
		snprintf(p->reason, sizeof(p->reason), "(a pause file this "
		    "version does not read: %s/%s/pause)", root, STATE);
	return 1;
}

/*
 * Who paused, into buf: "by alice (uid 1000) since 2026-11-30 16:00:00:
 * REASON", the one text of it. PAUSE_SINCE adds " since TIME";
 * PAUSE_ASK shows a user or a time the record lacks as "?" (without it,
 * as "" and fmttime's "-"). No reason, no ": ".
 */
const char *
pause_who(const struct pauserec *p, int how, char *buf, size_t len)
{
	int ask = how & PAUSE_ASK;

	snprintf(buf, len, "by %s (uid %ld)%s%s%s%s", ask && !p->user[0] ?
	    "?" : p->user, p->uid, how & PAUSE_SINCE ? " since " : "",
	    !(how & PAUSE_SINCE) ? "" : ask && !p->since ? "?" :
	    fmttime(p->since), p->reason[0] ? ": " : "", p->reason);
	return buf;
}

/* "paused by alice (uid 1000) since 2026-11-30 16:00:00: REASON" when
 * paused */
int
paused_by(char *who, size_t wl)
{
	struct pauserec p;
	char by[PAUSE_WHO];

	if (!pause_read(&p))
		return 0;
	snprintf(who, wl, "paused %s", pause_who(&p, PAUSE_SINCE | PAUSE_ASK,
	    by, sizeof(by)));
	return 1;
}

/* deploy and prepare, before and after the lock: a pause refuses them */
void
refuse_if_paused(void)
{
	char who[600];

	if (paused_by(who, sizeof(who)))
		die(EXIT_LOCKED, "deploy is %s; 'deploy resume' ends it "
		    "(activate and rollback still work)", who);
}
