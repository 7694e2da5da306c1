/* sha256.h: SHA-256 (FIPS 180-4), for the audit trail's chain. */
#ifndef DEPLOY_SHA256_H
#define DEPLOY_SHA256_H

#include <stddef.h>

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

#endif
