/*
 * venvs.c: the shared venvs/ folder: keys, records of how each was built.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "venvs.h"
#include "child.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "msg.h"
#include "root.h"

/* ROOT/venvs to read, never through a link; NULL when absent */
DIR *
venvs_dir(void)
{
	DIR *dp;
	int fd;

	if ((fd = openat(rootfd, "venvs", O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) == -1)
		return NULL;
	if ((dp = fdopendir(fd)) == NULL)
		close(fd);
	return dp;
}

void
python_id(unsigned long long *h)
{
	char **w = words(cfg.virtualenv), **p, found[PATH_MAX], real[PATH_MAX];
	const char *name = "python3";
	struct stat st;

	for (p = w; *p; p++)
		if ((strcmp(*p, "-p") == 0 || strcmp(*p, "--python") == 0) && p[1])
			name = p[1];
		else if (strncmp(*p, "--python=", 9) == 0)
			name = *p + 9;
		else if (p == w && strstr(*p, "python") != NULL)
			name = *p;
	if (path_lookup(name, found, sizeof(found)) == 0 &&
	    realpath(found, real) != NULL && stat(real, &st) == 0) {
		*h = fnv(*h, real, strlen(real));
		*h = fnv(*h, &st.st_size, sizeof(st.st_size));
		*h = fnv(*h, &st.st_mtime, sizeof(st.st_mtime));
	}
	free_words(w);
}

int
venv_done(int vfd, const char *key)
{
	char *m = fmtpath("%s/.deploy-complete", key);
	struct stat st;
	int r = fstatat(vfd, m, &st, AT_SYMLINK_NOFOLLOW) == 0;

	free(m);
	return r;
}

/*
 * The venv's files durable first, then its record (what it was built
 * with and from), then the mark that says it is complete: a crash never
 * leaves a mark on a venv whose files are not all on disk.
 */
void
mark_venv_done(const char *key, const char *rec, size_t n)
{
	char *m = fmtpath("venvs/%s/.deploy-complete", key);
	char *b = fmtpath("venvs/%s/.deploy-built", key);
	char *d = fmtpath("venvs/%s", key);
	int fd, dfd;

	if ((dfd = openat(rootfd, d, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
	    O_NOFOLLOW)) == -1)
		die(EXIT_FAILED, "%s/%s: %s", root, d, strerror(errno));
	flush_fs(dfd);
	if ((fd = openat(rootfd, b, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
	    O_NOFOLLOW, 0644)) == -1 || write_all(fd, rec, n) == -1 ||
	    fsync(fd) == -1 || close(fd) == -1)
		die(EXIT_FAILED, "%s/%s: %s", root, b, strerror(errno));
	if ((fd = openat(rootfd, m, O_WRONLY | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0644)) == -1 || fsync(fd) == -1 || close(fd) == -1)
		die(EXIT_FAILED, "%s/%s: %s", root, m, strerror(errno));
	fsync(dfd);
	close(dfd);
	free(m);
	free(b);
	free(d);
}
