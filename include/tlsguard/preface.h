/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Protocols that reach TLS after a plaintext preface, and the TLS record
 * layer in front of the hello. Pure and shared like tls_hello.h: the BPF
 * programs decide with these, the agent describes events and the fuzzers
 * and unit tests run them on the host. Input is the first @n bytes of one
 * direction of a flow, b[0 .. n), n <= TG_HELLO_MAX; reads are masked the
 * same way as in tls_hello.h.
 *
 * The rule for every machine: a byte it does not expect makes the flow
 * plaintext. Nothing unrecognised is ever taken for TLS.
 */
#ifndef TLSGUARD_PREFACE_H
#define TLSGUARD_PREFACE_H

#include <linux/types.h>

#include "tlsguard/tls_hello.h"
#include "tlsguard/opaque.h"

/* enum tg_protocol of the policy, plus what the kernel adds. */
enum tg_l7 {
	TG_L7_TLS = 0,		/* a ClientHello first */
	TG_L7_POSTGRES = 1,		/* SSLRequest, 'S', then TLS; or direct TLS (PG 17) */
	TG_L7_MYSQL = 2,		/* server greeting; SSL request (CLIENT_SSL), then TLS */
	TG_L7_TDS = 3,		/* PRELOGIN, then TLS in TDS packets; or TDS 8 strict TLS */
	TG_L7_CONNECT = 4,		/* flow to a forward proxy: CONNECT host:port, 200, TLS */
	TG_L7_SMB3 = 5,			/* SMB 3 with encryption, not TLS (tlsguard/smb.h) */
	TG_L7__MAX,
};

enum tg_preface_result {
	TG_PF_NEED_MORE = 0,		/* every byte so far fits */
	TG_PF_TLS = 1,			/* the preface ends at ->tls_off: TLS must follow */
	TG_PF_PLAINTEXT = 2,
};

struct tg_preface {
	__u16 tls_off;			/* stream offset where TLS starts */
	__u16 tls_end;			/* TDS: end of the packet carrying the hello; 0: none */
	__u16 host_off;			/* CONNECT / absolute-form: the target host */
	__u16 port;			/* CONNECT target port; 0 when not given */
	__u8 host_len;
	__u8 kind;			/* enum tg_preface_kind */
	__u8 host_v6;			/* the host was an IPv6 literal in brackets (host_off: inside) */
	__u8 host_cut;			/* tg_pf_host() ran out of bytes before the host ended */
};
_Static_assert(sizeof(struct tg_preface) == 12, "tg_preface layout");

enum tg_preface_kind {
	TG_PK_NONE = 0,
	TG_PK_TLS,			/* TLS from the first byte */
	TG_PK_PG_SSLREQUEST,
	TG_PK_MYSQL_SSL,
	TG_PK_TDS_PRELOGIN,
	TG_PK_CONNECT,			/* CONNECT host:port; TLS after the request */
	TG_PK_PROXY_ABSOLUTE,		/* GET http://host/ through a proxy: plaintext */
};

#define TG_PF_RD8(b, i)	((__u32)(b)[(i) & TG_HELLO_MASK])

/*
 * A compiler barrier: what was stored through a pointer is read back from
 * memory. For the verifier: when @pf lives in a map value, a position found
 * by a loop comes back as an unknown number instead of one exact value per
 * loop exit, so the code after the loop is verified once, not once per exit.
 */
#define TG_BARRIER()	__asm__ __volatile__("" ::: "memory")

/* b[0 .. n) against a fixed byte string: 1 all of it matched, 0 a prefix so far, -1 mismatch. */
TG_INLINE int tg_pf_expect(const __u8 *b, __u32 n, const __u8 *want, __u32 wlen)
{
	__u32 i;

	for (i = 0; i < 16 && i < wlen; i++) {
		if (i >= n)
			return 0;
		if (TG_PF_RD8(b, i) != want[i])
			return -1;
	}
	return 1;
}

/*
 * The TLS record layer in front of a ClientHello (@server 0) or ServerHello
 * (@server 1) at b[off .. n): handshake records of version 3.1-3.4 whose
 * payloads, one after the other, hold the hello message. @full says no more
 * bytes will come (the buffer is full, or the packet that carries the hello
 * ended). TG_RECS_AFTER_HRR in @server: one ChangeCipherSpec record may come
 * first (a server's compatibility CCS after its HelloRetryRequest).
 *
 * Returns TG_PF_NEED_MORE (not all of it yet), TG_PF_TLS, or
 * TG_PF_PLAINTEXT (these are not TLS handshake records). On TG_PF_TLS the
 * message starts at *hs_off and has *hs_len bytes (as many as fit); when it
 * spans records, recs->n > 1 and tg_tls_compact() must move the later
 * pieces up against the first before it is parsed. recs->end is where the
 * record holding the end of the hello ends (the next record starts there):
 * a ClientHello must fill its last record exactly (nothing else belongs in
 * the client's first flight), a ServerHello may share it with the server's
 * next handshake messages.
 */
#define TG_MAX_RECORDS 16
#define TG_RECS_SERVER		1
#define TG_RECS_AFTER_HRR	2

struct tg_tls_recs {
	__u16 off[TG_MAX_RECORDS];	/* buffer offset of each piece of the message */
	__u16 len[TG_MAX_RECORDS];	/* its length (within the buffer and the message) */
	__u32 n;			/* pieces; 1: the message is in one record */
	__u32 end;			/* buffer offset just past the last record read */
};

/* A ChangeCipherSpec record (type 20, version 3.x, length 1, value 1) at b[off]. */
TG_INLINE int tg_tls_is_ccs(const __u8 *b, __u32 off, __u32 n)
{
	return off + 6 <= n && TG_PF_RD8(b, off) == 20 && TG_PF_RD8(b, off + 1) == 3 &&
	       TG_PF_RD8(b, off + 3) == 0 && TG_PF_RD8(b, off + 4) == 1 && TG_PF_RD8(b, off + 5) == 1;
}

TG_INLINE int tg_tls_records(const __u8 *b, __u32 off, __u32 n, int server, int full,
			     __u32 *hs_off, __u32 *hs_len, struct tg_tls_recs *recs)
{
	__u32 rec_len, need, have, p, r, l, lfull;
	int v, strict = !(server & TG_RECS_SERVER);

	recs->n = 0;
	recs->end = 0;
	if ((server & TG_RECS_AFTER_HRR) && tg_tls_is_ccs(b, off, n))
		off += 6;
	if (off >= n)
		return full ? TG_PF_PLAINTEXT : TG_PF_NEED_MORE;
	v = tg_classify_record(&b[off & TG_HELLO_MASK], n - off,
			       strict ? TG_TLS_HANDSHAKE_CLIENT_HELLO : TG_TLS_HANDSHAKE_SERVER_HELLO);
	if (v == TG_PREFIX_PLAINTEXT)
		return TG_PF_PLAINTEXT;
	if (v == TG_PREFIX_NEED_MORE)
		return full ? TG_PF_PLAINTEXT : TG_PF_NEED_MORE;
	rec_len = (TG_PF_RD8(b, off + 3) << 8) | TG_PF_RD8(b, off + 4);
	*hs_off = off + 5;
	*hs_len = 0;
	recs->end = off + 5 + rec_len;
	if (n - off < 9)		/* the handshake header itself */
		return full ? TG_PF_TLS : TG_PF_NEED_MORE;
	need = 4 + ((TG_PF_RD8(b, off + 6) << 16) | (TG_PF_RD8(b, off + 7) << 8) |
		    TG_PF_RD8(b, off + 8));
	if (strict && need < rec_len)
		return TG_PF_PLAINTEXT;	/* bytes after the ClientHello inside its record */
	have = n - off - 5;
	if (have > rec_len)
		have = rec_len;
	if (have > need)
		have = need;
	recs->off[0] = off + 5;
	recs->len[0] = have;
	recs->n = 1;
	*hs_len = have;
	if (have >= need)
		return TG_PF_TLS;
	if (have < rec_len)		/* the first record is not all here yet */
		return full ? TG_PF_TLS : TG_PF_NEED_MORE;
	/* the message goes on in later records */
	p = off + 5 + rec_len;
	for (r = 1; r < TG_MAX_RECORDS; r++) {
		if (have >= need)
			break;
		if (p + 5 > n)
			return full ? TG_PF_TLS : TG_PF_NEED_MORE;
		l = (TG_PF_RD8(b, p + 3) << 8) | TG_PF_RD8(b, p + 4);
		if (TG_PF_RD8(b, p) != TG_TLS_CONTENT_HANDSHAKE || TG_PF_RD8(b, p + 1) != 3 ||
		    TG_PF_RD8(b, p + 2) < 1 || TG_PF_RD8(b, p + 2) > 4 || l == 0 ||
		    l > TG_TLS_MAX_RECORD)
			return TG_PF_PLAINTEXT;
		lfull = l;
		if (l > need - have) {
			if (strict)
				return TG_PF_PLAINTEXT;
			l = need - have;
		}
		recs->end = p + 5 + lfull;
		if (p + 5 + l > n) {
			/* this piece is still coming */
			if (!full)
				return TG_PF_NEED_MORE;
			l = n - p - 5;
		}
		recs->off[r] = p + 5;
		recs->len[r] = l;
		recs->n = r + 1;
		have += l;
		*hs_len = have;
		p += 5 + l;
		if (p >= n && have < need)
			return full ? TG_PF_TLS : TG_PF_NEED_MORE;
	}
	if (have < need)
		return TG_PF_PLAINTEXT;	/* a hello in more than 16 pieces: no real client does that */
	return TG_PF_TLS;
}

/* memmove within the buffer, forward (dst < src): what tg_tls_compact needs. */
TG_INLINE void tg_tls_move(__u8 *b, __u32 dst, __u32 src, __u32 len)
{
	__u32 i;

	for (i = 0; i < TG_HELLO_MAX; i++) {
		if (i >= len)
			break;
		b[(dst + i) & TG_HELLO_MASK] = b[(src + i) & TG_HELLO_MASK];
	}
}

/* Pull the pieces of a hello spread over records together (host side; BPF has its own loop). */
TG_INLINE void tg_tls_compact(__u8 *b, const struct tg_tls_recs *recs)
{
	__u32 r, w = recs->off[0] + recs->len[0];

	for (r = 1; r < TG_MAX_RECORDS && r < recs->n; r++) {
		tg_tls_move(b, w, recs->off[r], recs->len[r]);
		w += recs->len[r];
	}
}

/* PostgreSQL SSLRequest: length 8, code 80877103. */
static const __u8 tg_pg_sslrequest[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };

TG_INLINE int tg_preface_postgres(const __u8 *b, __u32 n, struct tg_preface *pf)
{
	int m;

	if (n < 1)
		return TG_PF_NEED_MORE;
	if (TG_PF_RD8(b, 0) == TG_TLS_CONTENT_HANDSHAKE) {
		pf->kind = TG_PK_TLS;	/* sslnegotiation=direct */
		pf->tls_off = 0;
		return TG_PF_TLS;
	}
	m = tg_pf_expect(b, n, tg_pg_sslrequest, sizeof(tg_pg_sslrequest));
	if (m < 0)
		return TG_PF_PLAINTEXT;	/* StartupMessage, CancelRequest, GSSENCRequest */
	if (m == 0)
		return TG_PF_NEED_MORE;
	pf->kind = TG_PK_PG_SSLREQUEST;
	pf->tls_off = 8;
	return TG_PF_TLS;
}

/*
 * MySQL/MariaDB: the client's first packet is either the 32-byte SSL request
 * (sequence 1, CLIENT_PROTOCOL_41 | CLIENT_SSL) or a HandshakeResponse with
 * the user name in it.
 */
#define TG_MYSQL_CLIENT_PROTOCOL_41	0x0200
#define TG_MYSQL_CLIENT_SSL		0x0800

TG_INLINE int tg_preface_mysql(const __u8 *b, __u32 n, struct tg_preface *pf)
{
	static const __u8 hdr[4] = { 32, 0, 0, 1 };
	__u32 caps;
	int m = tg_pf_expect(b, n, hdr, 4);

	if (m < 0)
		return TG_PF_PLAINTEXT;
	if (n < 6)
		return TG_PF_NEED_MORE;
	caps = TG_PF_RD8(b, 4) | (TG_PF_RD8(b, 5) << 8);
	if (!(caps & TG_MYSQL_CLIENT_SSL) || !(caps & TG_MYSQL_CLIENT_PROTOCOL_41))
		return TG_PF_PLAINTEXT;
	if (n < 36)
		return TG_PF_NEED_MORE;
	pf->kind = TG_PK_MYSQL_SSL;
	pf->tls_off = 36;
	return TG_PF_TLS;
}

/*
 * TDS (SQL Server): TDS 8 starts with the ClientHello. Before that, a
 * PRELOGIN packet (type 0x12) whose ENCRYPTION option is ON or REQ, then a
 * PRELOGIN packet carrying the TLS handshake. ENCRYPT_OFF (only the login is
 * encrypted) and NOT_SUP are plaintext.
 */
#define TG_TDS_PRELOGIN		0x12
#define TG_TDS_OPT_ENCRYPTION	0x01
#define TG_TDS_OPT_TERMINATOR	0xff
#define TG_TDS_ENCRYPT_ON	0x01
#define TG_TDS_ENCRYPT_REQ	0x03

TG_INLINE int tg_preface_tds(const __u8 *b, __u32 n, struct tg_preface *pf)
{
	__u32 len, p, i, enc = 0xff, len2;

	if (n < 1)
		return TG_PF_NEED_MORE;
	if (TG_PF_RD8(b, 0) == TG_TLS_CONTENT_HANDSHAKE) {
		pf->kind = TG_PK_TLS;	/* TDS 8: strict encryption */
		pf->tls_off = 0;
		return TG_PF_TLS;
	}
	if (TG_PF_RD8(b, 0) != TG_TDS_PRELOGIN)
		return TG_PF_PLAINTEXT;
	if (n < 8)
		return TG_PF_NEED_MORE;
	len = (TG_PF_RD8(b, 2) << 8) | TG_PF_RD8(b, 3);
	if (!(TG_PF_RD8(b, 1) & 0x01) || len < 8 + 6 || len > 1024)
		return TG_PF_PLAINTEXT;	/* one packet, end of message, sane size */
	if (n < len)
		return TG_PF_NEED_MORE;
	p = 8;
	for (i = 0; i < 16; i++) {
		__u32 tok, o, l;

		if (p >= len)
			return TG_PF_PLAINTEXT;
		tok = TG_PF_RD8(b, p);
		if (tok == TG_TDS_OPT_TERMINATOR)
			break;
		if (p + 5 > len)
			return TG_PF_PLAINTEXT;
		o = (TG_PF_RD8(b, p + 1) << 8) | TG_PF_RD8(b, p + 2);
		l = (TG_PF_RD8(b, p + 3) << 8) | TG_PF_RD8(b, p + 4);
		if (8 + o + l > len)
			return TG_PF_PLAINTEXT;
		if (tok == TG_TDS_OPT_ENCRYPTION && l >= 1)
			enc = TG_PF_RD8(b, 8 + o);
		p += 5;
	}
	if (enc != TG_TDS_ENCRYPT_ON && enc != TG_TDS_ENCRYPT_REQ)
		return TG_PF_PLAINTEXT;
	/* the next packet must be a PRELOGIN packet carrying TLS */
	if (n < len + 8)
		return TG_PF_NEED_MORE;
	len2 = (TG_PF_RD8(b, len + 2) << 8) | TG_PF_RD8(b, len + 3);
	if (TG_PF_RD8(b, len) != TG_TDS_PRELOGIN || len2 <= 8)
		return TG_PF_PLAINTEXT;
	pf->kind = TG_PK_TDS_PRELOGIN;
	pf->tls_off = len + 8;
	pf->tls_end = len + len2;
	return TG_PF_TLS;
}

/*
 * The host of "CONNECT host:port HTTP/1.1" or of an absolute-form request
 * "GET http://host[:port]/..." at b[p ..]: stops at ':', '/', ' '. An IPv6
 * literal in brackets ("[::ffff:198.51.100.10]:443") is the text inside
 * them, with pf->host_v6 set. Returns the offset after the host (and port),
 * or 0 when malformed.
 */
TG_INLINE __u32 tg_pf_host(const __u8 *b, __u32 p, __u32 n, struct tg_preface *pf)
{
	__u32 i, port = 0, c, close = 0;

	pf->host_v6 = 0;
	pf->host_cut = 0;
	if (p < n && TG_PF_RD8(b, p) == '[') {
		for (i = 1; i < 48 && p + i < n; i++) {
			c = TG_PF_RD8(b, p + i);
			if (c == ']')
				break;
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			      (c >= 'A' && c <= 'F') || c == ':' || c == '.'))
				return 0;
		}
		if (p + i >= n)
			pf->host_cut = 1;
		if (i == 1 || i == 48 || p + i >= n)
			return 0;
		pf->host_v6 = 1;
		pf->host_off = p + 1;
		pf->host_len = i - 1;
		close = 1;
	} else {
		pf->host_off = p;
		for (i = 0; i < TG_SNI_MAX && p + i < n; i++) {
			c = TG_PF_RD8(b, p + i);
			if (c == ':' || c == '/' || c == ' ')
				break;
			if (!tg_host_char(c))
				return 0;
		}
		if (p + i >= n && i < TG_SNI_MAX)
			pf->host_cut = 1;
		if (i == 0 || p + i >= n || i >= TG_SNI_MAX)
			return 0;
		pf->host_len = i;
	}
	TG_BARRIER();
	p = pf->host_off + pf->host_len + close;
	if (p >= n) {
		pf->host_cut = 1;
		return 0;
	}
	if (TG_PF_RD8(b, p) == ':') {
		for (i = 1; i < 7 && p + i < n; i++) {
			c = TG_PF_RD8(b, p + i);
			if (c < '0' || c > '9')
				break;
			port = port * 10 + (c - '0');
		}
		if (i == 1 || port > 65535)
			return 0;
		pf->port = port;
		pf->tls_off = p + i;
	} else {
		pf->tls_off = p;
	}
	TG_BARRIER();
	return pf->tls_off;	/* re-read: see TG_BARRIER */
}

/*
 * Host names a resolver or inet_aton() takes for an address. A proxy
 * connects to whatever its resolver makes of the text, so the kernel must
 * read it the same way before it compares it with the policy.
 */
#define TG_HOST_NUM_MAX		64	/* numeric hosts longer than this are not judged */

/* A hex digit's value, 16 for anything else. */
TG_INLINE __u32 tg_hexval(__u32 c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 16;
}

/*
 * The scanners below keep what they carry from one character to the next
 * in @st and read it back through a volatile access: in BPF @st is in a
 * map value, so each loop iteration starts from unknown numbers and the
 * verifier walks the loop once instead of once per combination of values.
 */
struct tg_host_scan {
	__u32 v, nw, gap, nd, np, base, digit, v4s;
	__u32 w[8];
	__u64 p[4];
};

#define TG_ST(x)	(*(volatile __typeof__(x) *)&(x))

/*
 * inet_aton(): one to four parts separated by dots, each decimal, octal
 * (leading 0) or hex (0x); a last part fills the bytes the others left
 * ("127.2" is 127.0.0.2, "2130706434" and "0x7f000002" are too). 1 with
 * *addr (host byte order) set, 0 when it is not such a number.
 */
TG_INLINE int tg_host_inet_aton(const __u8 *b, __u32 off, __u32 len, __u32 *addr,
				struct tg_host_scan *st)
{
	__u64 v, p0, p1, p2;
	__u32 i, c, d, np, base, digit;

	if (len == 0 || len > TG_HOST_NUM_MAX)
		return 0;
	TG_ST(st->p[0]) = 0;
	TG_ST(st->p[1]) = 0;
	TG_ST(st->p[2]) = 0;
	TG_ST(st->np) = 0;
	TG_ST(st->base) = 10;
	TG_ST(st->digit) = 0;
	TG_ST(st->v) = 0;
	for (i = 0; i < TG_HOST_NUM_MAX; i++) {
		if (i >= len)
			break;
		c = TG_PF_RD8(b, off + i);
		digit = TG_ST(st->digit);
		base = TG_ST(st->base);
		v = TG_ST(st->v);
		if (c == '.') {
			np = TG_ST(st->np);
			if (!digit || digit == 2 || np >= 3)
				return 0;	/* an empty part, or "0x" without digits */
			TG_ST(st->p[np & 3]) = v;
			TG_ST(st->np) = np + 1;
			TG_ST(st->v) = 0;
			TG_ST(st->digit) = 0;
			TG_ST(st->base) = 10;
			continue;
		}
		if (!digit) {
			if (c < '0' || c > '9')
				return 0;
			TG_ST(st->digit) = 1;
			TG_ST(st->base) = c == '0' ? 8 : 10;
			TG_ST(st->v) = c - '0';
			continue;
		}
		if (base == 8 && v == 0 && digit == 1 && (c == 'x' || c == 'X')) {
			TG_ST(st->base) = 16;
			TG_ST(st->digit) = 2;
			continue;
		}
		d = tg_hexval(c);
		if (d >= base)
			return 0;
		v = v * base + d;
		if (v > 0xffffffffULL)
			return 0;
		TG_ST(st->v) = v;
		TG_ST(st->digit) = 3;
	}
	digit = TG_ST(st->digit);
	if (!digit || digit == 2)
		return 0;
	v = TG_ST(st->v);
	p0 = TG_ST(st->p[0]);
	p1 = TG_ST(st->p[1]);
	p2 = TG_ST(st->p[2]);
	switch (TG_ST(st->np)) {
	case 0:
		*addr = v;
		return 1;
	case 1:
		if (p0 > 0xff || v > 0xffffff)
			return 0;
		*addr = (p0 << 24) | v;
		return 1;
	case 2:
		if (p0 > 0xff || p1 > 0xff || v > 0xffff)
			return 0;
		*addr = (p0 << 24) | (p1 << 16) | v;
		return 1;
	default:
		if (p0 > 0xff || p1 > 0xff || p2 > 0xff || v > 0xff)
			return 0;
		*addr = (p0 << 24) | (p1 << 16) | (p2 << 8) | v;
		return 1;
	}
}

/*
 * An IPv6 literal (inet_pton(AF_INET6)): up to eight groups of one to four
 * hex digits, one "::", a dotted IPv4 address in place of the last two
 * groups ("::ffff:198.51.100.10"). 1 with out[16] set, 0 when malformed.
 */
#define TG_HOST_V6_MAX	45

TG_INLINE int tg_host_ipv6(const __u8 *b, __u32 off, __u32 len, __u8 out[16],
			   struct tg_host_scan *st)
{
	__u32 nw, gap, v, nd, i, c, k, v4s = 0xff;

	if (len < 2 || len > TG_HOST_V6_MAX)
		return 0;
	for (k = 0; k < 8; k++)
		TG_ST(st->w[k]) = 0;
	TG_ST(st->nw) = 0;
	TG_ST(st->gap) = 8;
	TG_ST(st->v) = 0;
	TG_ST(st->nd) = 0;
	TG_ST(st->v4s) = 0xff;
	for (i = 0; i < TG_HOST_V6_MAX; i++) {
		if (i >= len)
			break;
		c = TG_PF_RD8(b, off + i);
		nw = TG_ST(st->nw) & 15;
		nd = TG_ST(st->nd) & 15;
		v = TG_ST(st->v) & 0xffff;
		if (c == ':') {
			if (i + 1 < len && TG_PF_RD8(b, off + i + 1) == ':') {
				if (TG_ST(st->gap) != 8)
					return 0;	/* a second "::" */
				if (nd) {
					if (nw >= 8)
						return 0;
					TG_ST(st->w[nw & 7]) = v;
					nw++;
				}
				TG_ST(st->gap) = nw;
				i++;
			} else {
				if (!nd || nw >= 7 || i + 1 >= len)
					return 0;
				TG_ST(st->w[nw & 7]) = v;
				nw++;
			}
			TG_ST(st->nw) = nw;
			TG_ST(st->v) = 0;
			TG_ST(st->nd) = 0;
			continue;
		}
		if (c == '.') {
			TG_ST(st->v4s) = i - nd;
			break;
		}
		if (tg_hexval(c) >= 16 || nd >= 4)
			return 0;
		TG_ST(st->v) = v * 16 + tg_hexval(c);
		TG_ST(st->nd) = nd + 1;
	}
	nw = TG_ST(st->nw) & 15;
	nd = TG_ST(st->nd) & 15;
	gap = TG_ST(st->gap) & 15;
	v4s = TG_ST(st->v4s);
	if (v4s != 0xff) {
		__u32 a;

		/* the dotted part: exactly four decimal parts, as inet_pton wants */
		if (v4s >= len || nw > 6 ||
		    tg_host_inet_aton(b, off + v4s, len - v4s, &a, st) != 1)
			return 0;
		for (k = 0; k < 16; k++) {		/* strict: four parts, no octal or hex */
			if (v4s + k >= len)
				break;
			c = TG_PF_RD8(b, off + v4s + k);
			if (c != '.' && (c < '0' || c > '9'))
				return 0;
			if (c == '0' && (k == 0 || TG_PF_RD8(b, off + v4s + k - 1) == '.') &&
			    v4s + k + 1 < len && TG_PF_RD8(b, off + v4s + k + 1) != '.')
				return 0;
		}
		if (TG_ST(st->np) != 3)
			return 0;
		TG_ST(st->w[nw & 7]) = a >> 16;
		TG_ST(st->w[(nw + 1) & 7]) = a & 0xffff;
		nw += 2;
	} else if (nd) {
		if (nw >= 8)
			return 0;
		TG_ST(st->w[nw & 7]) = TG_ST(st->v) & 0xffff;
		nw++;
	} else if (gap != nw) {
		return 0;			/* ends in a single ':' */
	}
	if (gap == 8 ? nw != 8 : nw >= 8)
		return 0;
	/* the groups after the "::" move to the end */
	for (k = 0; k < 8; k++) {
		__u32 g;

		if (gap == 8 || k < gap)
			g = TG_ST(st->w[k & 7]);
		else if (k < 8 - (nw - gap))
			g = 0;
		else
			g = TG_ST(st->w[(k - (8 - nw)) & 7]);
		out[(2 * k) & 15] = g >> 8;
		out[(2 * k + 1) & 15] = g & 0xff;
	}
	return 1;
}

/* Offset just past the first "\r\n\r\n" at or after @p (within TG_HDR_SCAN bytes), or 0. */
#define TG_HDR_SCAN 1024

TG_INLINE __u32 tg_pf_end_of_headers(const __u8 *b, __u32 p, __u32 n)
{
	__u32 i, w = 0;

	n = TG_OPAQUE(n);	/* keeps the TG_HDR_SCAN bound in the loop (opaque.h) */

	for (i = 0; i < TG_HDR_SCAN; i++) {
		if (p + i >= n)
			break;
		w = (w << 8) | TG_PF_RD8(b, TG_OPAQUE(p + i));
		if (w == 0x0d0a0d0a)
			return p + i + 1;
	}
	return 0;
}

/*
 * A flow to a forward proxy: "CONNECT host:port HTTP/1.x" and its headers,
 * TLS after them (the client sends it once the proxy said 200). A plain
 * request in absolute form ("GET http://host/") is plaintext to that host.
 * Anything else is plaintext with no host.
 */
TG_INLINE int tg_preface_connect(const __u8 *b, __u32 n, struct tg_preface *pf)
{
	static const __u8 connect[8] = { 'C', 'O', 'N', 'N', 'E', 'C', 'T', ' ' };
	static const __u8 http[7] = { 'h', 't', 't', 'p', ':', '/', '/' };
	__u32 p, i, end;
	int m;

	if (n < 1)
		return TG_PF_NEED_MORE;
	m = tg_pf_expect(b, n, connect, sizeof(connect));
	if (m == 0)
		return TG_PF_NEED_MORE;
	if (m < 0) {
		/* METHOD SP http://host... : the method is up to 16 capitals */
		for (i = 0; i < 16 && i < n; i++) {
			__u32 c = TG_PF_RD8(b, i);

			if (c == ' ')
				break;
			if (c < 'A' || c > 'Z')
				return TG_PF_PLAINTEXT;
		}
		if (i == 0 || i == 16)
			return TG_PF_PLAINTEXT;
		pf->host_off = i + 1 + 7;
		TG_BARRIER();
		i = pf->host_off - 8;
		if (i + 1 + 7 > n)
			return n >= TG_HELLO_MAX ? TG_PF_PLAINTEXT : TG_PF_NEED_MORE;
		if (tg_pf_expect(&b[(i + 1) & TG_HELLO_MASK], n - i - 1, http, sizeof(http)) != 1)
			return TG_PF_PLAINTEXT;
		if (!tg_pf_host(b, i + 1 + 7, n, pf)) {
			pf->host_len = 0;
			pf->tls_off = 0;
			if (pf->host_cut && n < TG_HELLO_MAX)
				return TG_PF_NEED_MORE;
			pf->kind = TG_PK_PROXY_ABSOLUTE;	/* with no host: not to be judged */
			return TG_PF_PLAINTEXT;
		}
		pf->kind = TG_PK_PROXY_ABSOLUTE;
		pf->tls_off = 0;
		return TG_PF_PLAINTEXT;
	}
	p = tg_pf_host(b, 8, n, pf);
	if (!p || p >= n || pf->port == 0 || TG_PF_RD8(b, p) != ' ') {
		pf->host_len = 0;
		pf->tls_off = 0;
		if (n < TG_HELLO_MAX && ((!p && pf->host_cut) || (p && p >= n)))
			return TG_PF_NEED_MORE;
		pf->kind = TG_PK_CONNECT;	/* with no host: not to be judged */
		return TG_PF_PLAINTEXT;
	}
	end = tg_pf_end_of_headers(b, p, n);
	if (!end) {
		pf->tls_off = 0;
		return n >= TG_HELLO_MAX ? TG_PF_PLAINTEXT : TG_PF_NEED_MORE;
	}
	pf->kind = TG_PK_CONNECT;
	pf->tls_off = end;
	return TG_PF_TLS;
}

/*
 * One request of a keep-alive connection to a forward proxy, at b[0 .. n):
 * its kind, target host and where the next request starts (its head, then
 * its body: Content-Length bytes, none without one). A request that cannot
 * be framed this way (chunked or another transfer coding, a Content-Length
 * that does not parse, a head longer than TG_HDR_SCAN) is TG_REQ_UNFRAMED:
 * what follows it cannot be told apart from a next request.
 */
#define TG_REQ_CANDIDATES	16	/* header lines starting with 'c' or 't' looked at */

enum tg_req_result {
	TG_REQ_NEED_MORE = 0,
	TG_REQ_FRAMED = 1,		/* ->head_end, ->body_len, ->kind, host in ->pf */
	TG_REQ_UNFRAMED = 2,
	TG_REQ_NOT_REQUEST = 3,		/* not a request line where one must start */
};

struct tg_http_req {
	__u32 head_end;			/* just past the blank line */
	__u32 body_len;
	__u32 kind;			/* TG_PK_CONNECT, TG_PK_PROXY_ABSOLUTE, TG_PK_NONE (origin form) */
	__u32 line;			/* scan state: the byte being looked at */
	__u32 cl_at;			/* where the Content-Length value starts, 0: none */
	__u32 ncand;			/* header lines starting with c or t (candidates) */
	__u32 cand[TG_REQ_CANDIDATES];	/* where they start */
};

#define TG_SWAR_LOWER	0x2020202020202020ULL

/* The 8 bytes at b[off], little endian, letters lower-cased (and '-' ':' kept). */
TG_INLINE __u64 tg_rd64_lower(const __u8 *b, __u32 off)
{
	__u64 x = 0;
	__u32 i;

	for (i = 0; i < 8; i++)
		x |= (__u64)TG_PF_RD8(b, off + i) << (8 * i);
	return x | TG_SWAR_LOWER;
}

#define TG_LE8(a, b, c, d, e, f, g, h)							\
	((__u64)(a) | (__u64)(b) << 8 | (__u64)(c) << 16 | (__u64)(d) << 24 |		\
	 (__u64)(e) << 32 | (__u64)(f) << 40 | (__u64)(g) << 48 | (__u64)(h) << 56)

/* A header line at b[p]: 1 "content-length:", 2 "transfer-encoding:", 0 other. */
TG_INLINE int tg_http_framing_header(const __u8 *b, __u32 p, __u32 end)
{
	__u64 a;

	if (p + 15 > end)
		return 0;
	a = tg_rd64_lower(b, p);
	if (a == TG_LE8('c', 'o', 'n', 't', 'e', 'n', 't', '-') &&
	    tg_rd64_lower(b, p + 7) == TG_LE8('-', 'l', 'e', 'n', 'g', 't', 'h', ':'))
		return 1;
	if (p + 18 <= end && a == TG_LE8('t', 'r', 'a', 'n', 's', 'f', 'e', 'r') &&
	    tg_rd64_lower(b, p + 8) == TG_LE8('-', 'e', 'n', 'c', 'o', 'd', 'i', 'n') &&
	    (TG_PF_RD8(b, p + 16) | 0x20) == 'g' && TG_PF_RD8(b, p + 17) == ':')
		return 2;
	return 0;
}

/* The Content-Length value at b[p ..]: 0.. or -1 when it does not parse. */
TG_INLINE __s64 tg_http_length_value(const __u8 *b, __u32 p, __u32 end)
{
	__u64 v = 0;
	__u32 i, c, digits = 0;

	for (i = 0; i < 24 && p + i < end; i++) {
		c = TG_PF_RD8(b, p + i);
		if (c == ' ' || c == '\t') {
			if (digits)
				break;
			continue;
		}
		if (c == '\r')
			break;
		if (c < '0' || c > '9' || digits >= 12)
			return -1;
		v = v * 10 + (c - '0');
		digits++;
	}
	if (!digits || v > 0xffffffffULL)
		return -1;
	return v;
}

/*
 * Stage 1: the request line, from what tg_preface_connect() made of it (@m,
 * and @pf); TG_REQ_FRAMED here means "go on to stage 2".
 */
TG_INLINE int tg_http_request_kind(const __u8 *b, __u32 n, struct tg_preface *pf,
				   struct tg_http_req *rq, int m)
{
	static const __u8 http[7] = { 'h', 't', 't', 'p', ':', '/', '/' };
	static const __u8 https[8] = { 'h', 't', 't', 'p', 's', ':', '/', '/' };
	__u32 i, c, tgt;

	rq->head_end = 0;
	rq->body_len = 0;
	rq->kind = TG_PK_NONE;
	if (m == TG_PF_NEED_MORE)
		return TG_REQ_NEED_MORE;
	if (pf->kind == TG_PK_CONNECT) {
		rq->kind = TG_PK_CONNECT;
		if (m != TG_PF_TLS)
			return pf->host_len ? TG_REQ_UNFRAMED : TG_REQ_NOT_REQUEST;
		rq->head_end = pf->tls_off;
		return TG_REQ_FRAMED;
	}
	if (pf->kind == TG_PK_PROXY_ABSOLUTE) {
		rq->kind = TG_PK_PROXY_ABSOLUTE;
	} else {
		/* "METHOD https://host/" or an origin-form request ("GET / ") */
		for (i = 0; i < 16 && i < n; i++) {
			c = TG_PF_RD8(b, i);
			if (c == ' ')
				break;
			if (c < 'A' || c > 'Z')
				return TG_REQ_NOT_REQUEST;
		}
		if (i == 0 || i == 16)
			return i == 16 || n >= TG_HELLO_MAX ? TG_REQ_NOT_REQUEST : TG_REQ_NEED_MORE;
		/* through memory: the rest is verified once, not once per method length */
		TG_ST(rq->line) = i + 1;
		tgt = TG_ST(rq->line);
		if (tgt + 8 > n)
			return n >= TG_HELLO_MAX ? TG_REQ_NOT_REQUEST : TG_REQ_NEED_MORE;
		if (tg_pf_expect(&b[tgt & TG_HELLO_MASK], n - tgt, https, sizeof(https)) == 1) {
			rq->kind = TG_PK_PROXY_ABSOLUTE;
			if (!tg_pf_host(b, tgt + 8, n, pf)) {
				pf->host_len = 0;
				if (pf->host_cut && n < TG_HELLO_MAX)
					return TG_REQ_NEED_MORE;
			}
		} else if (tg_pf_expect(&b[tgt & TG_HELLO_MASK], n - tgt, http, sizeof(http)) == 1) {
			return TG_REQ_NOT_REQUEST;	/* tg_preface_connect() would have taken it */
		}
	}
	return TG_REQ_FRAMED;
}

/* Stage 2: the end of the head and the body's length (after tg_http_request_line()). */
TG_INLINE int tg_http_request_framing(const __u8 *b, __u32 n, struct tg_http_req *rq)
{
	__u32 i, c, end, at, k;
	__s64 cl = 0;
	int h;

	if (rq->kind == TG_PK_CONNECT)
		return TG_REQ_FRAMED;	/* its head ends at the tunnel: stage 1 said where */
	TG_ST(rq->head_end) = tg_pf_end_of_headers(b, 0, n);
	end = TG_ST(rq->head_end);	/* through memory: see tg_host_scan */
	if (!end)
		return n >= TG_HELLO_MAX || n >= TG_HDR_SCAN ? TG_REQ_UNFRAMED : TG_REQ_NEED_MORE;
	/*
	 * The header lines: Content-Length frames the body, a transfer coding
	 * does not. One cheap pass notes the lines that start with 'c' or 't',
	 * then only those are compared (a byte loop with the comparison in it
	 * is more than the verifier walks).
	 */
	TG_ST(rq->line) = 0;
	TG_ST(rq->cl_at) = 0;
	TG_ST(rq->ncand) = 0;
	for (i = 0; i < TG_HDR_SCAN; i++) {
		at = TG_ST(rq->line);
		if (at + 1 >= end)
			break;
		TG_ST(rq->line) = at + 1;
		if (TG_PF_RD8(b, at) != '\n')
			continue;
		c = TG_PF_RD8(b, at + 1) | 0x20;
		if (c != 'c' && c != 't')
			continue;
		k = TG_ST(rq->ncand);
		if (k >= TG_REQ_CANDIDATES)
			return TG_REQ_UNFRAMED;
		TG_ST(rq->cand[k & (TG_REQ_CANDIDATES - 1)]) = at + 1;
		TG_ST(rq->ncand) = k + 1;
	}
	for (k = 0; k < TG_REQ_CANDIDATES; k++) {
		if (k >= TG_ST(rq->ncand))
			break;
		at = TG_ST(rq->cand[k]);
		h = tg_http_framing_header(b, at, end);
		if (h == 2)
			return TG_REQ_UNFRAMED;
		if (h == 1)
			TG_ST(rq->cl_at) = at + 15;
	}
	at = TG_ST(rq->cl_at);
	if (at) {
		cl = tg_http_length_value(b, at, end);
		if (cl < 0)
			return TG_REQ_UNFRAMED;
	}
	rq->body_len = cl;
	return TG_REQ_FRAMED;
}

TG_INLINE int tg_http_request(const __u8 *b, __u32 n, struct tg_preface *pf, struct tg_http_req *rq)
{
	int r = tg_http_request_kind(b, n, pf, rq, tg_preface_connect(b, n, pf));

	return r == TG_REQ_FRAMED ? tg_http_request_framing(b, n, rq) : r;
}

TG_INLINE int tg_preface(__u32 proto, const __u8 *b, __u32 n, struct tg_preface *pf)
{
	__builtin_memset(pf, 0, sizeof(*pf));
	switch (proto) {
	case TG_L7_POSTGRES:
		return tg_preface_postgres(b, n, pf);
	case TG_L7_MYSQL:
		return tg_preface_mysql(b, n, pf);
	case TG_L7_TDS:
		return tg_preface_tds(b, n, pf);
	case TG_L7_CONNECT:
		return tg_preface_connect(b, n, pf);
	default:
		pf->kind = TG_PK_TLS;
		return TG_PF_TLS;
	}
}

/*
 * The server's side before its TLS: where its ServerHello starts, from its
 * first bytes b[0 .. n). @kind is what the client's preface was. Returns
 * TG_PF_TLS with *off set, TG_PF_NEED_MORE, or TG_PF_PLAINTEXT when the
 * server declined (postgres 'N', proxy refusal): no ServerHello will come.
 */
TG_INLINE int tg_server_preface(__u32 proto, __u32 kind, const __u8 *b, __u32 n, __u32 *off)
{
	__u32 len, end;

	*off = 0;
	if (kind == TG_PK_TLS)
		return TG_PF_TLS;
	if (n < 1)
		return TG_PF_NEED_MORE;
	switch (proto) {
	case TG_L7_POSTGRES:
		if (TG_PF_RD8(b, 0) != 'S')
			return TG_PF_PLAINTEXT;
		*off = 1;
		return TG_PF_TLS;
	case TG_L7_MYSQL:
		/* the greeting: protocol version 10 after the 4-byte header */
		if (n < 5)
			return TG_PF_NEED_MORE;
		if (TG_PF_RD8(b, 3) != 0 || TG_PF_RD8(b, 4) != 10)
			return TG_PF_PLAINTEXT;
		*off = 4 + (TG_PF_RD8(b, 0) | (TG_PF_RD8(b, 1) << 8) | (TG_PF_RD8(b, 2) << 16));
		return TG_PF_TLS;
	case TG_L7_TDS:
		/* PRELOGIN response (tabular result), then a PRELOGIN packet wrapping TLS */
		if (n < 4)
			return TG_PF_NEED_MORE;
		if (TG_PF_RD8(b, 0) != 0x04)
			return TG_PF_PLAINTEXT;
		len = (TG_PF_RD8(b, 2) << 8) | TG_PF_RD8(b, 3);
		if (len < 8)
			return TG_PF_PLAINTEXT;
		*off = len + 8;
		return TG_PF_TLS;
	case TG_L7_CONNECT:
		/* "HTTP/1.x 200 ..." up to the blank line */
		if (n < 12)
			return TG_PF_NEED_MORE;
		if (TG_PF_RD8(b, 0) != 'H' || TG_PF_RD8(b, 4) != '/' || TG_PF_RD8(b, 8) != ' ' ||
		    TG_PF_RD8(b, 9) != '2' || TG_PF_RD8(b, 10) != '0' || TG_PF_RD8(b, 11) != '0')
			return TG_PF_PLAINTEXT;
		end = tg_pf_end_of_headers(b, 0, n);
		if (!end)
			return TG_PF_NEED_MORE;
		*off = end;
		return TG_PF_TLS;
	default:
		return TG_PF_TLS;
	}
}

#endif /* TLSGUARD_PREFACE_H */
