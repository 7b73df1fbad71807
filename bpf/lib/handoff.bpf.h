/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Generation handoff (include/tlsguard/handoff.h): only the active
 * generation starts tracking a socket; a socket tracked by two generations
 * (its connect() straddled the switch) is judged by its owner only.
 */
#ifndef TLSGUARD_HANDOFF_BPF_H
#define TLSGUARD_HANDOFF_BPF_H

#include "count.bpf.h"
#include "flowcap.bpf.h"

/* Does this generation track new connects? Yes until an agent says otherwise. */
static __always_inline int tg_gen_active(void)
{
	__u32 key = 0;
	struct tg_handoff *h = bpf_map_lookup_elem(&tg_handoff, &key);

	return !h || !h->active_layout || h->active_layout == TG_PIN_LAYOUT_VERSION;
}

/*
 * Where a socket's owner is kept. The entry programs use the shared
 * sk_storage; the BPF unit tests, which have no real socket, say "ours".
 */
static __always_inline int tg_gen_owns(struct bpf_sock *sk, struct tg_flow *flow);


/*
 * The other generation owns this socket: forget it here, and take back the
 * tracked count of connect() (a proxy flow without a class was not counted)
 * and its slot of the flow cap.
 */
static __always_inline int tg_gen_disown(struct bpf_sock *sk, struct tg_flow *flow)
{
	if (flow->proto != TG_L7_CONNECT || flow->class_id) {
		tg_count_by(TG_CNT_FLOWS_TRACKED, -1);
		tg_count_class_by(flow->class_id, TG_CS_TRACKED, -1);
	}
	tg_flow_on_release(flow);
	flow->state = TG_FLOW_UNTRACKED;	/* in case the delete fails: pass from now on */
	bpf_sk_storage_delete(&tg_flows, sk);
	return 1;	/* TG_PASS */
}

#endif /* TLSGUARD_HANDOFF_BPF_H */
