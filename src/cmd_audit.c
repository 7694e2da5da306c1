/*
 * cmd_audit.c: the audit command: the trail shown and checked.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_audit.h"
#include "audit.h"
#include "cmdline.h"
#include "core.h"
#include "files.h"
#include "msg.h"
#include "readroot.h"
#include "root.h"
#include "sha256.h"

/* One line of the text view: when, what, status, revision, who. */
static void
audit_show(const char *line)
{
	static const char *extra[][2] = { { "actor", "by " },
	    { "sudo_user", "sudo from " }, { "ssh_client", "ssh " },
	    { "github_run_id", "github run " }, { "ci_job_url", "gitlab " },
	    { "circle_build_url", "circleci " }, { "tty", "on " },
	    { "signer", "signed by " }, { "refused", "REFUSED: " },
	    { "detail", "" } };
	char v[5][80], x[1100], port[16];
	size_t i;

	printf("%s  %-8s  %3s  %-12.12s  %s(%s)",
	    *audit_get(line, "time", v[0], sizeof(v[0])) ? v[0] : "?",
	    audit_get(line, "event", v[1], sizeof(v[1])),
	    audit_get(line, "status", v[2], sizeof(v[2])),
	    *audit_get(line, "revision", v[3], sizeof(v[3])) ? v[3] : "-",
	    audit_get(line, "user", x, sizeof(x)),
	    audit_get(line, "uid", v[4], sizeof(v[4])));
	for (i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		if (*audit_get(line, extra[i][0], x, sizeof(x)) == '\0' ||
		    (i == 0 && strcmp(x, audit_get(line, "user", v[0],
		    sizeof(v[0]))) == 0))
			continue;
		printf("  %s%s", extra[i][1], printable(x));
		if (i == 2 && *audit_get(line, "ssh_port", port, sizeof(port)))
			printf(":%s", printable(port));
	}
	putchar('\n');
}

/*
 * A line that is not a whole record: torn when the next line chains off
 * it (the writer closes a line a full disk cut short and goes on), said
 * as a warning; anything else ends the check.
 */
static void
audit_torn(const char *p, size_t n, const char *next, const char *e,
    size_t lineno)
{
	char h[65];
	const char *nl;

	sha256_hex(p, n, h);
	if (next >= e || (nl = memchr(next, '\n', (size_t)(e - next))) == NULL ||
	    nl - next < 77 || strncmp(next, "{\"prev\": \"", 10) != 0 ||
	    memcmp(next + 10, h, 64) != 0)
		die(EXIT_FAILED, "%s/%s/audit line %zu: not an audit "
		    "record", root, STATE, lineno);
	warnx("%s/%s/audit line %zu: torn (a write cut short, a full disk?); "
	    "line %zu follows it", root, STATE, lineno, lineno + 1);
}

/* The last line (hash LAST, the one before it BEFORE) against audit-head. */
static void
audit_head(const char *last, const char *before, size_t lineno)
{
	char *h;
	size_t hl;
	int two;

	if ((h = read_file_at(statefd, "audit-head", 200, &hl, NULL)) == NULL) {
		if (lineno > 0 || errno != ENOENT)
			die(EXIT_FAILED, "%s/%s/audit-head: %s", root, STATE,
			    strerror(errno));
		return;
	}
	/* "HEAD\nPREV\n" since the head is written first; "HEAD\n" before */
	two = hl >= 130 && h[64] == '\n' && h[129] == '\n';
	if (hl >= 64 && memcmp(h, last, 64) == 0) {
		free(h);
		return;
	}
	if (two && memcmp(h + 65, last, 64) == 0)
		die(EXIT_FAILED, "%s/%s/audit-head is one line ahead of the "
		    "trail: the last append did not finish (a crash or a full "
		    "disk between the head and the line), or the last line was "
		    "removed", root, STATE);
	if (!two && hl >= 64 && lineno > 1 && memcmp(h, before, 64) == 0)
		die(EXIT_FAILED, "%s/%s/audit line %zu (the last): audit-head, "
		    "as an older deploy wrote it, stands for the line before: "
		    "its append did not finish, or this line was appended by "
		    "hand", root, STATE, lineno);
	die(EXIT_FAILED, "%s/%s/audit line %zu (the last): does not match "
	    "audit-head: it was changed or appended by hand, or lines after it "
	    "were removed", root, STATE, lineno);
}

/* Each line must start with the hash of the one before; 0 when all do. */
static int
audit_check(const char *buf, size_t len)
{
	char prev[65] = AUDIT_ZERO, before[65] = "";
	const char *p = buf, *e = buf + len, *nl;
	size_t n, lineno = 0, torn = 0;

	for (; p < e; p = nl + 1) {
		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(e - p))) == NULL)
			die(EXIT_FAILED, "%s/%s/audit line %zu: not ended by a "
			    "newline (a write cut short?)", root, STATE, lineno);
		/* cppcheck-suppress nullPointerArithmeticRedundantCheck */
		n = (size_t)(nl - p);
		if (strncmp(p, "{\"prev\": \"", n < 10 ? n : 10) != 0)
			die(EXIT_FAILED, "%s/%s/audit line %zu: not an audit "
			    "record", root, STATE, lineno);
		if (n > 10 && memcmp(p + 10, prev, n < 74 ? n - 10 : 64) != 0) {
			if (lineno == 1)
				die(EXIT_FAILED, "%s/%s/audit line 1: does not "
				    "start the trail: a line before it was "
				    "removed, or it was changed", root, STATE);
			die(EXIT_FAILED, "%s/%s/audit line %zu: does not follow "
			    "line %zu: line %zu was changed or removed, or this "
			    "one was changed", root, STATE, lineno, lineno - 1,
			    lineno - 1);
		}
		if (n < 77 || p[74] != '"' || p[n - 1] != '}') {
			audit_torn(p, n, nl + 1, e, lineno);
			torn++;
		}
		memcpy(before, prev, sizeof(prev));
		sha256_hex(p, n, prev);
	}
	audit_head(prev, before, lineno);
	say("%s/%s/audit: %zu lines, each follows the one before%s", root,
	    STATE, lineno, torn ? " (torn ones said above)" : "");
	return EXIT_OK;
}

/* audit [--json] [-n N] | audit --verify */
int
cmd_audit(int argc, char **argv)
{
	const char *arg = argc == 2 ? argv[1] : NULL;
	const char *p, *nl, *e, **start = NULL;
	long want = LONG_MAX;
	size_t len = 0, nstart = 0, i;
	char *buf, *line = NULL;

	if (arg != NULL && (!options->dry_run ||
	    parse_long(arg, 1, LONG_MAX, &want) == -1))
		die(EXIT_USAGE, "usage: deploy audit [--json] [-n N] | deploy "
		    "audit --verify");
	if (options->dry_run && arg == NULL)
		die(EXIT_USAGE, "audit -n N: give how many lines");
	need_deploy_root();
	if (statefd == -1 || (buf = read_file_at(statefd, "audit", (size_t)1 <<
	    30, &len, NULL)) == NULL) {
		if (statefd != -1 && errno != ENOENT)
			die(EXIT_FAILED, "%s/%s/audit: %s", root, STATE,
			    strerror(errno));
		buf = xstrdup("");
	}
	if (options->verify)
		return audit_check(buf, len);
	e = buf + len;
	for (p = buf; p < e; p = nl + 1) {
		start = xrealloc(start, (nstart + 1) * sizeof(*start));
		start[nstart++] = p;
		if ((nl = memchr(p, '\n', (size_t)(e - p))) == NULL)
			break;
	}
	for (i = nstart > (size_t)want ? nstart - (size_t)want : 0;
	    i < nstart; i++) {
		p = start[i];
		if ((nl = memchr(p, '\n', (size_t)(e - p))) == NULL)
			nl = e;
		line = xrealloc(line, (size_t)(nl - p) + 1);
		memcpy(line, p, (size_t)(nl - p));
		line[nl - p] = '\0';
		if (options->json)
			printf("%s\n", line);
		else
			audit_show(line);
	}
	free(start);
	free(line);
	free(buf);
	return EXIT_OK;
}
