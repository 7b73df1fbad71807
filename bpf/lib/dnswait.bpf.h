/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A flow held for the agent's DNS learning (TG_FLOW_DNS_WAIT, made by
 * tg_dns_wait_connect()). Its payload, either way, waits (dropped: TCP
 * retransmits it) until the agent has caught up with the answer its cgroup
 * was stamped for, or TG_DNS_HOLD_MAX_NS after connect(); then the flow
 * takes the class the maps now give its address, as connect() would have
 * given it, and is judged from its first byte like any other. An address
 * the answer did not make protected passes from then on.
 */
#ifndef TLSGUARD_DNSWAIT_BPF_H
#define TLSGUARD_DNSWAIT_BPF_H

#include "connect.bpf.h"
#include "verdict.bpf.h"

#define TG_DNS_WAIT_GO_ON	-1	/* classified: judge this packet as the class says */

/* Has the agent learned what the flow's cgroup was told (or waited too long)? */
static __always_inline int tg_dns_wait_over(const struct tg_flow *flow)
{
	if (tg_dns_caught_ns() >= flow->dw.stamp)
		return 1;
	if (bpf_ktime_get_ns() - flow->connect_ns < TG_DNS_HOLD_MAX_NS)
		return 0;
	tg_count(TG_CNT_DNS_HOLD_TIMEOUT);
	return 1;
}

/* No class for the address after all: let the flow go, and its slot of the flow cap. */
static __always_inline int tg_dns_wait_unlisted(struct tg_flow *flow)
{
	tg_count(TG_CNT_DNS_HELD_UNLISTED);
	tg_flow_on_release(flow);
	flow->state = TG_FLOW_UNTRACKED;
	return TG_PASS;
}

/*
 * The class the maps give the flow's address and port now, as
 * tg_on_connect() reads it. A port the class does not list is a
 * blocked_connect (reason port) here, as it would have been at connect():
 * enforce blocks the flow, audit reports it and judges on.
 */
static __always_inline int tg_dns_wait_classify(struct __sk_buff *skb, struct tg_flow *flow,
						int dir)
{
	struct tg_dest_key key = { .prefixlen = 128 };
	struct tg_class *cls;
	__u32 class_id;
	__u8 rule;
	int range;

	__builtin_memcpy(key.addr, flow->daddr, 16);
	class_id = tg_addr_class_id(&key);
	if (!class_id)
		return tg_dns_wait_unlisted(flow);
	cls = bpf_map_lookup_elem(&tg_classes, &class_id);
	if (!cls)
		return tg_dns_wait_unlisted(flow);
	range = tg_port_range(cls, flow->dport);
	cls = tg_port_class(cls, range, &class_id);
	if (!cls)
		return tg_dns_wait_unlisted(flow);
	__builtin_memset(&flow->dw, 0, sizeof(flow->dw));
	flow->class_id = class_id;
	flow->mode = tg_flow_mode(cls, class_id, flow->cgroup_id, &rule);
	flow->rule = rule;
	flow->proto = cls->protocol < TG_L7__MAX ? cls->protocol : TG_L7_TLS;
	flow->min_tls = cls->min_tls;
	flow->cls_flags = cls->flags;
	if (flow->proto == TG_L7_TLS || flow->proto == TG_L7_SMB3)
		flow->hs_flags |= TG_HSF_SRV_PREFACE;
	flow->state = TG_FLOW_PENDING;
	tg_count(TG_CNT_DNS_HELD_PROTECTED);
	tg_count(TG_CNT_FLOWS_TRACKED);
	tg_count_class(class_id, TG_CS_TRACKED);
	if (range == TG_PORT_NONE) {
		if (flow->mode == TG_MODE_ENFORCE && !tg_failing_open()) {
			tg_count(TG_CNT_CONNECT_BLOCKED);
			tg_count_class(class_id, TG_CS_CONNECT_BLOCKED);
			tg_emit_connect(flow, TG_ACT_BLOCKED, TG_CR_PORT);
			flow->state = TG_FLOW_BLOCKED;
			return tg_blocked_segment(skb, dir);
		}
		tg_count(TG_CNT_CONNECT_FLAGGED);
		tg_count_class(class_id, TG_CS_CONNECT_FLAGGED);
		tg_emit_connect(flow, TG_ACT_FLAGGED, TG_CR_PORT);
	}
	return TG_DNS_WAIT_GO_ON;
}

/* A packet of a held flow, @dir TG_DIR_EGRESS or TG_DIR_INGRESS: TG_PASS, TG_DROP or GO_ON. */
static __always_inline int tg_dns_wait(struct __sk_buff *skb, struct tg_flow *flow, int dir)
{
	struct tg_segment seg;

	if (!tg_dns_wait_over(flow)) {
		if (tg_parse_segment(skb, &seg, dir) < 0)
			return tg_drop(TG_CNT_DNS_HELD_UNREADABLE);	/* payload or none? wait */
		if (seg.payload_len == 0)
			return TG_PASS;		/* the handshake, ACKs, FIN, RST */
		return tg_drop(TG_CNT_DNS_HELD_SEGMENTS);
	}
	return tg_dns_wait_classify(skb, flow, dir);
}

#endif /* TLSGUARD_DNSWAIT_BPF_H */
