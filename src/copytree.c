/*
 * copytree.c: copying a venv's tree, its absolute paths rewritten.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/ioctl.h>
#include <sys/syscall.h>
#ifndef FICLONE			/* <linux/fs.h>'s, which musl does not carry */
#define FICLONE	_IOW(0x94, 9, int)
#endif
#endif

#include "copytree.h"
#include "core.h"
#include "files.h"
#include "sig.h"

/* buf with every c->from made c->to, or NULL when it names none */
static char *
rewrite_path(const char *buf, size_t n, const struct vcopy *c, size_t *outn)
{
	const char *p = buf, *q, *e = buf + n;
	char *out = NULL;
	size_t on = 0;

	while ((q = find_bytes(p, (size_t)(e - p), c->from, c->fromlen)) != NULL) {
		out = xrealloc(out, on + (size_t)(q - p) + c->tolen + 1);
		memcpy(out + on, p, (size_t)(q - p));
		on += (size_t)(q - p);
		memcpy(out + on, c->to, c->tolen);
		on += c->tolen;
		p = q + c->fromlen;
	}
	if (out == NULL)
		return NULL;
	out = xrealloc(out, on + (size_t)(e - p) + 1);
	memcpy(out + on, p, (size_t)(e - p));
	*outn = on + (size_t)(e - p);
	return out;
}

static int
copy_fail(struct vcopy *c, const char *relp, const char *name, const char *why)
{
	snprintf(c->why, sizeof(c->why), "%s/%s%s%s: %s", c->from, relp,
	    *relp ? "/" : "", name, why);
	return -1;
}

/*
 * A file of the old venv into the new one, its mode and times kept (a
 * .pyc is checked against its source's mtime). One that names the old
 * venv is rewritten; a binary one only when both paths have one length
 * (they do: keys are fixed width), so offsets inside it hold. The rest is
 * a reflink where the file system has them, else a copy: never a hard
 * link, so a write in one venv never shows in another.
 */
#define BIGFILE	(32L << 20)	/* larger files are streamed */

#define CHUNK	(1 << 20)

/* 1 when the file names c->from, 0 when not, -1 on a read error */
static int
big_names_path(int in, const struct vcopy *c)
{
	char *b = xrealloc(NULL, CHUNK + c->fromlen);
	size_t keep = 0, have;
	off_t off = 0;
	ssize_t k;
	int r = 0;

	while ((k = pread(in, b + keep, CHUNK, off)) > 0 ||
	    (k == -1 && errno == EINTR)) {
		if (k == -1)
			continue;
		off += k;
		if (find_bytes(b, keep + (size_t)k, c->from, c->fromlen)) {
			r = 1;
			break;
		}
		/* a match may straddle two chunks: keep the last bytes */
		have = keep + (size_t)k;
		keep = have < c->fromlen ? have : c->fromlen - 1;
		memmove(b, b + have - keep, keep);
	}
	if (k == -1)
		r = -1;
	free(b);
	return r;
}

/* in to out, a chunk at a time, from the start */
static int
stream_copy(int in, int out)
{
	char *b = xrealloc(NULL, CHUNK);
	off_t off = 0;
	ssize_t k = 0;
	int r = 0;

	if (ftruncate(out, 0) == -1 || lseek(out, 0, SEEK_SET) == -1)
		r = -1;
	while (r == 0 && ((k = pread(in, b, CHUNK, off)) > 0 ||
	    (k == -1 && errno == EINTR))) {
		if (k == -1)
			continue;
		off += k;
		r = write_all(out, b, (size_t)k);
	}
	if (r == 0 && k == -1)
		r = -1;
	free(b);
	return r;
}

/*
 * n bytes of in copied to out by the file system itself: a reflink
 * (FICLONE), else copy_file_range. 1 done, 0 not (out is left empty),
 * -1 failed (errno).
 */
static int
kernel_copy(int in, int out, size_t n)
{
#ifdef __linux__
	long long oi = 0, oo = 0;

	if (n == 0)
		return 0;
	if (ioctl(out, FICLONE, in) == 0)
		return 1;
	while ((size_t)oi < n && syscall(SYS_copy_file_range, in, &oi, out,
	    &oo, n - (size_t)oi, 0) > 0)
		;
	if ((size_t)oi == n)
		return 1;
	if (ftruncate(out, 0) == -1)
		return -1;
#else
	(void)in;
	(void)out;
	(void)n;
#endif
	return 0;
}

static int
copy_file(int sfd, int dfd, const char *relp, const char *name,
    struct vcopy *c)
{
	struct timespec ts[2];
	struct stat st;
	char *buf = NULL, *nb = NULL;
	size_t n = 0, nn = 0;
	ssize_t k = 0;
	int in, out = -1, r = -1, done = 0;
	double t0;

	if ((in = openat(sfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
	    fstat(in, &st) == -1) {
		copy_fail(c, relp, name, strerror(errno));
		goto out;
	}
	if (st.st_size > BIGFILE) {
		/* streamed, never whole in memory (a 2 GB torch library);
		 * one that names the old path is left to a fresh build */
		if ((k = big_names_path(in, c)) != 0) {
			copy_fail(c, relp, name, k < 0 ? strerror(errno) :
			    "too large to rewrite the venv's path in it");
			goto out;
		}
		n = (size_t)st.st_size;
	}
	buf = xrealloc(NULL, st.st_size > BIGFILE ? 1 :
	    (size_t)st.st_size + 1);
	while (st.st_size <= BIGFILE && n < (size_t)st.st_size &&
	    ((k = read(in, buf + n,
	    (size_t)st.st_size - n)) > 0 || (k == -1 && errno == EINTR)))
		if (k > 0)
			n += (size_t)k;
	if (k == -1 || n != (size_t)st.st_size) {
		copy_fail(c, relp, name, k == -1 ? strerror(errno) :
		    "changed while copied");
		goto out;
	}
	if ((out = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600)) == -1) {
		copy_fail(c, relp, name, strerror(errno));
		goto out;
	}
	t0 = now();
	if (st.st_size <= BIGFILE && (memchr(buf, '\0', n) == NULL ||
	    c->fromlen == c->tolen))
		nb = rewrite_path(buf, n, c, &nn);
	if (nb != NULL) {
		if (write_all(out, nb, nn) == -1)
			goto werr;
		done = 1;
		c->nrewrit++;
	}
	c->rewrite += now() - t0;	/* the search costs even when none */
	if (!done && (done = kernel_copy(in, out, n)) == -1)
		goto werr;
	if (!done && st.st_size > BIGFILE && stream_copy(in, out) == -1)
		goto werr;
	if (!done && st.st_size <= BIGFILE && write_all(out, buf, n) == -1)
		goto werr;
	ts[0] = st.st_atim;
	ts[1] = st.st_mtim;
	if (fchmod(out, st.st_mode & 07777) == -1 || futimens(out, ts) == -1)
		goto werr;
	r = 0;
	goto out;
werr:
	copy_fail(c, relp, name, strerror(errno));
out:
	if (out != -1 && close(out) == -1 && r == 0)
		r = copy_fail(c, relp, name, strerror(errno));
	if (in != -1)
		close(in);
	free(nb);
	free(buf);
	return r;
}

/* the tree at sfd into the empty folder dfd: files, folders and links */
int
copy_tree(int sfd, int dfd, const char *relp, struct vcopy *c)
{
	struct timespec ts[2];
	struct dirent *d;
	struct stat st;
	char *sub, lt[PATH_MAX + 1], *nl;
	ssize_t ll;
	DIR *dp;
	int fd, s2 = -1, d2 = -1, r = 0;

	if ((fd = dup(sfd)) == -1 || (dp = fdopendir(fd)) == NULL) {
		if (fd != -1)
			close(fd);
		return copy_fail(c, relp, ".", strerror(errno));
	}
	while (r == 0 && (errno = 0, d = readdir(dp)) != NULL) {
		const char *nm = d->d_name;

		if (strcmp(nm, ".") == 0 || strcmp(nm, "..") == 0 ||
		    (*relp == '\0' && strncmp(nm, ".deploy-", 8) == 0))
			continue;
		if (gotsig)
			r = copy_fail(c, relp, nm, "interrupted");
		else if (fstatat(sfd, nm, &st, AT_SYMLINK_NOFOLLOW) == -1)
			r = copy_fail(c, relp, nm, strerror(errno));
		else if (S_ISREG(st.st_mode))
			r = copy_file(sfd, dfd, relp, nm, c);
		else if (S_ISLNK(st.st_mode)) {
			size_t nn;

			if ((ll = readlinkat(sfd, nm, lt, sizeof(lt) - 1)) == -1)
				r = copy_fail(c, relp, nm, strerror(errno));
			else {
				lt[ll] = '\0';
				/* an absolute target into the old venv */
				nl = strncmp(lt, c->from, c->fromlen) == 0 &&
				    (lt[c->fromlen] == '/' || lt[c->fromlen] ==
				    '\0') ? rewrite_path(lt, (size_t)ll, c, &nn) :
				    NULL;
				if (nl != NULL)
					nl[nn] = '\0';
				if (symlinkat(nl ? nl : lt, dfd, nm) == -1)
					r = copy_fail(c, relp, nm, strerror(errno));
				free(nl);
			}
		} else if (S_ISDIR(st.st_mode)) {
			sub = *relp ? fmtpath("%s/%s", relp, nm) : xstrdup(nm);
			if (mkdirat(dfd, nm, 0700) == -1 || (s2 = openat(sfd, nm,
			    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) == -1 ||
			    (d2 = openat(dfd, nm, O_RDONLY | O_DIRECTORY |
			    O_NOFOLLOW | O_CLOEXEC)) == -1)
				r = copy_fail(c, relp, nm, strerror(errno));
			else if ((r = copy_tree(s2, d2, sub, c)) == 0) {
				ts[0] = st.st_atim;
				ts[1] = st.st_mtim;
				if (fchmod(d2, st.st_mode & 07777) == -1 ||
				    futimens(d2, ts) == -1)
					r = copy_fail(c, relp, nm, strerror(errno));
			}
			if (s2 != -1)
				close(s2);
			if (d2 != -1)
				close(d2);
			s2 = d2 = -1;
			free(sub);
		} else
			r = copy_fail(c, relp, nm, "not a file, folder or link");
	}
	if (r == 0 && errno != 0)
		r = copy_fail(c, relp, ".", strerror(errno));
	closedir(dp);
	return r;
}
