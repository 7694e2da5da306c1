/*
 * audit.c: the audit trail: who changed what, and from where.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "audit.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "history.h"
#include "json.h"
#include "msg.h"
#include "report.h"
#include "root.h"
#include "sha256.h"
#include "verify.h"

#define AUDIT_VAL	256	/* bytes kept of one environment value */

static const struct {
	const char	*var;
	const char	*key;
} audit_claims[] = {
	{ "SUDO_USER", "sudo_user" },
	{ "GITHUB_ACTOR", "github_actor" },
	{ "GITHUB_RUN_ID", "github_run_id" },
	{ "GITHUB_REPOSITORY", "github_repository" },
	{ "CIRCLE_USERNAME", "circle_username" },
	{ "CIRCLE_BUILD_URL", "circle_build_url" },
	{ "GITLAB_USER_LOGIN", "gitlab_user_login" },
	{ "CI_JOB_URL", "ci_job_url" },
	{ "DEPLOY_ACTOR", "deploy_actor" },
};

static const char *
env_or_null(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

/* Who asked, in one word, for notify: the most specific claim first. */
const char *
audit_actor(void)
{
	static const char *order[] = { "DEPLOY_ACTOR", "GITHUB_ACTOR",
	    "GITLAB_USER_LOGIN", "CIRCLE_USERNAME", "SUDO_USER" };
	const char *v;
	size_t i;

	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if ((v = env_or_null(order[i])) != NULL)
			return v;
	return (v = login_name(getuid())) != NULL ? v : "unknown";
}

/* "observed": {...}, "claimed": {...} */
static void
audit_who(struct sbuf *b)
{
	char num[64], host[256], *f[2], *copy;
	const char *ssh, *tty = isatty(0) ? ttyname(0) : isatty(2) ? ttyname(2) :
	    NULL;
	size_t i;

	snprintf(num, sizeof(num), ", \"observed\": {\"uid\": %ld",
	    (long)getuid());
	sb_add(b, num, strlen(num));
	if (geteuid() != getuid()) {
		snprintf(num, sizeof(num), ", \"euid\": %ld", (long)geteuid());
		sb_add(b, num, strlen(num));
	}
	sb_json(b, "user", login_name(getuid()), AUDIT_VAL);
	sb_json(b, "tty", tty, AUDIT_VAL);
	host[sizeof(host) - 1] = '\0';
	sb_json(b, "host", gethostname(host, sizeof(host) - 1) == 0 ? host :
	    NULL, AUDIT_VAL);
	sb_add(b, "}, \"claimed\": {\"actor\": ", 24);
	sb_jstr(b, audit_actor(), AUDIT_VAL);
	if ((ssh = env_or_null("SSH_CONNECTION")) != NULL) {
		copy = xstrdup(ssh);
		if (fields(copy, f, 2) == 2) {
			sb_json(b, "ssh_client", f[0], AUDIT_VAL);
			sb_json(b, "ssh_port", f[1], AUDIT_VAL);
		} else
			sb_json(b, "ssh_connection", ssh, AUDIT_VAL);
		free(copy);
	}
	for (i = 0; i < sizeof(audit_claims) / sizeof(audit_claims[0]); i++)
		if (env_or_null(audit_claims[i].var) != NULL)
			sb_json(b, audit_claims[i].key,
			    getenv(audit_claims[i].var), AUDIT_VAL);
	sb_add(b, "}", 1);
}

/*
 * The hash of the file's last line, into hex. When the file does not end
 * in a newline (a crash mid-write) that piece is hashed as the last line;
 * append_line starts the next line on a line of its own.
 */
static int
audit_last(int fd, char hex[65])
{
	struct stat st;
	char *buf, *e, *s;
	size_t n;
	off_t off;

	if (fstat(fd, &st) == -1)
		return -1;
	if (st.st_size == 0) {
		memcpy(hex, AUDIT_ZERO, 65);
		return 0;
	}
	n = st.st_size > (1 << 20) ? 1 << 20 : (size_t)st.st_size;
	off = st.st_size - (off_t)n;
	buf = xrealloc(NULL, n + 1);
	if (pread(fd, buf, n, off) != (ssize_t)n) {
		free(buf);
		return -1;
	}
	e = buf + n;
	if (e[-1] == '\n')
		e--;
	for (s = e; s > buf && s[-1] != '\n'; s--)
		;
	sha256_hex(s, (size_t)(e - s), hex);
	free(buf);
	return 0;
}

/*
 * Appends {"prev": ..., REC}; 0 when done. audit-head is written first:
 * the hash of the line about to be appended, then the hash that line
 * chains off. A crash between the two writes leaves the head one line
 * ahead, which audit --verify tells apart from a line appended by hand
 * (that one does not match the head). Each line goes to syslog too.
 */
static int
audit_append(const char *rec, size_t n)
{
	char prev[65], head[130];
	struct sbuf b = { NULL, 0, 0 };
	struct flock fl;
	int fd, r = -1, err = 0;

	if ((fd = openat(statefd, "audit", O_RDWR | O_APPEND | O_CREAT |
	    O_CLOEXEC | O_NOFOLLOW, 0600)) == -1)
		return -1;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	while ((r = fcntl(fd, F_SETLKW, &fl)) == -1 && errno == EINTR)
		;
	if (r == 0 && (r = audit_last(fd, prev)) == 0) {
		sb_add(&b, "{\"prev\": \"", 10);
		sb_add(&b, prev, 64);
		sb_add(&b, "\"", 1);
		sb_add(&b, rec, n);
		sb_add(&b, "}\n", 2);
		sha256_hex(b.p, b.n - 1, head);
		head[64] = '\n';
		memcpy(head + 65, prev, 64);
		head[129] = '\n';
		r = replace_file_at(statefd, "audit-head", head, 130, 1) == -1 ||
		    append_line(fd, b.p, b.n) == -1 ? -1 : 0;
		err = errno;	/* syslog may set it (no /dev/log: ENOENT) */
		openlog("deploy", LOG_PID, LOG_AUTHPRIV);
		syslog(LOG_NOTICE, "audit: %.*s", (int)(b.n - 1), b.p);
		closelog();
	} else
		err = errno;
	if (close(fd) == -1 && r == 0) {
		r = -1;
		err = errno;
	}
	free(b.p);
	errno = err;	/* the caller says why */
	return r;
}

/*
 * One line of the audit trail: event (the command), its exit status, the
 * revision it deployed and the one before, and a detail (a pause's
 * reason, say) or NULL. Never ends the run: a trail that cannot be
 * written is said on stderr.
 */
void
audit_event(const char *event, int status, const char *rev, const char *prev,
    const char *detail)
{
	struct sbuf b = { NULL, 0, 0 };
	char t[32], num[64], who[1100] = "";
	time_t now_t = time(NULL);
	struct tm *tm = gmtime(&now_t);

	if (statefd == -1)
		return;
	if (tm == NULL || strftime(t, sizeof(t), "%Y-%m-%dT%H:%M:%SZ", tm) == 0)
		snprintf(t, sizeof(t), "@%lld", (long long)now_t);
	sb_json(&b, "time", t, sizeof(t));
	sb_json(&b, "event", event, AUDIT_VAL);
	snprintf(num, sizeof(num), ", \"status\": %d", status);
	sb_add(&b, num, strlen(num));
	sb_json(&b, "revision", rev && *rev ? rev : NULL, 64);
	sb_json(&b, "previous", prev && *prev ? prev : NULL, 64);
	snprintf(num, sizeof(num), ", \"duration\": %.2f", now() - report->t0);
	sb_add(&b, num, strlen(num));
	if (signer[0] == '\0' && rev != NULL)
		signer_of(rev, who, sizeof(who));
	sb_json(&b, "signer", signer[0] ? signer : who[0] && rev ? who : NULL,
	    sizeof(who));
	sb_json(&b, "refused", refusal[0] ? refusal : NULL, sizeof(refusal));
	sb_json(&b, "detail", detail, 1024);
	audit_who(&b);
	if (audit_append(b.p, b.n) == -1)
		warnx("cannot append to %s/%s/audit: %s", root, STATE,
		    strerror(errno));
	free(b.p);
}

/* The value of "key" in a line deploy wrote, for showing: "" when it is
 * null or absent. Escapes inside a value keep the escaped character. */
const char *
audit_get(const char *line, const char *key, char *buf, size_t len)
{
	char pat[64];
	const char *p;
	size_t n = 0;

	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	buf[0] = '\0';
	if ((p = strstr(line, pat)) == NULL)
		return buf;
	p += strlen(pat);
	if (*p == '"') {
		for (p++; *p && *p != '"' && n + 1 < len; p++) {
			/* \" and \\ shown as the character; \uXXXX as is */
			if (*p == '\\' && p[1] != '\0' && p[1] != 'u')
				p++;
			buf[n++] = *p;
		}
	} else if (strncmp(p, "null", 4) != 0)
		while (*p && *p != ',' && *p != '}' && n + 1 < len)
			buf[n++] = *p++;
	buf[n] = '\0';
	return buf;
}
