/*
 * json.c: UTF-8 checks and JSON strings.
 */
#define _POSIX_C_SOURCE 200809L
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <stdio.h>
#include <string.h>

#include "json.h"
#include "core.h"

#define JSON_SHORT	1	/* \b \f \n \r \t as JSON writes them */

/* the second byte's range after lead c (RFC 3629's table): no overlong
 * form, no surrogate, nothing past U+10FFFF */
static int
utf8_second(unsigned c, unsigned b)
{
	unsigned lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
	unsigned hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;

	return b >= lo && b <= hi;
}

int
utf8_len(const unsigned char *s)
{
	int n, i;

	if (s[0] < 0x80)
		return 1;
	n = s[0] >= 0xc2 && s[0] <= 0xdf ? 2 : s[0] >= 0xe0 && s[0] <= 0xef ?
	    3 : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : 0;
	if (n == 0 || !utf8_second(s[0], s[1]))
		return 0;
	for (i = 2; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

size_t
cat_v(char *dst, const char *src, size_t n)
{
	size_t i, k = 0;
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)src[i];
		if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f) {
			dst[k++] = '^';
			dst[k++] = c == 0x7f ? '?' : (char)(c + 64);
		} else
			dst[k++] = (char)c;
	}
	return k;
}

void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		b->cap = (b->n + n + 1) * 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

/*
 * The one JSON string encoder: at most max bytes of s, quoted. A quote
 * and a backslash as \" and \\, each byte that is not valid UTF-8 and
 * a character the max would cut as \ufffd, other controls and DEL as
 * \u00xx. JSON_SHORT writes \b \f \n \r \t as those; without it they
 * are \u00xx too, as the audit trail has always written them (its lines
 * are hashed, so their bytes never change).
 */
static void
sb_quote(struct sbuf *b, const char *s, size_t max, int how)
{
	static const char shorts[] = "\bb\ff\nn\rr\tt";
	const unsigned char *p = (const unsigned char *)s;
	const char *sh;
	char esc[8];
	size_t k;
	int n;

	sb_add(b, "\"", 1);
	for (; *p && max > 0; p += k, max -= k < max ? k : max) {
		n = utf8_len(p);
		k = n > 0 ? (size_t)n : 1;
		sh = (how & JSON_SHORT) && *p < 0x20 ? strchr(shorts, *p) : NULL;
		if (n == 0 || k > max)
			sb_add(b, "\\ufffd", 6);
		else if (sh != NULL) {
			sb_add(b, "\\", 1);
			sb_add(b, sh + 1, 1);
		} else if (*p == '"' || *p == '\\' || *p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), *p == '"' || *p == '\\' ?
			    "\\%c" : "\\u%04x", *p);
			sb_add(b, esc, strlen(esc));
		} else
			sb_add(b, (const char *)p, k);
	}
	sb_add(b, "\"", 1);
}

char *
json_quote(const char *str)
{
	struct sbuf b = { NULL, 0, 0 };

	sb_quote(&b, str ? str : "", (size_t)-1, JSON_SHORT);
	return b.p;
}

/* a JSON string of at most max bytes of s, or null: the audit's escapes */
void
sb_jstr(struct sbuf *b, const char *s, size_t max)
{
	if (s == NULL)
		sb_add(b, "null", 4);
	else
		sb_quote(b, s, max, 0);
}

/* , "KEY": VALUE */
void
sb_json(struct sbuf *b, const char *key, const char *s, size_t max)
{
	sb_add(b, ", \"", 3);
	sb_add(b, key, strlen(key));
	sb_add(b, "\": ", 3);
	sb_jstr(b, s, max);
}

/* src into dst (size n), cut to fit at a character boundary */
void
cut_utf8(char *dst, const char *src, size_t n)
{
	size_t len = strlen(src);

	if (len >= n) {
		len = n - 1;
		while (len > 0 && ((unsigned char)src[len] & 0xc0) == 0x80)
			len--;	/* src[len] would start the cut character */
	}
	memcpy(dst, src, len);
	dst[len] = '\0';
}
