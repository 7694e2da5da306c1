/*
 * cmd_prune.c: the prune command.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE		/* d_type, so a tree walk needs no stat per entry */


#include "cmd_prune.h"
#include "core.h"
#include "run.h"
#include "root.h"
#include "report.h"
#include "history.h"
#include "lock.h"
#include "releases.h"
#include "prune.h"
#include "converge.h"
#include "cleanup.h"

int
cmd_prune(void)
{
	int st;

	need_current_sane();
	if (nflag) {
		history_load();
		scan_releases();
		do_prune(0);
		return EXIT_OK;
	}
	need_state();
	lock_root("prune");
	audit_cmd = "prune";
	if ((st = cleanup()) != EXIT_OK)
		return st;
	do_prune(0);
	return converge(0, NULL);
}
