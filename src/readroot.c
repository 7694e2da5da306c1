/*
 * readroot.c: the commands that only read: what the root must hold for them.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "readroot.h"
#include "core.h"
#include "msg.h"
#include "root.h"

/*
 * What status, list and log read must be readable: a partial answer
 * ("rollback: none", every release "foreign") would be believed.
 */
static void
unreadable(const char *name, int err)
{
	struct stat st;

	if (fstatat(rootfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		die(EXIT_USAGE, "%s/%s: %s (mode %04o, owner uid %ld, we are uid "
		    "%ld): run this as the deploy user", root, name,
		    strerror(err), (unsigned)(st.st_mode & 07777),
		    (long)st.st_uid, (long)geteuid());
	die(EXIT_USAGE, "%s/%s: %s (we are uid %ld)", root, name,
	    strerror(err), (long)geteuid());
}

void
need_readable(void)
{
	const char *files[] = { STATE "/history", STATE "/logs" };
	size_t i;
	int fd;

	if (statefd == -1 && state_errno != ENOENT)
		unreadable(STATE, state_errno);
	if ((fd = openat(rootfd, "releases", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) == -1 && errno != ENOENT)
		unreadable("releases", errno);
	if (fd != -1)
		close(fd);
	for (i = 0; statefd != -1 && i < sizeof(files) / sizeof(files[0]);
	    i++) {
		if ((fd = openat(rootfd, files[i], O_RDONLY | O_CLOEXEC |
		    O_NONBLOCK)) == -1 && errno != ENOENT)
			unreadable(files[i], errno);
		if (fd != -1)
			close(fd);
	}
}

/* list and status answer only for a folder that is a deploy root */
void
need_deploy_root(void)
{
	struct stat st;

	need_readable();
	if (statefd == -1 && fstatat(rootfd, "releases", &st,
	    AT_SYMLINK_NOFOLLOW) == -1 && fstatat(rootfd, "repo", &st,
	    AT_SYMLINK_NOFOLLOW) == -1)
		die(EXIT_USAGE, "%s is not a deploy root (no releases/, repo/ or "
		    "%s/): run 'deploy init URL' there, or give -C ROOT", root,
		    STATE);
}
