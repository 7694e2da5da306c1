/*
 * run.c: the options of this run, set once by main from the command line.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE		/* d_type, so a tree walk needs no stat per entry */


#include "run.h"

int qflag;

int vflag;

int nflag;

int Mflag;

int jflag;

int verifyflag;

long wflag = 0;

long kflag = 0;

const char *cmdname = "deploy";

int byhand;	/* activate, rollback, resume: a person asked */

/*
 * status reads deploy.conf only for program and supervisorctl, and never
 * dies of it: it must answer on a root whose config is broken. A config
 * it would not trust for a deploy is not used to run supervisorctl.
 */
const char *confopt;	/* -c FILE */
