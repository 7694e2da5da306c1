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
 * a changed or removed line breaks the chain at the next one. audit-head
 * covers the last line: written before the line, it holds the hash of
 * the line about to be appended and, on a second line, the hash that one
 * chains off (older versions wrote the first only, after the line). Each
 * line goes to syslog (LOG_AUTHPRIV) too, so that a copy can leave the
 * host: whoever can write the file can rewrite it and every hash. "observed"
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
