/*
 * deploy.h: the pure core of deploy(1), free of I/O, so that a unit test
 * and a fuzz target can link against it: config parsing, word splitting,
 * ref and rev validation, the release history, rollback and prune choice.
 */
#ifndef DEPLOY_H
#define DEPLOY_H

#include <stddef.h>

enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1,	/* failed before the switch; nothing changed */
	EXIT_USAGE = 2,		/* usage or configuration error */
	EXIT_LOCKED = 3,	/* another deploy holds the lock */
	EXIT_SWITCHED_BACK = 4,	/* restart or check failed; switched back */
	EXIT_STUCK = 5		/* a person must look */
};

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
};

enum { VERIFY_OFF, VERIFY_COMMIT, VERIFY_TAG };

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
/* Whether a requirements file may share a venv keyed by its bytes: every
 * line blank, a comment, a plain requirement or an option naming no
 * local path. */
int	reqs_shareable(const char *buf, size_t len);

enum { EV_BUILD, EV_COMPLETE, EV_ACTIVATE, EV_FAILED, EV_REMOVE };

struct event {
	long long	 t;
	int		 type;
	char		 sha[65];
};

/* Parses the history file; malformed lines are skipped. */
int	history_parse(const char *buf, size_t len, struct event **, size_t *);
int	event_type(const char *);
const char *event_name(int);

enum { R_COMPLETE, R_FAILED, R_INCOMPLETE, R_FOREIGN };

struct release {
	char		 name[256];
	int		 state;
	long		 seq;		/* order of completion; -1 when none */
	long long	 completed;
	long long	 activated;
	int		 mark;		/* prune: 1 = remove */
};

/*
 * Merges the history with what releases/ holds: names[i] is an entry,
 * isdir[i] says whether it is a real directory. An entry the history
 * never saw being built is foreign: not ours to delete. Sorted newest
 * first: complete and failed ones by completion, then incomplete, then
 * foreign.
 */
int	releases_build(const struct event *, size_t, char *const *names,
	    const int *isdir, size_t n, struct release **, size_t *);
const char *state_name(int);
/* Index of the release named sha, or -1. */
long	release_find(const struct release *, size_t, const char *sha);
/* REV (full sha or unique prefix of >= 7) among complete and failed
 * releases: index, -1 none, -2 ambiguous, -3 malformed or too short. */
long	rev_match(const struct release *, size_t, const char *rev);
/* The complete release completed just before cur, or -1. */
long	rollback_target(const struct release *, size_t, long cur);
/* Sets mark on what prune removes; returns how many. */
size_t	prune_select(struct release *, size_t, long keep, long cur, long rb);

/* SHA-256 (FIPS 180-4), for the audit trail's chain of lines. */
struct sha256 {
	unsigned long	 h[8];		/* 32 bits used of each */
	unsigned long long len;		/* bytes so far */
	unsigned char	 buf[64];
	size_t		 nbuf;
};
void	sha256_init(struct sha256 *);
void	sha256_update(struct sha256 *, const void *, size_t);
void	sha256_final(struct sha256 *, unsigned char out[32]);
/* The digest of p as 64 lowercase hex digits and a NUL. */
void	sha256_hex(const void *p, size_t n, char out[65]);
/* Bytes of the UTF-8 sequence at s, or 0 when it is not one RFC 3629
 * allows (no overlong form, surrogate or code point past U+10FFFF). */
int	utf8_len(const unsigned char *s);
/* s as a quoted JSON string (malloc'd): controls escaped as JSON does,
 * each byte that is not valid UTF-8 as \ufffd. */
char   *json_quote(const char *s);

/* src as cat -v shows it, into dst (2 * n bytes at most): control
 * characters but tab and newline as ^X, DEL as ^?; returns the length. */
size_t	cat_v(char *dst, const char *src, size_t n);

/* One line of a step's output, for collapsing a repeated block. */
struct tline {
	const char	*p;
	size_t		 n;
};
#define TAIL_BLOCK	10	/* lines a repeated block may have */
/* At l[i], the block of lines (its length returned) repeated most often
 * right after it, *reps more times (0: none). */
size_t	tail_block(const struct tline *l, size_t n, size_t i, size_t *reps);

/* Whether pip's output (buf, len) says it failed for a reason a venv
 * built from nothing would meet too: what it is, or NULL. */
const char *pip_lasting(const char *buf, size_t len);

#endif
