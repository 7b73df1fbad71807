/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The client side of the verdict. Called for every egress packet of a
 * tracked flow; decided flows return after one switch. Undecided flows
 * collect their first bytes (at most TG_HELLO_MAX, across segments) in the
 * handshake state and run the flow's protocol machine over them:
 *
 *   preface (postgres, mysql, tds, CONNECT)  →  TLS records  →  ClientHello
 *
 * Each step answers "need more", "plaintext" or "go on"; the ClientHello
 * answers with the highest offered version (weak_tls) and the SNI
 * (sni_mismatch). Segments pass while bytes are collected; the segment that
 * completes a violating hello is the one dropped in enforce mode, so the
 * peer never gets a whole hello and no application data is ever exchanged.
 *
 * A good ClientHello does not decide the flow: from its end on the client's
 * bytes are walked record by record (tg_walk_records()) until the server's
 * hello has been judged (ingress.bpf.h) and the client's next record after
 * it is seen. Then the flow is TLS and never looked at again.
 */
#ifndef TLSGUARD_EGRESS_BPF_H
#define TLSGUARD_EGRESS_BPF_H

#include "hsstate.bpf.h"
#include "dest.bpf.h"
#include "handoff.bpf.h"
#include "override.bpf.h"
#include "smb.bpf.h"
#include "dnswait.bpf.h"
#include "tlsguard/quic.h"

/*
 * Append what this segment adds to the bytes collected in hs->buf. @rel is
 * the segment's stream offset, @base the stream offset of buf[0]. Returns
 * 0, or -1 when the segment starts past what has been collected (a gap:
 * cannot be judged, must not pass unjudged).
 */
static __always_inline int tg_collect(struct __sk_buff *skb, struct tg_hs *hs,
				      const struct tg_segment *seg, __u32 rel, __u32 base)
{
	__u32 have = hs->have, skip = 0, n, at;

	if (rel < base) {
		skip = base - rel;		/* bytes before buf[0] (a preface) */
		if (skip >= seg->payload_len)
			return 0;
		rel = base;
	}
	at = rel - base;
	if (at > have)
		return -1;
	skip += have - at;			/* bytes of this segment already held */
	if (skip >= seg->payload_len || have >= TG_HELLO_MAX)
		return 0;			/* a retransmission, or the buffer is full */
	n = seg->payload_len - skip;
	if (n > TG_HELLO_MAX - have)
		n = TG_HELLO_MAX - have;
	/* masks only for the verifier: have < TG_HELLO_MAX and 1 <= n <= TG_HELLO_MAX hold */
	have &= TG_HELLO_MASK;
	n = ((n - 1) & TG_HELLO_MASK) + 1;
	if (bpf_skb_load_bytes(skb, seg->payload_off + skip, &hs->buf[have], n) < 0)
		return -1;
	hs->have = have + n;
	return 0;
}

/* tg_proxy_class(): a target whose host cannot be read the way the proxy will read it. */
#define TG_PROXY_UNJUDGED	0xffffffffu

/*
 * The CONNECT host (or an absolute-form request's host): which class names
 * it? Read as the proxy's resolver will: trailing dots dropped, IPv6
 * literals (v4-mapped ones too) and every inet_aton() form of an IPv4
 * address ("127.2", "2130706434", "0x7f000002", "0177.0.0.2") looked up
 * like connect() would, other hosts by name. 0: no class;
 * TG_PROXY_UNJUDGED: a host that cannot be read (a bracketed literal that
 * does not parse, a numeric-looking host past TG_HOST_NUM_MAX).
 */
static __always_inline __u32 tg_proxy_class(struct tg_hs *hs, __u32 host_off, __u32 host_len)
{
	struct tg_dest_key key = {};
	__u32 len = tg_host_trim_hs(hs, host_off, host_len);
	__u8 c;

	if (!len)
		return TG_PROXY_UNJUDGED;
	if (hs->pf.host_v6) {
		if (!tg_host_ipv6_hs(hs, host_off, len, &key))
			return TG_PROXY_UNJUDGED;
		return tg_addr_class_id(&key);
	}
	if (tg_host_aton_hs(hs, host_off, len, &key))
		return tg_addr_class_id(&key);
	c = hs->buf[host_off & TG_HELLO_MASK];
	if (len > TG_HOST_NUM_MAX && c >= '0' && c <= '9')
		return TG_PROXY_UNJUDGED;
	return tg_name_class(hs, host_off, len, TG_NAME_ANY_CLASS);
}

/*
 * A proxy flow takes on the class of the host it asked for: 1 when one
 * does, 0 when none, -1 when the target cannot be judged.
 */
static __always_inline int tg_proxy_adopt(struct tg_flow *flow, struct tg_hs *hs)
{
	struct tg_class *cls;
	__u32 class_id;

	if (!hs->pf.host_len)
		return hs->pf.kind == TG_PK_CONNECT || hs->pf.kind == TG_PK_PROXY_ABSOLUTE ? -1 : 0;
	class_id = tg_proxy_class(hs, hs->pf.host_off, hs->pf.host_len);
	if (class_id == TG_PROXY_UNJUDGED)
		return -1;
	if (!class_id)
		return 0;
	cls = bpf_map_lookup_elem(&tg_classes, &class_id);
	if (!cls)
		return 0;
	flow->class_id = class_id;
	flow->mode = tg_flow_mode(cls, class_id, flow->cgroup_id, &flow->rule);
	flow->min_tls = cls->min_tls;
	flow->cls_flags = cls->flags;
	tg_count(TG_CNT_FLOWS_TRACKED);
	tg_count_class(class_id, TG_CS_TRACKED);
	return 1;
}

/*
 * A request to a listed proxy whose target cannot be read: nothing can say
 * whether it goes to a protected destination. Fails closed where a class
 * enforces (fail_mode closed): dropped, blocked_connect reason
 * proxy_target; otherwise flagged and let through. Counted either way.
 */
static __always_inline int tg_proxy_unjudged(struct __sk_buff *skb, struct bpf_sock *sk,
					     struct tg_flow *flow, struct tg_hs *hs,
					     const struct tg_segment *seg)
{
	const struct tg_config *cfg = tg_get_config();
	int block = cfg && cfg->any_enforce && !cfg->fail_open;

	tg_count(TG_CNT_PROXY_UNFRAMED);
	flow->state = block ? TG_FLOW_BLOCKED : TG_FLOW_UNTRACKED;
	tg_emit_flow(skb, flow, seg, hs, TG_EV_BLOCKED_CONNECT, block ? TG_ACT_BLOCKED : TG_ACT_FLAGGED,
		     TG_SIDE_CLIENT, TG_CR_PROXY_TARGET, TG_PL_FIRST_BYTES);
	tg_hs_put(sk, flow);
	return block ? tg_drop(TG_CNT_SEGMENTS_DROPPED) : TG_PASS;
}

static __always_inline int tg_proxy_untracked(struct bpf_sock *sk, struct tg_flow *flow)
{
	flow->state = TG_FLOW_UNTRACKED;
	tg_count(TG_CNT_PROXY_UNTRACKED);
	tg_hs_put(sk, flow);
	return TG_PASS;
}

/*
 * A keep-alive connection to a proxy: every request on it is judged. The
 * request at hs->buf[0] (stream offset px.next) is framed by its head and
 * Content-Length; an absolute-form request to a host a class lists is
 * plaintext (the flow takes that class), one to another host moves on to
 * the next request, pipelined ones in the same bytes included. A request
 * that cannot be framed or read fails closed (tg_proxy_unjudged()), a
 * CONNECT to an unlisted host makes the rest a tunnel (untracked).
 */
#define TG_PROXY_REQS_PER_SEG	4

static __always_inline int tg_proxy_requests(struct __sk_buff *skb, struct bpf_sock *sk,
					     struct tg_flow *flow, struct tg_hs *hs,
					     const struct tg_segment *seg)
{
	__u32 i, have, used;
	int r, adopted;

	flow->state = TG_FLOW_PROXY_REQ;
	for (i = 0; i < TG_PROXY_REQS_PER_SEG; i++) {
		have = hs->have;
		if (have == 0)
			return TG_PASS;
		r = tg_parse_request_hs(hs);
		if (r == TG_REQ_NEED_MORE) {
			tg_count(TG_CNT_PARTIAL_PREFIX);
			return TG_PASS;		/* a request head so far */
		}
		if (r != TG_REQ_FRAMED)
			return tg_proxy_unjudged(skb, sk, flow, hs, seg);
		adopted = tg_proxy_adopt(flow, hs);
		if (adopted < 0)
			return tg_proxy_unjudged(skb, sk, flow, hs, seg);
		if (hs->rq.kind == TG_PK_CONNECT) {
			if (adopted)	/* a tunnel to a listed host after other requests: not followed */
				return tg_proxy_unjudged(skb, sk, flow, hs, seg);
			return tg_proxy_untracked(sk, flow);
		}
		if (adopted)
			return tg_violation(skb, sk, flow, hs, seg, TG_EV_PLAINTEXT);
		tg_count(TG_CNT_PROXY_REQUESTS);
		flow->px.reqs++;
		used = hs->rq.head_end + hs->rq.body_len;
		flow->px.next += used;
		if (used >= have) {
			hs->have = 0;
			return TG_PASS;
		}
		/* the next request came in the same bytes: it starts the buffer now */
		tg_move(hs, 0, used, have - used);
		hs->have = have - used;
	}
	return tg_proxy_unjudged(skb, sk, flow, hs, seg);	/* more than a client pipelines */
}

/* A segment of a keep-alive proxy connection (TG_FLOW_PROXY_REQ). */
static __always_inline int tg_proxy_walk(struct __sk_buff *skb, struct bpf_sock *sk,
					 struct tg_flow *flow)
{
	struct tg_segment seg;
	struct tg_hs *hs;
	__u32 rel;
	int err = tg_parse_segment(skb, &seg, TG_DIR_EGRESS);

	if (err < 0)
		return tg_unparseable(skb, sk, flow, err, TG_SIDE_CLIENT);
	if (seg.payload_len == 0)
		return TG_PASS;
	rel = seg.seq - flow->first_seq;
	if ((__s32)(rel + seg.payload_len - flow->px.next) <= 0)
		return TG_PASS;		/* the body of the request being sent, or a retransmission */
	hs = tg_hs_get(sk, flow, 1);
	if (!hs)
		return tg_hold(flow, TG_CNT_ERR_HS_STORAGE);
	flow->hs_flags |= TG_HSF_HS_STORED;
	if (tg_collect(skb, hs, &seg, rel, flow->px.next) < 0)
		return tg_drop(TG_CNT_OUT_OF_ORDER);
	return tg_proxy_requests(skb, sk, flow, hs, &seg);
}

/* SNI binding: TG_SNI_* for this flow's class. */
static __always_inline __u8 tg_sni_check(struct tg_flow *flow, struct tg_hs *hs)
{
	__u32 flags = hs->hi.flags;

	if (flags & TG_HELLO_F_SNI) {
		if (!(flow->cls_flags & TG_CLS_SNI_BIND))
			return TG_SNI_UNCHECKED;
		return tg_name_class(hs, hs->hi.sni_off, hs->hi.sni_len, flow->class_id) ?
			       TG_SNI_MATCH : TG_SNI_MISMATCH;
	}
	if ((flags & TG_HELLO_F_TRUNCATED) && !(flags & TG_HELLO_F_SNI_INVALID))
		return TG_SNI_UNCHECKED;	/* it may be in the part that did not fit */
	if (flow->cls_flags & TG_CLS_REQUIRE_SNI)
		return TG_SNI_MISSING;
	return TG_SNI_UNCHECKED;
}

/* The skb offset of the record header a walk stopped at (for the event's payload). */
static __always_inline __u32 tg_walk_pl_off(const struct tg_segment *seg, const struct tg_rec_walk *w,
					    __u32 rel)
{
	__u32 k = w->next - rel;

	return (__s32)k > 0 && k < seg->payload_len ? seg->payload_off + k : seg->payload_off;
}

/*
 * The client's bytes after its hello, while the handshake is undecided: TLS
 * records, at most TG_PRE_SH_MAX of stream before the server's hello; the
 * first record after the server's hello decides the flow.
 */
static __always_inline int tg_client_walk(struct __sk_buff *skb, struct bpf_sock *sk,
					  struct tg_flow *flow, struct tg_hs *hs,
					  const struct tg_segment *seg, __u32 rel)
{
	int r;

	if (flow->wflags & TG_WF_NO_WALK) {
		/* TDS wraps its handshake records in TDS packets: the ServerHello decides */
		if (rel + seg->payload_len <= TG_PRE_SH_MAX)
			return TG_PASS;
		tg_count(TG_CNT_UNDECIDED_BOUND);
		return tg_violation_at(skb, sk, flow, hs, seg, TG_EV_PLAINTEXT, TG_SIDE_CLIENT,
				       TG_PR_UNDECIDED, seg->payload_off);
	}
	r = tg_walk_records(skb, &flow->cw, seg->payload_off, rel, seg->payload_len);
	if (r == TG_WALK_GAP)	/* TCP resends; the walk goes on from where it stands */
		return tg_drop(TG_CNT_OUT_OF_ORDER);
	if (r < 0)
		return tg_violation_at(skb, sk, flow, hs, seg, TG_EV_PLAINTEXT, TG_SIDE_CLIENT,
				       TG_PR_AFTER_HELLO, tg_walk_pl_off(seg, &flow->cw, rel));
	if (!(flow->wflags & TG_WF_SH_DONE)) {
		if (flow->cw.next <= TG_PRE_SH_MAX)
			return TG_PASS;
		tg_count(TG_CNT_UNDECIDED_BOUND);
		return tg_violation_at(skb, sk, flow, hs, seg, TG_EV_PLAINTEXT, TG_SIDE_CLIENT,
				       TG_PR_UNDECIDED, seg->payload_off);
	}
	if (r > 0)
		return tg_allow(skb, sk, flow, hs, seg);	/* the client's next flight began */
	return TG_PASS;
}

/*
 * A good ClientHello: the client's records are walked from the end of the
 * hello's last record on (the rest of this segment first), the server's
 * bytes are collected for its hello.
 */
static __always_inline int tg_client_hello_done(struct __sk_buff *skb, struct bpf_sock *sk,
						struct tg_flow *flow, struct tg_hs *hs,
						const struct tg_segment *seg, __u32 rel)
{
	if (!(flow->wflags & TG_WF_CH_DONE)) {
		flow->wflags |= TG_WF_CH_DONE;
		if (flow->pf_kind == TG_PK_TDS_PRELOGIN)
			flow->wflags |= TG_WF_NO_WALK;
		flow->cw.next = hs->recs.end;
		flow->cw.have = 0;
		flow->cw.mode = TG_WM_ANY;
	}
	flow->state = TG_FLOW_SERVER_HELLO;
	tg_hello_sum_keep(flow, hs);
	hs->dir = 1;
	hs->have = 0;
	return tg_client_walk(skb, sk, flow, hs, seg, rel);
}

/* The bytes in hs->buf, from the first payload byte on: decide if they allow it. */
static __always_inline int tg_client_decide(struct __sk_buff *skb, struct bpf_sock *sk,
					    struct tg_flow *flow, struct tg_hs *hs,
					    const struct tg_segment *seg, __u32 rel)
{
	__u32 n = hs->have, limit, full, tls_off, tls_end;
	int r;

	if (flow->proto == TG_L7_SMB3)
		return tg_smb_client_decide(skb, sk, flow, hs, seg);	/* not TLS: smb.bpf.h */
	r = tg_parse_preface(hs, flow->proto);
	if (r == TG_PF_NEED_MORE && n < TG_HELLO_MAX) {
		tg_count(TG_CNT_PARTIAL_PREFIX);
		return TG_PASS;
	}
	if (flow->proto == TG_L7_CONNECT && !flow->class_id) {
		int adopted = tg_proxy_adopt(flow, hs);

		if (adopted < 0)
			return tg_proxy_unjudged(skb, sk, flow, hs, seg);
		if (!adopted && hs->pf.kind == TG_PK_CONNECT)
			return tg_proxy_untracked(sk, flow);	/* a tunnel to an unlisted host */
		if (!adopted) {
			/* plain requests to unlisted hosts: judge each one that follows */
			flow->px.next = 0;
			flow->px.reqs = 0;
			return tg_proxy_requests(skb, sk, flow, hs, seg);
		}
		tg_keep_tunnel(hs);
	}
	flow->pf_kind = hs->pf.kind;
	if (r != TG_PF_TLS)
		return tg_violation(skb, sk, flow, hs, seg, TG_EV_PLAINTEXT);
	tls_off = hs->pf.tls_off;
	tls_end = hs->pf.tls_end;
	flow->tls_off = tls_off;
	hs->tls.tls_off = tls_off;
	limit = n;
	full = n >= TG_HELLO_MAX;
	if (tls_end && tls_end <= n) {
		limit = tls_end;	/* TDS: the hello ends with its packet */
		full = 1;
	}
	r = tg_parse_records(hs, tls_off, limit, 0, full);
	if (r == TG_PF_NEED_MORE) {
		/* what passes while the hello is collected must be a hello so far */
		if (hs->recs.n >= 1) {
			hs->rec_len = hs->recs.len[0];
			if (tg_parse_hello_hs(hs, 0) == TG_HELLO_BAD)
				return tg_violation(skb, sk, flow, hs, seg, TG_EV_PLAINTEXT);
		}
		tg_count(TG_CNT_PARTIAL_PREFIX);
		return TG_PASS;
	}
	if (r != TG_PF_TLS)
		return tg_violation(skb, sk, flow, hs, seg, TG_EV_PLAINTEXT);
	if (seg->payload_len < n)
		tg_count(TG_CNT_HELLO_SPLIT);
	r = tg_parse_hello_hs(hs, 0);
	/* a hello may be cut only by the end of the buffer, never by its own lengths */
	if (r == TG_HELLO_BAD || (r == TG_HELLO_TRUNCATED && !full))
		return tg_violation(skb, sk, flow, hs, seg, TG_EV_PLAINTEXT);
	if (r == TG_HELLO_TRUNCATED)
		tg_count(TG_CNT_HELLO_TRUNCATED);
	tg_hello_summary(hs, r);
	if (flow->min_tls && hs->tls.offered && hs->tls.offered < TG_TLS_VERSION(flow->min_tls)) {
		hs->tls.side = TG_SIDE_CLIENT;
		return tg_violation(skb, sk, flow, hs, seg, TG_EV_WEAK_TLS);
	}
	hs->tls.sni_result = tg_sni_check(flow, hs);
	if (hs->tls.sni_result == TG_SNI_MISMATCH || hs->tls.sni_result == TG_SNI_MISSING)
		return tg_violation(skb, sk, flow, hs, seg, TG_EV_SNI_MISMATCH);
	/* the client is fine so far; the server's hello and the records after decide */
	return tg_client_hello_done(skb, sk, flow, hs, seg, rel);
}

/* An unconnected socket's datagram to the flow's destination (others were judged at sendmsg). */
static __always_inline int tg_udp_to_flow(const struct tg_flow *flow, const struct tg_segment *seg)
{
	const __u32 *a = (const __u32 *)flow->daddr, *b = (const __u32 *)seg->peer;

	return seg->pport == flow->dport && a[0] == b[0] && a[1] == b[1] && a[2] == b[2] &&
	       a[3] == b[3];
}

/* The first bytes of a datagram, up to TG_QUIC_HDR_PEEK; how many were read. */
static __always_inline __u32 tg_quic_peek(struct __sk_buff *skb, const struct tg_segment *seg,
					  __u8 b[64])
{
	__u32 n = seg->payload_len;

	if (n > TG_QUIC_HDR_PEEK)
		n = TG_QUIC_HDR_PEEK;
	n = ((n - 1) & 63) + 1;		/* for the verifier: 1..TG_QUIC_HDR_PEEK holds */
	if (bpf_skb_load_bytes(skb, seg->payload_off, b, n) < 0)
		return 0;
	return n;
}

/* The client's Initial: keep its version and first DCID (the later datagrams' check). */
static __always_inline void tg_quic_keep_initial(struct tg_flow *flow, const __u8 b[64])
{
	__u32 i, l = b[5];

	__builtin_memset(&flow->quic, 0, sizeof(flow->quic));
	flow->quic.version = tg_quic_version(b);
	flow->quic.dcid_len = l;
	for (i = 0; i < 8; i++)
		flow->quic.dcid[i] = i < l ? b[6 + i] : 0;
}

/*
 * A later datagram of the client: a long header of the flow's version whose
 * DCID is the server's SCID (or, before the server answered, the first
 * DCID), or a short header carrying the server's SCID.
 */
static __always_inline int tg_quic_client_later(const struct tg_quic_ids *q, const __u8 b[64],
						__u32 n)
{
	__u32 l;

	if (n < 1 || !(b[0] & 0x40))
		return 0;			/* no fixed bit: not QUIC v1/v2 */
	if (b[0] & 0x80) {
		if (n < 6 || tg_quic_version(b) != q->version)
			return 0;
		l = b[5];
		if (l > 20)
			return 0;
		if (q->have_scid && tg_quic_cid_is(b, n, 6, l, q->scid_len, q->scid))
			return 1;
		return tg_quic_cid_is(b, n, 6, l, q->dcid_len, q->dcid);
	}
	return q->have_scid && tg_quic_cid_is(b, n, 1, q->scid_len, q->scid_len, q->scid);
}

/*
 * UDP: the first datagram decides (a QUIC Initial is TLS 1.3 inside), and a
 * QUIC flow stays QUIC: every later datagram is a QUIC packet of that
 * connection, or plaintext.
 */
static __always_inline int tg_udp_egress(struct __sk_buff *skb, struct bpf_sock *sk,
					 struct tg_flow *flow, const struct tg_segment *seg)
{
	__u8 b[64];
	__u32 n;

	if (seg->l4 != IPPROTO_UDP || seg->payload_len < 1)
		return TG_PASS;
	if ((flow->hs_flags & TG_HSF_UNCONNECTED) && !tg_udp_to_flow(flow, seg))
		return TG_PASS;
	__builtin_memset(b, 0, sizeof(b));
	n = tg_quic_peek(skb, seg, b);
	if (!n)
		return tg_drop(TG_CNT_QUIC_UNREADABLE);	/* cannot be judged: fail closed */
	if (flow->state == TG_FLOW_QUIC) {
		tg_count(TG_CNT_QUIC_LATER);
		if (tg_quic_client_later(&flow->quic, b, n))
			return TG_PASS;
		return tg_violation_at(skb, sk, flow, NULL, seg, TG_EV_PLAINTEXT, TG_SIDE_CLIENT,
				       TG_PR_NOT_QUIC, seg->payload_off);
	}
	if (tg_quic_client_initial(b, n >= TG_QUIC_PEEK ? TG_QUIC_PEEK : 0, seg->payload_len)) {
		int r;

		tg_count(TG_CNT_QUIC_INITIAL);
		tg_quic_keep_initial(flow, b);
		r = tg_allow(skb, sk, flow, NULL, seg);
		flow->state = TG_FLOW_QUIC;
		return r;
	}
	return tg_violation(skb, sk, flow, NULL, seg, TG_EV_PLAINTEXT);
}

/*
 * For a socket no connect() judged (raw, UDP-Lite): the class protecting
 * @seg's peer (*class_id, and the sending cgroup in *cgid), or NULL when no
 * class protects it or the cgroup is skipped.
 */
static __always_inline const struct tg_class *tg_peer_class(struct __sk_buff *skb,
							    const struct tg_segment *seg,
							    __u32 *class_id, __u64 *cgid)
{
	struct tg_dest_key key = { .prefixlen = 128 };

	__builtin_memcpy(key.addr, seg->peer, 16);
	*class_id = tg_addr_class_id(&key);
	if (!*class_id)
		return NULL;
	*cgid = bpf_skb_cgroup_id(skb);
	if (tg_cgroup_skipped(cgid))
		return NULL;
	return bpf_map_lookup_elem(&tg_classes, class_id);
}

/* The identity of a flow tg_peer_class() found a class for, taken from the packet. */
static __always_inline void tg_peer_flow(struct __sk_buff *skb, struct tg_flow *flow,
					 const struct tg_segment *seg, const struct tg_class *cls,
					 __u32 class_id, __u64 cgid)
{
	flow->cookie = bpf_get_socket_cookie(skb);
	flow->cgroup_id = cgid;
	flow->class_id = class_id;
	flow->mode = cls->mode;
	flow->family = skb->protocol == bpf_htons(ETH_P_IP) ? AF_INET : AF_INET6;
	__builtin_memcpy(flow->daddr, seg->peer, 16);
	flow->dport = seg->pport;
}

/*
 * A packet of a socket no connect() judged, parsed into @seg: when it
 * carries payload (over UDP only, with @udp_only) to a destination a class
 * protects, @flow takes that class and the packet's identity
 * (tg_peer_flow()) and the class is returned; else NULL.
 */
static __always_inline const struct tg_class *tg_peer_segment(struct __sk_buff *skb,
							      struct tg_flow *flow,
							      struct tg_segment *seg, int udp_only)
{
	const struct tg_class *cls;
	__u64 cgid = 0;
	__u32 class_id = 0;

	if (tg_parse_segment(skb, seg, TG_DIR_EGRESS) < 0 || seg->payload_len == 0)
		return NULL;
	if (udp_only && seg->l4 != IPPROTO_UDP)
		return NULL;
	cls = tg_peer_class(skb, seg, &class_id, &cgid);
	if (cls)
		tg_peer_flow(skb, flow, seg, cls, class_id, cgid);
	return cls;
}

/*
 * A raw socket (marked at socket(), tg_raw_mark()): the kernel builds no
 * TCP or UDP flow for it, so a TCP/UDP packet with payload it sends to a
 * protected destination is someone writing a transport by hand (into a
 * tracked connection's 5-tuple, or around it). Plaintext, reason
 * raw_socket; ICMP and the rest pass. Only raw sockets get here.
 */
static __always_inline int tg_raw_egress(struct __sk_buff *skb, struct bpf_sock *sk,
					 struct tg_flow *flow)
{
	struct tg_segment seg;

	if (!tg_peer_segment(skb, flow, &seg, 0))
		return TG_PASS;
	tg_count(TG_CNT_RAW_CHECKED);
	return tg_violation_at(skb, sk, flow, NULL, &seg, TG_EV_PLAINTEXT, TG_SIDE_CLIENT,
			       TG_PR_RAW_SOCKET, seg.payload_off);
}

/*
 * A UDP-Lite socket (marked at socket(), tg_raw_mark()): the first datagram
 * to a protected destination starts a UDP flow for it, connected or not, as
 * connect() or sendmsg() would for UDP, and is judged as its first.
 */
static __always_inline int tg_lite_egress(struct __sk_buff *skb, struct bpf_sock *sk,
					  struct tg_flow *flow)
{
	const struct tg_class *cls;
	struct tg_segment seg;

	cls = tg_peer_segment(skb, flow, &seg, 1);
	if (!cls)
		return TG_PASS;
	flow->min_tls = cls->min_tls;
	flow->cls_flags = cls->flags;
	flow->hs_flags = TG_HSF_UDP | TG_HSF_UNCONNECTED;
	flow->state = TG_FLOW_PENDING;
	tg_count(TG_CNT_FLOWS_TRACKED);
	tg_count_class(flow->class_id, TG_CS_TRACKED);
	return tg_udp_egress(skb, sk, flow, &seg);
}

/* After a good ClientHello, until the verdict: the client's records. */
static __always_inline int tg_client_handshake(struct __sk_buff *skb, struct bpf_sock *sk,
					       struct tg_flow *flow)
{
	struct tg_segment seg;
	int err = tg_parse_segment(skb, &seg, TG_DIR_EGRESS);

	if (err < 0)
		return tg_unparseable(skb, sk, flow, err, TG_SIDE_CLIENT);
	if (seg.payload_len == 0)
		return TG_PASS;
	return tg_client_walk(skb, sk, flow, tg_hs_stored(sk, flow), &seg, seg.seq - flow->first_seq);
}

/* The client's bytes before its verdict, in the scratch slot @hs (tg_hs_judge()). */
static __always_inline int tg_client_bytes(struct __sk_buff *skb, struct bpf_sock *sk,
					   struct tg_flow *flow, struct tg_hs *hs,
					   const struct tg_segment *seg, __u32 rel)
{
	if (hs->dir != 0)
		return TG_PASS;	/* cannot happen: server bytes only after the client's verdict */
	/* on a gap TCP will retransmit; judging starts from the first byte */
	if (tg_collect(skb, hs, seg, rel, 0) < 0)
		return tg_drop(TG_CNT_OUT_OF_ORDER);
	return tg_client_decide(skb, sk, flow, hs, seg, rel);
}

/*
 * An undecided flow's segment from the client (pending, QUIC, or let go by
 * the DNS hold): which generation judges, then the UDP machine or the
 * hello's bytes.
 */
static __always_inline int tg_client_undecided(struct __sk_buff *skb, struct bpf_sock *sk,
					       struct tg_flow *flow)
{
	struct tg_segment seg;
	__u32 rel;
	int err = tg_parse_segment(skb, &seg, TG_DIR_EGRESS);

	if (err < 0)
		return tg_unparseable(skb, sk, flow, err, TG_SIDE_CLIENT);
	/* the first payload: settle which generation judges (handoff.h) */
	if (seg.payload_len && !(flow->hs_flags & TG_HSF_STARTED) && !tg_gen_owns(sk, flow))
		return tg_gen_disown(sk, flow);
	if (flow->hs_flags & TG_HSF_UDP)
		return tg_udp_egress(skb, sk, flow, &seg);
	if (flow->state != TG_FLOW_PENDING)
		return TG_PASS;		/* cannot happen: QUIC is UDP */
	if (seg.payload_len == 0)
		return TG_PASS;	/* SYN, pure ACK: nothing to judge yet */
	if (!(flow->hs_flags & TG_HSF_STARTED)) {
		flow->first_seq = seg.seq;
		flow->hs_flags |= TG_HSF_STARTED;
	}
	rel = seg.seq - flow->first_seq;	/* wraps correctly modulo 2^32 */
	return tg_hs_judge(skb, sk, flow, &seg, rel, TG_DIR_EGRESS);
}

/* The client's segment, by the flow's state: one case each, the undecided ones fall through. */
static __always_inline int tg_flow_on_egress(struct __sk_buff *skb, struct bpf_sock *sk,
					     struct tg_flow *flow)
{
	int err;

	switch (flow->state) {
	case TG_FLOW_PENDING:
		if (!(flow->hs_flags & TG_HSF_UDP) && tg_tcp_bare(skb))
			return TG_PASS;	/* SYN, pure ACK: nothing to judge yet */
		break;
	case TG_FLOW_SERVER_HELLO:
		if (tg_tcp_bare(skb))
			return TG_PASS;	/* an ACK of the server's hello */
		return tg_client_handshake(skb, sk, flow);
	case TG_FLOW_QUIC:
		break;
	case TG_FLOW_RAW:
		return tg_raw_egress(skb, sk, flow);
	case TG_FLOW_LITE:
		return tg_lite_egress(skb, sk, flow);
	case TG_FLOW_PROXY_REQ:
		return tg_proxy_walk(skb, sk, flow);
	case TG_FLOW_BLOCKED:
		return tg_blocked_segment(skb, TG_DIR_EGRESS);
	case TG_FLOW_SMB_SESSION:
		return tg_smb_session_egress(skb, sk, flow);
	case TG_FLOW_DNS_WAIT:
		err = tg_dns_wait(skb, flow, TG_DIR_EGRESS);
		if (err != TG_DNS_WAIT_GO_ON)
			return err;
		if (flow->state != TG_FLOW_PENDING)
			return TG_PASS;	/* cannot happen: GO_ON leaves it pending */
		break;
	default:
		return TG_PASS;	/* decided */
	}
	return tg_client_undecided(skb, sk, flow);
}

#endif /* TLSGUARD_EGRESS_BPF_H */
