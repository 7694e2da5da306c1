/*
 * xmlrpc.c: calling supervisord over its own XML-RPC interface, as
 * supervisorctl does, without starting it (a Python start-up, about 0.3 s
 * of CPU each).
 *
 * Where: the supervisor key of deploy.conf (unix:///PATH or
 * http://HOST:PORT), else what supervisorctl itself would use: the -s,
 * -u and -p of the supervisorctl key, and the [supervisorctl] section
 * (serverurl, username, password) of the file its -c names, else of the
 * first of supervisorctl's own search list.  Relative paths of that list
 * are read from "/", where deploy used to run supervisorctl: a file the
 * app commits must not choose the server.
 *
 * Every call is one HTTP/1.0 POST on a new connection, with a deadline
 * for all of it (connect, send, the whole answer), so that a supervisord
 * that accepts and never answers cannot hang a run. Whatever goes wrong
 * is one line in sv_why; supervisord's own faults are answers.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/socket.h>
#include <sys/un.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "xmlrpc.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "output.h"

#define ANSWER_MAX	(16 << 20)

char sv_why[SV_WHYLEN];
int sv_errno;			/* the errno of a failed connect, else 0 */

static struct {
	int	 found;		/* 1 found, -1 could not be */
	int	 checked;	/* getAPIVersion said 3.x */
	char	 url[400];
	char	 path[PATH_MAX];	/* unix:// */
	char	 host[256], port[16];	/* http:// */
	char	 auth[700];	/* base64 of USER:PASS, or "" */
	char	 user[256], pass[256];
	char	 why[PATH_MAX + 200];
} sv;

static void
base64(const char *in, char *out, size_t ol)
{
	static const char b[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in), i, o = 0;

	for (i = 0; i < n && o + 5 < ol; i += 3) {
		unsigned long v = (unsigned long)(unsigned char)in[i] << 16;

		if (i + 1 < n)
			v |= (unsigned long)(unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		out[o++] = b[v >> 18];
		out[o++] = b[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < n ? b[v & 63] : '=';
	}
	out[o] = '\0';
}

/* url into sv: 0, or -1 and sv.why */
static int
set_url(const char *url, const char *from)
{
	const char *h, *c;

	if (strlen(url) >= sizeof(sv.url)) {
		snprintf(sv.why, sizeof(sv.why), "%s: '%.60s...' is too long "
		    "for an address", from, printable(url));
		return -1;
	}
	memcpy(sv.url, url, strlen(url) + 1);
	if (strncmp(url, "unix://", 7) == 0 && url[7] != '\0') {
		memcpy(sv.path, url + 7, strlen(url + 7) + 1);
		return 0;
	}
	if (strncmp(url, "http://", 7) == 0) {
		h = url + 7;
		c = strrchr(h, ':');
		if (c != NULL && c > h && strspn(c + 1, "0123456789") ==
		    strlen(c + 1) && c[1] != '\0' && (size_t)(c - h) <
		    sizeof(sv.host) && strlen(c + 1) < sizeof(sv.port)) {
			memcpy(sv.host, h, (size_t)(c - h));
			sv.host[c - h] = '\0';
			memcpy(sv.port, c + 1, strlen(c + 1) + 1);
		} else if (strchr(h, ':') == NULL && strchr(h, '/') == NULL &&
		    *h != '\0' && strlen(h) < sizeof(sv.host)) {
			memcpy(sv.host, h, strlen(h) + 1);
			memcpy(sv.port, "80", 3);
		} else
			h = NULL;
		if (h != NULL)
			return 0;
	}
	snprintf(sv.why, sizeof(sv.why), "%s: '%s' is neither unix:///PATH "
	    "nor http://HOST:PORT", from, printable(url));
	return -1;
}

/* a value of the ini file, its %(here)s, %(ENV_X)s and %% expanded */
static void
expand(const char *v, const char *here, char *out, size_t ol)
{
	size_t o = 0;
	const char *e, *x;
	char name[128];

	while (*v != '\0' && o + 1 < ol) {
		if (v[0] == '%' && v[1] == '%') {
			out[o++] = '%';
			v += 2;
			continue;
		}
		if (v[0] != '%' || v[1] != '(' || (e = strstr(v, ")s")) == NULL ||
		    (size_t)(e - v - 2) >= sizeof(name)) {
			out[o++] = *v++;
			continue;
		}
		snprintf(name, sizeof(name), "%.*s", (int)(e - v - 2), v + 2);
		x = strcmp(name, "here") == 0 ? here : strncmp(name, "ENV_",
		    4) == 0 ? getenv(name + 4) : NULL;
		o += (size_t)snprintf(out + o, ol - o, "%s", x ? x : "");
		if (o >= ol)
			o = ol - 1;
		v = e + 2;
	}
	out[o] = '\0';
}

/* one "key = value" line of [supervisorctl], trimmed; inline ; # comments
 * (after a blank) dropped, as Python's ConfigParser does for supervisor */
static void
ini_line(char *line, const char *here, char *url, size_t ul)
{
	char *eq = line + strcspn(line, "=:"), *v, *k, *c;
	char val[PATH_MAX];

	if (*eq == '\0')
		return;
	*eq = '\0';
	for (k = eq - 1; k >= line && (*k == ' ' || *k == '\t'); k--)
		*k = '\0';
	for (v = eq + 1; *v == ' ' || *v == '\t'; v++)
		;
	for (c = v; *c != '\0'; c++)
		if ((*c == ';' || *c == '#') && c > v && (c[-1] == ' ' ||
		    c[-1] == '\t')) {
			*c = '\0';
			break;
		}
	for (c = v + strlen(v); c > v && (c[-1] == ' ' || c[-1] == '\t' ||
	    c[-1] == '\r'); c--)
		c[-1] = '\0';
	expand(v, here, val, sizeof(val));
	for (k = line; *k; k++)
		if (*k >= 'A' && *k <= 'Z')
			*k = (char)(*k - 'A' + 'a');
	if (strcmp(line, "serverurl") == 0)
		snprintf(url, ul, "%s", val);
	else if (strcmp(line, "username") == 0)
		snprintf(sv.user, sizeof(sv.user), "%.255s", val);
	else if (strcmp(line, "password") == 0)
		snprintf(sv.pass, sizeof(sv.pass), "%.255s", val);
}

/* the [supervisorctl] section of file: url (when it gives one), user,
 * password; 0, or -1 and sv.why */
static int
read_ini(const char *file, char *url, size_t ul)
{
	char *buf, *line, *save, here[PATH_MAX], *s;
	size_t len;
	int in = 0, seen = 0;

	if ((buf = read_file_at(AT_FDCWD, file, 1 << 20, &len, NULL)) == NULL) {
		snprintf(sv.why, sizeof(sv.why), "cannot read %s (supervisord's "
		    "config, for [supervisorctl] serverurl): %s", file,
		    strerror(errno));
		return -1;
	}
	if (realpath(file, here) == NULL)
		snprintf(here, sizeof(here), "%s", file);
	if ((s = strrchr(here, '/')) != NULL)
		*(s == here ? s + 1 : s) = '\0';
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '[') {
			in = strncmp(line, "[supervisorctl]", 15) == 0;
			seen |= in;
		} else if (in && line[0] != ';' && line[0] != '#' &&
		    line[0] != ' ' && line[0] != '\t')
			ini_line(line, here, url, ul);
	}
	free(buf);
	if (!seen) {
		snprintf(sv.why, sizeof(sv.why), "%s has no [supervisorctl] "
		    "section: set supervisor = unix:///PATH (its socket) in "
		    "deploy.conf", file);
		return -1;
	}
	return 0;
}

/* the config file supervisorctl would read without -c: where, or NULL */
static const char *
default_conf(const char *exe, char *buf, size_t bl)
{
	static const char *rest[] = { "/supervisord.conf",
	    "/etc/supervisord.conf", "/etc/supervisord.conf",
	    "/etc/supervisor/supervisord.conf" };
	char found[PATH_MAX], *s;
	size_t i;

	if (strchr(exe, '/') != NULL)
		snprintf(found, sizeof(found), "%s", exe);
	else if (path_lookup(exe, found, sizeof(found)) == -1)
		found[0] = '\0';
	if (found[0] && (s = strrchr(found, '/')) != NULL) {
		*s = '\0';	/* here = dirname(dirname(argv[0])) */
		if ((s = strrchr(found, '/')) != NULL)
			*s = '\0';
		else
			snprintf(found, sizeof(found), ".");
		snprintf(buf, bl, "%.4000s/etc/supervisord.conf", found);
		if (access(buf, R_OK) == 0)
			return buf;
		snprintf(buf, bl, "%.4000s/supervisord.conf", found);
		if (access(buf, R_OK) == 0)
			return buf;
	}
	for (i = 0; i < sizeof(rest) / sizeof(rest[0]); i++)
		if (access(rest[i], R_OK) == 0)
			return snprintf(buf, bl, "%s", rest[i]), buf;
	return NULL;
}

/* the -c -s -u -p of the supervisorctl key (short, joined, or long) */
static const char *
opt(char **w, size_t *i, const char *s, const char *l)
{
	size_t n = strlen(l);

	if (strcmp(w[*i], s) == 0 || strcmp(w[*i], l) == 0)
		return w[*i + 1] ? w[++*i] : "";
	if (strncmp(w[*i], s, 2) == 0 && w[*i][2] != '-')
		return w[*i] + 2;
	if (strncmp(w[*i], l, n) == 0 && w[*i][n] == '=')
		return w[*i] + n + 1;
	return NULL;
}

static int
find_server(void)
{
	char **w, url[PATH_MAX + 16] = "", conf[PATH_MAX] = "", buf[PATH_MAX];
	char err[ERRLEN];
	const char *c = NULL, *s = NULL, *u = NULL, *p = NULL, *x;
	size_t i;
	int r = 0;

	w = split_words(cfg.supervisorctl ? cfg.supervisorctl : "supervisorctl",
	    err, sizeof(err));
	if (w == NULL || w[0] == NULL) {
		if (w != NULL)
			snprintf(err, sizeof(err), "empty");
		free_words(w);
		if (cfg.supervisor != NULL)	/* an address, no credentials */
			return set_url(cfg.supervisor, "deploy.conf: supervisor");
		snprintf(sv.why, sizeof(sv.why), "deploy.conf: supervisorctl: "
		    "%s", err);
		return -1;
	}
	for (i = 1; w[i] != NULL; i++) {
		if ((x = opt(w, &i, "-c", "--configuration")) != NULL)
			c = x;
		else if ((x = opt(w, &i, "-s", "--serverurl")) != NULL)
			s = x;
		else if ((x = opt(w, &i, "-u", "--username")) != NULL)
			u = x;
		else if ((x = opt(w, &i, "-p", "--password")) != NULL)
			p = x;
	}
	if (c != NULL)	/* supervisorctl ran in "/": a relative path is from there */
		snprintf(conf, sizeof(conf), "%s%s", c[0] == '/' ? "" : "/", c);
	else if ((x = default_conf(w[0], buf, sizeof(buf))) != NULL)
		snprintf(conf, sizeof(conf), "%s", x);
	if (conf[0] != '\0')
		r = read_ini(conf, url, sizeof(url));
	else if (s == NULL && cfg.supervisor == NULL) {
		snprintf(sv.why, sizeof(sv.why), "no supervisord.conf where "
		    "supervisorctl looks for one: name it in deploy.conf "
		    "(supervisorctl = supervisorctl -c FILE), or set supervisor "
		    "= unix:///PATH");
		r = -1;
	}
	if (s != NULL)
		snprintf(url, sizeof(url), "%s", s);
	if (u != NULL)
		snprintf(sv.user, sizeof(sv.user), "%s", u);
	if (p != NULL)
		snprintf(sv.pass, sizeof(sv.pass), "%s", p);
	free_words(w);
	/* the supervisor key gives the address; username and password still
	 * come from supervisorctl's -u, -p and file, when it has them */
	if (cfg.supervisor != NULL)
		return set_url(cfg.supervisor, "deploy.conf: supervisor");
	if (r == 0)
		r = set_url(url[0] ? url : "http://localhost:9001", conf[0] ?
		    conf : "supervisorctl -s");
	return r;
}

/* where supervisord is, for messages: its URL, or why it is not known */
const char *
sv_where(void)
{
	if (sv.found == 0) {
		sv.found = find_server() == 0 ? 1 : -1;
		if (sv.found == 1 && sv.user[0]) {
			char up[520];

			snprintf(up, sizeof(up), "%s:%s", sv.user, sv.pass);
			base64(up, sv.auth, sizeof(sv.auth));
		}
	}
	return sv.found == 1 ? sv.url : sv.why;
}

/* what is left of the deadline, in ms for poll(); 0 when it has passed */
static int
left_ms(double end)
{
	double l = end - now();

	return l <= 0 ? 0 : (int)(l * 1000) + 1;
}

/* a socket to supervisord, connected before end: its fd, or -1 */
static int
connect_sv(double end)
{
	struct addrinfo hints, *ai = NULL, *a;
	struct sockaddr_un un;
	struct pollfd pfd;
	int fd = -1, e = 0, r;
	socklen_t el = sizeof(e);

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if (sv.path[0]) {
		memset(&un, 0, sizeof(un));
		un.sun_family = AF_UNIX;
		if (strlen(sv.path) >= sizeof(un.sun_path)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(un.sun_path, sv.path, strlen(sv.path));
	} else if ((r = getaddrinfo(sv.host, sv.port, &hints, &ai)) != 0) {
		snprintf(sv_why, sizeof(sv_why), "cannot reach supervisord at "
		    "%s: %s", sv.url, gai_strerror(r));
		errno = 0;
		return -1;
	}
	for (a = ai; sv.path[0] || a != NULL; a = a->ai_next) {
		fd = socket(sv.path[0] ? AF_UNIX : a->ai_family, SOCK_STREAM |
		    SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd == -1)
			break;
		r = sv.path[0] ? connect(fd, (struct sockaddr *)&un,
		    sizeof(un)) : connect(fd, a->ai_addr, a->ai_addrlen);
		if (r == -1 && (errno == EINPROGRESS || errno == EAGAIN)) {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			while ((r = poll(&pfd, 1, left_ms(end))) == -1 &&
			    errno == EINTR)
				;
			if (r == 0)
				errno = ETIMEDOUT;
			else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e,
			    &el) == 0)
				errno = e;
			r = r > 0 && e == 0 ? 0 : -1;
		}
		if (r == 0)
			break;
		e = errno;
		close(fd);
		fd = -1;
		errno = e;
		if (sv.path[0])
			break;
	}
	if (ai != NULL)
		freeaddrinfo(ai);
	return fd;
}

/* the call as XML: method and its params (s string, i int, b boolean) */
static char *
request(const char *method, const char *fmt, va_list ap)
{
	size_t cap = 512, n;
	char *b = xrealloc(NULL, cap);
	const char *s, *o;

	n = (size_t)snprintf(b, cap, "<?xml version='1.0'?>\n<methodCall>\n"
	    "<methodName>%s</methodName>\n<params>\n", method);
	for (; *fmt; fmt++) {
		if (*fmt != 's') {
			int k = va_arg(ap, int);

			if (n + 128 > cap)
				b = xrealloc(b, cap = n + 256);
			n += (size_t)snprintf(b + n, cap - n, "<param><value><%s>"
			    "%d</%s></value></param>\n", *fmt == 'b' ? "boolean" :
			    "int", k, *fmt == 'b' ? "boolean" : "int");
			continue;
		}
		if ((s = va_arg(ap, const char *)) == NULL)
			s = "";
		if (n + 6 * strlen(s) + 128 > cap)
			b = xrealloc(b, cap = n + 6 * strlen(s) + 256);
		n += (size_t)snprintf(b + n, cap - n, "<param><value><string>");
		for (; *s; s++) {
			o = *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : *s == '&' ?
			    "&amp;" : NULL;
			if (o != NULL)
				n += (size_t)snprintf(b + n, cap - n, "%s", o);
			else
				b[n++] = *s;
		}
		n += (size_t)snprintf(b + n, cap - n, "</string></value>"
		    "</param>\n");
	}
	snprintf(b + n, cap - n, "</params>\n</methodCall>\n");
	return b;
}

/* sends all of p before end: 0, or -1 */
static int
send_all(int fd, const char *p, size_t n, double end)
{
	struct pollfd pfd = { fd, POLLOUT, 0 };
	ssize_t k;

	while (n > 0) {
		if ((k = send(fd, p, n, MSG_NOSIGNAL)) > 0) {
			p += k;
			n -= (size_t)k;
		} else if (k == -1 && errno != EAGAIN && errno != EINTR)
			return -1;
		else if (poll(&pfd, 1, left_ms(end)) == 0) {
			errno = ETIMEDOUT;
			return -1;
		}
	}
	return 0;
}

/* the whole answer, read until supervisord closes, before end: a
 * NUL-terminated buffer and *len, or NULL (errno ETIMEDOUT, EFBIG...) */
static char *
recv_all(int fd, size_t *len, double end)
{
	struct pollfd pfd = { fd, POLLIN, 0 };
	size_t cap = 8192, n = 0;
	char *b = xrealloc(NULL, cap);
	ssize_t k;
	int r;

	for (;;) {
		if (n + 1 >= cap) {
			if (cap >= ANSWER_MAX) {
				free(b);
				errno = EFBIG;
				return NULL;
			}
			b = xrealloc(b, cap *= 2);
		}
		if ((k = recv(fd, b + n, cap - n - 1, 0)) > 0) {
			n += (size_t)k;
			continue;
		}
		if (k == 0)
			break;
		if (errno != EAGAIN && errno != EINTR)
			break;	/* ECONNRESET: what came is checked below */
		while ((r = poll(&pfd, 1, left_ms(end))) == -1 && errno == EINTR)
			;
		if (r == 0) {
			free(b);
			errno = ETIMEDOUT;
			return NULL;
		}
	}
	b[n] = '\0';
	*len = n;
	return b;
}

/* sends head and req and reads the answer, before end: the answer and
 * *len, or NULL and errno.  supervisord answers a refused login (401)
 * and closes before it has read the whole request: when a send fails so
 * (EPIPE, ECONNRESET), the answer it gave is read all the same */
static char *
exchange(int fd, const char *head, const char *req, size_t *len, double end)
{
	char *b;
	int e;

	if (send_all(fd, head, strlen(head), end) == 0 &&
	    send_all(fd, req, strlen(req), end) == 0)
		return recv_all(fd, len, end);
	if ((e = errno) != EPIPE && e != ECONNRESET)
		return NULL;
	if ((b = recv_all(fd, len, end)) != NULL && *len > 0)
		return b;
	free(b);
	errno = e;
	return NULL;
}

/* the answer's HTTP status and body: the body, or NULL and sv_why */
static char *
http_body(char *ans, size_t len, const char *method)
{
	char *body = strstr(ans, "\r\n\r\n"), *cl;
	int code = 0;

	if (strncmp(ans, "HTTP/1.", 7) != 0 || sscanf(ans + 8, " %d",
	    &code) != 1 || body == NULL) {
		snprintf(sv_why, sizeof(sv_why), "supervisord at %s cut its "
		    "answer to %s short (%zu bytes, %s)", sv.url, method, len,
		    len ? "no HTTP header" : "none");
		return NULL;
	}
	if (code == 401) {
		snprintf(sv_why, sizeof(sv_why), "supervisord at %s refused %s "
		    "(HTTP 401): set username and password under "
		    "[supervisorctl] as under [unix_http_server] or "
		    "[inet_http_server]", sv.url, sv.user[0] ? "the username "
		    "and password" : "to answer without a username and password");
		return NULL;
	}
	if (code != 200) {
		snprintf(sv_why, sizeof(sv_why), "supervisord at %s answered "
		    "%s with HTTP %d, not 200 (is it supervisord, with "
		    "[rpcinterface:supervisor]?)", sv.url, method, code);
		return NULL;
	}
	*body = '\0';
	body += 4;
	for (cl = ans; (cl = strchr(cl + 1, '\n')) != NULL; )
		if (strncasecmp(cl + 1, "Content-Length:", 15) == 0 &&
		    strtoul(cl + 16, NULL, 10) != strlen(body)) {
			snprintf(sv_why, sizeof(sv_why), "supervisord at %s cut "
			    "its answer to %s short (%zu of %lu bytes)", sv.url,
			    method, strlen(body), strtoul(cl + 16, NULL, 10));
			return NULL;
		}
	return body;
}

/* one call, its answer in a: 0 a value, 1 a fault, -1 and sv_why */
static int
call(long timeout, struct svans *a, const char *method, const char *fmt,
    va_list ap)
{
	double end = now() + (double)timeout;
	char *req, *body, head[2048];
	size_t len = 0;
	int fd, r, max;

	memset(a, 0, sizeof(*a));
	sv_errno = 0;
	if ((fd = connect_sv(end)) == -1) {
		sv_errno = errno;
		if (errno != 0)
			snprintf(sv_why, sizeof(sv_why), "cannot reach supervisord "
			    "at %s: %s", sv.url, strerror(errno));
		return -1;
	}
	req = request(method, fmt, ap);
	snprintf(head, sizeof(head), "POST /RPC2 HTTP/1.0\r\nHost: %s\r\n"
	    "User-Agent: deploy\r\nContent-Type: text/xml\r\n"
	    "Content-Length: %zu\r\n%s%s%s\r\n", sv.path[0] ? "localhost" :
	    sv.host, strlen(req), sv.auth[0] ? "Authorization: Basic " : "",
	    sv.auth, sv.auth[0] ? "\r\n" : "");
	if ((a->buf = exchange(fd, head, req, &len, end)) == NULL) {
		if (errno == ETIMEDOUT)
			snprintf(sv_why, sizeof(sv_why), "supervisord at %s did "
			    "not answer %s within %lds", sv.url, method, timeout);
		else
			snprintf(sv_why, sizeof(sv_why), "supervisord at %s: %s "
			    "(%s)", sv.url, strerror(errno), method);
		free(req);
		close(fd);
		return -1;
	}
	free(req);
	close(fd);
	if ((body = http_body(a->buf, len, method)) == NULL) {
		sv_free(a);
		return -1;
	}
	max = rpc_count(body);
	a->v = xrealloc(NULL, sizeof(*a->v) * (size_t)max);
	if ((r = rpc_parse(body, a->v, max, &a->nv)) == -1) {
		snprintf(sv_why, sizeof(sv_why), "supervisord at %s gave a "
		    "malformed answer to %s (%zu bytes)", sv.url, method, len);
		sv_free(a);
		return -1;
	}
	if (r == 1) {
		a->fault = rpc_int(a->v, 0, "faultCode");
		a->faultstr = rpc_str(a->v, 0, "faultString");
	}
	return r;
}

/*
 * supervisor.METHOD(params...) with fmt as in request(), within timeout
 * seconds: 0 an answer (a->v[0]), 1 a fault (a->fault, a->faultstr), -1
 * and sv_why (and sv_errno when it could not connect). The first call
 * asks getAPIVersion, and refuses a supervisord whose API is not 3.x.
 * sv_free(a) after either answer.
 */
int
sv_call(long timeout, struct svans *a, const char *method, const char *fmt,
    ...)
{
	struct svans v;
	va_list ap;
	int r;

	memset(a, 0, sizeof(*a));
	if (sv_where() == sv.why) {
		snprintf(sv_why, sizeof(sv_why), "%s", sv.why);
		sv_errno = 0;
		return -1;
	}
	if (!sv.checked) {
		va_start(ap, fmt);
		r = call(SV_LOOK, &v, "supervisor.getAPIVersion", "", ap);
		va_end(ap);
		if (r == 1)
			snprintf(sv_why, sizeof(sv_why), "supervisord at %s: "
			    "getAPIVersion: %s", sv.url, printable(v.faultstr));
		else if (r == 0 && (v.v[0].type != RPC_STRING ||
		    strncmp(v.v[0].s, "3.", 2) != 0))
			snprintf(sv_why, sizeof(sv_why), "supervisord at %s "
			    "speaks XML-RPC API %s; deploy knows 3.x only",
			    sv.url, printable(v.v[0].s));
		else if (r == 0)
			sv.checked = 1;
		sv_free(&v);
		if (!sv.checked)
			return -1;
	}
	logf_("supervisord: %s\n", method);
	va_start(ap, fmt);
	r = call(timeout, a, method, fmt, ap);
	va_end(ap);
	return r;
}

void
sv_free(struct svans *a)
{
	free(a->buf);
	free(a->v);
	memset(a, 0, sizeof(*a));
}
