/*
 * msg.c: messages: warnx, die and say, and the exit hook the runner installs.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "msg.h"

static int quiet;			/* -q: say() says nothing */
static void (*at_leave)(int);	/* the runner's way out */

/* -q, from the command line (cmdline.c) */
void
msg_quiet(int on)
{
	quiet = on;
}

void
msg_on_leave(void (*fn)(int))
{
	at_leave = fn;
}

/* Every exit of the program goes through here: a low layer that cannot
 * go on calls die() or leave(), and the runner that main installed ends
 * the run (the audit line, notify). */
void
leave(int status)
{
	if (at_leave != NULL)
		at_leave(status);
	fflush(stdout);
	exit(status);
}

static void
vmsg(FILE *f, const char *fmt, va_list ap)
{
	fputs("deploy: ", f);
	vfprintf(f, fmt, ap);
	fputc('\n', f);
	fflush(f);
}

void
warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(stderr, fmt, ap);
	va_end(ap);
}

void
die(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmsg(stderr, fmt, ap);
	va_end(ap);
	leave(status);
}

void
say(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	vmsg(stdout, fmt, ap);
	va_end(ap);
}
