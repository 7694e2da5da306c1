/*
 * history.c: the durable history of releases and who signed them.
 *
 * Rule: a release counts only once the history says it is complete; the
 * file is replaced by rename, never written in place.
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
#include <time.h>
#include <unistd.h>

#include "history.h"
#include "core.h"
#include "files.h"
#include "msg.h"
#include "order.h"
#include "root.h"
#include "sig.h"

struct event *hist;

size_t nhist;

void
history_load(void)
{
	size_t len;
	char *buf;

	free(hist);
	hist = NULL;
	nhist = 0;
	if (statefd == -1 || (buf = read_file_at(statefd, "history", 64 << 20,
	    &len, NULL)) == NULL) {
		if (statefd != -1 && errno != ENOENT)
			die(FAIL_STATUS, "%s/%s/history: %s", root, STATE,
			    strerror(errno));
		return;
	}
	history_parse(buf, len, &hist, &nhist);
	free(buf);
}

int
history_save(void)
{
	char *buf = NULL;
	size_t i, len = 0;
	int n;

	buf = xrealloc(NULL, nhist * 100 + 1);
	for (i = 0; i < nhist; i++) {
		n = snprintf(buf + len, 100, "%lld %s %s\n", hist[i].t,
		    event_name(hist[i].type), hist[i].sha);
		len += (size_t)n;
	}
	if (replace_file_at(statefd, "history", buf, len, 1) == -1) {
		warnx("cannot write %s/%s/history: %s", root, STATE,
		    strerror(errno));
		free(buf);
		return -1;
	}
	free(buf);
	return 0;
}

/*
 * Appends one event and fsyncs it: one write and one fsync, where a
 * rewrite would cost two of each; prune compacts the file. A torn last
 * line (a crash mid-write) is ended first, so it stays one bad line.
 */
int
history_add(int type, const char *sha)
{
	char line[128];
	int fd, n;

	hist = xrealloc(hist, (nhist + 1) * sizeof(*hist));
	hist[nhist].t = (long long)time(NULL);
	hist[nhist].type = type;
	snprintf(hist[nhist].sha, sizeof(hist[nhist].sha), "%s", sha);
	n = snprintf(line, sizeof(line), "%lld %s %s\n", hist[nhist].t,
	    event_name(type), hist[nhist].sha);
	nhist++;
	if ((fd = openat(statefd, "history", O_RDWR | O_APPEND | O_CLOEXEC |
	    O_NOFOLLOW)) == -1)
		return history_save();	/* the first event makes the file */
	if (append_line(fd, line, (size_t)n) == -1) {
		warnx("cannot write %s/%s/history: %s", root, STATE,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return close(fd);
}

/* Whether hist[from..to) holds another event of hist[i]'s type for its
 * release. */
static int
repeated(size_t i, size_t from, size_t to)
{
	size_t k;

	for (k = from; k < to; k++)
		if (hist[k].type == hist[i].type &&
		    strcmp(hist[k].sha, hist[i].sha) == 0)
			return 1;
	return 0;
}

/* Keeps what decides a release's state and life: its last activate and
 * unmigrated, its first and last live, and nothing of releases that are
 * gone. */
void
history_compact(void)
{
	size_t i, j;
	struct stat st;
	char path[80];

	for (i = j = 0; i < nhist; i++) {
		snprintf(path, sizeof(path), "releases/%s", hist[i].sha);
		if (fstatat(rootfd, path, &st, AT_SYMLINK_NOFOLLOW) == -1)
			continue;
		if ((hist[i].type == EV_ACTIVATE ||
		    hist[i].type == EV_UNMIGRATED) && repeated(i, i + 1, nhist))
			continue;
		/* hist[0..j) is what is kept so far, the first live among it */
		if (hist[i].type == EV_LIVE && repeated(i, i + 1, nhist) &&
		    repeated(i, 0, j))
			continue;
		hist[j++] = hist[i];
	}
	if (j != nhist) {
		nhist = j;
		history_save();
	}
}

/*
 * .deploy/signers/SHA holds one line: the signer git reported when
 * verify passed for SHA. It goes when the release goes, so activate and
 * rollback can show whose code they bring back.
 */
static void
signer_forget(const char *sha)
{
	char p[80];

	snprintf(p, sizeof(p), "signers/%s", sha);
	if (statefd != -1)
		unlinkat(statefd, p, 0);
}

void
signer_record(const char *sha, const char *who)
{
	char *line = fmtpath("%s\n", who);
	int fd;

	mkdirat(statefd, "signers", 0700);
	if ((fd = openat(statefd, "signers", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC)) == -1 || replace_file_at(fd, sha, line,
	    strlen(line), 1) == -1)
		warnx("cannot write %s/%s/signers/%s: %s", root, STATE, sha,
		    strerror(errno));
	if (fd != -1)
		close(fd);
	free(line);
}

/* The recorded signer of sha into buf, "" when none. */
const char *
signer_of(const char *sha, char *buf, size_t len)
{
	char p[80], *s = NULL;
	size_t n;

	buf[0] = '\0';
	snprintf(p, sizeof(p), "signers/%s", sha);
	if (statefd != -1 && is_sha(sha) &&
	    (s = read_file_at(statefd, p, 4096, &n, NULL)) != NULL) {
		s[strcspn(s, "\n")] = '\0';
		snprintf(buf, len, "%s", printable(s));
	}
	free(s);
	return buf;
}

/* Drops every event of sha, so that the history does not grow forever. */
void
history_forget(const char *sha)
{
	size_t i, j;

	for (i = j = 0; i < nhist; i++)
		if (strcmp(hist[i].sha, sha) != 0)
			hist[j++] = hist[i];
	nhist = j;
	signer_forget(sha);
}

/* The last event added, taken back: it could not be written. */
void
history_drop_last(void)
{
	if (nhist > 0)
		nhist--;
}

/*
 * .deploy/failed-head: "SHA TIME EXIT", the commit whose last deploy
 * failed after its build (migrate, check, switch back), so that a plain
 * deploy of the same head (cron) does not rebuild, migrate and restart it
 * again every few minutes. Words a later version adds at the end are
 * ignored. Cleared by the next deploy that ends well.
 */
int
badhead_read(struct badhead *b)
{
	char *buf, *f[3], *end;
	size_t len;
	int ok;

	memset(b, 0, sizeof(*b));
	if (statefd == -1 || (buf = read_file_at(statefd, "failed-head", 300,
	    &len, NULL)) == NULL)
		return 0;
	ok = fields(buf, f, 3) == 3 && is_sha(f[0]);
	if (ok) {
		copy_sha(b->sha, f[0]);
		errno = 0;
		b->t = strtoll(f[1], &end, 10);
		ok = errno == 0 && *end == '\0';
		b->exit = (int)strtol(f[2], &end, 10);
		ok = ok && *end == '\0' && b->exit > 0 && b->exit < 256;
	}
	free(buf);
	return ok;
}

/* Whether a deploy of ref, resolved to sha, skips it: sha is the failed
 * head, and ref (NULL: the branch) does not name the commit itself (a
 * sha, or a prefix of 7 or more), as a retry does. */
int
badhead_skips(const char *ref, const char *sha, struct badhead *b)
{
	size_t n = ref != NULL ? strlen(ref) : 0;

	if (!badhead_read(b) || strcmp(b->sha, sha) != 0)
		return 0;
	return n < 7 || strncmp(ref, sha, n) != 0;
}

void
badhead_record(const char *sha, int st)
{
	char buf[128];
	int n;

	n = snprintf(buf, sizeof(buf), "%s %lld %d\n", sha,
	    (long long)time(NULL), st);
	if (replace_file_at(statefd, "failed-head", buf, (size_t)n, 1) == -1)
		warnx("cannot write %s/%s/failed-head: %s", root, STATE,
		    strerror(errno));
}

void
badhead_clear(void)
{
	if (statefd != -1 && unlinkat(statefd, "failed-head", 0) == -1 &&
	    errno != ENOENT)
		warnx("%s/%s/failed-head: %s", root, STATE, strerror(errno));
}

/* .deploy/last-log: "SHA", whose log the last deploy, activate or
 * rollback that ran wrote first; 'deploy log' without REV shows it. */
void
lastlog_record(const char *sha)
{
	char buf[80];
	int n = snprintf(buf, sizeof(buf), "%s\n", sha);

	if (replace_file_at(statefd, "last-log", buf, (size_t)n, 0) == -1)
		warnx("cannot write %s/%s/last-log: %s", root, STATE,
		    strerror(errno));
}

/* The sha last-log names into sha; "" when none. */
void
lastlog_read(char sha[65])
{
	char *buf;
	size_t len;

	sha[0] = '\0';
	if (statefd == -1 || (buf = read_file_at(statefd, "last-log", 100,
	    &len, NULL)) == NULL)
		return;
	buf[strcspn(buf, "\n")] = '\0';
	if (is_sha(buf))
		copy_sha(sha, buf);
	free(buf);
}
