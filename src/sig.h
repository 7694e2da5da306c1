/* sig.h: signals: what a signal means at each point of a run. */
#ifndef DEPLOY_SIG_H
#define DEPLOY_SIG_H

#include <stddef.h>
#include <signal.h>
#include "core.h"

/* a failure is "a person must look" only once current has moved */
#define FAIL_STATUS	(late ? EXIT_STUCK : EXIT_FAILED)

extern volatile sig_atomic_t gotsig;
extern int late;
extern int reader_gone;
void signals(void);
void sig_watch(int err);
void sig_late(int on);
#endif
