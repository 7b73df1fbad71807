/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The parsers as global BPF functions. A global function is verified once,
 * on its own, whatever state the caller is in; its result comes back as an
 * unknown number. Inlined, each parser's loops would be walked again for
 * every distinct caller state (and every exit of the loop before it), far
 * past the verifier's budget. Pointer arguments need kernel 5.12+ (global
 * functions with pointers to memory): fine for the 5.15 target.
 *
 * They work on the handshake state (tlsguard/flow.h) and leave their
 * results there (hs->pf, hs->rec_off/rec_len, hs->hi, hs->name*).
 */
#ifndef TLSGUARD_PARSE_BPF_H
#define TLSGUARD_PARSE_BPF_H

#include "count.bpf.h"
#include "packet.bpf.h"
#include "tlsguard/names.h"
#include "tlsguard/preface.h"

#define TG_GLOBAL __attribute__((noinline))

/*
 * A fresh read from memory. Loop bounds that come from packet data are read
 * like this inside the loop: a bound kept in a register is narrowed by each
 * "i < len" the verifier walks through until it is one exact number per
 * iteration, and the rest would be verified once for each of them.
 */
#ifndef TG_READ_ONCE
#define TG_READ_ONCE(x)	(*(volatile typeof(x) *)&(x))
#endif

/*
 * How many bytes of hs->buf a parser may read: hs->have, which never exceeds
 * @max (the buffer's size, or what a machine peeks at). The bound is for the
 * verifier: a global function sees hs->have as any number.
 */
static __always_inline __u32 tg_hs_len(const struct tg_hs *hs, __u32 max)
{
	__u32 n = hs->have;

	return n > max ? max : n;
}

/* The flow's preface machine over hs->buf[0 .. have): enum tg_preface_result. */
TG_GLOBAL int tg_parse_preface(struct tg_hs *hs, __u32 proto)
{
	if (!hs)
		return TG_PF_PLAINTEXT;
	return tg_preface(proto, hs->buf, tg_hs_len(hs, TG_HELLO_MAX), &hs->pf);
}

/* One request of a keep-alive proxy connection at hs->buf[0 .. have): enum tg_req_result. */
TG_GLOBAL int tg_request_kind_hs(struct tg_hs *hs, int preface)
{
	if (!hs)
		return TG_REQ_NOT_REQUEST;
	return tg_http_request_kind(hs->buf, tg_hs_len(hs, TG_HELLO_MAX), &hs->pf, &hs->rq, preface);
}

TG_GLOBAL int tg_request_framing_hs(struct tg_hs *hs)
{
	if (!hs)
		return TG_REQ_NOT_REQUEST;
	return tg_http_request_framing(hs->buf, tg_hs_len(hs, TG_HELLO_MAX), &hs->rq);
}

/* The stages, each verified on its own: the CONNECT preface, the request's kind, its framing. */
static __always_inline int tg_parse_request_hs(struct tg_hs *hs)
{
	int r = tg_request_kind_hs(hs, tg_parse_preface(hs, TG_L7_CONNECT));

	return r == TG_REQ_FRAMED ? tg_request_framing_hs(hs) : r;
}

/* memmove in hs->buf, forward: one piece of a hello split over records. */
TG_GLOBAL int tg_move(struct tg_hs *hs, __u32 dst, __u32 src, __u32 len)
{
	if (!hs)
		return 0;
	tg_tls_move(hs->buf, dst, src, len);
	return 0;
}

/* TLS records at hs->buf[off .. n): enum tg_preface_result, the hello at hs->rec_off/len. */
TG_GLOBAL int tg_parse_records(struct tg_hs *hs, __u32 off, __u32 n, __u32 server, __u32 full)
{
	__u32 r, w;
	int ret;

	if (!hs)
		return TG_PF_PLAINTEXT;
	if (n > TG_HELLO_MAX)
		n = TG_HELLO_MAX;
	hs->rec_off = 0;
	hs->rec_len = 0;
	ret = tg_tls_records(hs->buf, off, n, server, full, &hs->rec_off, &hs->rec_len, &hs->recs);
	if (ret != TG_PF_TLS)
		return ret;
	w = hs->recs.off[0] + hs->recs.len[0];
	for (r = 1; r < TG_MAX_RECORDS; r++) {
		if (r >= hs->recs.n)
			break;
		tg_move(hs, w, hs->recs.off[r], hs->recs.len[r]);
		w += hs->recs.len[r];
	}
	return ret;
}

/*
 * The record walk after a hello (struct tg_rec_walk, tlsguard/flow.h). Each
 * header byte is checked as it arrives, so a header split over segments
 * never lets a wrong byte through: type 20-23 (change_cipher_spec, alert,
 * handshake, application_data; 24 heartbeat is refused: before the
 * handshake ends it would travel in the clear), version 3.1-3.4, length
 * 1..2^14+256.
 */
#define TG_WALK_MAX	16	/* headers per segment while undecided (a handshake has a few) */
#define TG_WALK_BAD	(-1)
#define TG_WALK_GAP	(-2)

static __always_inline int tg_rec_hdr_ok(const __u8 *h, __u32 have, __u8 mode)
{
	__u32 l;

	if (have >= 1 && (h[0] < 20 || h[0] > 23))
		return 0;
	/* after an HRR: a CCS may come, then the second ClientHello */
	if (have >= 1 && mode == TG_WM_HANDSHAKE_NEXT && h[0] != 20 && h[0] != 22)
		return 0;
	if (have >= 2 && h[1] != 3)
		return 0;
	if (have >= 3 && (h[2] < 1 || h[2] > 4))
		return 0;
	if (have >= 4 && h[3] > (TG_REC_MAX_LEN >> 8))
		return 0;
	if (have >= 5) {
		l = ((__u32)h[3] << 8) | h[4];
		if (l == 0 || l > TG_REC_MAX_LEN)
			return 0;
	}
	return 1;
}

/*
 * Walk the records of this segment (@len payload bytes at skb offset @off,
 * stream offset @rel) from where @w stands. Returns the number of headers it
 * completed, TG_WALK_BAD (a header that is not TLS: w->next is where it
 * starts) or TG_WALK_GAP (the segment starts past the walk: bytes were
 * missed). Bytes inside a record are not looked at.
 */
TG_GLOBAL int tg_walk_records(struct __sk_buff *skb, struct tg_rec_walk *w, __u32 off, __u32 rel,
			      __u32 len)
{
	__u32 i, j, at, k, n, have, done = 0;
	int r = TG_WALK_BAD;	/* more headers in one segment than a handshake has */
	__u8 b[8] = {};

	if (!skb || !w)
		return TG_WALK_BAD;
	for (i = 0; i < TG_WALK_MAX; i++) {
		have = w->have;
		if (have > 4)
			break;		/* cannot happen: a full header is consumed at once */
		at = w->next + have;
		if ((__s32)(at - rel) < 0) {
			r = TG_WALK_GAP;	/* the segment starts past the walk */
			break;
		}
		k = at - rel;
		if (k >= len) {
			r = done;	/* the walk goes on past this segment */
			break;
		}
		n = len - k;
		if (n > 5 - have)
			n = 5 - have;
		n = ((n - 1) & 7) + 1;		/* for the verifier: 1..5 holds already */
		if (bpf_skb_load_bytes(skb, off + k, b, n) < 0)
			break;
		for (j = 0; j < 5; j++) {
			if (j >= n || have >= 5)
				break;
			w->hdr[have] = b[j];
			have++;
		}
		w->have = have;
		if (!tg_rec_hdr_ok(w->hdr, have, w->mode))
			break;
		if (have < 5) {
			r = done;	/* the header goes on in the next segment */
			break;
		}
		if (w->mode == TG_WM_HANDSHAKE_NEXT && w->hdr[0] == 22)
			w->mode = TG_WM_ANY;
		w->next += 5 + (((__u32)w->hdr[3] << 8) | w->hdr[4]);
		w->have = 0;
		done++;
	}
	if (done)	/* once per segment: each count is a map lookup */
		tg_count_by(TG_CNT_RECORDS_WALKED, done);
	return r;
}

/*
 * The headers of tg_walk_records()'s walk that are in bytes already
 * collected: hs->buf holds the stream from @base on (hs->have bytes), a
 * ServerHello's flight with its records after the hello. Each whole header
 * there is checked as tg_walk_records() checks it, without a helper call
 * for each (the recorded TLS 1.3 flight has five). Returns how many it
 * walked, at most TG_WALK_MAX: the walk then stands at the first header not
 * wholly collected, for tg_walk_records() to go on from. TG_WALK_BAD as
 * tg_walk_records() (w->next: where the header starts).
 */
TG_GLOBAL int tg_walk_collected(struct tg_hs *hs, struct tg_rec_walk *w, __u32 base)
{
	__u32 i, j, at, have, done = 0;
	int r = 0;

	if (!hs || !w || w->have)
		return 0;	/* a header split over segments: tg_walk_records() goes on with it */
	have = tg_hs_len(hs, TG_HELLO_MAX);
	for (i = 0; i < TG_WALK_MAX; i++) {
		at = w->next - base;	/* a walk before @base wraps to past have */
		if (at >= have || have - at < 5)
			break;
		at &= TG_HELLO_MASK;	/* for the verifier: at < have <= TG_HELLO_MAX holds */
		for (j = 0; j < 5; j++)
			w->hdr[j] = hs->buf[at + j];
		if (!tg_rec_hdr_ok(w->hdr, 5, w->mode)) {
			w->have = 5;
			r = TG_WALK_BAD;
			break;
		}
		if (w->mode == TG_WM_HANDSHAKE_NEXT && w->hdr[0] == 22)
			w->mode = TG_WM_ANY;
		w->next += 5 + (((__u32)w->hdr[3] << 8) | w->hdr[4]);
		done++;
	}
	if (done)
		tg_count_by(TG_CNT_RECORDS_WALKED, done);
	return r < 0 ? r : (int)done;
}

/* The stages of tg_parse_hello(), each verified on its own. */
TG_GLOBAL int tg_hello_head_hs(struct tg_hs *hs, __u32 server)
{
	if (!hs)
		return TG_HELLO_BAD;
	return tg_hello_head(hs->buf, hs->rec_off, hs->rec_len, server, &hs->hi);
}

TG_GLOBAL int tg_hello_exts_hs(struct tg_hs *hs, __u32 server)
{
	if (!hs)
		return -1;
	return tg_hello_exts(hs->buf, server, &hs->hi);
}

TG_GLOBAL int tg_hello_versions_hs(struct tg_hs *hs, __u32 server)
{
	if (!hs)
		return -1;
	return tg_hello_versions(hs->buf, server, &hs->hi);
}

TG_GLOBAL int tg_hello_sni_hs(struct tg_hs *hs)
{
	if (!hs)
		return -1;
	return tg_hello_sni(hs->buf, &hs->hi);
}

/* The hello at hs->rec_off/len: enum tg_hello_result, details in hs->hi. */
static __always_inline int tg_parse_hello_hs(struct tg_hs *hs, __u32 server)
{
	int head = tg_hello_head_hs(hs, server);

	if (head == TG_HELLO_BAD)
		return TG_HELLO_BAD;
	if (hs->hi.ext_off < hs->hi.ext_end) {
		if (tg_hello_exts_hs(hs, server) < 0 || tg_hello_versions_hs(hs, server) < 0)
			return TG_HELLO_BAD;
		if (!server)
			tg_hello_sni_hs(hs);
	}
	return tg_hello_result(head, &hs->hi);
}

/*
 * Copy hs->buf[off .. off + len) to @dst (@words eight-byte words), zero
 * past len: eight bytes at a time, as tg_name_copy() does (byte by byte,
 * the SNI and ALPN copies were a quarter of a ClientHello's tg_egress run).
 * @len is re-read each word so the verifier needs no bound on it.
 */
static __always_inline void tg_buf_copy_words(struct tg_hs *hs, __u8 *dst, __u32 words,
					      __u32 off, const __u8 *lenp)
{
	__u32 k;

	for (k = 0; k < words; k++) {
		__u32 at = k * 8, l = TG_READ_ONCE(*lenp);
		__u64 x = 0;

		if (at < l) {
			x = *(__u64 *)&hs->buf[(off + at) & TG_HELLO_MASK];
			if (at + 8 > l)		/* the tail's bytes only (little endian) */
				x &= ((__u64)1 << (((l - at) & 7) * 8)) - 1;
		}
		/* two four-byte stores (both copies land at a multiple of four, asserted
		 * below): a memcpy to a byte pointer is eight one-byte stores, which made
		 * this line a ninth of a ClientHello's run */
		*(__u32 *)(void *)&dst[at] = (__u32)x;
		*(__u32 *)(void *)&dst[at + 4] = (__u32)(x >> 32);
	}
}
_Static_assert(__builtin_offsetof(struct tg_hs, tls.sni) % 4 == 0, "tg_hs.tls.sni alignment");
_Static_assert(__builtin_offsetof(struct tg_hs, tls.alpn) % 4 == 0, "tg_hs.tls.alpn alignment");

/* What a ClientHello said, kept in hs->tls for events (this one and later ones). */
TG_GLOBAL int tg_hello_summary(struct tg_hs *hs, int result)
{
	const struct tg_hello_info *hi;

	if (!hs)
		return 0;
	hi = &hs->hi;
	hs->tls.legacy = hi->legacy_version;
	hs->tls.hello_flags = hi->flags;
	/* without supported_versions in what was seen, a cut hello may still offer more */
	hs->tls.offered = result == TG_HELLO_TRUNCATED &&
			  !(hi->flags & TG_HELLO_F_SUPPORTED_VERSIONS) ? 0 : hi->version;
	hs->tls.sni_len = hi->flags & TG_HELLO_F_SNI ? hi->sni_len : 0;
	tg_buf_copy_words(hs, (__u8 *)hs->tls.sni, sizeof(hs->tls.sni) / 8, hs->hi.sni_off,
			  &hs->tls.sni_len);
	hs->tls.alpn_len = 0;
	if (hi->flags & TG_HELLO_F_ALPN)
		hs->tls.alpn_len = hi->alpn_len < TG_ALPN_MAX ? hi->alpn_len : TG_ALPN_MAX;
	tg_buf_copy_words(hs, hs->tls.alpn, sizeof(hs->tls.alpn) / 8, hs->hi.alpn_off,
			  &hs->tls.alpn_len);
	return 0;
}

/* Keep the host a proxy flow asked for (hs->pf) in hs->tls for its events. */
TG_GLOBAL int tg_keep_tunnel(struct tg_hs *hs)
{
	__u32 i;

	if (!hs)
		return 0;
	hs->tls.tunnel_port = hs->pf.port;
	for (i = 0; i < TG_TUNNEL_MAX; i++)
		hs->tls.tunnel[i] = i < TG_READ_ONCE(hs->pf.host_len) ?
					    hs->buf[(hs->pf.host_off + i) & TG_HELLO_MASK] : 0;
	return 0;
}

/*
 * Copy a host name from hs->buf[off .. off + len) into hs->name, lower-cased
 * and zero-padded as tg_siphash() wants: eight bytes at a time (SWAR), so
 * the verifier walks 33 iterations with two branches instead of 264 with
 * seven. A byte >= 0x80 sets hs->name_bad; other bytes a DNS name cannot
 * hold are copied as they are and simply match no listed name.
 * The copy stops after the first word past len + 7: a suffix hashed in
 * place (tg_name_hash_at()) reads its final word whole, up to byte len + 7,
 * and nothing reads further, so a 26-byte name costs 5 words, not 33.
 */
#define TG_SWAR_HIGH	0x8080808080808080ULL

TG_GLOBAL int tg_name_copy(struct tg_hs *hs, __u32 off, __u32 len)
{
	__u32 k;

	if (!hs)
		return 0;
	if (len > TG_SNI_MAX) {
		hs->name_bad = 1;	/* no DNS name: matches nothing */
		return 0;
	}
	hs->name_len = len;
	hs->name_bad = 0;
	for (k = 0; k < TG_NAME_BUF / 8; k++) {
		__u32 at = k * 8, l = TG_READ_ONCE(hs->name_len) & 255;
		__u64 x = 0, upper;

		if (at >= l + 8)
			break;
		if (at < l) {
			x = *(__u64 *)&hs->buf[(off + at) & TG_HELLO_MASK];
			if (at + 8 > l)		/* keep the name's bytes only (little endian) */
				x &= ((__u64)1 << (((l - at) & 7) * 8)) - 1;
			if (x & TG_SWAR_HIGH)
				hs->name_bad = 1;
			/* 'A' <= byte <= 'Z' → bit 7 of that byte, then + 0x20 (no carry below 0x80) */
			upper = (x + 0x3f3f3f3f3f3f3f3fULL) & ~(x + 0x2525252525252525ULL) & TG_SWAR_HIGH;
			x |= upper >> 2;
		}
		*(__u64 *)&hs->name[at] = x;
	}
	return 0;
}

/* Offset of the first '.' of hs->name after @from, 0 when there is none. */
TG_GLOBAL int tg_name_find_dot(struct tg_hs *hs, __u32 from)
{
	__u32 j;

	if (!hs)
		return 0;
	hs->name_dot = 0;
	from &= 255;
	for (j = 1; j < TG_SNI_MAX; j++) {	/* a counter of its own: the verifier bounds it */
		__u32 i = from + j;

		if (i >= TG_READ_ONCE(hs->name_len))
			break;
		if (hs->name[i & 255] == '.') {
			hs->name_dot = i;
			break;
		}
	}
	return 0;
}

/*
 * SipHash of hs->name[at .. name_len) under @key: the whole name (at 0) or
 * one of its suffixes, hashed where tg_name_copy() put the name. Its bytes
 * are the suffix's own (lower-casing is per byte) and the zero padding
 * after name_len serves every suffix.
 */
TG_GLOBAL __u64 tg_name_hash_at(struct tg_hs *hs, struct tg_sipkey *key, __u32 at)
{
	__u32 len;

	if (!hs || !key)
		return 0;
	len = TG_READ_ONCE(hs->name_len) & 255;
	at &= 255;
	if (at > len)
		return 0;
	return tg_siphash(key, hs->name + at, len - at);
}

/*
 * Suffixes of a name tried against "*.suffix" entries, longest first: a name
 * with more labels than this in front of a listed suffix matches no wildcard.
 */
#define TG_NAME_MAX_SUFFIXES	16

/*
 * Which class lists the host name at hs->buf[off .. off + len), exactly or
 * as "*.suffix" (one or more labels in place of the star, as DNS learning
 * matches; the longest listed suffix wins)? @class_id TG_NAME_ANY_CLASS asks
 * for any class (CONNECT); a class id asks "does this class list it" (SNI
 * binding). Returns the class id, or 0. The name is copied once; each
 * suffix is hashed in place.
 */
TG_GLOBAL int tg_name_class(struct tg_hs *hs, __u32 off, __u32 len, __u32 class_id)
{
	struct tg_name_key key = {};
	struct tg_name_value *val;
	struct tg_sipkey *sk;
	__u32 zero = 0, dot = 0, i;

	if (!hs || len == 0 || len > TG_SNI_MAX)
		return 0;
	sk = bpf_map_lookup_elem(&tg_sipkey, &zero);
	if (!sk)
		return 0;
	tg_name_copy(hs, off, len);
	if (hs->name_bad)
		return 0;
	key.class_id = class_id;
	key.hash = tg_name_hash_at(hs, sk, 0);
	val = bpf_map_lookup_elem(&tg_names, &key);
	if (val)
		return val->class_id;
	/* "*.suffix" entries are the hash of ".suffix": each dot in turn starts one */
	key.flags = TG_NAME_WILDCARD;
	for (i = 0; i < TG_NAME_MAX_SUFFIXES; i++) {
		tg_name_find_dot(hs, dot);
		dot = hs->name_dot;
		if (dot == 0 || dot + 1 >= len)
			return 0;
		key.hash = tg_name_hash_at(hs, sk, dot);
		val = bpf_map_lookup_elem(&tg_names, &key);
		if (val)
			return val->class_id;
	}
	return 0;
}

/* A proxy target's host without its trailing dots ("name." is the same name to a resolver). */
TG_GLOBAL int tg_host_trim_hs(struct tg_hs *hs, __u32 off, __u32 len)
{
	__u32 i;

	if (!hs)
		return 0;
	for (i = 0; i < 8; i++) {
		if (len == 0 || hs->buf[(off + len - 1) & TG_HELLO_MASK] != '.')
			break;
		len--;
	}
	return len;
}

/* A numeric host as inet_aton() reads it ("127.2", "0x7f000002"): 1 with @key set. */
TG_GLOBAL int tg_host_aton_hs(struct tg_hs *hs, __u32 off, __u32 len, struct tg_dest_key *key)
{
	__u32 a = 0;

	if (!hs || !key || !tg_host_inet_aton(hs->buf, off, len, &a, &hs->hscan))
		return 0;
	key->prefixlen = 128;
	tg_v4_mapped(key->addr, bpf_htonl(a));
	return 1;
}

/* An IPv6 literal (v4-mapped ones land on the IPv4 entries): 1 with @key set. */
TG_GLOBAL int tg_host_ipv6_hs(struct tg_hs *hs, __u32 off, __u32 len, struct tg_dest_key *key)
{
	if (!hs || !key)
		return 0;
	key->prefixlen = 128;
	return tg_host_ipv6(hs->buf, off, len, key->addr, &hs->hscan);
}

/* An IPv4 literal host (CONNECT 198.51.100.10:443) as a v4-mapped address; 0 when not one. */
TG_GLOBAL int tg_host_ipv4(struct tg_hs *hs, __u32 off, __u32 len, struct tg_dest_key *key)
{
	__u32 ip = 0, octet = 0, dots = 0, digits = 0, i;

	if (!hs || !key)
		return 0;
	for (i = 0; i < 15; i++) {
		__u8 c;

		if (i >= len)
			break;
		c = hs->buf[(off + i) & TG_HELLO_MASK];
		if (c == '.') {
			if (!digits || octet > 255)
				return 0;
			ip = (ip << 8) | octet;
			octet = 0;
			digits = 0;
			dots++;
		} else if (c >= '0' && c <= '9' && digits < 3) {
			octet = octet * 10 + (c - '0');
			digits++;
		} else {
			return 0;
		}
	}
	if (i != len || dots != 3 || !digits || octet > 255)
		return 0;
	ip = bpf_htonl((ip << 8) | octet);
	key->prefixlen = 128;
	tg_v4_mapped(key->addr, ip);
	return 1;
}

#endif /* TLSGUARD_PARSE_BPF_H */
