/* run.h: the options of this run, set once by main from the command line. */
#ifndef DEPLOY_RUN_H
#define DEPLOY_RUN_H

#include <stddef.h>

#define STATE	".deploy"		/* bookkeeping folder under the root */
#define TMPLINK	".current.tmp"
#define PREVLINK	".previous.tmp"
extern int qflag;
extern int vflag;
extern int nflag;
extern int Mflag;
extern int jflag;
extern int verifyflag;
extern long wflag;
extern long kflag;
extern const char *cmdname;
extern int byhand;
extern const char *confopt;
#endif
