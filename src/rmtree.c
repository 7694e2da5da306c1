/*
 * rmtree.c: removing a tree: descriptor-relative, never following a link.
 *
 * Rules: descriptor-relative, never following a link, never leaving the
 * device, never the live release, never ., .. or /.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE		/* d_type, so a tree walk needs no stat per entry */

#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rmtree.h"
#include "core.h"
#include "files.h"
#include "msg.h"
#include "root.h"

struct frame {
	char	**subs;
	size_t	  nsub, i;
	char	 *name;
	dev_t	  dev;
	ino_t	  ino;
};

int
open_dir_at(int dfd, const char *name)
{
	int fd;

	fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1 && errno == EACCES &&
	    fchmodat(dfd, name, 0700, 0) == 0)	/* a mode 000 folder of ours */
		fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	return fd;
}

/* Removes the files of the folder fd, keeps its subfolders' names in f. */
static int
scan_dir(int fd, struct frame *f, dev_t dev)
{
	char **files = NULL;
	size_t nf = 0, i;
	struct dirent *d;
	struct stat st;
	int dfd, errs = 0, isdir;
	DIR *dp;

	f->subs = NULL;
	f->nsub = f->i = 0;
	/* a folder a build made read-only (chmod -R a-w) cannot be emptied
	 * as it is: make it ours to change first (root needs no such help) */
	if (fstat(fd, &st) == 0 && (st.st_mode & S_IRWXU) != S_IRWXU)
		(void)fchmod(fd, (st.st_mode & 07777) | S_IRWXU);
	if ((dfd = dup(fd)) == -1 || (dp = fdopendir(dfd)) == NULL) {
		if (dfd != -1)
			close(dfd);
		return 1;
	}
	while ((d = readdir(dp)) != NULL) {
		if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
			continue;
#ifdef DT_DIR
		if (d->d_type != DT_UNKNOWN)
			isdir = d->d_type == DT_DIR;
		else
#endif
		isdir = fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISDIR(st.st_mode);
		if (isdir) {
			f->subs = xrealloc(f->subs, (f->nsub + 1) * sizeof(char *));
			f->subs[f->nsub++] = xstrdup(d->d_name);
		} else {
			files = xrealloc(files, (nf + 1) * sizeof(char *));
			files[nf++] = xstrdup(d->d_name);
		}
	}
	closedir(dp);
	(void)dev;
	for (i = 0; i < nf; i++) {
		if (unlinkat(fd, files[i], 0) == -1 && errno != ENOENT)
			errs++;
		free(files[i]);
	}
	free(files);
	return errs;
}

static void
frame_free(struct frame *f)
{
	size_t i;

	for (i = 0; i < f->nsub; i++)
		free(f->subs[i]);
	free(f->subs);
	free(f->name);
}

/*
 * Whether anything is mounted at or below path (a bind mount of the same
 * file system has the same st_dev, so st_dev alone cannot tell). Linux
 * lists mounts in /proc/self/mountinfo; elsewhere st_dev is the guard.
 */
static int
mounted_under(const char *path)
{
	char line[8192], mp[PATH_MAX], *p, *q;
	size_t n = strlen(path);
	int found = 0, f;
	FILE *fp;

	if ((fp = fopen("/proc/self/mountinfo", "re")) == NULL &&
	    (fp = fopen("/proc/self/mountinfo", "r")) == NULL)
		return 0;
	while (!found && fgets(line, sizeof(line), fp) != NULL) {
		/* the fifth field, with spaces and such as \\ooo */
		for (p = line, f = 1; f < 5 && p != NULL; f++)
			if ((p = strchr(p, ' ')) != NULL)
				p++;
		if (p == NULL)
			continue;
		for (q = mp; *p && *p != ' ' && q < mp + sizeof(mp) - 1; p++) {
			if (p[0] == '\\' && p[1] >= '0' && p[1] <= '3' &&
			    p[2] >= '0' && p[2] <= '7' && p[3] >= '0' && p[3] <= '7') {
				*q++ = (char)((p[1] - '0') * 64 + (p[2] - '0') * 8 +
				    (p[3] - '0'));
				p += 3;
			} else
				*q++ = *p;
		}
		*q = '\0';
		found = strncmp(mp, path, n) == 0 && (mp[n] == '/' || mp[n] == '\0');
	}
	fclose(fp);
	return found;
}

/*
 * Down into child, a folder of the frame on top (*fd): a new frame with
 * its entries, and *fd its folder. The errors met: 1 when it cannot be
 * opened or is on another device (a mount point: left alone).
 */
static int
push_frame(struct frame **stp, size_t *depth, int *fd, const char *child,
    dev_t dev)
{
	struct frame *f;
	struct stat sb;
	int cfd;

	if ((cfd = open_dir_at(*fd, child)) == -1)
		return 1;
	if (fstat(cfd, &sb) == -1 || sb.st_dev != dev) {
		close(cfd);	/* a mount point: leave it */
		return 1;
	}
	close(*fd);
	*fd = cfd;
	*stp = xrealloc(*stp, (*depth + 1) * sizeof(**stp));
	f = &(*stp)[(*depth)++];
	f->name = xstrdup(child);
	f->dev = sb.st_dev;
	f->ino = sb.st_ino;
	return scan_dir(cfd, f, dev);
}

/*
 * Removes dfd/name and all below it, holding one descriptor at a time so
 * that any depth works; climbs back with ".." and checks it is the folder
 * it came from. Never crosses into another file system.
 */
int
remove_tree(int dfd, const char *name, const char *where)
{
	struct frame *st = NULL;
	size_t depth = 0;
	struct stat sb;
	int fd, up, errs = 0;
	dev_t dev;

	if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 ||
	    strchr(name, '/') != NULL || *name == '\0')
		return -1;
	if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == -1)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(sb.st_mode))
		return unlinkat(dfd, name, 0);
	if (where != NULL && mounted_under(where)) {
		warnx("%s has a file system mounted in it: not removing it; "
		    "unmount it first", where);
		return -1;
	}
	if ((fd = open_dir_at(dfd, name)) == -1 || fstat(fd, &sb) == -1)
		return -1;
	dev = sb.st_dev;
	st = xrealloc(NULL, sizeof(*st));
	st[0].name = xstrdup(name);
	st[0].dev = sb.st_dev;
	st[0].ino = sb.st_ino;
	errs += scan_dir(fd, &st[0], dev);
	depth = 1;
	while (depth > 0) {
		struct frame *f = &st[depth - 1];

		if (f->i < f->nsub) {
			errs += push_frame(&st, &depth, &fd, f->subs[f->i++],
			    dev);
			continue;
		}
		if (depth == 1) {
			close(fd);
			fd = -1;
			if (unlinkat(dfd, f->name, AT_REMOVEDIR) == -1)
				errs++;
			frame_free(f);
			depth--;
			break;
		}
		up = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (up == -1 || fstat(up, &sb) == -1 ||
		    sb.st_dev != st[depth - 2].dev ||
		    sb.st_ino != st[depth - 2].ino) {
			/* the tree moved under us: stop rather than guess */
			if (up != -1)
				close(up);
			errs++;
			break;
		}
		close(fd);
		fd = up;
		if (unlinkat(fd, f->name, AT_REMOVEDIR) == -1)
			errs++;
		frame_free(f);
		depth--;
	}
	while (depth > 0)
		frame_free(&st[--depth]);
	if (fd != -1)
		close(fd);
	free(st);
	return errs ? -1 : 0;
}

/* remove_tree of ROOT/dir/name, dfd being that dir */
int
remove_in(int dfd, const char *dir, const char *name)
{
	char *where = fmtpath("%s/%s/%s", root, dir, name);
	int r = remove_tree(dfd, name, where);

	free(where);
	return r;
}
