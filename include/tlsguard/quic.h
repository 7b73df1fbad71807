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

/*
 * After the Initial: every datagram of the flow must be a QUIC packet of
 * that connection. b[0 .. n) are a datagram's first bytes (n up to
 * TG_QUIC_HDR_PEEK). The fixed bit (0x40) is set in every QUIC v1/v2
 * packet; a long header (0x80) carries the version and the connection ids,
 * a short header the destination connection id right after the first byte.
 */
#define TG_QUIC_HDR_PEEK	(1 + 4 + 1 + 20 + 1 + 20)

/* Long header: version at 1, DCID length at 5, DCID, SCID length, SCID. */
TG_INLINE __u32 tg_quic_version(const __u8 *b)
{
	return ((__u32)b[1] << 24) | ((__u32)b[2] << 16) | ((__u32)b[3] << 8) | b[4];
}

/* A connection id (@len bytes at b[off]) against a kept one: its length and first 8 bytes. */
TG_INLINE int tg_quic_cid_is(const __u8 *b, __u32 n, __u32 off, __u32 len, __u32 want_len,
			     const __u8 want[8])
{
	__u32 i;

	if (len != want_len || off + (len < 8 ? len : 8) > n)
		return 0;
	for (i = 0; i < 8 && i < len; i++)
		if (b[(off + i) & 63] != want[i])
			return 0;
	return 1;
}

#endif /* TLSGUARD_QUIC_H */
