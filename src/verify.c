/*
 * verify.c: verify: the signature, checked by git against our keys only.
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

#include "verify.h"
#include "child.h"
#include "config.h"
#include "core.h"
#include "files.h"
#include "msg.h"
#include "output.h"
#include "rmtree.h"
#include "root.h"

char signer[512];	/* who signed what is deployed, per git */
char refusal[640];	/* why it was refused, for the audit */

/*
 * git does the checking (verify-commit, verify-tag) in the mirror; we
 * only read its verdict. It runs in a private folder made for this run:
 * GNUPGHOME is a fresh homedir into which only gpg_keyring's keys are
 * imported, so no key of the user's own keyring counts (and with no
 * keyring it stays empty: every OpenPGP signature is refused); the ssh
 * allowed-signers file is a copy of allowed_signers (or empty). The key
 * files are read once, before the lock, with the config's trust checks:
 * a missing one is a configuration error, never "allow everything".
 */
struct keyfile {
	char	*name;		/* as shown in messages */
	char	*buf;
	size_t	 len;
};

static struct keyfile ssh_keys;

static struct keyfile *gpg_keys;

static size_t ngpg_keys;

static void
add_gpg_key(int dfd, const char *name, const char *shown)
{
	gpg_keys = xrealloc(gpg_keys, (ngpg_keys + 1) * sizeof(*gpg_keys));
	gpg_keys[ngpg_keys].name = xstrdup(shown);
	gpg_keys[ngpg_keys].buf = read_trusted(dfd, name, shown, "",
	    &gpg_keys[ngpg_keys].len);
	ngpg_keys++;
}

/* gpg_keyring as a folder: every file in it not starting with '.' */
static void
load_keyring_dir(int fd, const char *shown)
{
	struct dirent *d;
	struct stat st;
	char *f;
	DIR *dp;

	if (fstat(fd, &st) == -1)
		die(EXIT_USAGE, "%s: %s", shown, strerror(errno));
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		die(EXIT_USAGE, "%s: writable by group or others; refusing it "
		    "(chmod go-w %s)", shown, shown);
	if (st.st_uid != geteuid() && st.st_uid != 0)
		die(EXIT_USAGE, "%s: owned by uid %ld, not by you or root; "
		    "refusing it", shown, (long)st.st_uid);
	if ((dp = fdopendir(fd)) == NULL)
		die(EXIT_USAGE, "%s: %s", shown, strerror(errno));
	while ((d = readdir(dp)) != NULL) {
		if (d->d_name[0] == '.')
			continue;
		f = fmtpath("%s/%s", shown, d->d_name);
		add_gpg_key(dirfd(dp), d->d_name, f);
		free(f);
	}
	closedir(dp);
	if (ngpg_keys == 0)
		die(EXIT_USAGE, "%s: holds no key file; refusing to verify "
		    "against nothing", shown);
}

/* The key files, for verify = commit | tag; exit 2 when one is missing. */
void
load_keys(void)
{
	char *f, *shown;
	int fd;

	if (cfg.verify == VERIFY_OFF || ssh_keys.name != NULL || ngpg_keys > 0)
		return;
	if (cfg.allowed_signers == NULL && cfg.gpg_keyring == NULL)
		die(EXIT_USAGE, "verify = %s needs allowed_signers or gpg_keyring "
		    "in deploy.conf; nothing was changed", cfg.verify ==
		    VERIFY_TAG ? "tag" : "commit");
	if (cfg.allowed_signers != NULL) {
		f = fmtpath("shared/%s", cfg.allowed_signers);
		ssh_keys.name = fmtpath("%s/%s", root, f);
		ssh_keys.buf = read_trusted(rootfd, f, ssh_keys.name, "",
		    &ssh_keys.len);
		free(f);
	}
	if (cfg.gpg_keyring == NULL)
		return;
	f = fmtpath("shared/%s", cfg.gpg_keyring);
	shown = fmtpath("%s/%s", root, f);
	fd = openat(rootfd, f, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd != -1)
		load_keyring_dir(fd, shown);
	else
		add_gpg_key(rootfd, f, shown);
	free(shown);
	free(f);
}

/* removes the private folder made by private_keys() */
static void
drop_private(char *dir)
{
	char *slash = strrchr(dir, '/');
	int fd;

	*slash = '\0';
	if ((fd = open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY |
	    O_CLOEXEC)) != -1) {
		remove_tree(fd, slash + 1, NULL);
		close(fd);
	}
	*slash = '/';
}

/* The private folder: allowed_signers and gnupg/ with only our keys. */
static int
private_keys(char *dir, size_t dl, char *why, size_t wl)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	const char *tmp = getenv("TMPDIR");
	char *home, **argv, name[32];
	struct result r;
	size_t i, n;

	snprintf(dir, dl, "%s/deploy-keys.XXXXXX", tmp && *tmp == '/' ? tmp :
	    "/tmp");
	if (mkdtemp(dir) == NULL) {
		snprintf(why, wl, "%s: %s", dir, strerror(errno));
		return -1;
	}
	home = fmtpath("%s/gnupg", dir);
	if (mkdir(home, 0700) == -1 || write_new(dir, "allowed_signers",
	    ssh_keys.buf ? ssh_keys.buf : "", ssh_keys.len) == -1) {
		snprintf(why, wl, "%s: %s", dir, strerror(errno));
		free(home);
		return -1;
	}
	argv = words_plus("gpg", "--batch", "--quiet", "--no-tty", "--homedir",
	    home, "--import", (char *)NULL);
	for (i = 0; i < ngpg_keys; i++) {
		snprintf(name, sizeof(name), "key%zu", i);
		if (write_new(dir, name, gpg_keys[i].buf, gpg_keys[i].len) == -1) {
			snprintf(why, wl, "%s: %s", dir, strerror(errno));
			free(home);
			free_words(argv);
			return -1;
		}
		for (n = 0; argv[n]; n++)
			;
		argv = xrealloc(argv, (n + 2) * sizeof(*argv));
		argv[n] = fmtpath("%s/%s", dir, name);
		argv[n + 1] = NULL;
	}
	o.timeout = 60;
	if (ngpg_keys > 0 && run(argv, &o, &r) == -1) {
		snprintf(why, wl, "gpg could not import %s (%s)", gpg_keys[0].name,
		    why_failed(&r, "gpg", o.timeout));
		free(home);
		free_words(argv);
		return -1;
	}
	free(home);
	free_words(argv);
	return 0;
}

/* gpg's status keywords that end a verdict, and what they mean */
static const struct {
	const char	*kw;
	const char	*why;		/* NULL: good */
} gpg_verdicts[] = {
	{ "GOODSIG", NULL },
	{ "EXPKEYSIG", "signed by an expired key" },
	{ "EXPSIG", "expired signature" },
	{ "REVKEYSIG", "signed by a revoked key" },
	{ "BADSIG", "bad signature" },
	{ "NO_PUBKEY", "signed by a key not allowed" },
};

/* One "[GNUPG:] KEYWORD ARG REST" line of git's --raw output. */
static void
gpg_status(char *line, const char **why, char *who, size_t wl)
{
	char *kw = line, *arg, *rest;
	size_t i;

	arg = kw + strcspn(kw, " ");
	if (*arg != '\0')
		*arg++ = '\0';
	rest = arg + strcspn(arg, " ");
	if (*rest != '\0')
		*rest++ = '\0';
	if (strcmp(kw, "NEWSIG") == 0 && *arg != '\0' && who[0] == '\0')
		snprintf(who, wl, "%s", arg);
	for (i = 0; i < sizeof(gpg_verdicts) / sizeof(gpg_verdicts[0]); i++) {
		if (strcmp(kw, gpg_verdicts[i].kw) != 0)
			continue;
		if (*why == NULL || gpg_verdicts[i].why != NULL)
			*why = gpg_verdicts[i].why;
		if (*rest != '\0')
			snprintf(who, wl, "%s (openpgp %s)", rest, arg);
		else if (who[0] != '\0')
			snprintf(who + strlen(who), wl - strlen(who),
			    " (openpgp %s)", arg);
		else
			snprintf(who, wl, "openpgp %s", arg);
		return;
	}
}

/*
 * git's verdict, from what it printed: gpg's status lines (--raw) or
 * ssh-keygen's words. 0 good (signer set), -1 refused (refusal set).
 */
static int
read_verdict(char *out, int ok, const char *what)
{
	char *line, *save, *p, who[400] = "", other[200] = "";
	const char *why = "unsigned";
	int good = 0;

	for (line = strtok_r(out, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "[GNUPG:] ", 9) == 0) {
			why = why && strcmp(why, "unsigned") == 0 ? NULL : why;
			gpg_status(line + 9, &why, who, sizeof(who));
			good = why == NULL;
		} else if (strncmp(line, "Good \"git\" signature ", 21) == 0 &&
		    (p = strstr(line, " key ")) != NULL) {
			/* "for PRINCIPAL with TYPE key FPR", or no "for"
			 * when the key is in no line of allowed_signers */
			good = strncmp(line + 21, "for ", 4) == 0 &&
			    strstr(line, " with ") != NULL;
			if (good)
				snprintf(who, sizeof(who), "%.*s (ssh %s)",
				    (int)(strstr(line, " with ") - line - 25),
				    line + 25, p + 5);
			else
				snprintf(who, sizeof(who), "ssh key %s", p + 5);
			why = good ? NULL : "signed by a key not allowed";
		} else if (strstr(line, "no signature found") != NULL)
			why = "unsigned";
		else if (strstr(line, "key has expired") != NULL) {
			why = "signed by an expired key";	/* valid-before */
			good = 0;
		} else if (strstr(line, "erification failed") != NULL ||
		    strstr(line, "ould not verify") != NULL) {
			why = "bad signature";
			good = 0;
		} else if (other[0] == '\0' && strcmp(line, "No principal "
		    "matched.") != 0)
			snprintf(other, sizeof(other), "%s", line);
	}
	/* words we do not know, where a signature was expected: say them
	 * rather than call the commit unsigned */
	if (why != NULL && strcmp(why, "unsigned") == 0 && !good &&
	    other[0] != '\0') {
		why = "not accepted";
		snprintf(who, sizeof(who), "%s", other);
	}
	signer[0] = '\0';
	if (ok && good && why == NULL && who[0] != '\0') {
		snprintf(signer, sizeof(signer), "%s", printable(who));
		return 0;
	}
	snprintf(refusal, sizeof(refusal), "%s %s%s%s", what, why ? why :
	    "not accepted", who[0] ? ": " : "", who[0] ? printable(who) : "");
	return -1;
}

/*
 * The tag object's own header: its "tag" must be the name deployed and its
 * "object" the commit built, or v1's signed tag copied under another name
 * (git update-ref refs/tags/v9 <v1's tag>) would deploy v1's commit as
 * v9, "signed by alice". 0 when it fits, -1 refused (refusal set).
 */
static int
tag_header(const char *ref, const char *tag, const char *sha)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	const char *want = strncmp(ref, "refs/tags/", 10) == 0 ? ref + 10 : ref;
	char out[4096], *line, *save, **argv;
	const char *name = NULL, *obj = NULL;
	struct result r;

	argv = words_plus("git", gitdir(), "cat-file", "tag", tag,
	    (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	o.timeout = 60;
	out[0] = '\0';
	if (run(argv, &o, &r) == 0)
		for (line = strtok_r(out, "\n", &save); line != NULL &&
		    *line != '\0'; line = strtok_r(NULL, "\n", &save)) {
			if (strncmp(line, "object ", 7) == 0 && obj == NULL)
				obj = line + 7;
			else if (strncmp(line, "tag ", 4) == 0 && name == NULL)
				name = line + 4;
		}
	free_words(argv);
	if (name != NULL && obj != NULL && strcmp(name, want) == 0 &&
	    strcmp(obj, sha) == 0)
		return 0;
	if (name != NULL && strcmp(name, want) != 0)
		snprintf(refusal, sizeof(refusal), "tag '%s' is a copy of the "
		    "tag object '%s' (its signed name): a tag is deployed only "
		    "under the name it was signed with", printable(ref),
		    printable(name));
	else
		snprintf(refusal, sizeof(refusal), "tag '%s': its tag object "
		    "does not name commit %.12s itself", printable(ref), sha);
	return -1;
}

/*
 * verify = tag: REF must name an annotated tag whose commit is sha, and
 * whose own header says so (tag_header). Its object id into tag; 0 when it does, -1 refused, -2 the mirror's tag
 * names another commit (for -n: the remote moved it since the fetch).
 */
static int
tag_object(const char *ref, const char *sha, char *tag)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char out[256], *name, *s1, *s2, **argv, *f[2];
	struct result r;
	int st = 0;

	name = strncmp(ref, "refs/tags/", 10) == 0 ? xstrdup(ref) :
	    fmtpath("refs/tags/%s", ref);
	s1 = fmtpath("%s^{tag}", name);
	s2 = fmtpath("%s^{commit}", name);
	argv = words_plus("git", gitdir(), "rev-parse", s1, s2, (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	o.timeout = 60;
	out[0] = '\0';
	if (run(argv, &o, &r) == -1 || fields(out, f, 2) != 2 ||
	    !is_sha(f[0]) || !is_sha(f[1])) {
		snprintf(refusal, sizeof(refusal), "'%s' is not an annotated tag "
		    "(verify = tag takes a signed tag; a lightweight tag or a "
		    "branch carries no signature)", printable(ref));
		st = -1;
	} else if (strcmp(f[1], sha) != 0) {
		snprintf(refusal, sizeof(refusal), "tag '%s' names %.12s, not "
		    "%.12s", printable(ref), f[1], sha);
		st = -2;
	} else if ((st = tag_header(ref, f[0], sha)) == 0)
		copy_sha(tag, f[0]);
	free_words(argv);
	free(s2);
	free(s1);
	free(name);
	return st;
}

/*
 * Asks git whether sha (verify = commit) or the tag REF (verify = tag)
 * carries a good signature by an allowed key. 0 yes (signer says whose),
 * -1 refused (refusal says why), -2 as tag_object.
 */
int
check_signature(const char *ref, const char *sha)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char dir[PATH_MAX], why[PATH_MAX + 128], out[8192], tag[65];
	char *extra[2] = { NULL, NULL }, *asf, **argv;
	struct result r;
	int st;

	load_keys();
	signer[0] = refusal[0] = '\0';
	if (cfg.verify == VERIFY_TAG && (st = tag_object(ref, sha, tag)) != 0)
		return st;
	dir[0] = '\0';
	if (private_keys(dir, sizeof(dir), why, sizeof(why)) == -1) {
		if (dir[0] == '/' && strstr(dir, "XXXXXX") == NULL)
			drop_private(dir);
		die(EXIT_USAGE, "verify: %s; nothing was built or switched", why);
	}
	extra[0] = fmtpath("GNUPGHOME=%s/gnupg", dir);
	asf = fmtpath("gpg.ssh.allowedSignersFile=%s/allowed_signers", dir);
	/* git's own programs and no trust floor from the user's config:
	 * the private homedir already holds nothing but allowed keys */
	argv = words_plus("git", gitdir(), "-c", "gpg.format=ssh", "-c", asf,
	    "-c", "gpg.program=gpg", "-c", "gpg.openpgp.program=gpg", "-c",
	    "gpg.ssh.program=ssh-keygen", "-c", "gpg.minTrustLevel=undefined",
	    cfg.verify == VERIFY_TAG ? "verify-tag" : "verify-commit", "--raw",
	    cfg.verify == VERIFY_TAG ? tag : sha, (char *)NULL);
	o.extra = extra;
	o.out = out;
	o.outlen = sizeof(out);
	o.bothout = 1;
	o.timeout = 60;
	out[0] = '\0';
	st = run(argv, &o, &r);
	drop_private(dir);
	if (r.signo)
		leave(128 + r.signo);
	st = read_verdict(out, st == 0, cfg.verify == VERIFY_TAG ? "tag" :
	    "commit");
	free_words(argv);
	free(asf);
	free(extra[0]);
	return st;
}

/* The verify step: a refusal is one line, before anything is built. */
void
step_verify(const char *ref, const char *sha)
{
	step_begin("verify");
	if (check_signature(ref, sha) == 0) {
		step_done("verify", signer);
		return;
	}
	logf_("== [%d] verify refused: %s\n", stepno, refusal);
	live_clear();
	die(EXIT_FAILED, "refused %.12s: %s; nothing was built or switched",
	    sha, refusal);
}

/*
 * Before rollback, activate or migrate switch to or migrate a release
 * built earlier (perhaps while verify was off, or under keys since
 * removed): a fresh verdict from the mirror, under today's keys. verify =
 * commit asks for sha's own signature; verify = tag for a signed tag in
 * the mirror that names sha, under its signed name. 0 good (signer says
 * whose, and verify off is good), -1 refused (refusal says why).
 */
int
verify_release(const char *sha)
{
	struct runopts o = opts(root, ENV_NONE, NULL, NULL);
	char out[8192], *line, *save, **argv, why[640] = "";
	struct result r;
	int st = -1;

	if (cfg.verify == VERIFY_OFF)
		return 0;
	if (cfg.verify == VERIFY_COMMIT)
		return check_signature(sha, sha) == 0 ? 0 : -1;
	argv = words_plus("git", gitdir(), "for-each-ref", "--format="
	    "%(refname)", "--points-at", sha, "refs/tags/", (char *)NULL);
	o.out = out;
	o.outlen = sizeof(out);
	o.timeout = 60;
	out[0] = '\0';
	if (run(argv, &o, &r) == 0)
		for (line = strtok_r(out, "\n", &save); line != NULL && st != 0;
		    line = strtok_r(NULL, "\n", &save)) {
			if (strncmp(line, "refs/tags/", 10) == 0 &&
			    (st = check_signature(line + 10, sha)) == 0)
				break;
			if (why[0] == '\0')	/* the first tag's, to say */
				snprintf(why, sizeof(why), "%s", refusal);
		}
	free_words(argv);
	if (st == 0)
		return 0;
	snprintf(refusal, sizeof(refusal), "no tag in the mirror that names "
	    "it is signed by an allowed key%s%.500s", why[0] ? ": " : "", why);
	return -1;
}
