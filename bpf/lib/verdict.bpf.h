/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one way a flow leaves judgement: tg_violation() for plaintext, weak
 * TLS and SNI mismatches (count, event, drop in enforce), tg_allow() for
 * compliant flows. Both drop the handshake state: a decided flow is never
 * parsed again.
 */
#ifndef TLSGUARD_VERDICT_BPF_H
#define TLSGUARD_VERDICT_BPF_H

#include "emit.bpf.h"
#include "parse.bpf.h"

#define TG_PASS 1
#define TG_DROP 0

/*
 * The one exit of a dropped segment: @why counted, TG_DROP returned (Cilium's
 * one drop path: no segment is dropped without its reason in the counters).
 * A verdict's drops count TG_CNT_SEGMENTS_DROPPED; a gap TCP will fill
 * TG_CNT_OUT_OF_ORDER; a flow held for DNS learning TG_CNT_DNS_HELD_SEGMENTS.
 */
static __always_inline int tg_drop(enum tg_counter why)
{
	tg_count(why);
	return TG_DROP;
}

/*
 * No handshake state to judge a segment with: enforce holds it back (TCP
 * retransmits), audit lets it through uninspected. tg_hold() counts @why;
 * tg_hs_unavailable() is for callers whose lookup counted it already
 * (tg_hs_scratch_open()).
 */
static __always_inline int tg_hs_unavailable(const struct tg_flow *flow)
{
	return flow->mode == TG_MODE_ENFORCE ? TG_DROP : TG_PASS;
}

static __always_inline int tg_hold(const struct tg_flow *flow, enum tg_counter why)
{
	tg_count(why);
	return tg_hs_unavailable(flow);
}

/*
 * Where a flow's handshake state lives. The entry programs keep it in
 * sk_storage; the BPF unit tests, which have no real socket, in an array.
 */
static __always_inline struct tg_hs *tg_hs_get(struct bpf_sock *sk, struct tg_flow *flow, int create);
static __always_inline void tg_hs_drop_stored(struct bpf_sock *sk, struct tg_flow *flow);
static __always_inline int tg_hs_store(struct bpf_sock *sk, struct tg_flow *flow, struct tg_hs *scratch);

/* A decided flow keeps no handshake state: the kept copy and the hello summary go. */
static __always_inline void tg_hs_put(struct bpf_sock *sk, struct tg_flow *flow)
{
	if (flow->hs_flags & TG_HSF_HS_STORED) {
		tg_hs_drop_stored(sk, flow);
		flow->hs_flags &= ~TG_HSF_HS_STORED;
	}
	/* its slot in tg_hello_sums is left for a later flow to overwrite (maps.bpf.h) */
	flow->wflags &= ~TG_WF_SUM_KEPT;
}

static __always_inline void tg_count_violation(struct tg_flow *flow, __u8 type, int block)
{
	switch (type) {
	case TG_EV_WEAK_TLS:
		tg_count(block ? TG_CNT_WEAK_TLS_BLOCKED : TG_CNT_WEAK_TLS_FLAGGED);
		tg_count_class(flow->class_id, TG_CS_WEAK_TLS);
		break;
	case TG_EV_SNI_MISMATCH:
		tg_count(block ? TG_CNT_SNI_MISMATCH_BLOCKED : TG_CNT_SNI_MISMATCH_FLAGGED);
		tg_count_class(flow->class_id, TG_CS_SNI_MISMATCH);
		break;
	default:
		tg_count(block ? TG_CNT_PLAINTEXT_BLOCKED : TG_CNT_PLAINTEXT_FLAGGED);
		tg_count_class(flow->class_id, block ? TG_CS_PLAINTEXT_BLOCKED : TG_CS_PLAINTEXT_FLAGGED);
		break;
	}
}

/*
 * A violation: reported once; in enforce this segment and every later one is
 * dropped. @side says whose bytes it was (enum tg_tls_side), @reason why
 * (plaintext: enum tg_plain_reason), @pl_off which bytes the event carries
 * (tg_emit_flow()).
 */
static __always_inline int tg_violation_at(struct __sk_buff *skb, struct bpf_sock *sk,
					   struct tg_flow *flow, struct tg_hs *hs,
					   const struct tg_segment *seg, __u8 type, __u8 side,
					   __u8 reason, __u32 pl_off)
{
	int block = flow->mode == TG_MODE_ENFORCE && !tg_failing_open();

	flow->state = block ? TG_FLOW_BLOCKED : TG_FLOW_FLAGGED;
	tg_count_violation(flow, type, block);
	tg_emit_flow(skb, flow, seg, hs, type, block ? TG_ACT_BLOCKED : TG_ACT_FLAGGED, side, reason,
		     pl_off);
	tg_hs_put(sk, flow);
	return block ? tg_drop(TG_CNT_SEGMENTS_DROPPED) : TG_PASS;
}

/* A violation in the flow's first client bytes (the preface or the ClientHello). */
static __always_inline int tg_violation(struct __sk_buff *skb, struct bpf_sock *sk,
					struct tg_flow *flow, struct tg_hs *hs,
					const struct tg_segment *seg, __u8 type)
{
	__u8 side = hs ? hs->tls.side : TG_SIDE_NONE;

	return tg_violation_at(skb, sk, flow, hs, seg, type, side ? side : TG_SIDE_CLIENT,
			       TG_PR_FIRST_BYTES, TG_PL_FIRST_BYTES);
}

/*
 * A packet of a tracked, undecided flow whose headers tg_parse_segment()
 * could not read (@err). An IPv6 extension chain that cannot be walked
 * hides the transport header, so nothing about the packet can be judged:
 * a violation (blocked in enforce), never a pass. Other failures (not TCP or
 * UDP at all) are counted and pass as before.
 */
static __always_inline int tg_unparseable(struct __sk_buff *skb, struct bpf_sock *sk,
					  struct tg_flow *flow, int err, __u8 side)
{
	if (err != TG_SEG_UNPARSEABLE) {
		tg_count(TG_CNT_ERR_HEADER);
		return TG_PASS;
	}
	tg_count(TG_CNT_IPV6_UNPARSEABLE);
	return tg_violation_at(skb, sk, flow, tg_hs_get(sk, flow, 0), NULL, TG_EV_PLAINTEXT, side,
			       TG_PR_UNPARSEABLE, TG_PL_FIRST_BYTES);
}

static __always_inline int tg_allow(struct __sk_buff *skb, struct bpf_sock *sk, struct tg_flow *flow,
				    struct tg_hs *hs, const struct tg_segment *seg)
{
	const struct tg_config *cfg = tg_get_config();

	flow->state = TG_FLOW_TLS;
	tg_count(TG_CNT_VERDICT_TLS);
	tg_count_class(flow->class_id, TG_CS_TLS);
	if (cfg && cfg->log_tls_flows)
		tg_emit_flow(skb, flow, seg, hs, TG_EV_TLS, TG_ACT_ALLOWED, TG_SIDE_NONE, 0,
			     TG_PL_FIRST_BYTES);
	tg_hs_put(sk, flow);
	return TG_PASS;
}

/*
 * Blocked flows: drop every later payload segment; let RST/FIN/ACK through
 * so both ends can tear the connection down.
 */
static __always_inline int tg_blocked_segment(struct __sk_buff *skb, int dir)
{
	struct tg_segment seg;

	if (tg_parse_segment(skb, &seg, dir) < 0)
		return tg_drop(TG_CNT_BLOCKED_UNREADABLE);	/* fail closed */
	if (seg.payload_len == 0)
		return TG_PASS;
	return tg_drop(TG_CNT_SEGMENTS_DROPPED);
}

#endif /* TLSGUARD_VERDICT_BPF_H */
