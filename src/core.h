/*
 * core.h: the pure core, free of I/O: words, refs, paths, the config and
 * envfile parsers.
 */
#ifndef DEPLOY_CORE_H
#define DEPLOY_CORE_H

#include <stddef.h>

enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,	/* failed before the switch; nothing changed */
	EXIT_USAGE = 2,		/* usage or configuration error */
	EXIT_LOCKED = 3,	/* another deploy holds the lock */
	EXIT_SWITCHED_BACK = 4,	/* restart or check failed; switched back */
	EXIT_STUCK = 5		/* a person must look */
};

#define GO_ON	(-1)	/* a command's check: go on to the lock and the job */
#define CONF_MAX	65536	/* bytes; a larger config is refused */
#define ERRLEN		512

struct config {
	char	*repo;
	char	*branch;
	long	 keep;
	char	*virtualenv;
	char	*requirements;
	int	 reuse_venv;
	char	*build;
	char	*test;
	char	*program;
	char	*supervisorctl;
	char	*supervisor;	/* unix:///PATH or http://HOST:PORT */
	char	*restart;
	char	*check;
	long	 check_timeout;
	char	*link;
	char	*envfile;
	long	 timeout;
	char	*migrate;
	char	*notify;
	int	 verify;	/* VERIFY_* */
	char	*allowed_signers;
	char	*gpg_keyring;
	int	 submodules;	/* read submodules in; no: refuse them */
	int	 lfs;		/* LFS content in; no: refuse it */
	int	 deps;		/* DEPS_*: how the dependencies are installed */
};

enum { VERIFY_OFF, VERIFY_COMMIT, VERIFY_TAG };
enum { DEPS_AUTO, DEPS_REQUIREMENTS, DEPS_POETRY, DEPS_NONE };

void	config_init(struct config *);
void	config_free(struct config *);
/* Parses buf; on error returns -1 with "FILE:LINE: why" in err. */
int	config_parse(struct config *, const char *buf, size_t len,
	    const char *file, char *err, size_t errlen);
/* KEY=VALUE lines; on error -1 and "FILE:LINE: why". *vars is a
 * NULL-terminated array of "KEY=VALUE" strings. */
int	envfile_parse(const char *buf, size_t len, const char *file,
	    char ***vars, char *err, size_t errlen);

/* Splits like sh does with quotes and backslashes, expanding nothing.
 * Returns a NULL-terminated array, or NULL with a reason in err. */
char  **split_words(const char *s, char *err, size_t errlen);
void	free_words(char **);

/* The first unquoted word of s that is exactly a shell operator
 * ("&&", "|", ";", ">", "2>&1", ...), or NULL. */
const char *shell_operator(const char *s);
int	is_sha(const char *);		/* 40 or 64 lowercase hex digits */
int	ref_ok(const char *);		/* acceptable as a git REF argument */
int	relpath_ok(const char *);	/* relative, no "..", no empty parts */
int	config_is_command(const char *key);	/* build, test, check, ... */
/* A sha (at most 64 characters of src) into dst. */
void	copy_sha(char dst[65], const char *src);

/* They exit with status 5 when out of memory: never NULL. */
char *xstrdup(const char *s) __attribute__((returns_nonnull));
void *xrealloc(void *p, size_t n) __attribute__((returns_nonnull));
int parse_long(const char *v, long lo, long hi, long *out);
char *trim(char *s);
int fields(char *s, char **f, int max);
int two_words(const char *line, char *a, size_t al, char *b, size_t bl);
unsigned long long fnv(unsigned long long h, const void *p, size_t n);
const char *find_bytes(const char *s, size_t len, const char *w, size_t n);
#endif
