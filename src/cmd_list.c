/*
 * cmd_list.c: the list command.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_list.h"
#include "child.h"
#include "cmdline.h"
#include "core.h"
#include "files.h"
#include "history.h"
#include "json.h"
#include "jsonout.h"
#include "order.h"
#include "readroot.h"
#include "releases.h"
#include "root.h"

#define SUBJ	61	/* a subject in list, cut to fit */

/* Each release's commit subject, from the mirror, in one git process. */
static char (*release_subjects(void))[SUBJ]
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char (*subj)[SUBJ] = xrealloc(NULL, (nrel + 1) * SUBJ), **argv;
	char *out, *line, *save;
	size_t i, n = 0;
	struct stat st;
	struct result r;
	long k;

	memset(subj, 0, (nrel + 1) * SUBJ);
	if (fstatat(rootfd, "repo", &st, 0) == -1)
		return subj;
	argv = words_plus("git", gitdir(), "log", "--no-walk=unsorted",
	    "--ignore-missing", "--format=%H %s", "--end-of-options",
	    (char *)NULL);
	for (n = 0; argv[n]; n++)
		;
	for (i = 0; i < nrel; i++)
		if (rel[i].state != R_FOREIGN) {
			argv = xrealloc(argv, (n + 2) * sizeof(*argv));
			argv[n++] = xstrdup(rel[i].name);
			argv[n] = NULL;
		}
	out = xrealloc(NULL, 1 << 20);
	out[0] = '\0';
	o.out = out;
	o.outlen = 1 << 20;
	o.timeout = 60;
	if (argv[n - 1][0] != '-' && run(argv, &o, &r) == 0)
		for (line = strtok_r(out, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save)) {
			char *sp = strchr(line, ' ');

			if (sp == NULL)
				continue;
			*sp = '\0';
			if ((k = release_find(rel, nrel, line)) >= 0)
				cut_utf8(subj[k], sp + 1, SUBJ);
		}
	free(out);
	free_words(argv);
	return subj;
}

int
cmd_list(int argc, char **argv)
{
	char why[PATH_MAX * 2], row[PATH_MAX + 1400], (*subj)[SUBJ], who[1100];
	const char *mark;
	long cur, rb;
	size_t i;
	int n;

	(void)argc;
	(void)argv;
	need_deploy_root();
	if (statefd != -1)
		history_load();
	read_current(why, sizeof(why));
	scan_releases();
	cur = cur_index();
	rb = rollback_target(rel, nrel, cur);
	subj = release_subjects();
	if (options->json)
		printf("{\"root\": ");
	if (options->json) {
		json_str(root);
		printf(", \"releases\": [");
	}
	for (i = 0; i < nrel; i++) {
		mark = (long)i == cur ? "current" : (long)i == rb ? "rollback" :
		    "-";
		if (options->json) {
			printf("%s\n  {", i ? "," : "");
			json_field("sha", rel[i].name, 0);
			json_field("state", state_name(rel[i].state), 1);
			json_time("completed", rel[i].completed);
			json_time("activated", rel[i].activated);
			json_field("life", rel[i].life == L_NONE ? NULL :
			    life_name(rel[i].life, (long)i == cur), 1);
			json_time("live", rel[i].life == L_WASLIVE ||
			    (long)i == cur ? rel[i].lived : 0);
			printf(", \"current\": %s, \"rollback\": %s",
			    (long)i == cur ? "true" : "false",
			    (long)i == rb ? "true" : "false");
			json_field("subject", subj[i], 1);
			json_field("signer", signer_of(rel[i].name, who,
			    sizeof(who)), 1);
			putchar('}');
			continue;
		}
		/* padded columns, but no trailing spaces */
		n = snprintf(row, sizeof(row),
		    "%-40s  %-10s  %-19s  %-8s  %-10s  %s%s%s",
		    rel[i].name, state_name(rel[i].state),
		    fmttime(rel[i].completed), mark, rel[i].state == R_FOREIGN ?
		    "" : life_name(rel[i].life, (long)i == cur),
		    printable(subj[i]),
		    *signer_of(rel[i].name, who, sizeof(who)) ? "  signed by " : "",
		    who);
		if (n < 0)
			continue;
		if ((size_t)n >= sizeof(row))
			n = (int)sizeof(row) - 1;
		while (n > 0 && row[n - 1] == ' ')
			n--;
		printf("%.*s\n", n, row);
	}
	if (options->json)
		printf("\n]}\n");
	free(subj);
	return EXIT_OK;
}
