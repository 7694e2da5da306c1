/*
 * Unit test of the pure core in src/: config parsing, word splitting,
 * ref and rev checks, release ordering, rollback and prune choice, the
 * XML-RPC answers of supervisord. TAP.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "order.h"
#include "reqs.h"
#include "sha256.h"
#include "json.h"
#include "tail.h"
#include "rpcparse.h"

static int n, failed;

static void
ok(int cond, const char *what)
{
	n++;
	if (!cond)
		failed++;
	printf("%sok %d - %s\n", cond ? "" : "not ", n, what);
}

static int
parse(const char *text, struct config *c, char *err)
{
	config_init(c);
	return config_parse(c, text, strlen(text), "f.conf", err, ERRLEN);
}

static void
test_config(void)
{
	struct config c;
	char err[ERRLEN];

	ok(parse("repo = /srv/git/app\n# c\n\nkeep=3\ntest = python -m "
	    "pytest -q\nreuse_venv = no\n", &c, err) == 0, "a good config parses");
	ok(strcmp(c.repo, "/srv/git/app") == 0, "repo value trimmed");
	ok(c.keep == 3 && c.reuse_venv == 0, "keep and reuse_venv set");
	ok(c.timeout == 1800 && c.check_timeout == 30, "defaults kept");
	config_free(&c);

	ok(parse("repo = x\r\nkeep = 4\r\n", &c, err) == 0 && c.keep == 4,
	    "CRLF line ends are accepted");
	config_free(&c);

	ok(parse("repo = x\nfoo = 1\n", &c, err) == -1 &&
	    strcmp(err, "f.conf:2: unknown key 'foo'") == 0,
	    "unknown key names file and line");
	config_free(&c);
	ok(parse("repo = x\njust words\n", &c, err) == -1 &&
	    strncmp(err, "f.conf:2:", 9) == 0, "line without = refused");
	config_free(&c);
	ok(parse("repo = x\nkeep = 3\nkeep = 4\n", &c, err) == -1 &&
	    strstr(err, "f.conf:3:") && strstr(err, "line 2"),
	    "duplicate key refused, naming both lines");
	config_free(&c);
	ok(parse("repo = x\nkeep = 1\n", &c, err) == -1, "keep below 2 refused");
	config_free(&c);
	ok(parse("repo = x\nkeep = -5\n", &c, err) == -1, "negative refused");
	config_free(&c);
	ok(parse("repo = x\ntimeout = 99999999999999999999999\n", &c, err) == -1,
	    "overflow refused");
	config_free(&c);
	ok(parse("repo = x\ntimeout = 10s\n", &c, err) == -1, "10s refused");
	config_free(&c);
	ok(parse("repo = x\ntest = python 'oops\n", &c, err) == -1 &&
	    strstr(err, "unterminated"), "unterminated quote refused");
	config_free(&c);
	ok(parse("repo = x\nlink = /etc/passwd\n", &c, err) == -1,
	    "absolute link refused");
	config_free(&c);
	ok(parse("repo = x\nlink = a/../../b\n", &c, err) == -1,
	    "link with .. refused");
	config_free(&c);
	ok(parse("repo = x\nenvfile = ../env\n", &c, err) == -1,
	    "envfile with .. refused");
	config_free(&c);
	ok(parse("keep = 3\n", &c, err) == -1 && strstr(err, "repo"),
	    "missing repo refused");
	config_free(&c);
	ok(parse("repo = x\nbranch = --upload-pack=x\n", &c, err) == -1,
	    "branch starting with - refused");
	config_free(&c);
	ok(parse("repo = x\nreuse_venv = maybe\n", &c, err) == -1,
	    "reuse_venv must be yes or no");
	config_free(&c);
	ok(parse("repo = x\nbuild =\n", &c, err) == -1, "empty value refused");
	config_free(&c);
	{
		char buf[] = "repo = x\nkeep = 3\0\n";
		config_init(&c);
		ok(config_parse(&c, buf, sizeof(buf) - 1, "f.conf", err,
		    ERRLEN) == -1 && strstr(err, "NUL"), "NUL byte refused");
		config_free(&c);
	}
	{
		size_t len = CONF_MAX + 10;
		char *big = malloc(len);
		memset(big, '#', len);
		config_init(&c);
		ok(config_parse(&c, big, len, "f.conf", err, ERRLEN) == -1,
		    "oversized config refused");
		config_free(&c);
		free(big);
	}
}

static void
test_words(void)
{
	char err[128], **w;

	w = split_words("  python -m 'py test' \"a \\\"b\\\" $HOME\" c\\ d ",
	    err, sizeof(err));
	ok(w && strcmp(w[0], "python") == 0 && strcmp(w[2], "py test") == 0 &&
	    strcmp(w[3], "a \"b\" $HOME") == 0 && strcmp(w[4], "c d") == 0 &&
	    w[5] == NULL, "quotes and backslashes as in sh, nothing expanded");
	free_words(w);
	w = split_words("a;b `c` $(d)", err, sizeof(err));
	ok(w && strcmp(w[0], "a;b") == 0 && strcmp(w[1], "`c`") == 0 &&
	    strcmp(w[2], "$(d)") == 0, "metacharacters stay literal");
	free_words(w);
	ok(split_words("'a", err, sizeof(err)) == NULL, "unterminated '");
	ok(split_words("\"a", err, sizeof(err)) == NULL, "unterminated \"");
	ok(split_words("a\\", err, sizeof(err)) == NULL, "trailing backslash");
	ok(split_words("   ", err, sizeof(err)) == NULL, "empty command");
	w = split_words("''", err, sizeof(err));
	ok(w && w[0][0] == '\0' && w[1] == NULL, "'' is an empty word");
	free_words(w);
	ok(shell_operator("curl -sf 'http://x/a b' && echo ok") != NULL &&
	    strcmp(shell_operator("curl 'x' && echo ok"), "&&") == 0,
	    "an unquoted && after a quoted word is a shell operator");
	ok(strcmp(shell_operator("a 2>&1"), "2>&1") == 0 &&
	    strcmp(shell_operator("a >> f"), ">>") == 0 &&
	    strcmp(shell_operator("a|b | c"), "|") == 0,
	    "2>&1, >> and a lone | are operators");
	ok(shell_operator("a '&&' \"|\" \\; b>f a;b ||x") == NULL,
	    "quoted, escaped or attached operators are not reported");
	ok(shell_operator("a 'unterminated &&") == NULL && shell_operator("")
	    == NULL, "nothing for a line that does not split");
}

static void
test_refs(void)
{
	ok(is_sha("0123456789abcdef0123456789abcdef01234567"), "40 hex is a sha");
	ok(!is_sha("0123456789ABCDEF0123456789abcdef01234567"), "upper case not");
	ok(!is_sha("0123456"), "short is not a sha");
	ok(ref_ok("main") && ref_ok("v1.2") && ref_ok("feature/x"), "refs ok");
	ok(!ref_ok("--upload-pack=touch /tmp/x") && !ref_ok("-h") &&
	    !ref_ok(""), "refs starting with - refused");
	ok(!ref_ok("a b") && !ref_ok("a\nb"), "spaces and newlines refused");
	ok(relpath_ok("a/b.txt") && !relpath_ok("/a") && !relpath_ok("a/../b") &&
	    !relpath_ok("a//b") && !relpath_ok(".."), "relative paths");
}

#define A "aaaaaaa000000000000000000000000000000000"
#define B "bbbbbbb000000000000000000000000000000000"
#define C "ccccccc000000000000000000000000000000000"
#define D "ccccccc111111111111111111111111111111111"

static void
test_history(void)
{
	const char *h =
	    "0 build eeeeeee000000000000000000000000000000000\n"
	    "1 complete " C "\n"	/* later removed, then rebuilt */
	    "2 complete " A "\n"
	    "3 activate " A "\n"
	    "4 complete " B "\n"
	    "5 activate " B "\n"
	    "6 remove " C "\n"
	    "garbage line\n"
	    "7 complete " C "\n"
	    "8 complete " D "\n"
	    "9 failed " D "\n"
	    "10 complete " A;		/* partial line: not a record */
	char *names[] = { A, B, C, D, "tmp",
	    "eeeeeee000000000000000000000000000000000",
	    "fffffff000000000000000000000000000000000" };
	int isdir[] = { 1, 1, 1, 1, 1, 1, 1 };
	struct event *ev;
	struct release *r;
	size_t nev, nr;
	long cur, rb;

	history_parse(h, strlen(h), &ev, &nev);
	ok(nev == 10, "malformed and partial lines skipped");
	releases_build(ev, nev, names, isdir, 7, &r, &nr);
	ok(nr == 7 && strcmp(r[0].name, D) == 0 && r[0].state == R_FAILED,
	    "newest first; failed after switch is failed");
	ok(strcmp(r[1].name, C) == 0 && strcmp(r[2].name, B) == 0 &&
	    strcmp(r[3].name, A) == 0, "ordered by completion, not name");
	ok(r[4].state == R_INCOMPLETE && r[5].state == R_FOREIGN &&
	    r[6].state == R_FOREIGN, "a sha whose build began is incomplete; "
	    "a sha never built here and other names are foreign");
	cur = release_find(r, nr, B);
	rb = rollback_target(r, nr, cur);
	ok(rb >= 0 && strcmp(r[rb].name, A) == 0, "rollback from B picks A");
	cur = release_find(r, nr, C);
	rb = rollback_target(r, nr, cur);
	ok(rb >= 0 && strcmp(r[rb].name, B) == 0,
	    "rollback from rebuilt C picks B");
	ok(rollback_target(r, nr, release_find(r, nr, A)) == -1,
	    "nothing before the oldest");
	ok(r[release_find(r, nr, C)].lived == 0 &&
	    r[release_find(r, nr, C)].activated == 0,
	    "a removed and rebuilt release forgets when it was live");
	ok(rev_match(r, nr, "ccccccc") == -2, "ambiguous prefix");
	ok(rev_match(r, nr, "cccccc") == -3, "prefix under 7 refused");
	ok(rev_match(r, nr, "bbbbbbb0") == 2, "unique prefix found");
	ok(rev_match(r, nr, "eeeeeee") == -1, "incomplete is not a REV");
	ok(rev_match(r, nr, "zzzzzzz") == -3, "non-hex refused");

	/* keep 2, current A (old, after a rollback) */
	cur = release_find(r, nr, A);
	rb = rollback_target(r, nr, cur);
	ok(prune_select(r, nr, 2, cur, rb) == 2 && r[0].mark && !r[1].mark &&
	    !r[2].mark && !r[3].mark && r[4].mark && !r[5].mark && !r[6].mark,
	    "prune: failed and incomplete go, keep 2 newest, current stays, "
	    "foreign never");
	cur = release_find(r, nr, C);
	rb = rollback_target(r, nr, cur);
	ok(prune_select(r, nr, 2, cur, rb) == 3 && !r[1].mark && !r[2].mark &&
	    r[3].mark, "prune: current and rollback kept, older complete goes");
	free(ev);
	free(r);
}

/* names that sort against their completion order, either way */
static void
test_order(void)
{
	const char *h =
	    "1 complete " B "\n"
	    "2 complete " D "\n"
	    "3 complete " A "\n"
	    "4 complete " C "\n";
	char *names[] = { A, B, C, D };
	int isdir[] = { 1, 1, 1, 1 };
	struct event *ev;
	struct release *r;
	size_t nev, nr;

	history_parse(h, strlen(h), &ev, &nev);
	releases_build(ev, nev, names, isdir, 4, &r, &nr);
	ok(nr == 4 && strcmp(r[0].name, C) == 0 && strcmp(r[1].name, A) == 0 &&
	    strcmp(r[2].name, D) == 0 && strcmp(r[3].name, B) == 0,
	    "newest first by the history, neither by name nor against it");
	ok(strcmp(r[rollback_target(r, nr, 0)].name, A) == 0 &&
	    strcmp(r[rollback_target(r, nr, 1)].name, D) == 0,
	    "rollback follows the history too");
	ok(prune_select(r, nr, 2, 0, 1) == 2 && r[2].mark && r[3].mark,
	    "prune removes the oldest by the history");
	free(ev);
	free(r);
}

static void
test_envfile(void)
{
	char err[ERRLEN], **v;
	const char *good = "# c\nA=1\n\nB_2=x=y \n";

	ok(envfile_parse(good, strlen(good), "env", &v, err, sizeof(err)) == 0 &&
	    strcmp(v[0], "A=1") == 0 && strcmp(v[1], "B_2=x=y ") == 0 &&
	    v[2] == NULL, "envfile parsed, value kept as written");
	free_words(v);
	ok(envfile_parse("A=1\nnot a pair\n", 15, "env", &v, err,
	    sizeof(err)) == -1 && strcmp(err, "env:2: expected KEY=VALUE") == 0,
	    "malformed envfile line named");
	ok(envfile_parse("1A=x\n", 5, "env", &v, err, sizeof(err)) == -1,
	    "key starting with digit refused");
	ok(envfile_parse("A B=x\n", 6, "env", &v, err, sizeof(err)) == -1,
	    "key with space refused");
}

static int
shareable(const char *s)
{
	return reqs_shareable(s, strlen(s));
}

static void
test_reqs(void)
{
	static const char *yes[] = {
		"", "\n\n", "# only a comment\n", "appdep==1.0\n",
		"appdep==1.0", "Flask[async, dotenv] >= 2.0, < 3 ; "
		    "python_version >= \"3.8\"\n",
		"zope.interface~=5.4\r\n", "  requests  # a comment\n",
		"x-y_z.w (>=1.0)\n", "appdep==1.0 --hash=sha256:0123abcd\n",
		"appdep==1.0 --hash sha256:0123abcd --hash=md5:ff\n",
		"-i https://pypi.org/simple\n",
		"--index-url=https://pypi.org/simple\n",
		"--extra-index-url http://mirror.example:8080/simple/\n",
		"--only-binary :all:\n--no-binary=lxml,psycopg2\n",
		"--prefer-binary\n--pre\n--no-index\n--require-hashes\n",
		"--trusted-host mirror.example:8080\n",
		"appdep; sys_platform == 'linux' and extra == 'a-b'\n",
		NULL
	};
	static const char *no[] = {
		"-f wheels\nmylib\n", "--find-links wheels\nmylib\n",
		"--find-links=https://example.org/wheels\n",
		"--find https://example.org/wheels\n",
		"vendor/mylib\n", "./vendor/mylib\n", "/abs/lib\n", "~/lib\n",
		"mylib-1.0-py3-none-any.whl\n", "mylib.tar.gz\n", "MYLIB.ZIP\n",
		"wheels/x-1.0-py3-none-any.whl\n",
		"mylib @ https://example.org/mylib.whl\n",
		"https://example.org/mylib-1.0.tar.gz\n",
		"file:///srv/mylib\n", "-r other.txt\n", "--requirement=o.txt\n",
		"-c constraints.txt\n", "-e .\n", "--editable=git+https://x\n",
		"-i file:///srv/index\n", "--index-url /srv/index\n",
		"-i https://pypi.org/${SECRET}/simple\n", "${LIB}\n",
		"appdep==1.0 \\\n  --hash=sha256:00\n", "appdep==1.0 -f wheels\n",
		"appdep==1.0 --hash=sha256:../../x\n", "appdep#egg\n",
		"appdep; python_version > \"3\" and x == \"/a\"\n",
		"appdep==1.0 mylib\n", "[extra]\n", "--trusted-host\n",
		"--no-binary\n", "-i\n", "--pre wheels\n",
		NULL
	};
	const char **p;
	char msg[200], *c;

	for (p = yes; *p; p++) {
		snprintf(msg, sizeof(msg), "requirements shareable: %.60s", *p);
		for (c = msg; (c = strchr(c, '\n')) != NULL; )
			*c = '|';
		ok(shareable(*p), msg);
	}
	for (p = no; *p; p++) {
		snprintf(msg, sizeof(msg), "requirements not shareable: %.60s",
		    *p);
		for (c = msg; (c = strchr(c, '\n')) != NULL; )
			*c = '|';
		ok(!shareable(*p), msg);
	}
	ok(!reqs_shareable("appdep\0/x\n", 10), "a NUL byte: not shareable");
	ok(lock_shareable("[[package]]\nname = \"a\"\nversion = \"1.0\"\n", 39),
	    "a poetry.lock of index packages: shareable");
	ok(!lock_shareable("[[package]]\n[package.source]\ntype = \"directory\"\n"
	    "url = \"lib\"\n", 60), "a folder source: not shareable");
	ok(!lock_shareable("x\n  type = \"file\"\n", 18),
	    "a file source: not shareable");
	ok(!lock_shareable("develop = true", 14), "develop = true: not shareable");
	ok(lock_shareable("develop = false\n", 16), "develop = false: shareable");
	ok(reqs_shareable("appdep==1.0\n/x", 12),
	    "only len bytes are read");
}

static void
test_sha256(void)
{
	static const struct {
		const char *in;
		const char *hex;
	} v[] = {
		{ "", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ "abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
		{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
		  "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
		/* 55 and 56 bytes: the padding's two cases */
		{ "0123456789012345678901234567890123456789012345678901234",
		  "f34d5a0f80c0cbf84c8c0b90218c22637abd199965249da736a20143c8c9c9d9" },
		{ "01234567890123456789012345678901234567890123456789012345",
		  "83aa034bda83e458a0dc9cbce0d4e354716aa0ff770ed37ac0ed2b292052e4af" },
	};
	char hex[65], msg[80], *a;
	struct sha256 c;
	unsigned char d[32];
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		sha256_hex(v[i].in, strlen(v[i].in), hex);
		snprintf(msg, sizeof(msg), "sha256 of %zu bytes", strlen(v[i].in));
		ok(strcmp(hex, v[i].hex) == 0, msg);
	}
	/* a million 'a's, fed in uneven pieces */
	a = malloc(1000000);
	memset(a, 'a', 1000000);
	sha256_init(&c);
	for (i = 0; i < 1000000; i += 997)
		sha256_update(&c, a + i, 1000000 - i < 997 ? 1000000 - i : 997);
	sha256_final(&c, d);
	ok(d[0] == 0xcd && d[1] == 0xc7 && d[30] == 0x2c && d[31] == 0xd0,
	    "sha256 of a million 'a's in pieces");
	free(a);
}

static void
test_verify_keys(void)
{
	struct config c;
	char err[ERRLEN];

	ok(parse("repo = x\n", &c, err) == 0 && c.verify == VERIFY_OFF,
	    "verify is off by default");
	config_free(&c);
	ok(parse("repo = x\nverify = tag\nallowed_signers = keys/allowed\n"
	    "gpg_keyring = keys/gpg\n", &c, err) == 0 && c.verify == VERIFY_TAG &&
	    strcmp(c.allowed_signers, "keys/allowed") == 0 &&
	    strcmp(c.gpg_keyring, "keys/gpg") == 0, "verify and key files parse");
	config_free(&c);
	ok(parse("repo = x\nverify = commit\n", &c, err) == 0 &&
	    c.verify == VERIFY_COMMIT, "verify = commit");
	config_free(&c);
	ok(parse("repo = x\nverify = yes\n", &c, err) == -1 &&
	    strstr(err, "f.conf:2:") && strstr(err, "off, commit or tag"),
	    "verify = yes refused, naming the choices");
	config_free(&c);
	ok(parse("repo = x\nallowed_signers = /etc/keys\n", &c, err) == -1 &&
	    parse("repo = x\ngpg_keyring = ../k\n", &c, err) == -1,
	    "key files must be under shared/");
	config_free(&c);
}

static int
quoted(const char *in, const char *want)
{
	char *q = json_quote(in);
	int r = strcmp(q, want) == 0;

	if (!r)
		printf("# json_quote gave %s, not %s\n", q, want);
	free(q);
	return r;
}

static void
test_utf8(void)
{
	static const struct {
		const char	*s;
		int		 len;
		const char	*what;
	} u[] = {
		{ "a", 1, "ASCII" },
		{ "\xc3\xa9", 2, "U+00E9" },
		{ "\xc2\x80", 2, "U+0080, the lowest two-byte form" },
		{ "\xc1\xbf", 0, "C1 lead: overlong" },
		{ "\xe2\x82\xac", 3, "U+20AC" },
		{ "\xe0\x80\xaf", 0, "E0 80: overlong" },
		{ "\xe0\xa0\x80", 3, "E0 A0 80: U+0800" },
		{ "\xed\x9f\xbf", 3, "U+D7FF" },
		{ "\xed\xa0\x80", 0, "ED A0: a surrogate" },
		{ "\xed\xbf\xbf", 0, "ED BF: a surrogate" },
		{ "\xef\xbf\xbd", 3, "U+FFFD" },
		{ "\xf0\x80\x80\xaf", 0, "F0 80: overlong" },
		{ "\xf0\x90\x80\x80", 4, "U+10000" },
		{ "\xf4\x8f\xbf\xbf", 4, "U+10FFFF" },
		{ "\xf4\x90\x80\x80", 0, "F4 90: past U+10FFFF" },
		{ "\xf5\x80\x80\x80", 0, "F5 lead" },
		{ "\xff", 0, "FF lead" },
		{ "\x80", 0, "a lone continuation byte" },
		{ "\xe2\x82", 0, "cut short" },
		{ "\xe2\x82(", 0, "a non-continuation third byte" },
	};
	size_t i;
	char what[128];

	for (i = 0; i < sizeof(u) / sizeof(u[0]); i++) {
		snprintf(what, sizeof(what), "utf8_len: %s is %d", u[i].what,
		    u[i].len);
		ok(utf8_len((const unsigned char *)u[i].s) == u[i].len, what);
	}
	ok(quoted("a\tb\nc\rd\be\ff", "\"a\\tb\\nc\\rd\\be\\ff\""),
	    "json_quote: \\t \\n \\r \\b \\f as JSON writes them");
	ok(quoted("\x01\x1b[2J\x7f", "\"\\u0001\\u001b[2J\\u007f\""),
	    "json_quote: other controls as \\u00XX");
	ok(quoted("say \"hi\" \\o/", "\"say \\\"hi\\\" \\\\o/\""),
	    "json_quote: quote and backslash escaped");
	ok(quoted("\xed\xa0\x80x\xf5\xc3\xa9", "\"\\ufffd\\ufffd\\ufffdx\\ufffd\xc3\xa9\""),
	    "json_quote: each invalid byte a U+FFFD, valid UTF-8 kept");
	ok(quoted(NULL, "\"\""), "json_quote: NULL is the empty string");
}

static void
test_output(void)
{
	static const char *b[] = { "x", "a", "b", "c", "d", "a", "b", "c", "d",
	    "a", "b", "c", "d", "y", "y", "y", "a", "b", "a" };
	struct tline l[sizeof(b) / sizeof(b[0])];
	char out[64];
	size_t i, r, n = sizeof(b) / sizeof(b[0]);

	ok(cat_v(out, "a\033[2J\r\n\tb\x7f\x01\xc3\xa9", 13) == 17 &&
	    memcmp(out, "a^[[2J^M\n\tb^?^A\xc3\xa9", 17) == 0,
	    "cat_v: ESC ^[, CR ^M, DEL ^?, ^A; newline, tab and UTF-8 kept");
	for (i = 0; i < n; i++) {
		l[i].p = b[i];
		l[i].n = strlen(b[i]);
	}
	ok(tail_block(l, n, 0, &r) == 1 && r == 0, "tail_block: x alone");
	ok(tail_block(l, n, 1, &r) == 4 && r == 2,
	    "tail_block: a 4-line block, then 2 more times");
	ok(tail_block(l, n, 13, &r) == 1 && r == 2, "tail_block: y 3 times");
	ok(tail_block(l, n, 16, &r) == 1 && r == 0,
	    "tail_block: a b a is no repeat");
	ok(tail_block(l, 3, 1, &r) == 1 && r == 0, "tail_block: stays in n");
}

static void
test_traceback(void)
{
	static const char *b[] = {
	    "[INFO] Booting worker",
	    "Traceback (most recent call last):",
	    "  File \"app.py\", line 1, in <module>",
	    "    import nosuchmod",
	    "ModuleNotFoundError: No module named 'nosuchmod'",
	    "[INFO] Worker exiting",
	    "Traceback (most recent call last):",
	    "  File \"arbiter.py\", line 2, in run",
	    "gunicorn.errors.HaltServer: <HaltServer 'Worker failed to boot.' 3>",
	    "Traceback (most recent call last):",
	    "  File \"x.py\", line 3",
	    "not an exception line here",
	    "KeyboardInterrupt",
	    "Traceback (most recent call last):",
	    "SystemExit:x" };
	struct tline l[sizeof(b) / sizeof(b[0])];
	size_t i, n = sizeof(b) / sizeof(b[0]);

	for (i = 0; i < n; i++) {
		l[i].p = b[i];
		l[i].n = strlen(b[i]);
	}
	ok(tail_exception(l, n, 8) == 4,
	    "tail_exception: the cause above the lines shown");
	ok(tail_exception(l, n, n) == 8,
	    "tail_exception: the last one, dotted name");
	ok(tail_exception(l, n, 4) == -1 && tail_exception(l, 1, n) == -1,
	    "tail_exception: none before, none without a traceback");
	ok(tail_exception(l + 9, 4, 4) == -1,
	    "tail_exception: the first unindented line ends it, an exception "
	    "or not");
	ok(tail_exception(l + 13, 2, 2) == -1,
	    "tail_exception: 'Name:' needs a space or the end after it");
	ok(tail_exception(l + 5, 8, 8) == 3,
	    "tail_exception: a name after a traceback has ended is not one");
	l[0].p = "Traceback (most recent call last):";
	l[0].n = strlen(l[0].p);
	l[1].p = "  File \"w.py\", line 9";
	l[1].n = strlen(l[1].p);
	l[2].p = "[ERROR] Worker (pid:9) exited";
	l[2].n = strlen(l[2].p);
	ok(tail_exception(l, 3, 3) == -1,
	    "tail_exception: a line not starting with a name is not one");
	l[2].p = "Py9Error: 9";
	l[2].n = strlen(l[2].p);
	ok(tail_exception(l, 3, 3) == 2, "tail_exception: digits in a name");
	l[2].p = "X";
	l[2].n = 0;
	ok(tail_exception(l, 3, 3) == -1,
	    "tail_exception: an empty line ends it with no exception");
}

#define E "eeeeeee000000000000000000000000000000000"

/* issue 30: live, prepared, unmigrated, failed; rollback and prune */
static void
test_life(void)
{
	const char *h =
	    "1 build " A "\n" "2 complete " A "\n" "3 activate " A "\n"
	    "4 live " A "\n"
	    "5 build " B "\n" "6 complete " B "\n" "7 unmigrated " B "\n"
	    "8 build " C "\n" "9 complete " C "\n" "10 activate " C "\n"
	    "11 live " C "\n"
	    "12 build " D "\n" "13 complete " D "\n" "14 activate " D "\n"
	    "15 failed " D "\n" "16 activate " C "\n"
	    "17 build " E "\n" "18 complete " E "\n";
	char *names[] = { A, B, C, D, E };
	int isdir[] = { 1, 1, 1, 1, 1 };
	struct event *ev;
	struct release *r;
	size_t nev, nr;
	long a, b, c, d, e;

	history_parse(h, strlen(h), &ev, &nev);
	releases_build(ev, nev, names, isdir, 5, &r, &nr);
	a = release_find(r, nr, A);
	b = release_find(r, nr, B);
	c = release_find(r, nr, C);
	d = release_find(r, nr, D);
	e = release_find(r, nr, E);
	ok(r[a].life == L_WASLIVE && r[b].life == L_UNMIGRATED &&
	    r[c].life == L_WASLIVE && r[d].life == L_FAILED &&
	    r[e].life == L_PREPARED, "life: was live, unmigrated, failed, "
	    "prepared");
	ok(r[a].lived == 4 && r[c].lived == 16 && r[b].lived == 0,
	    "life: when it last went live");
	ok(strcmp(life_name(r[c].life, 1), "live") == 0 &&
	    strcmp(life_name(r[b].life, 0), "unmigrated") == 0 &&
	    strcmp(life_name(L_NONE, 1), "-") == 0, "life_name");
	ok(rollback_target(r, nr, c) == a,
	    "rollback from C skips unmigrated B and failed D: A");
	ok(rollback_target(r, nr, a) == -1, "nothing went live before A");
	ok(prune_select(r, nr, 2, c, a) == 2 && r[b].mark && r[d].mark &&
	    !r[e].mark && !r[a].mark && !r[c].mark,
	    "prune: never-live and failed go; E, prepared after C, stays");
	ok(prune_select(r, nr, 2, e, -1) == 2 && r[b].mark && r[d].mark,
	    "prune with E current: keep 2 live (A, C) and E");
	free(ev);
	free(r);
	/* B completed before A but went live first: from C, A ran last */
	h = "1 complete " A "\n" "2 complete " B "\n" "3 activate " B "\n"
	    "4 live " B "\n" "5 activate " A "\n" "6 live " A "\n"
	    "7 complete " C "\n" "8 activate " C "\n" "9 live " C "\n";
	history_parse(h, strlen(h), &ev, &nev);
	releases_build(ev, nev, names, isdir, 3, &r, &nr);
	ok(strcmp(r[rollback_target(r, nr, release_find(r, nr, C))].name,
	    A) == 0, "rollback follows going live, not completion");
	free(ev);
	free(r);
}

static int
lasting(const char *out, const char *want)
{
	const char *r = pip_lasting(out, strlen(out));

	return want == NULL ? r == NULL : r != NULL && strcmp(r, want) == 0;
}

static void
test_pip(void)
{
	ok(lasting("ERROR: Could not find a version that satisfies the "
	    "requirement nosuch==1.0 (from versions: none)\nERROR: No matching "
	    "distribution found for nosuch==1.0\n", "no matching distribution"),
	    "pip_lasting: no matching distribution");
	ok(lasting("WARNING: Retrying ... after connection broken by "
	    "'NewConnectionError(': Failed to establish a new connection: "
	    "[Errno 111] Connection refused')'\nERROR: No matching distribution "
	    "found for x\n", "the package index could not be reached"),
	    "pip_lasting: the index unreachable wins over no distribution");
	ok(lasting("ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE "
	    "REQUIREMENTS FILE.\n", "a hash does not match"),
	    "pip_lasting: a hash mismatch");
	ok(lasting("ERROR: Cannot uninstall 'x'. It is a distutils installed "
	    "project\n", NULL), "pip_lasting: anything else: NULL");
	ok(pip_lasting("No matching distribution found", 10) == NULL,
	    "pip_lasting: only len bytes are read");
}

/* rpc_parse of a copy of xml: its verdict, the values in v */
static int
rpc(const char *xml, struct rpcval *v, int max, int *nv)
{
	static char buf[4096];

	snprintf(buf, sizeof(buf), "%s", xml);
	return rpc_parse(buf, v, max, nv);
}

static void
test_rpc(void)
{
	struct rpcval v[16];
	int nv, k;

	ok(rpc("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n"
	    "<value><array><data>\n<value><struct>\n<member>\n<name>name</name>\n"
	    "<value><string>a &amp; &lt;b&gt; &#233;&#x41;&#9;</string></value>\n"
	    "</member>\n<member>\n<name>pid</name>\n<value><int>42</int></value>\n"
	    "</member>\n<member><name>ok</name><value><boolean>1</boolean>"
	    "</value></member><member><name>raw</name><value> x </value>"
	    "</member><member><name>e</name><value><string/></value></member>"
	    "</struct></value>\n<value><i4>-7</i4></value></data></array></value>\n"
	    "</param>\n</params>\n</methodResponse>\n", v, 16, &nv) == 0 &&
	    nv == 8 && v[0].type == RPC_ARRAY && (k = v[0].kid) == 1 &&
	    strcmp(rpc_str(v, k, "name"), "a & <b> \xc3\xa9" "A\t") == 0 &&
	    rpc_int(v, k, "pid") == 42 && rpc_int(v, k, "ok") == 1 &&
	    strcmp(rpc_str(v, k, "raw"), " x ") == 0 &&
	    strcmp(rpc_str(v, k, "e"), "") == 0 && rpc_member(v, k, "no") == -1 &&
	    rpc_int(v, k, "no") == 0 && rpc_int(v, k, "name") == 0 &&
	    v[k].next != -1 && v[v[k].next].type == RPC_INT &&
	    v[v[k].next].i == -7 && v[v[k].next].next == -1,
	    "rpc_parse: an array of a struct and an i4, entities decoded");
	ok(rpc("<methodResponse><fault><value><struct><member><name>faultCode"
	    "</name><value><int>10</int></value></member><member><name>"
	    "faultString</name><value><string>BAD_NAME: x</string></value>"
	    "</member></struct></value></fault></methodResponse>", v, 16,
	    &nv) == 1 && rpc_int(v, 0, "faultCode") == 10 &&
	    strcmp(rpc_str(v, 0, "faultString"), "BAD_NAME: x") == 0,
	    "rpc_parse: a fault, its code and string");
	ok(rpc("<methodResponse><params><param><value>&#x20AC;&#128512;&#x7FF;"
	    "</value></param></params></methodResponse>", v, 16, &nv) == 0 &&
	    strcmp(v[0].s, "\xe2\x82\xac\xf0\x9f\x98\x80\xdf\xbf") == 0,
	    "rpc_parse: character references of 2, 3 and 4 bytes in UTF-8");
	ok(rpc("<methodResponse><params><param><value><string>3.0</string>"
	    "</value></param></params></methodResponse>", v, 16, &nv) == 0 &&
	    v[0].type == RPC_STRING && strcmp(v[0].s, "3.0") == 0,
	    "rpc_parse: a string");
	ok(rpc("<methodResponse><params><param><value><array><data/></array>"
	    "</value></param></params></methodResponse>", v, 16, &nv) == 0 &&
	    v[0].kid == -1, "rpc_parse: an empty array");
	ok(rpc("<methodResponse><params><param><value><string>x</string>"
	    "</value></param></params>", v, 16, &nv) == -1,
	    "rpc_parse: cut short: malformed");
	ok(rpc("<methodResponse><params><param><value><int>4x</int>"
	    "</value></param></params></methodResponse>", v, 16, &nv) == -1 &&
	    rpc("<methodResponse><params><param><value><boolean>2</boolean>"
	    "</value></param></params></methodResponse>", v, 16, &nv) == -1 &&
	    rpc("<methodResponse><params><param><value><int>99999999999999999999"
	    "</int></value></param></params></methodResponse>", v, 16,
	    &nv) == -1, "rpc_parse: an int or boolean that is none: malformed");
	ok(rpc("<methodResponse><params><param><value>&bogus;</value></param>"
	    "</params></methodResponse>", v, 16, &nv) == -1 &&
	    rpc("<methodResponse><params><param><value>&#0;</value></param>"
	    "</params></methodResponse>", v, 16, &nv) == -1 &&
	    rpc("<methodResponse><params><param><value>&#x;</value></param>"
	    "</params></methodResponse>", v, 16, &nv) == -1,
	    "rpc_parse: an unknown entity or &#0;: malformed");
	ok(rpc("<methodResponse><params><param><value><array><data><value>1"
	    "</value><value>2</value></data></array></value></param></params>"
	    "</methodResponse>", v, 2, &nv) == -1,
	    "rpc_parse: more values than the array holds: malformed");
	ok(rpc("<methodResponse><params><param><value><struct><member><name>a"
	    "</name><value><int>1</int></member></struct></value></param>"
	    "</params></methodResponse>", v, 16, &nv) == -1,
	    "rpc_parse: a <value> not closed: malformed");
	ok(rpc("<methodResponse><params><param><value><struct><member><name>a"
	    "<value><int>1</int></value></member></struct></value></param>"
	    "</params></methodResponse>", v, 16, &nv) == -1,
	    "rpc_parse: a <name> not closed: malformed");
	ok(rpc("<methodResponse><fault><value><string>x</string></value>"
	    "</fault></methodResponse>", v, 16, &nv) == -1,
	    "rpc_parse: a fault that is not a struct: malformed");
	/* a member that is not there reads nothing, not the value before */
	memset(v, 0, 2 * sizeof(v[0]));
	v[0].type = RPC_INT;
	v[0].i = 7;
	v[1].type = RPC_STRUCT;
	v[1].kid = v[1].next = -1;
	ok(rpc_int(v + 1, 0, "x") == 0 && rpc_member(v + 1, 0, "x") == -1,
	    "rpc_int: a member that is not there is 0");
	ok(rpc_count("<value><value/>x<value>") == 4,
	    "rpc_count: one more than the <value>s");
}

int
main(void)
{
	test_config();
	test_words();
	test_refs();
	test_history();
	test_order();
	test_envfile();
	test_reqs();
	test_sha256();
	test_verify_keys();
	test_utf8();
	test_output();
	test_traceback();
	test_life();
	test_pip();
	test_rpc();
	printf("1..%d\n", n);
	return failed != 0;
}
