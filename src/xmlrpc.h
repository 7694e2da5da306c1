/* xmlrpc.h: calling supervisord over its own XML-RPC interface. */
#ifndef DEPLOY_XMLRPC_H
#define DEPLOY_XMLRPC_H

#include <stddef.h>
#include "rpcparse.h"

#include <limits.h>

#define SV_WHYLEN	(PATH_MAX + 1600)
#define SV_LOOK		10	/* seconds for a call that only reads */

/* supervisord's fault codes that deploy tells apart */
enum { SV_BAD_NAME = 10, SV_NO_FILE = 20, SV_NOT_EXECUTABLE = 21,
	SV_SPAWN_ERROR = 50, SV_ALREADY_STARTED = 60, SV_NOT_RUNNING = 70 };

/* an answer: its value v[0], or its fault */
struct svans {
	char		*buf;
	struct rpcval	*v;
	int		 nv;
	long long	 fault;
	const char	*faultstr;
};

extern char sv_why[SV_WHYLEN];
extern int sv_errno;
const char *sv_where(void);
int sv_call(long timeout, struct svans *a, const char *method,
    const char *fmt, ...);
void sv_free(struct svans *a);
#endif
