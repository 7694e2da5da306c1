/*
 * report.c: what this run will report: the event, revisions, signer, refusal, for notify and the audit.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE		/* d_type, so a tree walk needs no stat per entry */


#include "report.h"

/* notify only when something was attempted: a build, a migrate, a switch,
 * a restart, a switch back; not after a typo (issue 18) */
int notify_due;

const char *notify_event;	/* set once the lock is ours */

char notify_rev[65];

char notify_prev[65];

int build_failed;	/* fail_build's: the runner makes sure current runs */

/*
 * .deploy/signers/SHA holds one line: the signer git reported when
 * verify passed for SHA. It goes when the release goes, so activate and
 * rollback can show whose code they bring back.
 */
char signer[512];	/* who signed what is deployed, per git */

char refusal[640];	/* why it was refused, for the audit */

/* A command that changes something sets audit_cmd once it holds the
 * lock (and audit_detail, say a pause's reason): leave() then writes its
 * line with the exit status. audit_event() writes one line at once. */
const char *audit_cmd;

const char *audit_detail;

int audit_skip;		/* it found nothing to do */

double audit_t0;		/* when we started */
