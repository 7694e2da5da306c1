/*
 * report.c: what this run will report at its end, to the audit and to
 * notify. The one struct report is written here only; everyone else
 * reads it through report.h's const pointer.
 */
#include "report.h"
#include "core.h"
#include "files.h"

static struct report r;
const struct report *const report = &r;

void
report_begin(void)
{
	r.t0 = now();
}

void
report_names(const char *command, const char *event)
{
	r.command = command;
	r.event = event;
}

void
report_rev(const char *sha)
{
	copy_sha(r.rev, sha);
}

void
report_prev(const char *sha)
{
	copy_sha(r.prev, sha);
}

void
report_detail(const char *detail)
{
	r.detail = detail;
}

void
report_due(void)
{
	r.due = 1;
}

void
report_nothing_done(void)
{
	r.skip = !r.due;
}

void
report_converge(int by_hand)
{
	r.converge = by_hand ? 2 : 1;
}

int
report_take_converge(void)
{
	int c = r.converge;

	r.converge = 0;
	return c;
}
