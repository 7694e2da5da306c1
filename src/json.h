/* json.h: UTF-8 checks and JSON strings. */
#ifndef DEPLOY_JSON_H
#define DEPLOY_JSON_H

#include <stddef.h>

/* Bytes of the UTF-8 sequence at s, or 0 when it is not one RFC 3629
 * allows (no overlong form, surrogate or code point past U+10FFFF). */
int	utf8_len(const unsigned char *s);
/* s as a quoted JSON string (malloc'd): controls escaped as JSON does
 * (\n, \t, \u001b), each byte that is not valid UTF-8 as \ufffd; NULL
 * as "". What --json prints. */
char   *json_quote(const char *s);

/* src as cat -v shows it, into dst (2 * n bytes at most): control
 * characters but tab and newline as ^X, DEL as ^?; returns the length. */
size_t	cat_v(char *dst, const char *src, size_t n);

struct sbuf {
	char	*p;
	size_t	 n, cap;
};

void sb_add(struct sbuf *b, const char *s, size_t n);
/* At most max bytes of s as a JSON string, or null, the audit trail's
 * way: the same encoder as json_quote's, but every control is \u00xx. */
void sb_jstr(struct sbuf *b, const char *s, size_t max);
void sb_json(struct sbuf *b, const char *key, const char *s, size_t max);
void cut_utf8(char *dst, const char *src, size_t n);
#endif
