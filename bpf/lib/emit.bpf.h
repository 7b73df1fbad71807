/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Events to the agent. A full ring buffer never blocks: it is counted. */
#ifndef TLSGUARD_EMIT_BPF_H
#define TLSGUARD_EMIT_BPF_H

#include "count.bpf.h"
#include "packet.bpf.h"

static __always_inline struct tg_event *tg_event_reserve(void)
{
	struct tg_event *ev = bpf_ringbuf_reserve(&tg_events, sizeof(*ev), 0);

	if (!ev) {
		tg_count(TG_CNT_ERR_RINGBUF);
		return NULL;
	}
	/* reserved memory is not zeroed; nothing stale may reach userspace */
	__builtin_memset(ev, 0, sizeof(*ev));
	return ev;
}

static __always_inline void tg_event_from_flow(struct tg_event *ev, const struct tg_flow *flow,
					       __u8 type, __u8 action)
{
	ev->ts_ns = bpf_ktime_get_ns();
	ev->cookie = flow->cookie;
	ev->cgroup_id = flow->cgroup_id;
	ev->tgid = flow->tgid;
	ev->class_id = flow->class_id;
	ev->type = type;
	ev->action = action;
	ev->family = flow->family;
	ev->dport = flow->dport;
	ev->rule = flow->rule;
	__builtin_memcpy(ev->daddr, flow->daddr, 16);
	__builtin_memcpy(ev->comm, flow->comm, sizeof(ev->comm));
}

/* tg_emit_flow()'s @pl_off: the flow's first client bytes, from the handshake state. */
#define TG_PL_FIRST_BYTES	0xfffffu

/* What tg_emit_flow_g() is to write, in one argument (BPF functions take five). */
#define TG_EMIT_META(type, action, side, reason, pl_off)				\
	((__u32)(type) | ((__u32)(action) << 4) | ((__u32)(side) << 6) |		\
	 ((__u32)(reason) << 8) | (((__u32)(pl_off) & 0xfffff) << 12))

/*
 * Copy a ClientHello summary four bytes at a time. Its natural alignment is
 * two, so __builtin_memcpy() copies it two bytes at a time: 202 loads and
 * stores, which were the costliest line of a ServerHello's run. Every
 * summary sits at a multiple of four: in a map value (8), in struct tg_hs
 * and struct tg_event (asserted below).
 */
_Static_assert(__builtin_offsetof(struct tg_hs, tls) % 4 == 0, "tg_hs.tls alignment");
_Static_assert(__builtin_offsetof(struct tg_event, tls) % 4 == 0, "tg_event.tls alignment");
_Static_assert(sizeof(struct tg_tls_summary) % 4 == 0, "tg_tls_summary size");

static __always_inline void tg_tls_sum_copy(struct tg_tls_summary *dst,
					    const struct tg_tls_summary *src)
{
	__u32 *d = (__u32 *)(void *)dst;
	const __u32 *s = (const __u32 *)(const void *)src;
	__u32 i;

#pragma unroll
	for (i = 0; i < sizeof(*dst) / 4; i++)
		d[i] = s[i];
}

/* The slot of tg_hello_sums for @flow's summary (maps.bpf.h). */
static __always_inline __u32 tg_hello_sum_slot(const struct tg_flow *flow)
{
	return (__u32)flow->cookie & (TG_MAX_HELLO_SUMS - 1);
}

/* The summary @flow kept (TG_WF_SUM_KEPT), or NULL when a later flow took its slot. */
static __always_inline struct tg_tls_summary *tg_hello_sum_find(const struct tg_flow *flow)
{
	__u32 key = tg_hello_sum_slot(flow);
	__u64 *owner = bpf_map_lookup_elem(&tg_hello_sum_owner, &key);

	if (!owner || *owner != flow->cookie)
		return NULL;
	return bpf_map_lookup_elem(&tg_hello_sums, &key);
}

/*
 * After copying from tg_hello_sum_find(): is the slot still @flow's? A later
 * flow whose cookie shares the slot (8192 connections on) may have started
 * rewriting it on another CPU while it was read (the writer clears the owner
 * first), and a copy of that would name another flow's SNI in an event.
 */
static __always_inline int tg_hello_sum_still_ours(const struct tg_flow *flow)
{
	__u32 key = tg_hello_sum_slot(flow);
	__u64 *owner;

	asm volatile("" ::: "memory");	/* the copy's loads stay before this check */
	owner = bpf_map_lookup_elem(&tg_hello_sum_owner, &key);
	return owner && *(volatile __u64 *)owner == flow->cookie;
}

/*
 * The flow's kept ClientHello summary into @dst, or @dst zeroed (and counted)
 * when a later flow took its slot, also while it was being read.
 */
static __always_inline void tg_hello_sum_load(const struct tg_flow *flow, struct tg_tls_summary *dst)
{
	const struct tg_tls_summary *sum = tg_hello_sum_find(flow);

	if (sum)
		tg_tls_sum_copy(dst, sum);
	if (!sum || !tg_hello_sum_still_ours(flow)) {
		__builtin_memset(dst, 0, sizeof(*dst));
		tg_count(TG_CNT_HELLO_SUMMARY_LOST);
		return;
	}
	if (flow->sh_minor)	/* the ServerHello's version, kept in the flow (tg_hello_sum_negotiated()) */
		dst->negotiated = 0x0300 | (__u16)(flow->sh_minor - 1);
}

/*
 * Event for a judged flow: flow metadata, the workload's address as seen on
 * the wire (@seg), what the handshake showed (@hs), and payload bytes so the
 * agent can say what they were: with pl_off TG_PL_FIRST_BYTES the flow's
 * first client bytes (from the handshake state when there is one, else
 * from this segment), otherwise this segment's bytes from skb offset pl_off
 * on (the record that was not TLS, the server's bytes). side and reason:
 * enum tg_tls_side, enum tg_plain_reason.
 *
 * A global function, verified once: inlined at every verdict it would be
 * walked again for each caller's state, which older verifiers (6.1) cannot
 * afford. @seg and @hs may be NULL.
 */
__attribute__((noinline)) int tg_emit_flow_g(struct __sk_buff *skb, const struct tg_flow *flow,
					     const struct tg_segment *seg, const struct tg_hs *hs,
					     __u32 meta)
{
	__u32 pl_off = meta >> 12, n, end;
	struct tg_event *ev;

	if (!skb || !flow)
		return 0;
	ev = tg_event_reserve();
	if (!ev)
		return 0;
	tg_event_from_flow(ev, flow, meta & 15, (meta >> 4) & 3);
	ev->reason = (meta >> 8) & 15;
	if (seg) {
		__builtin_memcpy(ev->saddr, seg->saddr, 16);
		ev->sport = seg->sport;
		ev->segment_len = seg->payload_len;
	}
	if (hs && !hs->tls_lazy) {
		tg_tls_sum_copy(&ev->tls, &hs->tls);
	} else if (flow->wflags & TG_WF_SUM_KEPT) {
		/* after a good ClientHello judged in scratch, or a server's
		 * segment that did not load it (tls_lazy: hsstate.bpf.h) */
		tg_hello_sum_load(flow, &ev->tls);
		if (hs && hs->tls.negotiated)	/* the server's hello, judged in @hs */
			ev->tls.negotiated = hs->tls.negotiated;
	}
	if (pl_off == TG_PL_FIRST_BYTES && hs) {
		if (hs->dir == 0) {
			__builtin_memcpy(ev->payload, hs->buf, TG_PAYLOAD_MAX);
			n = hs->have;
			ev->payload_len = n < TG_PAYLOAD_MAX ? n : TG_PAYLOAD_MAX;
		}
	} else if (pl_off == TG_PL_FIRST_BYTES && (flow->wflags & TG_WF_CH_DONE)) {
		/* past a hello judged in scratch: its bytes are gone, and this
		 * segment's are not the flow's first (no payload, as with state) */
	} else if (seg && seg->payload_len) {
		if (pl_off == TG_PL_FIRST_BYTES || pl_off < seg->payload_off)
			pl_off = seg->payload_off;
		end = seg->payload_off + seg->payload_len;
		n = pl_off < end ? end - pl_off : 0;
		if (n > TG_PAYLOAD_MAX)
			n = TG_PAYLOAD_MAX;
		if (n) {
			/* the mask keeps n in 1..TG_PAYLOAD_MAX in a way the verifier
			 * can follow (TG_PAYLOAD_MAX is a power of 2) */
			n = ((n - 1) & (TG_PAYLOAD_MAX - 1)) + 1;
			if (bpf_skb_load_bytes(skb, pl_off, ev->payload, n) == 0)
				ev->payload_len = n;
		}
	}
	ev->tls.side = (meta >> 6) & 3;
	ev->tls.l7 = flow->proto;
	ev->tls.pf_kind = flow->pf_kind;
	ev->tls.tls_off = flow->tls_off;
	ev->tls.min = flow->min_tls ? TG_TLS_VERSION(flow->min_tls) : 0;
	bpf_ringbuf_submit(ev, 0);
	return 0;
}

static __always_inline void tg_emit_flow(struct __sk_buff *skb, const struct tg_flow *flow,
					 const struct tg_segment *seg, const struct tg_hs *hs,
					 __u8 type, __u8 action, __u8 side, __u8 reason, __u32 pl_off)
{
	tg_emit_flow_g(skb, flow, seg, hs, TG_EMIT_META(type, action, side, reason, pl_off));
}

#endif /* TLSGUARD_EMIT_BPF_H */
