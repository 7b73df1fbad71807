/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The server side. While the flow is undecided:
 *  - before the client's hello, only the server's preface may come
 *    (postgres 'S', the MySQL greeting, the TDS PRELOGIN response, the
 *    proxy's "200"): where its TLS starts. A TLS server has none: whatever
 *    it sends first is plaintext (reason server_first);
 *  - then its hello: a ServerHello (or a HelloRetryRequest, after which the
 *    client sends a second ClientHello and the server its ServerHello),
 *    judged for its version (TLS 1.3 through supported_versions; below the
 *    class minimum a weak_tls violation on the server side: in enforce the
 *    ServerHello is dropped, so the client never finishes the handshake);
 *    anything else is plaintext (not_server_hello), but for an alert, which
 *    ends the handshake: the flow is then never decided TLS;
 *  - then its records, walked until the client's next record decides the
 *    flow (egress.bpf.h).
 */
#ifndef TLSGUARD_INGRESS_BPF_H
#define TLSGUARD_INGRESS_BPF_H

#include "egress.bpf.h"

/* The server's first payload: where does its TLS start? */
static __always_inline void tg_server_preface_seg(struct __sk_buff *skb, struct tg_flow *flow,
						  struct tg_hs *hs, const struct tg_segment *seg,
						  __u32 rel)
{
	__u32 n = seg->payload_len, off = 0;
	int r;

	if (rel != 0 || !hs) {
		/* the first bytes went by without us (or no state): cannot tell */
		flow->srv_tls_off = TG_SRV_NONE;
		flow->hs_flags |= TG_HSF_SRV_PREFACE;
		return;
	}
	if (n > TG_SRV_PREFACE_MAX)
		n = TG_SRV_PREFACE_MAX;
	n = ((n - 1) & (TG_SRV_PREFACE_MAX - 1)) + 1;	/* for the verifier: 1..256 */
	if (bpf_skb_load_bytes(skb, seg->payload_off, hs->srv, n) < 0)
		n = 0;
	r = tg_server_preface(flow->proto, flow->pf_kind, hs->srv, n, &off);
	/* one segment is all a server preface gets: they are small and come alone */
	flow->srv_tls_off = r == TG_PF_TLS && off < TG_SRV_NONE ? off : TG_SRV_NONE;
	flow->hs_flags |= TG_HSF_SRV_PREFACE;
}

/*
 * The server's records after its hello (or its alert), until the client
 * decides the flow. Those in the bytes @hs collected (its hello's segment:
 * the server's stream from srv_tls_off on) are walked there, without a
 * helper call each, the rest in the segment. A segment with TG_WALK_MAX
 * headers or more is not a handshake, as in tg_walk_records().
 */
static __always_inline int tg_server_walk(struct __sk_buff *skb, struct bpf_sock *sk,
					  struct tg_flow *flow, struct tg_hs *hs,
					  const struct tg_segment *seg, __u32 rel)
{
	int r = hs && hs->dir == 1 ? tg_walk_collected(hs, &flow->sw, flow->srv_tls_off) : 0;
	int more;

	if (r >= 0) {
		more = tg_walk_records(skb, &flow->sw, seg->payload_off, rel, seg->payload_len);
		r = more < 0 ? more : r + more >= TG_WALK_MAX ? TG_WALK_BAD : r + more;
	}
	if (r == TG_WALK_GAP)
		return tg_drop(TG_CNT_OUT_OF_ORDER);	/* the server resends */
	if (r < 0)
		return tg_violation_at(skb, sk, flow, hs, seg, TG_EV_PLAINTEXT, TG_SIDE_SERVER,
				       TG_PR_AFTER_HELLO, tg_walk_pl_off(seg, &flow->sw, rel));
	if (flow->sw.next - flow->srv_tls_off > TG_SRV_FLIGHT_MAX) {
		tg_count(TG_CNT_UNDECIDED_BOUND);
		return tg_violation_at(skb, sk, flow, hs, seg, TG_EV_PLAINTEXT, TG_SIDE_SERVER,
				       TG_PR_UNDECIDED, seg->payload_off);
	}
	return TG_PASS;
}

/* The server's bytes where its hello was due are not one: plaintext from the server. */
static __always_inline int tg_not_server_hello(struct __sk_buff *skb, struct bpf_sock *sk,
					       struct tg_flow *flow, struct tg_hs *hs,
					       const struct tg_segment *seg)
{
	return tg_violation_at(skb, sk, flow, hs, seg, TG_EV_PLAINTEXT, TG_SIDE_SERVER,
			       TG_PR_NOT_SERVER_HELLO, seg->payload_off);
}

/* A TLS alert record (type 21, version 3.x, length 2) at hs->buf[0]. */
static __always_inline int tg_is_alert(const struct tg_hs *hs)
{
	return hs->have >= 5 && hs->buf[0] == 21 && hs->buf[1] == 3 && hs->buf[3] == 0 &&
	       hs->buf[4] == 2;
}

/*
 * A HelloRetryRequest: the client must send a second ClientHello (its walk
 * expects a handshake record next), the server's ServerHello is collected
 * again from the end of the HRR's record on. What this segment holds after
 * the HRR may only be the server's compatibility CCS.
 */
static __always_inline int tg_server_retry(struct __sk_buff *skb, struct bpf_sock *sk,
					   struct tg_flow *flow, struct tg_hs *hs,
					   const struct tg_segment *seg, __u32 rel)
{
	__u32 n;
	int r;

	if (flow->wflags & TG_WF_HRR)
		return tg_not_server_hello(skb, sk, flow, hs, seg);	/* one HRR at most */
	flow->wflags |= TG_WF_HRR;
	tg_count(TG_CNT_HELLO_RETRY);
	flow->srv_tls_off += hs->recs.end;
	flow->cw.mode = TG_WM_HANDSHAKE_NEXT;
	hs->have = 0;
	if (tg_collect(skb, hs, seg, rel, flow->srv_tls_off) < 0 || hs->have == 0)
		return TG_PASS;
	n = hs->have;
	r = tg_parse_records(hs, 0, n, TG_RECS_SERVER | TG_RECS_AFTER_HRR, n >= TG_HELLO_MAX);
	if (r == TG_PF_NEED_MORE)
		return TG_PASS;
	return tg_not_server_hello(skb, sk, flow, hs, seg);	/* no second hello before CH2 */
}

/* The server's hello bytes (from srv_tls_off on) are in hs->buf: judge them. */
static __always_inline int tg_server_decide(struct __sk_buff *skb, struct bpf_sock *sk,
					    struct tg_flow *flow, struct tg_hs *hs,
					    const struct tg_segment *seg, __u32 rel)
{
	__u32 n = hs->have, version, flags = TG_RECS_SERVER;
	int r;

	if (flow->proto == TG_L7_SMB3)
		return tg_smb_server_decide(skb, sk, flow, hs, seg);	/* not TLS: smb.bpf.h */
	if (!(flow->wflags & TG_WF_HRR) && tg_is_alert(hs)) {
		/* the server turned the hello down: the walk goes on, never to a TLS verdict */
		tg_count(TG_CNT_SERVER_ALERT);
		flow->wflags |= TG_WF_ALERT;
		flow->sw.next = flow->srv_tls_off;
		flow->sw.have = 0;
		return tg_server_walk(skb, sk, flow, hs, seg, rel);
	}
	if (flow->wflags & TG_WF_HRR)
		flags |= TG_RECS_AFTER_HRR;
	r = tg_parse_records(hs, 0, n, flags, n >= TG_HELLO_MAX);
	if (r == TG_PF_NEED_MORE)
		return TG_PASS;		/* a ServerHello so far */
	if (r != TG_PF_TLS)
		return tg_not_server_hello(skb, sk, flow, hs, seg);
	r = tg_parse_hello_hs(hs, 1);
	if (r == TG_HELLO_BAD || (r == TG_HELLO_TRUNCATED && n < TG_HELLO_MAX))
		return tg_not_server_hello(skb, sk, flow, hs, seg);
	if (hs->hi.flags & TG_HELLO_F_HRR)
		return tg_server_retry(skb, sk, flow, hs, seg, rel);
	tg_count(TG_CNT_SERVER_HELLO);
	/* cut past 2 KiB without supported_versions: legacy_version is all there is */
	version = hs->hi.version;
	hs->tls.negotiated = version;
	tg_hello_sum_negotiated(flow, version);
	if (flow->min_tls && version < TG_TLS_VERSION(flow->min_tls)) {
		hs->tls.side = TG_SIDE_SERVER;
		return tg_violation(skb, sk, flow, hs, seg, TG_EV_WEAK_TLS);
	}
	flow->wflags |= TG_WF_SH_DONE;
	if (flow->wflags & TG_WF_NO_WALK)
		return tg_allow(skb, sk, flow, hs, seg);	/* TDS: the ServerHello decides */
	flow->sw.next = flow->srv_tls_off + hs->recs.end;
	flow->sw.have = 0;
	flow->sw.mode = TG_WM_ANY;
	return tg_server_walk(skb, sk, flow, hs, seg, rel);
}

/*
 * Before the client's hello was judged: the server's preface, and nothing
 * past it. A TLS server (no preface) that sends first is plaintext.
 */
static __always_inline int tg_server_early(struct __sk_buff *skb, struct bpf_sock *sk,
					   struct tg_flow *flow, const struct tg_segment *seg,
					   __u32 rel)
{
	__u32 off = flow->srv_tls_off;

	if (!(flow->hs_flags & TG_HSF_SRV_PREFACE)) {
		__u32 slot = 0;
		struct tg_hs *scratch = tg_hs_scratch_take(&slot);

		/* only its bytes are read, once: scratch, given back at once */
		tg_server_preface_seg(skb, flow, scratch, seg, rel);
		if (scratch)
			tg_hs_scratch_give(slot);
		off = flow->srv_tls_off;
	}
	if (off == TG_SRV_NONE)
		return TG_PASS;		/* it declined (postgres 'N'): the client's next bytes are judged */
	if (rel + seg->payload_len <= off)
		return TG_PASS;		/* the preface (again) */
	tg_count(TG_CNT_SERVER_FIRST);
	return tg_violation_at(skb, sk, flow, tg_hs_stored(sk, flow), seg, TG_EV_PLAINTEXT,
			       TG_SIDE_SERVER, TG_PR_SERVER_FIRST,
			       seg->payload_off + (off > rel ? off - rel : 0));
}

/*
 * The server's datagrams of a UDP flow: before the client's first datagram
 * nothing may come (server_first); on a QUIC flow each is a QUIC packet
 * (fixed bit; long headers of the flow's version or version negotiation),
 * and its long headers say which connection id the client uses from then
 * on (its SCID: Initial, Retry, Handshake).
 */
static __always_inline int tg_udp_ingress(struct __sk_buff *skb, struct bpf_sock *sk,
					  struct tg_flow *flow)
{
	struct tg_segment seg;
	__u32 n, v, l, s, i;
	__u8 b[64];

	if (tg_parse_segment(skb, &seg, TG_DIR_INGRESS) < 0 || seg.l4 != IPPROTO_UDP ||
	    seg.payload_len == 0)
		return TG_PASS;
	if ((flow->hs_flags & TG_HSF_UNCONNECTED) && !tg_udp_to_flow(flow, &seg))
		return TG_PASS;
	if (flow->state == TG_FLOW_PENDING) {
		tg_count(TG_CNT_SERVER_FIRST);
		return tg_violation_at(skb, sk, flow, NULL, &seg, TG_EV_PLAINTEXT, TG_SIDE_SERVER,
				       TG_PR_SERVER_FIRST, seg.payload_off);
	}
	__builtin_memset(b, 0, sizeof(b));
	n = tg_quic_peek(skb, &seg, b);
	if (n && (b[0] & 0x80)) {
		v = n >= 5 ? tg_quic_version(b) : 1;
		if (v == 0)
			return TG_PASS;		/* version negotiation */
		l = n >= 6 ? b[5] : 21;
		s = l <= 20 && 7 + l <= n ? b[(6 + l) & 63] : 21;
		if (v == flow->quic.version && s <= 20) {
			flow->quic.scid_len = s;
			flow->quic.have_scid = 1;
			for (i = 0; i < 8; i++)
				flow->quic.scid[i] = i < s ? b[(7 + l + i) & 63] : 0;
			return TG_PASS;
		}
	} else if (n && (b[0] & 0x40)) {
		return TG_PASS;			/* a short header */
	}
	return tg_violation_at(skb, sk, flow, NULL, &seg, TG_EV_PLAINTEXT, TG_SIDE_SERVER,
			       TG_PR_NOT_QUIC, seg.payload_off);
}

/* The server's bytes while its hello is collected, in the scratch slot @hs (tg_hs_judge()). */
static __always_inline int tg_server_bytes(struct __sk_buff *skb, struct bpf_sock *sk,
					   struct tg_flow *flow, struct tg_hs *hs,
					   const struct tg_segment *seg, __u32 rel)
{
	hs->dir = 1;		/* server bytes from here on */
	if (!(flow->hs_flags & TG_HSF_SRV_PREFACE))
		tg_server_preface_seg(skb, flow, hs, seg, rel);
	if (flow->srv_tls_off == TG_SRV_NONE) {
		/* a preface that declined TLS after the client sent its hello */
		tg_count(TG_CNT_SERVER_UNJUDGED);
		return tg_not_server_hello(skb, sk, flow, hs, seg);
	}
	if (tg_collect(skb, hs, seg, rel, flow->srv_tls_off) < 0)
		return tg_drop(TG_CNT_OUT_OF_ORDER);	/* the server retransmits */
	if (hs->have == 0)
		return TG_PASS;		/* all of it was preface */
	return tg_server_decide(skb, sk, flow, hs, seg, rel);
}

/*
 * An undecided flow's segment from the server: before the client's hello
 * was judged its preface (tg_server_early()), after it the hello and the
 * records that follow.
 */
static __always_inline int tg_server_undecided(struct __sk_buff *skb, struct bpf_sock *sk,
					       struct tg_flow *flow)
{
	struct tg_segment seg;
	__u32 rel;
	int err;

	if (flow->hs_flags & TG_HSF_UDP)
		return tg_udp_ingress(skb, sk, flow);
	err = tg_parse_segment(skb, &seg, TG_DIR_INGRESS);
	if (err < 0)
		return tg_unparseable(skb, sk, flow, err, TG_SIDE_SERVER);
	if (seg.payload_len == 0 || seg.l4 != IPPROTO_TCP)
		return TG_PASS;
	if (!(flow->hs_flags & TG_HSF_SRV_STARTED)) {
		flow->srv_first_seq = seg.seq;
		flow->hs_flags |= TG_HSF_SRV_STARTED;
	}
	rel = seg.seq - flow->srv_first_seq;
	if (flow->state == TG_FLOW_PENDING)
		return tg_server_early(skb, sk, flow, &seg, rel);
	/* TG_FLOW_SERVER_HELLO: the client's hello was good */
	if (flow->wflags & (TG_WF_SH_DONE | TG_WF_ALERT))
		return tg_server_walk(skb, sk, flow, tg_hs_stored(sk, flow), &seg, rel);
	return tg_hs_judge(skb, sk, flow, &seg, rel, TG_DIR_INGRESS);
}

/* The server's segment, by the flow's state: the undecided ones fall through. */
static __always_inline int tg_flow_on_ingress(struct __sk_buff *skb, struct bpf_sock *sk,
					      struct tg_flow *flow)
{
	int err;

	switch (flow->state) {
	case TG_FLOW_PENDING:
	case TG_FLOW_SERVER_HELLO:
		if (!(flow->hs_flags & TG_HSF_UDP) && tg_tcp_bare(skb))
			return TG_PASS;	/* SYN-ACK, pure ACK, RST: nothing to judge */
		break;
	case TG_FLOW_QUIC:
		break;
	case TG_FLOW_BLOCKED:
		return tg_blocked_segment(skb, TG_DIR_INGRESS);
	case TG_FLOW_DNS_WAIT:
		/* a server that speaks first waits too: its bytes are judged once classified */
		err = tg_dns_wait(skb, flow, TG_DIR_INGRESS);
		if (err != TG_DNS_WAIT_GO_ON)
			return err;
		break;
	default:
		return TG_PASS;
	}
	return tg_server_undecided(skb, sk, flow);
}

#endif /* TLSGUARD_INGRESS_BPF_H */
