/*
 * order.c: the release history and the order of releases: rollback and
 * prune choice, free of I/O.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "order.h"
#include "core.h"

static const char *evnames[] = { "build", "complete", "activate", "failed",
    "remove", "live", "unmigrated" };
#define NEVENTS	(sizeof(evnames) / sizeof(evnames[0]))

int
event_type(const char *s)
{
	int i;

	for (i = 0; i < (int)NEVENTS; i++)
		if (strcmp(s, evnames[i]) == 0)
			return i;
	return -1;
}

const char *
event_name(int t)
{
	return t >= 0 && t < (int)NEVENTS ? evnames[t] : "?";
}

int
history_parse(const char *buf, size_t len, struct event **out, size_t *nout)
{
	struct event *ev = NULL, e;
	char line[256], *f[3], *num;
	const char *p = buf, *end = buf + len, *nl;
	size_t n, nev = 0;

	for (; p < end; p = nl + 1) {
		if ((nl = memchr(p, '\n', end - p)) == NULL)
			break;		/* a partial last line is not a record */
		n = nl - p;
		if (n >= sizeof(line))
			continue;
		memcpy(line, p, n);
		line[n] = '\0';
		if (fields(line, f, 3) != 3 || strlen(f[2]) > 64)
			continue;
		errno = 0;
		e.t = strtoll(f[0], &num, 10);
		if (errno != 0 || num == f[0] || *num != '\0' ||
		    (e.type = event_type(f[1])) == -1 || !is_sha(f[2]))
			continue;
		memcpy(e.sha, f[2], strlen(f[2]) + 1);
		ev = xrealloc(ev, (nev + 1) * sizeof(*ev));
		ev[nev++] = e;
	}
	*out = ev;
	*nout = nev;
	return 0;
}

static const char *statenames[] = { "complete", "failed", "incomplete",
    "foreign" };

const char *
state_name(int s)
{
	return s >= 0 && s < 4 ? statenames[s] : "?";
}

static const char *lifenames[] = { "-", "was-live", "prepared",
    "unmigrated", "failed" };

const char *
life_name(int life, int current)
{
	if (current && life != L_NONE)
		return "live";
	return life >= 0 && life <= L_FAILED ? lifenames[life] : "?";
}

long
release_find(const struct release *r, size_t n, const char *sha)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(r[i].name, sha) == 0)
			return (long)i;
	return -1;
}

static int
release_cmp(const void *a, const void *b)
{
	const struct release *x = a, *y = b;

	if (x->state != y->state && (x->state >= R_INCOMPLETE ||
	    y->state >= R_INCOMPLETE)) {
		int kx = x->state < R_INCOMPLETE ? 0 : x->state;
		int ky = y->state < R_INCOMPLETE ? 0 : y->state;
		if (kx != ky)
			return kx < ky ? -1 : 1;
	}
	if (x->seq != y->seq)
		return x->seq > y->seq ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* What the release's history says of it so far, one event at a time. */
struct life {
	int	built;		/* its build began here: never live is provable */
	int	unmig;		/* its last migrate failed */
	long	first;		/* index of its first going live, or -1 */
};

static void
apply_event(struct release *r, struct life *l, const struct event *e, long j)
{
	switch (e->type) {
	case EV_BUILD:
		l->built = 1;
		if (r->state == R_FOREIGN)
			r->state = R_INCOMPLETE;
		break;
	case EV_COMPLETE:
		/* a failed one that ran again is complete again, in its
		 * first place */
		if (r->state == R_FAILED)
			r->state = R_COMPLETE;
		if (r->state == R_INCOMPLETE || r->state == R_FOREIGN) {
			r->state = R_COMPLETE;
			r->seq = j;
			r->completed = e->t;
		}
		break;
	case EV_FAILED:
		if (r->state == R_COMPLETE)
			r->state = R_FAILED;
		break;
	case EV_ACTIVATE:
	case EV_LIVE:
		if (e->type == EV_ACTIVATE)
			r->activated = e->t;
		if (l->first == -1)
			l->first = j;
		r->lived = e->t;
		l->unmig = 0;
		break;
	case EV_UNMIGRATED:
		l->unmig = 1;
		break;
	case EV_REMOVE:	/* ours, being removed */
		r->state = R_INCOMPLETE;
		r->seq = -1;
		r->completed = r->activated = r->lived = 0;
		l->built = l->unmig = 0;
		l->first = -1;
		break;
	}
}

/* The life the history proves; without proof, live (as before issue 30)
 * in the order of its completion. */
static void
set_life(struct release *r, const struct life *l)
{
	r->order = l->first != -1 ? l->first : r->seq;
	if (r->state == R_FAILED)
		r->life = L_FAILED;
	else if (r->state != R_COMPLETE)
		r->life = L_NONE;
	else if (l->unmig)
		r->life = L_UNMIGRATED;
	else if (l->first == -1 && l->built)
		r->life = L_PREPARED;
	else
		r->life = L_WASLIVE;
}

int
releases_build(const struct event *ev, size_t nev, char *const *names,
    const int *isdir, size_t n, struct release **out, size_t *nout)
{
	struct release *r;
	struct life l;
	size_t i, j;

	r = xrealloc(NULL, (n + 1) * sizeof(*r));
	for (i = 0; i < n; i++) {
		memset(&r[i], 0, sizeof(r[i]));
		snprintf(r[i].name, sizeof(r[i].name), "%s", names[i]);
		r[i].seq = r[i].order = -1;
		r[i].state = R_FOREIGN;
		if (!isdir[i] || !is_sha(names[i]))
			continue;
		memset(&l, 0, sizeof(l));
		l.first = -1;
		for (j = 0; j < nev; j++)
			if (strcmp(ev[j].sha, names[i]) == 0)
				apply_event(&r[i], &l, &ev[j], (long)j);
		set_life(&r[i], &l);
	}
	qsort(r, n, sizeof(*r), release_cmp);
	*out = r;
	*nout = n;
	return 0;
}

long
rev_match(const struct release *r, size_t n, const char *rev)
{
	size_t i, len = strlen(rev);
	long hit = -1;

	if (len < 7 || len > 64)
		return -3;
	for (i = 0; i < len; i++)
		if (!isdigit((unsigned char)rev[i]) &&
		    (rev[i] < 'a' || rev[i] > 'f'))
			return -3;
	for (i = 0; i < n; i++) {
		if (r[i].state != R_COMPLETE && r[i].state != R_FAILED)
			continue;
		if (strncmp(r[i].name, rev, len) != 0)
			continue;
		if (hit != -1)
			return -2;
		hit = (long)i;
	}
	return hit;
}

long
rollback_target(const struct release *r, size_t n, long cur)
{
	long best = -1;
	size_t i;

	if (cur < 0 || r[cur].order < 0)
		return -1;
	for (i = 0; i < n; i++)
		if (r[i].state == R_COMPLETE && r[i].life == L_WASLIVE &&
		    r[i].order < r[cur].order &&
		    (best == -1 || r[i].order > r[best].order))
			best = (long)i;
	return best;
}

size_t
prune_select(struct release *r, size_t n, long keep, long cur, long rb)
{
	size_t i, nrm = 0;
	long kept = 0;

	/* r is sorted newest first, so the first keep live ones stay */
	for (i = 0; i < n; i++) {
		r[i].mark = 0;
		if ((long)i == cur || (long)i == rb || r[i].state == R_FOREIGN) {
			kept += r[i].life == L_WASLIVE;
			continue;
		}
		if (r[i].life == L_PREPARED && (cur < 0 ||
		    r[i].seq > r[cur].seq))
			continue;	/* prepared to go live next */
		if (r[i].life == L_WASLIVE && kept < keep) {
			kept++;
			continue;
		}
		r[i].mark = 1;
		nrm++;
	}
	return nrm;
}
