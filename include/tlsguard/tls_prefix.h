/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The first-payload classifier, shared by the BPF program (the verdict) and
 * the agent (unit tests, describing events). Pure: no helpers, no loops the
 * verifier cannot bound, no libc.
 *
 * A flow is TLS when its first bytes are a TLS handshake record carrying a
 * ClientHello:  [0]=22 (handshake) [1]=3 [2]=1..4 (record version
 * 0x0301-0x0304) [3..4]=record length (4..16384) [5]=1 (ClientHello).
 */
#ifndef TLSGUARD_TLS_PREFIX_H
#define TLSGUARD_TLS_PREFIX_H

#include <linux/types.h>

#ifndef TG_INLINE
#define TG_INLINE static inline __attribute__((always_inline))
#endif

#define TG_TLS_CONTENT_HANDSHAKE	22
#define TG_TLS_HANDSHAKE_CLIENT_HELLO	1
#define TG_TLS_MAX_RECORD		16384	/* 2^14, RFC 8446 5.1 */

enum tg_prefix_verdict {
	TG_PREFIX_NEED_MORE = 0,	/* every byte so far fits a ClientHello */
	TG_PREFIX_TLS = 1,
	TG_PREFIX_PLAINTEXT = 2,
};

/*
 * Classify the first @n bytes of a TLS stream (only the first 6 are looked
 * at): a handshake record whose message is of type @hs_type.
 */
TG_INLINE int tg_classify_record(const __u8 *b, __u32 n, __u32 hs_type)
{
	if (n < 1)
		return TG_PREFIX_NEED_MORE;
	if (b[0] != TG_TLS_CONTENT_HANDSHAKE)
		return TG_PREFIX_PLAINTEXT;
	if (n < 2)
		return TG_PREFIX_NEED_MORE;
	if (b[1] != 3)
		return TG_PREFIX_PLAINTEXT;
	if (n < 3)
		return TG_PREFIX_NEED_MORE;
	if (b[2] < 1 || b[2] > 4)
		return TG_PREFIX_PLAINTEXT;
	if (n < 4)
		return TG_PREFIX_NEED_MORE;
	/* high length byte alone: > 0x40 already exceeds 2^14 */
	if (b[3] > (TG_TLS_MAX_RECORD >> 8))
		return TG_PREFIX_PLAINTEXT;
	if (n < 5)
		return TG_PREFIX_NEED_MORE;
	{
		__u32 len = ((__u32)b[3] << 8) | b[4];

		if (len < 4 || len > TG_TLS_MAX_RECORD)
			return TG_PREFIX_PLAINTEXT;
	}
	if (n < 6)
		return TG_PREFIX_NEED_MORE;
	if (b[5] != hs_type)
		return TG_PREFIX_PLAINTEXT;
	return TG_PREFIX_TLS;
}

/* Classify the first @n bytes of a flow: a ClientHello record or not. */
TG_INLINE int tg_classify_prefix(const __u8 *b, __u32 n)
{
	return tg_classify_record(b, n, TG_TLS_HANDSHAKE_CLIENT_HELLO);
}

#endif /* TLSGUARD_TLS_PREFIX_H */
