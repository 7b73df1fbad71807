/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The server side. Two things only, then the flow is never looked at again
 * in this direction:
 *  - the server's preface (postgres 'S', the MySQL greeting, the TDS
 *    PRELOGIN response, the proxy's "200"): where its TLS starts;
 *  - the ServerHello: the negotiated version (TLS 1.3 through
 *    supported_versions). Below the class minimum it is a weak_tls
 *    violation on the server side; in enforce the ServerHello is dropped, so
 *    the client never finishes the handshake and sends no application data.
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

/* ServerHello bytes (from srv_tls_off on) are in hs->buf: judge the version. */
static __always_inline int tg_server_decide(struct __sk_buff *skb, struct bpf_sock *sk,
					    struct tg_flow *flow, struct tg_hs *hs,
					    const struct tg_segment *seg)
{
	__u32 n = hs->have, version;
	int r;

	if (flow->proto == TG_L7_SMB3)
		return tg_smb_server_decide(skb, sk, flow, hs, seg);	/* not TLS: smb.bpf.h */
	r = tg_parse_records(hs, 0, n, 1, n >= TG_HELLO_MAX);
	if (r == TG_PF_NEED_MORE)
		return TG_PASS;
	if (r == TG_PF_TLS)
		r = tg_parse_hello_hs(hs, 1);
	else
		r = TG_HELLO_BAD;
	if (r == TG_HELLO_BAD || (r == TG_HELLO_TRUNCATED &&
				  !(hs->hi.flags & TG_HELLO_F_SUPPORTED_VERSIONS))) {
		/* an alert, or something the client will refuse anyway */
		tg_count(TG_CNT_SERVER_UNJUDGED);
		return tg_allow(skb, sk, flow, hs, seg);
	}
	tg_count(TG_CNT_SERVER_HELLO);
	version = hs->hi.version;
	hs->tls.negotiated = version;
	if (flow->min_tls && version < TG_TLS_VERSION(flow->min_tls)) {
		hs->tls.side = TG_SIDE_SERVER;
		return tg_violation(skb, sk, flow, hs, seg, TG_EV_WEAK_TLS);
	}
	return tg_allow(skb, sk, flow, hs, seg);
}

static __always_inline int tg_flow_on_ingress(struct __sk_buff *skb, struct bpf_sock *sk,
					      struct tg_flow *flow)
{
	struct tg_segment seg;
	struct tg_hs *hs;
	__u32 rel;

	switch (flow->state) {
	case TG_FLOW_PENDING:
		/* before the client's verdict only a server preface matters */
		if (flow->hs_flags & (TG_HSF_SRV_PREFACE | TG_HSF_UDP))
			return TG_PASS;
		break;
	case TG_FLOW_SERVER_HELLO:
		break;
	case TG_FLOW_BLOCKED:
		return tg_blocked_segment(skb, TG_DIR_INGRESS);
	default:
		return TG_PASS;
	}
	if (tg_parse_segment(skb, &seg, TG_DIR_INGRESS) < 0) {
		tg_count(TG_CNT_ERR_HEADER);
		return TG_PASS;
	}
	if (seg.payload_len == 0 || seg.l4 != IPPROTO_TCP)
		return TG_PASS;
	if (!(flow->hs_flags & TG_HSF_SRV_STARTED)) {
		flow->srv_first_seq = seg.seq;
		flow->hs_flags |= TG_HSF_SRV_STARTED;
	}
	rel = seg.seq - flow->srv_first_seq;
	hs = tg_hs_get(sk, flow, flow->state == TG_FLOW_PENDING);
	if (!(flow->hs_flags & TG_HSF_SRV_PREFACE)) {
		tg_server_preface_seg(skb, flow, hs, &seg, rel);
		if (flow->state == TG_FLOW_PENDING)
			return TG_PASS;
	}
	/* TG_FLOW_SERVER_HELLO from here on */
	if (!hs) {
		tg_count(TG_CNT_ERR_HS_STORAGE);
		return tg_allow(skb, sk, flow, NULL, &seg);
	}
	if (flow->srv_tls_off == TG_SRV_NONE) {
		tg_count(TG_CNT_SERVER_UNJUDGED);
		return tg_allow(skb, sk, flow, hs, &seg);
	}
	if (tg_collect(skb, hs, &seg, rel, flow->srv_tls_off) < 0) {
		tg_count(TG_CNT_OUT_OF_ORDER);
		return TG_DROP;		/* the server retransmits */
	}
	if (hs->have == 0)
		return TG_PASS;		/* all of it was preface */
	return tg_server_decide(skb, sk, flow, hs, &seg);
}

#endif /* TLSGUARD_INGRESS_BPF_H */
