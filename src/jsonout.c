/*
 * jsonout.c: --json output: one field at a time.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>

#include "jsonout.h"
#include "files.h"
#include "json.h"

/* a JSON string; what is not valid UTF-8 becomes U+FFFD */
void
json_str(const char *s)
{
	char *q = json_quote(s);

	fputs(q, stdout);
	free(q);
}

/* a string field, or null when s is NULL or empty */
void
json_field(const char *name, const char *s, int comma)
{
	printf("%s\"%s\": ", comma ? ", " : "", name);
	if (s == NULL || *s == '\0')
		fputs("null", stdout);
	else
		json_str(s);
}

void
json_time(const char *name, long long t)
{
	json_field(name, t ? fmttime(t) : NULL, 1);
	if (t)
		printf(", \"%s_epoch\": %lld", name, t);
	else
		printf(", \"%s_epoch\": null", name);
}
