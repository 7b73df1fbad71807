/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * ClientHello / ServerHello parser, shared by the BPF programs (the verdict:
 * versions, SNI) and the agent (unit tests, fuzzers, ALPN for events). Pure:
 * no helpers, no libc, every loop bounded by a constant.
 *
 * Input is a handshake message (type byte first, record headers already
 * removed) at offset @off of a buffer of at least TG_HELLO_BUF bytes on the
 * BPF side. Every read is masked with TG_HELLO_MASK: the masks exist only for
 * the verifier, because the parser never reads at or past @off + @len and the
 * caller keeps @off + @len <= TG_HELLO_MAX. On the host any buffer of @off +
 * @len bytes is fine: a masked offset below TG_HELLO_MAX is the offset itself.
 */
#ifndef TLSGUARD_TLS_HELLO_H
#define TLSGUARD_TLS_HELLO_H

#include <linux/types.h>

#include "tlsguard/tls_prefix.h"

#define TG_HELLO_MAX		2048	/* first bytes of a flow assembled for the hello */
#define TG_HELLO_BUF		(2 * TG_HELLO_MAX)	/* room for masked offset + masked length */
#define TG_HELLO_MASK		(TG_HELLO_MAX - 1)
#define TG_HELLO_MAX_EXTS	64	/* extensions looked at (real clients send < 30) */
#define TG_HELLO_MAX_VERSIONS	32	/* supported_versions entries looked at */
#define TG_SNI_MAX		255	/* longer names are invalid (DNS: 253) */

#define TG_TLS_HANDSHAKE_SERVER_HELLO	2
#define TG_EXT_SERVER_NAME		0
#define TG_EXT_ALPN			16
#define TG_EXT_SUPPORTED_VERSIONS	43

#define TG_TLS_VERSION(minor)	(0x0300 | (minor))	/* 1.0 = 0x0301 ... 1.3 = 0x0304 */

enum tg_hello_result {
	TG_HELLO_OK = 0,		/* whole message parsed */
	TG_HELLO_TRUNCATED = 1,		/* the message goes on past @len: what was seen is kept */
	TG_HELLO_BAD = 2,		/* not a well-formed hello of the expected type */
};

enum tg_hello_flags {
	TG_HELLO_F_SUPPORTED_VERSIONS = 1 << 0,	/* the extension was present */
	TG_HELLO_F_SNI = 1 << 1,		/* a host_name server_name was found */
	TG_HELLO_F_ALPN = 1 << 2,
	TG_HELLO_F_TRUNCATED = 1 << 3,		/* message longer than what was parsed */
	TG_HELLO_F_SNI_INVALID = 1 << 4,	/* server_name present but unusable */
	TG_HELLO_F_HRR = 1 << 5,		/* ServerHello is a HelloRetryRequest */
};

struct tg_hello_info {
	__u16 legacy_version;		/* legacy_version field */
	__u16 version;			/* ClientHello: highest offered; ServerHello: negotiated */
	__u16 sni_off;			/* buffer offset of the host name */
	__u16 alpn_off;			/* buffer offset of protocol_name_list (past its length) */
	__u16 alpn_len;
	__u8 sni_len;
	__u8 flags;			/* enum tg_hello_flags */
	/* between the stages of tg_parse_hello() */
	__u16 ext_off, ext_end;		/* the extensions block */
	__u16 avail;			/* where the bytes end (<= ext_end when cut) */
	__u16 sv_off, sv_len;		/* supported_versions data */
	__u16 sn_off, sn_len;		/* server_name data */
	__u16 pad;
};
_Static_assert(sizeof(struct tg_hello_info) == 28, "tg_hello_info layout");

#define TG_RD8(b, o)	((__u32)(b)[(o) & TG_HELLO_MASK])
#define TG_RD16(b, o)	((TG_RD8(b, o) << 8) | TG_RD8(b, (o) + 1))
#define TG_RD24(b, o)	((TG_RD8(b, o) << 16) | TG_RD16(b, (o) + 1))

/* GREASE (RFC 8701): 0x0a0a, 0x1a1a, ... 0xfafa. */
TG_INLINE int tg_tls_is_grease(__u32 v)
{
	return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff);
}

/* A version worth comparing: SSL 3.0 .. TLS 1.3 and any later 0x03xx. */
TG_INLINE int tg_tls_is_version(__u32 v)
{
	return (v >> 8) == 3;
}

/* Highest known version in a ClientHello supported_versions list. */
TG_INLINE __u32 tg_hello_max_version(const __u8 *b, __u32 off, __u32 len)
{
	__u32 best = 0, i;

	for (i = 0; i < TG_HELLO_MAX_VERSIONS && 2 * i + 1 < len; i++) {
		__u32 v = TG_RD16(b, off + 2 * i);

		if (tg_tls_is_version(v) && v > best)
			best = v;
	}
	return best;
}

/*
 * server_name extension data (at out->sn_off, out->sn_len bytes): list
 * length, then entries (type, length, name). Only the first entry counts
 * (RFC 6066: at most one host_name).
 */
TG_INLINE int tg_hello_sni(const __u8 *b, struct tg_hello_info *out)
{
	__u32 off = out->sn_off, len = out->sn_len, list, nlen;

	if (!(out->flags & TG_HELLO_F_SNI_INVALID) && !len)
		return 0;
	if (len < 5) {
		out->flags |= TG_HELLO_F_SNI_INVALID;
		return 0;
	}
	list = TG_RD16(b, off);
	nlen = TG_RD16(b, off + 3);
	if (list + 2 > len || TG_RD8(b, off + 2) != 0 || nlen + 3 > list || nlen == 0 ||
	    nlen > TG_SNI_MAX) {
		out->flags |= TG_HELLO_F_SNI_INVALID;
		return 0;
	}
	out->flags |= TG_HELLO_F_SNI;
	out->sni_off = off + 5;
	out->sni_len = nlen;
	return 0;
}

/*
 * Stage 2: walk the extensions block [ext_off, ext_end); avail is where the
 * buffer ends (< ext_end when the message was cut). Records where the
 * interesting ones are. Returns 0, or -1 when the block is malformed.
 */
TG_INLINE int tg_hello_exts(const __u8 *b, int server, struct tg_hello_info *out)
{
	__u32 i, off = out->ext_off, end = out->ext_end, avail = out->avail;

	for (i = 0; i < TG_HELLO_MAX_EXTS; i++) {
		__u32 type, elen;

		if (off >= end)
			break;
		if (off + 4 > end)
			return -1;
		if (off + 4 > avail) {
			out->flags |= TG_HELLO_F_TRUNCATED;
			break;
		}
		type = TG_RD16(b, off);
		elen = TG_RD16(b, off + 2);
		off += 4;
		if (off + elen > end)
			return -1;
		if (off + elen > avail) {
			out->flags |= TG_HELLO_F_TRUNCATED;
			break;
		}
		if (type == TG_EXT_SUPPORTED_VERSIONS) {
			out->sv_off = off;
			out->sv_len = elen;
			out->flags |= TG_HELLO_F_SUPPORTED_VERSIONS;
		} else if (type == TG_EXT_SERVER_NAME && !server) {
			out->sn_off = off;
			out->sn_len = elen;
			if (!elen)
				out->flags |= TG_HELLO_F_SNI_INVALID;
		} else if (type == TG_EXT_ALPN && elen >= 2) {
			out->flags |= TG_HELLO_F_ALPN;
			out->alpn_off = off + 2;
			out->alpn_len = elen - 2;
		}
		off += elen;
	}
	if (i == TG_HELLO_MAX_EXTS && off < end)
		out->flags |= TG_HELLO_F_TRUNCATED;	/* more extensions than looked at */
	return 0;
}

/* Stage 3: the version from supported_versions. Returns 0, or -1 when malformed. */
TG_INLINE int tg_hello_versions(const __u8 *b, int server, struct tg_hello_info *out)
{
	__u32 off = out->sv_off, len = out->sv_len, n;

	if (!(out->flags & TG_HELLO_F_SUPPORTED_VERSIONS))
		return 0;
	if (server) {
		if (len != 2)
			return -1;
		out->version = TG_RD16(b, off);
		return 0;
	}
	n = len ? TG_RD8(b, off) : 0;
	if (len < 3 || n + 1 != len || (n & 1))
		return -1;
	out->version = tg_hello_max_version(b, off + 1, n);
	return 0;
}

/*
 * Stage 1: the fixed part of a ClientHello (@server == 0) or ServerHello
 * (@server == 1) handshake message at b[off .. off + len), up to the
 * extensions block. @len may stop short of the message.
 */
TG_INLINE int tg_hello_head(const __u8 *b, __u32 off, __u32 len, int server,
			    struct tg_hello_info *out)
{
	__u32 end, avail, p, n, type = server ? TG_TLS_HANDSHAKE_SERVER_HELLO :
						   TG_TLS_HANDSHAKE_CLIENT_HELLO;

	__builtin_memset(out, 0, sizeof(*out));
	if (off > TG_HELLO_MAX)
		return TG_HELLO_BAD;
	if (len > TG_HELLO_MAX - off)
		len = TG_HELLO_MAX - off;
	if (len < 6) {
		if (len >= 1 && TG_RD8(b, off) != type)
			return TG_HELLO_BAD;
		/* the whole message is here and has no room for its fixed fields */
		if (len >= 4 && off + 4 + TG_RD24(b, off + 1) <= off + len)
			return TG_HELLO_BAD;
		return TG_HELLO_TRUNCATED;
	}
	if (TG_RD8(b, off) != type)
		return TG_HELLO_BAD;
	end = off + 4 + TG_RD24(b, off + 1);
	avail = off + len;
	if (avail > end)
		avail = end;
	out->legacy_version = TG_RD16(b, off + 4);
	out->version = out->legacy_version;
	if (!tg_tls_is_version(out->legacy_version))
		return TG_HELLO_BAD;
	p = off + 6 + 32;		/* past the random */
	if (p + 1 > avail)
		goto truncated;
	n = TG_RD8(b, p);		/* session id */
	if (n > 32)
		return TG_HELLO_BAD;
	p += 1 + n;
	if (server) {
		p += 3;			/* cipher_suite, compression_method */
		/* HelloRetryRequest: the SHA-256 of "HelloRetryRequest" as random */
		if (TG_RD8(b, off + 6) == 0xcf && TG_RD8(b, off + 7) == 0x21 &&
		    TG_RD8(b, off + 8) == 0xad && TG_RD8(b, off + 9) == 0x74)
			out->flags |= TG_HELLO_F_HRR;
	} else {
		if (p + 2 > avail)
			goto truncated;
		n = TG_RD16(b, p);	/* cipher suites */
		if (n < 2 || (n & 1))
			return TG_HELLO_BAD;
		p += 2 + n;
		if (p + 1 > avail)
			goto truncated;
		n = TG_RD8(b, p);	/* compression methods */
		if (n < 1)
			return TG_HELLO_BAD;
		p += 1 + n;
	}
	if (p > end)
		return TG_HELLO_BAD;
	out->ext_off = p;
	out->ext_end = p;
	out->avail = avail;
	if (p == end)
		return avail < end ? TG_HELLO_TRUNCATED : TG_HELLO_OK;	/* no extensions */
	if (p + 2 > avail)
		goto truncated;
	n = TG_RD16(b, p);
	if (p + 2 + n != end)
		return TG_HELLO_BAD;
	out->ext_off = p + 2;
	out->ext_end = end;
	return avail < end ? TG_HELLO_TRUNCATED : TG_HELLO_OK;
truncated:
	/* cut short only when the bytes stop before the message does; a message
	 * that ends inside its fixed fields is malformed */
	if (avail >= end)
		return TG_HELLO_BAD;
	out->flags |= TG_HELLO_F_TRUNCATED;
	return TG_HELLO_TRUNCATED;
}

/* After the stages: the overall result. */
TG_INLINE int tg_hello_result(int head, struct tg_hello_info *out)
{
	if (head == TG_HELLO_TRUNCATED || out->avail < out->ext_end)
		out->flags |= TG_HELLO_F_TRUNCATED;
	return out->flags & TG_HELLO_F_TRUNCATED ? TG_HELLO_TRUNCATED : TG_HELLO_OK;
}

/*
 * Parse a ClientHello (@server == 0) or ServerHello (@server == 1) handshake
 * message at b[off .. off + len). @len may stop short of the message: the
 * result is then TG_HELLO_TRUNCATED with whatever the bytes held. (The BPF
 * side runs the stages as separate functions, see bpf/lib/parse.bpf.h.)
 */
TG_INLINE int tg_parse_hello(const __u8 *b, __u32 off, __u32 len, int server,
			     struct tg_hello_info *out)
{
	int head = tg_hello_head(b, off, len, server, out);

	if (head == TG_HELLO_BAD)
		return TG_HELLO_BAD;
	if (out->ext_off < out->ext_end) {
		if (tg_hello_exts(b, server, out) < 0 || tg_hello_versions(b, server, out) < 0)
			return TG_HELLO_BAD;
		if (!server)
			tg_hello_sni(b, out);
	}
	return tg_hello_result(head, out);
}

/*
 * Next protocol name of an ALPN protocol_name_list at b[*off .. end): its
 * offset and length, advancing *off. 1 when one was found, 0 at the end,
 * -1 when malformed.
 */
TG_INLINE int tg_alpn_next(const __u8 *b, __u32 *off, __u32 end, __u32 *name_off, __u32 *name_len)
{
	__u32 n;

	if (*off >= end)
		return 0;
	n = TG_RD8(b, *off);
	if (n == 0 || *off + 1 + n > end)
		return -1;
	*name_off = *off + 1;
	*name_len = n;
	*off += 1 + n;
	return 1;
}

/* Lower-case a host name byte; 0 for bytes a DNS name cannot hold. */
TG_INLINE __u8 tg_host_char(__u8 c)
{
	if (c >= 'A' && c <= 'Z')
		return c + ('a' - 'A');
	if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_')
		return c;
	return 0;
}

#endif /* TLSGUARD_TLS_HELLO_H */
