/* report.h: what this run will report: the event, revisions, signer, refusal, for notify and the audit. */
#ifndef DEPLOY_REPORT_H
#define DEPLOY_REPORT_H

#include <stddef.h>

extern int notify_due;
extern const char *notify_event;
extern char notify_rev[65];
extern char notify_prev[65];
extern int build_failed;
extern char signer[512];
extern char refusal[640];
extern const char *audit_cmd;
extern const char *audit_detail;
extern int audit_skip;
extern double audit_t0;
#endif
