/* SPDX-License-Identifier: MIT */
/*
 * Small helpers the on-disk formats share (spool.c, journal.c): big-endian
 * integers in record headers, whole reads and writes, the wall clock they
 * stamp with (replaceable in tests), and the "message into err, return ret"
 * idiom; the other readers of files (policy, secret files) read through them
 * too.
 */
#ifndef TLSGUARD_AGENT_BYTES_H
#define TLSGUARD_AGENT_BYTES_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/*
 * Up to @len bytes of @fd into @buf from offset @off (-1: from the current
 * offset, as preadv2(2)), until @len or the end of the file; EINTR retries.
 * *@got is how many arrived, also on error. 0 or -errno.
 */
static inline int tg_read_full(int fd, void *buf, size_t len, off_t off, size_t *got)
{
	uint8_t *p = buf;

	*got = 0;
	while (*got < len) {
		ssize_t n = off < 0 ? read(fd, p + *got, len - *got)
				    : pread(fd, p + *got, len - *got, off + (off_t)*got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			break;
		*got += (size_t)n;
	}
	return 0;
}

/* All @len bytes to @fd (a short write continues, EINTR retries). 0 or -errno. */
static inline int tg_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Room for @need elements of @elem bytes in *@p (realloc'd, doubling from
 * @first), *@alloc their count. 0 or -ENOMEM (then *@p is as it was).
 */
static inline int tg_reserve(void **p, size_t *alloc, size_t need, size_t elem, size_t first)
{
	size_t n = *alloc ? *alloc : first;
	void *q;

	if (need <= *alloc)
		return 0;
	while (n < need)
		n *= 2;
	q = realloc(*p, n * elem);
	if (!q)
		return -ENOMEM;
	*p = q;
	*alloc = n;
	return 0;
}

/*
 * Append @n bytes of @data to the NUL-terminated text *@p of *@len bytes,
 * which may hold @max bytes at most (the NUL not counted): an HTTP body as it
 * arrives. 0; -E2BIG past @max, -ENOMEM: then nothing was appended.
 */
static inline int tg_text_append(char **p, size_t *len, size_t max, const void *data, size_t n)
{
	char *grown;

	if (*len + n > max)
		return -E2BIG;
	grown = realloc(*p, *len + n + 1);
	if (!grown)
		return -ENOMEM;
	memcpy(grown + *len, data, n);
	*p = grown;
	*len += n;
	grown[*len] = '\0';
	return 0;
}

/* The default clock of the on-disk formats: seconds since the epoch (@arg unused). */
static inline time_t tg_wall_seconds(void *arg)
{
	(void)arg;
	return time(NULL);
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
