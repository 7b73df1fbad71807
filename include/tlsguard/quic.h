/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * QUIC: the first datagram of a client's connection is an Initial packet
 * with a long header (RFC 9000 17.2.2, RFC 9369 for v2), padded to at least
 * 1200 bytes. QUIC has TLS 1.3 built in, so an Initial on a protected
 * destination's allowed port is compliant; any other first datagram is
 * plaintext. Pure, shared by BPF and the agent.
 */
#ifndef TLSGUARD_QUIC_H
#define TLSGUARD_QUIC_H

#include <linux/types.h>

#ifndef TG_INLINE
#define TG_INLINE static inline __attribute__((always_inline))
#endif

#define TG_QUIC_PEEK		8	/* bytes looked at */
#define TG_QUIC_MIN_INITIAL	1200	/* RFC 9000 14.1 */
#define TG_QUIC_V1		0x00000001
#define TG_QUIC_V2		0x6b3343cf

/* b[0 .. n) are the datagram's first bytes, @dgram_len its whole length. */
TG_INLINE int tg_quic_client_initial(const __u8 *b, __u32 n, __u32 dgram_len)
{
	__u32 version, type, dcid;

	if (n < 7 || dgram_len < TG_QUIC_MIN_INITIAL)
		return 0;
	if ((b[0] & 0xc0) != 0xc0)	/* long header, fixed bit */
		return 0;
	version = ((__u32)b[1] << 24) | ((__u32)b[2] << 16) | ((__u32)b[3] << 8) | b[4];
	type = (b[0] >> 4) & 3;
	if (!(version == TG_QUIC_V1 && type == 0) && !(version == TG_QUIC_V2 && type == 1))
		return 0;
	dcid = b[5];			/* a client's first DCID has 8..20 bytes (RFC 9000 7.2) */
	return dcid >= 8 && dcid <= 20;
}

#endif /* TLSGUARD_QUIC_H */
