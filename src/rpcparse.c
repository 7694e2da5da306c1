/*
 * rpcparse.c: reading an XML-RPC methodResponse, the answers supervisord
 * gives (http://xmlrpc.com/spec.md): values of type string, int, i4,
 * i8, boolean, double, nil, array and struct, or a fault.  No I/O and no
 * allocation: the text is decoded in place and each <value> becomes one
 * struct rpcval of the caller's array.  Anything else (a tag out of
 * place, a number that is not one, nesting deeper than 32, more values
 * than the array holds) makes the whole answer malformed: -1, never a
 * guess.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rpcparse.h"

#define MAXDEPTH	32

struct px {
	char		*p;	/* where reading is */
	struct rpcval	*v;
	int		 n, max, depth;
};

static void
skip_ws(struct px *x)
{
	while (*x->p == ' ' || *x->p == '\t' || *x->p == '\r' || *x->p == '\n')
		x->p++;
}

/* at "<name>" or "<name/>" (after blanks): 1 or 2, and past it; else 0 */
static int
open_tag(struct px *x, const char *name)
{
	size_t n = strlen(name);
	char *q;

	skip_ws(x);
	q = x->p;
	if (q[0] != '<' || strncmp(q + 1, name, n) != 0)
		return 0;
	q += 1 + n;
	if (q[0] == '>') {
		x->p = q + 1;
		return 1;
	}
	if (q[0] == '/' && q[1] == '>') {
		x->p = q + 2;
		return 2;
	}
	return 0;
}

/* at "</name>" (after blanks): 0, and past it; else -1 */
static int
close_tag(struct px *x, const char *name)
{
	size_t n = strlen(name);

	skip_ws(x);
	if (x->p[0] != '<' || x->p[1] != '/' || strncmp(x->p + 2, name,
	    n) != 0 || x->p[2 + n] != '>')
		return -1;
	x->p += 3 + n;
	return 0;
}

/* one character reference (&#N; &#xN;) as UTF-8 at d: its length, or 0 */
static size_t
put_utf8(char *d, unsigned long c)
{
	if (c == 0 || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
		return 0;
	if (c < 0x80) {
		d[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		d[0] = (char)(0xC0 | (c >> 6));
		d[1] = (char)(0x80 | (c & 0x3F));
		return 2;
	}
	if (c < 0x10000) {
		d[0] = (char)(0xE0 | (c >> 12));
		d[1] = (char)(0x80 | ((c >> 6) & 0x3F));
		d[2] = (char)(0x80 | (c & 0x3F));
		return 3;
	}
	d[0] = (char)(0xF0 | (c >> 18));
	d[1] = (char)(0x80 | ((c >> 12) & 0x3F));
	d[2] = (char)(0x80 | ((c >> 6) & 0x3F));
	d[3] = (char)(0x80 | (c & 0x3F));
	return 4;
}

/*
 * The text up to the next '<', its entities decoded, written from one
 * byte before it (the '>' that opened it, no longer needed), so that its
 * NUL never lands on the '<' that follows: the text, or NULL when an
 * entity is not one XML knows.
 */
static const char *
text(struct px *x)
{
	static const char *ent[] = { "lt;<", "gt;>", "amp;&", "quot;\"",
	    "apos;'" };
	char *d = x->p - 1, *out = d, *s = x->p, *e;
	size_t i, k;

	while (*s != '\0' && *s != '<') {
		if (*s != '&') {
			*d++ = *s++;
			continue;
		}
		for (i = 0; i < sizeof(ent) / sizeof(ent[0]); i++) {
			k = strlen(ent[i]) - 1;
			if (strncmp(s + 1, ent[i], k) == 0)
				break;
		}
		if (i < sizeof(ent) / sizeof(ent[0])) {
			*d++ = ent[i][k];
			s += 1 + k;
			continue;
		}
		if (s[1] != '#')
			return NULL;
		errno = 0;
		if (s[2] == 'x')
			k = strtoul(s + 3, &e, 16);
		else
			k = strtoul(s + 2, &e, 10);
		if (errno || *e != ';' || e == s + (s[2] == 'x' ? 3 : 2) ||
		    (k = put_utf8(d, k)) == 0)
			return NULL;
		d += k;
		s = e + 1;
	}
	*d = '\0';
	x->p = s;
	return out;
}

static int value(struct px *x, const char *name);

/* k joins the children of at, after *last (-1: k is the first) */
static void
add_kid(struct px *x, int at, int *last, int k)
{
	if (*last == -1)
		x->v[at].kid = k;
	else
		x->v[*last].next = k;
	*last = k;
}

/* after <struct>: its members, and </struct> */
static int
members(struct px *x, int at)
{
	int last = -1, k;
	const char *name;

	while (open_tag(x, "member") == 1) {
		if (open_tag(x, "name") != 1 || (name = text(x)) == NULL ||
		    close_tag(x, "name") == -1 ||
		    (k = value(x, name)) == -1 || close_tag(x, "member") == -1)
			return -1;
		add_kid(x, at, &last, k);
	}
	return close_tag(x, "struct");
}

/* after <array>: <data>, its values, </data></array> */
static int
items(struct px *x, int at)
{
	int last = -1, k, t;

	if ((t = open_tag(x, "data")) == 0)
		return -1;
	if (t == 1) {
		for (;;) {
			skip_ws(x);
			if (strncmp(x->p, "<value", 6) != 0)
				break;
			if ((k = value(x, NULL)) == -1)
				return -1;
			add_kid(x, at, &last, k);
		}
		if (close_tag(x, "data") == -1)
			return -1;
	}
	return close_tag(x, "array");
}

/* after <TYPE> of a scalar: its text, and </TYPE> */
static int
scalar(struct px *x, int at, const char *type, int t)
{
	struct rpcval *v = &x->v[at];
	char *e;

	v->s = t == 2 ? "" : text(x);
	if (v->s == NULL || (t == 1 && close_tag(x, type) == -1))
		return -1;
	if (v->type == RPC_INT || v->type == RPC_BOOL) {
		errno = 0;
		v->i = strtoll(v->s, &e, 10);
		if (errno || e == v->s || *e != '\0' || (v->type == RPC_BOOL &&
		    v->i != 0 && v->i != 1))
			return -1;
	}
	return 0;
}

/* <value>...</value>: the index of its rpcval, or -1 */
static int
value(struct px *x, const char *name)
{
	static const struct { const char *tag; int type; } types[] = {
		{ "string", RPC_STRING }, { "int", RPC_INT }, { "i4", RPC_INT },
		{ "i8", RPC_INT }, { "boolean", RPC_BOOL },
		{ "double", RPC_DOUBLE }, { "base64", RPC_STRING },
		{ "dateTime.iso8601", RPC_STRING }, { "nil", RPC_NIL },
		{ "struct", RPC_STRUCT }, { "array", RPC_ARRAY } };
	int at, t = 0, r = 0;
	size_t i;
	char *save;

	if (x->n >= x->max || x->depth >= MAXDEPTH ||
	    (t = open_tag(x, "value")) == 0)
		return -1;
	at = x->n++;
	memset(&x->v[at], 0, sizeof(x->v[at]));
	x->v[at].name = name;
	x->v[at].kid = x->v[at].next = -1;
	x->v[at].s = "";
	if (t == 2)
		return at;	/* <value/>: the empty string */
	save = x->p;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if ((t = open_tag(x, types[i].tag)) != 0)
			break;
	if (i == sizeof(types) / sizeof(types[0])) {
		x->p = save;	/* <value>text</value>: a string */
		if ((x->v[at].s = text(x)) == NULL)
			return -1;
		return close_tag(x, "value") == -1 ? -1 : at;
	}
	x->v[at].type = types[i].type;
	x->depth++;
	if (types[i].type == RPC_NIL)
		r = t == 1 ? close_tag(x, "nil") : 0;
	else if (types[i].type == RPC_STRUCT)
		r = t == 1 ? members(x, at) : 0;
	else if (types[i].type == RPC_ARRAY)
		r = t == 1 ? items(x, at) : -1;
	else
		r = scalar(x, at, types[i].tag, t);
	x->depth--;
	if (r == -1 || close_tag(x, "value") == -1)
		return -1;
	return at;
}

/*
 * A methodResponse in xml (NUL-terminated; changed in place): 0 when it
 * holds a value, 1 when a fault (its struct, with faultCode and
 * faultString), -1 when it is malformed. The value is v[0]; *nv says how
 * many of the max in v it used.
 */
int
rpc_parse(char *xml, struct rpcval *v, int max, int *nv)
{
	struct px x;
	int fault;

	x.p = xml;
	x.v = v;
	x.n = 0;
	x.max = max;
	x.depth = 0;
	*nv = 0;
	skip_ws(&x);
	if (strncmp(x.p, "<?xml", 5) == 0) {
		if ((x.p = strstr(x.p, "?>")) == NULL)
			return -1;
		x.p += 2;
	}
	if (open_tag(&x, "methodResponse") != 1)
		return -1;
	if ((fault = open_tag(&x, "fault")) == 1) {
		if (value(&x, NULL) == -1 || close_tag(&x, "fault") == -1)
			return -1;
	} else if (open_tag(&x, "params") != 1 || open_tag(&x, "param") != 1 ||
	    value(&x, NULL) == -1 || close_tag(&x, "param") == -1 ||
	    close_tag(&x, "params") == -1)
		return -1;
	if (close_tag(&x, "methodResponse") == -1)
		return -1;
	skip_ws(&x);
	if (*x.p != '\0' || (fault == 1 && v[0].type != RPC_STRUCT))
		return -1;
	*nv = x.n;
	return fault == 1;
}

/* how many values xml can hold at most: the size of the array to pass */
int
rpc_count(const char *xml)
{
	int n = 1;

	while ((xml = strstr(xml, "<value")) != NULL) {
		n++;
		xml += 6;
	}
	return n;
}

/* the member name of the struct v[at]: its index, or -1 */
int
rpc_member(const struct rpcval *v, int at, const char *name)
{
	int k;

	if (at < 0 || v[at].type != RPC_STRUCT)
		return -1;
	for (k = v[at].kid; k != -1; k = v[k].next)
		if (strcmp(v[k].name, name) == 0)
			return k;
	return -1;
}

/* the text of member name of v[at] ("" when there is none) */
const char *
rpc_str(const struct rpcval *v, int at, const char *name)
{
	int k = rpc_member(v, at, name);

	return k == -1 ? "" : v[k].s;
}

/* member name of v[at] as a number (0 when it is none, or not one) */
long long
rpc_int(const struct rpcval *v, int at, const char *name)
{
	int k = rpc_member(v, at, name);

	return k == -1 || (v[k].type != RPC_INT && v[k].type != RPC_BOOL) ?
	    0 : v[k].i;
}
