/*
 * files.c: file helpers: paths, times, whole-file reads and atomic replaces.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif

#include "files.h"
#include "core.h"

double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

char *
fmtpath(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	p = xrealloc(NULL, (size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}

const char *
fmttime(long long t)
{
	static char buf[32];
	time_t tt = (time_t)t;
	struct tm *tm;

	if (t == 0 || (tm = localtime(&tt)) == NULL)
		return "-";
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", tm);
	return buf;
}

/* Input echoed in a message stays on one line: control bytes as \\xNN. */
const char *
printable(const char *s)
{
	static char buf[4][1100];
	static int k;
	char *b = buf[k++ % 4];
	size_t n = 0;

	for (; *s && n < sizeof(buf[0]) - 5; s++) {
		if ((unsigned char)*s < ' ' || *s == 0x7f)
			n += (size_t)snprintf(b + n, 5, "\\x%02x", (unsigned char)*s);
		else
			b[n++] = *s;
	}
	b[n] = '\0';
	return b;
}

int
write_all(int fd, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		if ((w = write(fd, p, n)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * Appends line (n bytes: whole lines) to fd, open with O_APPEND, in one
 * write, and fsyncs it. A torn last line (the file does not end in a
 * newline: a crash mid-write) is ended first, in the same write, so that
 * it stays one bad line and this one starts a line of its own. 0, or -1
 * and errno.
 */
int
append_line(int fd, const char *line, size_t n)
{
	struct stat st;
	char last = '\n', *buf;
	int r, e;

	if (fstat(fd, &st) == -1 || (st.st_size > 0 &&
	    pread(fd, &last, 1, st.st_size - 1) != 1))
		return -1;
	if (last == '\n')
		return write_all(fd, line, n) == -1 || fsync(fd) == -1 ? -1 : 0;
	buf = xrealloc(NULL, n + 1);
	buf[0] = '\n';
	memcpy(buf + 1, line, n);
	r = write_all(fd, buf, n + 1) == -1 || fsync(fd) == -1 ? -1 : 0;
	e = errno;
	free(buf);
	errno = e;
	return r;
}

char *
read_file_at(int dfd, const char *name, size_t max, size_t *len,
    struct stat *st)
{
	char *buf;
	size_t n = 0;
	ssize_t r;
	int fd;

	struct stat sb;

	/* O_NONBLOCK and a regular-file check: a FIFO must not hang us */
	if ((fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
	    O_NONBLOCK)) == -1)
		return NULL;
	if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
		if (!S_ISREG(sb.st_mode))
			errno = EINVAL;
		close(fd);
		return NULL;
	}
	if (st != NULL)
		*st = sb;
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	size_t cap = 4096;

	buf = xrealloc(NULL, cap + 1);
	while (n <= max) {
		if (n == cap) {
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			buf = xrealloc(buf, cap + 1);
		}
		r = read(fd, buf + n, cap - n);
		if (r == -1 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/*
 * Writes a file under a temp name and renames it in, so that a kill never
 * leaves half of it. durable: fsyncs the file and the folder too; without,
 * the file must outlive our process, not the machine.
 */
int
replace_file_at(int dfd, const char *name, const char *data, size_t len,
    int durable)
{
	char tmp[128];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.tmp", name);
	unlinkat(dfd, tmp, 0);
	if ((fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
	    O_NOFOLLOW, 0600)) == -1)
		return -1;
	if (write_all(fd, data, len) == -1 || (durable && fsync(fd) == -1)) {
		close(fd);
		unlinkat(dfd, tmp, 0);
		return -1;
	}
	if (close(fd) == -1 || renameat(dfd, tmp, dfd, name) == -1) {
		unlinkat(dfd, tmp, 0);
		return -1;
	}
	return durable ? fsync(dfd) : 0;
}

/* The executable a command word names: a path, or looked up on PATH. */
int
path_lookup(const char *name, char *out, size_t outlen)
{
	const char *path = getenv("PATH");
	char *copy, *dir, *save, *f;
	int found = 0;

	if (strchr(name, '/') != NULL) {
		snprintf(out, outlen, "%s", name);
		return access(name, X_OK) == 0 ? 0 : -1;
	}
	copy = xstrdup(path ? path : "/usr/bin:/bin");
	for (dir = strtok_r(copy, ":", &save); dir && !found;
	    dir = strtok_r(NULL, ":", &save)) {
		struct stat st;

		f = fmtpath("%s/%s", *dir ? dir : ".", name);
		if (stat(f, &st) == 0 && S_ISREG(st.st_mode) &&
		    access(f, X_OK) == 0) {
			snprintf(out, outlen, "%s", f);
			found = 1;
		}
		free(f);
	}
	free(copy);
	return found ? 0 : -1;
}

int
write_new(const char *dir, const char *name, const char *buf, size_t len)
{
	char *p = fmtpath("%s/%s", dir, name);
	int fd, r = -1;

	if ((fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600)) != -1) {
		r = write_all(fd, buf, len);
		if (close(fd) == -1)
			r = -1;
	}
	free(p);
	return r;
}

/* Flushes the file system fd is on (Linux), or every one. */
void
flush_fs(int fd)
{
#ifdef __linux__
	if (fd != -1 && syscall(SYS_syncfs, fd) == 0)
		return;
#else
	(void)fd;
#endif
	sync();
}
