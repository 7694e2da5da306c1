/* child.h: children: own process group, timeout, output to the step log. */
#ifndef DEPLOY_CHILD_H
#define DEPLOY_CHILD_H

#include <stddef.h>
#include <stdarg.h>

struct result {
	int	status;		/* wait status */
	int	timedout;
	int	signo;		/* we were signalled while it ran */
	int	execerr;	/* errno of a failed exec */
	size_t	outn;		/* bytes captured in out */
};

enum { ENV_NONE, ENV_RELEASE, ENV_APP };
struct runopts {
	const char	 *dir;		/* working directory */
	int		  env;		/* ENV_* */
	const char	 *release;	/* for ENV_RELEASE and ENV_APP */
	const char	 *sha;
	char *const	 *extra;	/* more "K=V" */
	long		  timeout;	/* seconds, 0 none */
	char		 *out;		/* capture stdout here (size outlen) */
	size_t		  outlen;
	int		  record;	/* record the group for the next run */
	int		  keepgroup;	/* after a clean exit, leave the group be */
	int		  bothout;	/* capture stderr too */
	int		  quiet;	/* captured output not logged (a tree list) */
};

unsigned long long start_time(long pid);
int run(char *const argv[], const struct runopts *o, struct result *res);
const char *why_failed(const struct result *r, const char *argv0, long tmo);
int run_step(const char *name, char *const argv[], struct runopts *o,
    struct result *res);
char **words(const char *s);
char **append_words(char **w, va_list ap);
char **words_plus(const char *s, ...);
struct runopts opts(const char *dir, int env, const char *release,
    const char *sha);
char *gitdir(void);
#endif
