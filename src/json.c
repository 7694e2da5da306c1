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

char *
json_quote(const char *str)
{
	const unsigned char *p = (const unsigned char *)(str ? str : "");
	char *out = xrealloc(NULL, strlen((const char *)p) * 6 + 3), *o = out;
	const char *esc;
	int n;

	*o++ = '"';
	for (; *p; p += n ? n : 1) {
		n = utf8_len(p);
		esc = *p == '"' ? "\\\"" : *p == '\\' ? "\\\\" : *p == '\b' ?
		    "\\b" : *p == '\f' ? "\\f" : *p == '\n' ? "\\n" : *p == '\r' ?
		    "\\r" : *p == '\t' ? "\\t" : NULL;
		if (n == 0)
			o += sprintf(o, "\\ufffd");
		else if (esc != NULL)
			o += sprintf(o, "%s", esc);
		else if (*p < 0x20 || *p == 0x7f)
			o += sprintf(o, "\\u%04x", *p);
		else {
			memcpy(o, p, (size_t)n);
			o += n;
		}
	}
	*o++ = '"';
	*o = '\0';
	return out;
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

/* a JSON string of at most max bytes of s, or null */
void
sb_jstr(struct sbuf *b, const char *s, size_t max)
{
	const unsigned char *p = (const unsigned char *)s;
	char esc[8];
	size_t k;
	int n;

	if (s == NULL) {
		sb_add(b, "null", 4);
		return;
	}
	sb_add(b, "\"", 1);
	for (; *p && max > 0; p += k, max -= k < max ? k : max) {
		n = utf8_len(p);
		k = n > 0 ? (size_t)n : 1;
		if (n == 0 || k > max)
			sb_add(b, "\\ufffd", 6);
		else if (*p == '"' || *p == '\\' || *p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), *p == '"' || *p == '\\' ?
			    "\\%c" : "\\u%04x", *p);
			sb_add(b, esc, strlen(esc));
		} else
			sb_add(b, (const char *)p, k);
	}
	sb_add(b, "\"", 1);
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
