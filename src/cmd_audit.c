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

/* Each line must start with the hash of the one before; 0 when all do. */
static int
audit_check(const char *buf, size_t len)
{
	char prev[65] = AUDIT_ZERO, before[65] = "", head[128], *h;
	const char *p = buf, *e = buf + len, *nl;
	size_t n, lineno = 0, hl;

	for (; p < e; p = nl + 1) {
		lineno++;
		if ((nl = memchr(p, '\n', (size_t)(e - p))) == NULL)
			die(EXIT_FAILED, "%s/%s/audit line %zu: not ended by a "
			    "newline (a write cut short?)", root, STATE, lineno);
		/* cppcheck-suppress nullPointerArithmeticRedundantCheck */
		n = (size_t)(nl - p);
		if (n < 77 || strncmp(p, "{\"prev\": \"", 10) != 0 ||
		    p[74] != '"' || p[n - 1] != '}')
			die(EXIT_FAILED, "%s/%s/audit line %zu: not an audit "
			    "record", root, STATE, lineno);
		if (memcmp(p + 10, prev, 64) != 0) {
			if (lineno == 1)
				die(EXIT_FAILED, "%s/%s/audit line 1: does not "
				    "start the trail: a line before it was "
				    "removed, or it was changed", root, STATE);
			die(EXIT_FAILED, "%s/%s/audit line %zu: does not follow "
			    "line %zu: line %zu was changed or removed, or this "
			    "one was changed", root, STATE, lineno, lineno - 1,
			    lineno - 1);
		}
		memcpy(before, prev, sizeof(prev));
		sha256_hex(p, n, prev);
	}
	/* the last line has no next one: audit-head stands for it (or for
	 * the line before, when a crash came between the two writes) */
	h = read_file_at(statefd, "audit-head", 100, &hl, NULL);
	if (h != NULL)
		snprintf(head, sizeof(head), "%.64s", h);
	free(h);
	if (h == NULL && lineno > 0)
		die(EXIT_FAILED, "%s/%s/audit-head: %s", root, STATE,
		    strerror(errno));
	if (h != NULL && strcmp(head, prev) != 0 && strcmp(head, before) != 0)
		die(EXIT_FAILED, "%s/%s/audit line %zu (the last): does not "
		    "match audit-head: it was changed, or lines after it were "
		    "removed", root, STATE, lineno);
	say("%s/%s/audit: %zu lines, each follows the one before", root,
	    STATE, lineno);
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
