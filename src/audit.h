/* audit.h: the audit trail: who changed what, and from where. */
#ifndef DEPLOY_AUDIT_H
#define DEPLOY_AUDIT_H

#include <stddef.h>

/*
 * ROOT/.deploy/audit holds one JSON object per line for every command
 * that changed something or was refused (a signature): appended with
 * O_APPEND in one write and fsynced, under an fcntl lock of the file so
 * that two writers never chain off the same line. Each line starts with
 * "prev", the SHA-256 of the line before it (64 zeros for the first), so
 * a changed or removed line breaks the chain at the next one; audit-head
 * holds the hash of the last line, which covers that one too. "observed"
 * is what the kernel says (uid, its name, the terminal, the host);
 * "claimed" is what the environment says, which whoever runs us can set.
 * Prune never touches the file.
 */
#define AUDIT_ZERO \
	"0000000000000000000000000000000000000000000000000000000000000000"

const char *audit_actor(void);
void audit_event(const char *event, int status, const char *rev,
    const char *prev, const char *detail);
const char *audit_get(const char *line, const char *key, char *buf, size_t len);
#endif
