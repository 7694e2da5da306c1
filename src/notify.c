/*
 * notify.c: notify: the command told after a deploy, activate or rollback.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <stdlib.h>

#include "notify.h"
#include "audit.h"
#include "child.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "msg.h"
#include "report.h"
#include "root.h"
#include "sig.h"

void
run_notify(int status)
{
	struct runopts o = opts(root, ENV_APP, NULL, NULL);
	char *env[8], **argv;
	struct result r;
	size_t i;

	env[0] = fmtpath("DEPLOY_EVENT=%s", report->event);
	env[1] = fmtpath("DEPLOY_STATUS=%d", status);
	env[2] = fmtpath("DEPLOY_REVISION=%s", report->rev);
	env[3] = fmtpath("DEPLOY_PREVIOUS=%s", report->prev);
	env[4] = report->rev[0] ? fmtpath("DEPLOY_LOG=%s/%s/logs/%s.log", root,
	    STATE, report->rev) : xstrdup("DEPLOY_LOG=");
	env[5] = fmtpath("DEPLOY_ACTOR=%s", audit_actor());
	env[6] = fmtpath("DEPLOY_DETAIL=%s", report->detail ? report->detail :
	    "");
	env[7] = NULL;
	o.extra = env;
	if (o.timeout == 0 || o.timeout > 60)
		o.timeout = 60;
	sig_late(1);	/* a signal that ends the run must not end this too */
	argv = words(cfg.notify);
	if (run_step("notify", argv, &o, &r) == -1)
		warnx("notify failed (%s); the exit status stays %d",
		    why_failed(&r, argv[0], o.timeout), status);
	free_words(argv);
	for (i = 0; i < 7; i++)
		free(env[i]);
}
