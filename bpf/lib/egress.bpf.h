/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The first-payload verdict. Called for every egress packet of a tracked
 * flow; decided flows return after one switch.
 */
#ifndef TLSGUARD_EGRESS_BPF_H
#define TLSGUARD_EGRESS_BPF_H

#include "emit.bpf.h"
#include "tlsguard/tls_prefix.h"

#define TG_PASS 1
#define TG_DROP 0

/* Blocked flows: drop every later payload segment; let RST/FIN/ACK through
 * so both ends can tear the connection down. */
static __always_inline int tg_blocked_segment(struct __sk_buff *skb)
{
	struct tg_segment seg;

	if (tg_parse_segment(skb, &seg) < 0)
		return TG_DROP;	/* unreadable packet of a blocked flow: fail closed */
	if (seg.payload_len == 0)
		return TG_PASS;
	tg_count(TG_CNT_SEGMENTS_DROPPED);
	return TG_DROP;
}

/*
 * Add this segment's bytes to the flow's prefix. Returns the segment's offset
 * relative to the first payload byte, or -1 when the segment starts past what
 * has been collected (a gap: cannot be judged, must not pass unjudged).
 */
static __always_inline int tg_collect_prefix(struct __sk_buff *skb, struct tg_flow *flow,
					     const struct tg_segment *seg)
{
	__u32 have, rel, skip, n;

	if (flow->prefix_len == 0)
		flow->first_seq = seg->seq;
	have = flow->prefix_len;
	rel = seg->seq - flow->first_seq;	/* wraps correctly modulo 2^32 */
	if (rel > have)
		return -1;
	skip = have - rel;			/* bytes of this segment already held */
	if (skip >= seg->payload_len)
		return rel;			/* pure retransmission */
	n = seg->payload_len - skip;
	if (n > TG_TLS_PREFIX_LEN - have)
		n = TG_TLS_PREFIX_LEN - have;
	/* masks only for the verifier: have <= 5 and 1 <= n <= 6 already hold */
	have &= 7;
	n &= 7;
	if (n < 1)
		return rel;
	if (bpf_skb_load_bytes(skb, seg->payload_off + skip, &flow->prefix[have], n) < 0)
		return -1;
	flow->prefix_len = have + n;
	return rel;
}

static __always_inline int tg_decide(struct __sk_buff *skb, struct tg_flow *flow,
				     const struct tg_segment *seg, __u32 rel)
{
	const struct tg_config *cfg;
	__u32 have = flow->prefix_len;
	int verdict;

	if (have > TG_TLS_PREFIX_LEN)	/* for the verifier */
		have = TG_TLS_PREFIX_LEN;
	verdict = tg_classify_prefix(flow->prefix, have);
	if (verdict == TG_PREFIX_NEED_MORE) {
		tg_count(TG_CNT_PARTIAL_PREFIX);
		return TG_PASS;
	}
	if (verdict == TG_PREFIX_TLS) {
		flow->state = TG_FLOW_TLS;
		tg_count(TG_CNT_VERDICT_TLS);
		tg_count_class(flow->class_id, TG_CS_TLS);
		cfg = tg_get_config();
		if (cfg && cfg->log_tls_flows)
			tg_emit_segment(skb, flow, seg, rel, TG_EV_TLS, TG_ACT_ALLOWED);
		return TG_PASS;
	}
	if (flow->mode == TG_MODE_ENFORCE) {
		flow->state = TG_FLOW_BLOCKED;
		tg_count(TG_CNT_PLAINTEXT_BLOCKED);
		tg_count_class(flow->class_id, TG_CS_PLAINTEXT_BLOCKED);
		tg_count(TG_CNT_SEGMENTS_DROPPED);
		tg_emit_segment(skb, flow, seg, rel, TG_EV_PLAINTEXT, TG_ACT_BLOCKED);
		return TG_DROP;
	}
	flow->state = TG_FLOW_FLAGGED;
	tg_count(TG_CNT_PLAINTEXT_FLAGGED);
	tg_count_class(flow->class_id, TG_CS_PLAINTEXT_FLAGGED);
	tg_emit_segment(skb, flow, seg, rel, TG_EV_PLAINTEXT, TG_ACT_FLAGGED);
	return TG_PASS;
}

static __always_inline int tg_flow_on_egress(struct __sk_buff *skb, struct tg_flow *flow)
{
	struct tg_segment seg;
	int rel;

	switch (flow->state) {
	case TG_FLOW_TLS:
	case TG_FLOW_FLAGGED:
		return TG_PASS;
	case TG_FLOW_BLOCKED:
		return tg_blocked_segment(skb);
	}
	if (tg_parse_segment(skb, &seg) < 0) {
		tg_count(TG_CNT_ERR_HEADER);
		return TG_PASS;
	}
	if (seg.payload_len == 0)
		return TG_PASS;	/* SYN, pure ACK: nothing to judge yet */
	rel = tg_collect_prefix(skb, flow, &seg);
	if (rel < 0) {
		/* TCP will retransmit; judging starts from the first byte */
		tg_count(TG_CNT_OUT_OF_ORDER);
		return TG_DROP;
	}
	return tg_decide(skb, flow, &seg, rel);
}

#endif /* TLSGUARD_EGRESS_BPF_H */
