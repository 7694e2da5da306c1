/* rpcparse.h: reading an XML-RPC methodResponse (supervisord's answers). */
#ifndef DEPLOY_RPCPARSE_H
#define DEPLOY_RPCPARSE_H

enum rpctype { RPC_STRING, RPC_INT, RPC_BOOL, RPC_DOUBLE, RPC_NIL,
	RPC_ARRAY, RPC_STRUCT };

/* one value; a struct's members and an array's items are its kids, in
 * order, linked by next (indexes into the same array; -1 ends) */
struct rpcval {
	int		 type;
	const char	*name;	/* a struct member's name, else NULL */
	const char	*s;	/* the text of a string, int, double... */
	long long	 i;	/* an int, i4, i8 or boolean */
	int		 kid;
	int		 next;
};

int rpc_parse(char *xml, struct rpcval *v, int max, int *nv);
int rpc_count(const char *xml);
int rpc_member(const struct rpcval *v, int at, const char *name);
const char *rpc_str(const struct rpcval *v, int at, const char *name);
long long rpc_int(const struct rpcval *v, int at, const char *name);
#endif
