/* SPDX-License-Identifier: MIT */
/*
 * Small helpers the on-disk formats share (spool.c, journal.c): big-endian
 * integers in record headers, and the "message into err, return ret" idiom.
 */
#ifndef TLSGUARD_AGENT_BYTES_H
#define TLSGUARD_AGENT_BYTES_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

static inline void tg_put_be(uint8_t *p, uint64_t v, int bytes)
{
	for (int i = bytes - 1; i >= 0; i--, v >>= 8)
		p[i] = v & 0xff;
}

static inline uint64_t tg_get_be(const uint8_t *p, int bytes)
{
	uint64_t v = 0;

	for (int i = 0; i < bytes; i++)
		v = v << 8 | p[i];
	return v;
}

/* Format into @err (when given) and return @ret: one-line error paths. */
static inline int tg_seterr(char *err, size_t errlen, int ret, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static inline int tg_seterr(char *err, size_t errlen, int ret, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return ret;
}

#endif /* TLSGUARD_AGENT_BYTES_H */
