/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Handshake state without an allocation per flow. Nearly every hello comes
 * in one segment and is judged in it: the segment is collected and parsed
 * in a per-CPU scratch slot (tg_hs_scratch), and nothing is allocated. Only
 * when a segment ends with the flow still needing its bytes (a hello split
 * across segments, a preface protocol, a proxy request, the smb3 machine)
 * is the slot copied into sk_storage (tg_hs_map) for the next segment,
 * which starts from that copy; the verdict deletes it. What a good
 * ClientHello said stays in tg_hello_sums (an array slot, maps.bpf.h) for
 * the flow's later events.
 *
 * The code that judges always works on a scratch slot, never on the
 * sk_storage value itself: one kind of pointer, so the verifier walks the
 * judging code once (tg_egress is close to its limit of a million
 * instructions).
 */
#ifndef TLSGUARD_HSSTATE_BPF_H
#define TLSGUARD_HSSTATE_BPF_H

#include "verdict.bpf.h"

/* The index of a free slot of this CPU's scratch, now taken, or -1 (tg_scratch_take()). */
__attribute__((noinline)) int tg_hs_scratch_take_g(void)
{
	int slot = tg_scratch_take(&tg_hs_scratch_users, TG_HS_SCRATCH_SLOTS);

	if (slot < 0)
		tg_count(TG_CNT_HS_SCRATCH_BUSY);
	return slot;
}

static __always_inline void tg_hs_scratch_give(__u32 slot);

/* A taken scratch slot (*slot: which, to give back), or NULL. */
static __always_inline struct tg_hs *tg_hs_scratch_take(__u32 *slot)
{
	int taken = tg_hs_scratch_take_g();
	struct tg_hs *hs;
	__u32 key;

	if (taken < 0)
		return NULL;
	key = taken;
	hs = bpf_map_lookup_elem(&tg_hs_scratch, &key);
	if (!hs) {
		tg_hs_scratch_give(key);
		return NULL;
	}
	*slot = key;
	return hs;
}

static __always_inline void tg_hs_scratch_give(__u32 slot)
{
	tg_scratch_give(&tg_hs_scratch_users, slot);
}

/* The flow's kept handshake state, or NULL. */
static __always_inline struct tg_hs *tg_hs_stored(struct bpf_sock *sk, struct tg_flow *flow)
{
	return flow->hs_flags & TG_HSF_HS_STORED ? tg_hs_get(sk, flow, 0) : NULL;
}

/* Load the flow's kept ClientHello summary into @hs->tls (tg_hello_sum_load()). */
static __always_inline void tg_hs_load_summary(const struct tg_flow *flow, struct tg_hs *hs)
{
	tg_hello_sum_load(flow, &hs->tls);
	hs->tls_lazy = 0;
}

/*
 * Make slot @slot (at @hs) the flow's state: a copy of what was kept, or
 * fresh (zeroed as a new sk_storage value would be, as far as the parsers
 * read without writing first, with the flow's ClientHello summary). 0, or
 * -1 when the kept state could not be copied.
 *
 * The server's bytes (@dir TG_DIR_INGRESS) read nothing of the summary, and
 * the summary was written on the CPU that sent the hello: copying its 404
 * bytes in was the costliest line of a ServerHello's run (cache lines taken
 * from the other CPU). So a fresh state for them is left with tls_lazy set:
 * events take the kept summary themselves (tg_emit_flow_g()), and a state
 * kept past its segment loads it first (tg_hs_scratch_end()), so a stored
 * state is always whole. @dir is a constant in each caller.
 */
static __always_inline int tg_hs_scratch_fill(struct bpf_sock *sk, struct tg_flow *flow,
					      struct tg_hs *hs, __u32 slot, int dir)
{
	struct tg_hs *stored = tg_hs_stored(sk, flow);
	__u32 key = slot;

	if (stored)
		return bpf_map_update_elem(&tg_hs_scratch, &key, stored, BPF_ANY) ? -1 : 0;
	__builtin_memset(hs, 0, __builtin_offsetof(struct tg_hs, name));
	__builtin_memset(hs->buf, 0, TG_PAYLOAD_MAX);	/* events copy this much */
	if (flow->wflags & TG_WF_SUM_KEPT) {
		if (dir == TG_DIR_INGRESS)
			hs->tls_lazy = 1;
		else
			tg_hs_load_summary(flow, hs);
	}
	return 0;
}

/* A taken slot ready for @flow's segment (*slot: which, to give back), or NULL. */
static __always_inline struct tg_hs *tg_hs_scratch_open(struct bpf_sock *sk, struct tg_flow *flow,
							__u32 *slot, int dir)
{
	struct tg_hs *hs = tg_hs_scratch_take(slot);

	if (!hs)
		return NULL;
	if (tg_hs_scratch_fill(sk, flow, hs, *slot, dir) < 0) {
		tg_hs_scratch_give(*slot);
		tg_count(TG_CNT_ERR_HS_STORAGE);
		return NULL;
	}
	return hs;
}

/*
 * Does a later segment need this state? A plain TLS flow only while its
 * hello (the client's, or the server's) is incomplete; other protocols,
 * whose machines keep more than bytes, until their verdict.
 */
static __always_inline int tg_hs_needed(const struct tg_flow *flow, const struct tg_hs *hs)
{
	switch (flow->state) {
	case TG_FLOW_PENDING:
	case TG_FLOW_PROXY_REQ:
	case TG_FLOW_SMB_SESSION:
		return flow->proto != TG_L7_TLS || hs->have;
	case TG_FLOW_SERVER_HELLO:
		if (flow->proto != TG_L7_TLS)
			return 1;
		return hs->dir == 1 && hs->have && !(flow->wflags & (TG_WF_SH_DONE | TG_WF_ALERT));
	default:
		return 0;
	}
}

/*
 * After a segment judged in scratch: keep what a later segment needs, drop
 * what none does, give the slot back. @r is the segment's verdict; a state
 * that cannot be kept holds the segment back in enforce (it comes again).
 */
static __always_inline int tg_hs_scratch_end(struct bpf_sock *sk, struct tg_flow *flow,
					     struct tg_hs *hs, __u32 slot, int r, int dir)
{
	if (tg_hs_needed(flow, hs)) {
		tg_count(TG_CNT_HS_KEPT);
		/*
		 * whole before it is kept: the next segment may be the client's.
		 * The server's hello is not parsed yet (tg_hs_needed()), so
		 * nothing of hs->tls was written that loading would overwrite.
		 */
		if (dir == TG_DIR_INGRESS && hs->tls_lazy)
			tg_hs_load_summary(flow, hs);
		if (tg_hs_store(sk, flow, hs) == 0) {
			flow->hs_flags |= TG_HSF_HS_STORED;
		} else {
			flow->hs_flags &= ~TG_HSF_HS_STORED;
			if (tg_hold(flow, TG_CNT_ERR_HS_STORAGE) == TG_DROP)
				r = TG_DROP;
		}
	} else if (flow->hs_flags & TG_HSF_HS_STORED) {
		tg_hs_drop_stored(sk, flow);
		flow->hs_flags &= ~TG_HSF_HS_STORED;
	}
	tg_hs_scratch_give(slot);
	return r;
}

/* What judges a segment's bytes in a scratch slot, by side (egress.bpf.h, ingress.bpf.h). */
static __always_inline int tg_client_bytes(struct __sk_buff *skb, struct bpf_sock *sk,
					   struct tg_flow *flow, struct tg_hs *hs,
					   const struct tg_segment *seg, __u32 rel);
static __always_inline int tg_server_bytes(struct __sk_buff *skb, struct bpf_sock *sk,
					   struct tg_flow *flow, struct tg_hs *hs,
					   const struct tg_segment *seg, __u32 rel);

/*
 * An undecided flow's segment judged in a scratch slot: the one place a slot
 * is taken for judging (filled with what the flow kept) and given back
 * (keeping what the next segment needs, tg_hs_scratch_end()). Without a
 * slot the sender retransmits in enforce. @dir (TG_DIR_EGRESS: the client's
 * bytes, TG_DIR_INGRESS: the server's) is a constant in each caller.
 */
static __always_inline int tg_hs_judge(struct __sk_buff *skb, struct bpf_sock *sk,
				       struct tg_flow *flow, const struct tg_segment *seg, __u32 rel,
				       int dir)
{
	__u32 slot = 0;
	struct tg_hs *hs = tg_hs_scratch_open(sk, flow, &slot, dir);
	int r;

	if (!hs)
		return tg_hs_unavailable(flow);
	if (dir == TG_DIR_INGRESS)
		r = tg_server_bytes(skb, sk, flow, hs, seg, rel);
	else
		r = tg_client_bytes(skb, sk, flow, hs, seg, rel);
	return tg_hs_scratch_end(sk, flow, hs, slot, r, dir);
}

/* A good ClientHello: its summary outlives the scratch, for the flow's later events. */
static __always_inline void tg_hello_sum_keep(struct tg_flow *flow, const struct tg_hs *hs)
{
	__u32 key = tg_hello_sum_slot(flow);
	__u64 *owner = bpf_map_lookup_elem(&tg_hello_sum_owner, &key);

	if (!owner) {	/* an array: cannot miss */
		tg_count(TG_CNT_HELLO_SUMMARY_LOST);
		return;
	}
	/* nobody's while it is written: the flow that had the slot must not read ours */
	*owner = 0;
	if (bpf_map_update_elem(&tg_hello_sums, &key, &hs->tls, BPF_ANY) == 0) {
		*owner = flow->cookie;
		flow->wflags |= TG_WF_SUM_KEPT;
	} else {
		tg_count(TG_CNT_HELLO_SUMMARY_LOST);
	}
}

/*
 * The ServerHello's version, for the later events' summary: in the flow
 * (sh_minor) when it is 0x03XX, as every TLS version is. The summary was
 * written on the CPU that sent the hello, and a store to it here took its
 * cache lines over (bench, bpf_stats: 10-15 ns of tg_ingress a run). Any
 * other version goes to the summary itself.
 */
static __always_inline void tg_hello_sum_negotiated(struct tg_flow *flow, __u16 version)
{
	struct tg_tls_summary *sum;

	flow->sh_minor = 0;
	if (!(flow->wflags & TG_WF_SUM_KEPT))
		return;
	if ((version >> 8) == 0x03 && (version & 0xff) < 0xff) {
		flow->sh_minor = (version & 0xff) + 1;
		return;
	}
	sum = tg_hello_sum_find(flow);
	if (sum)
		sum->negotiated = version;
}

#endif /* TLSGUARD_HSSTATE_BPF_H */
