/* verify.h: verify: the signature, checked by git against our keys only. */
#ifndef DEPLOY_VERIFY_H
#define DEPLOY_VERIFY_H

#include <stddef.h>

void load_keys(void);
int check_signature(const char *ref, const char *sha);
void step_verify(const char *ref, const char *sha);
/* rollback, activate, migrate: sha verified afresh; 0 good, -1 refused */
int verify_release(const char *sha);
extern char signer[512];
extern char refusal[640];
#endif
