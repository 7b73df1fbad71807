/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * limits.max_tracked_flows: the flows being tracked are counted in
 * tg_live_flows, one slot from connect() to the socket's release.
 */
#ifndef TLSGUARD_FLOWCAP_BPF_H
#define TLSGUARD_FLOWCAP_BPF_H

#include "count.bpf.h"

static __always_inline __u64 *tg_live_flows_get(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&tg_live_flows, &key);
}

/*
 * Take a slot for a flow about to be tracked: 1 when it fits under the cap,
 * 0 at the cap (nothing taken). Called only for connects to protected
 * destinations, never on the per-packet path.
 *
 * Add first, then look: the gauge never goes past the cap, but two CPUs
 * racing for the last slot can both see the other's add and both give up
 * (one connect refused or passed untracked a slot early). A fetching add
 * would avoid that, but needs BPF_FETCH (Linux 5.12) and -mcpu=v3 for the
 * whole object; plain atomic adds (BPF_XADD) run everywhere.
 */
static __always_inline int tg_flow_slot_take(void)
{
	const struct tg_config *cfg = tg_get_config();
	__u64 *live = tg_live_flows_get();

	if (!live)	/* a one-entry array cannot miss; the verifier needs the check */
		return 1;
	__sync_fetch_and_add(live, 1);
	if (cfg && cfg->max_flows && *(volatile __u64 *)live > cfg->max_flows) {
		__sync_fetch_and_add(live, -1);
		return 0;
	}
	return 1;
}

static __always_inline void tg_flow_slot_put(void)
{
	__u64 *live = tg_live_flows_get();

	if (live)	/* cannot miss, as above */
		__sync_fetch_and_add(live, -1);
}

/*
 * cgroup/sock_release (close() of the socket, once per socket): the flow
 * gives its slot back, at most once (flow->counted marks it). The flow state
 * itself stays: it is freed with the socket, which after close() can linger
 * (FIN_WAIT, unsent data) and still retransmit. A blocked flow must keep
 * dropping those retransmissions — with the state deleted here its
 * plaintext segments would find no flow and pass as untracked traffic. So
 * the cap counts open tracked sockets; closed ones awaiting the kernel's
 * cleanup hold their 88 bytes until then without holding a slot.
 */
static __always_inline void tg_flow_on_release(struct tg_flow *flow)
{
	if (flow->counted != TG_FLOW_COUNTED)
		return;
	flow->counted = TG_FLOW_RELEASED;
	tg_flow_slot_put();
}

#endif /* TLSGUARD_FLOWCAP_BPF_H */
