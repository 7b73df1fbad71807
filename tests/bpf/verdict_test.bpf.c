// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The egress verdict logic of bpf/lib, run by BPF_PROG_TEST_RUN on crafted
 * packets. Test runs have no real socket, so the flow state comes from an
 * array map the test fills instead of sk_storage; everything after the
 * lookup is the production code path.
 */
#include "lib/egress.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tg_flow);
} test_flow SEC(".maps");

SEC("cgroup_skb/egress")
int test_egress(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct tg_flow *flow = bpf_map_lookup_elem(&test_flow, &key);

	if (!flow)
		return TG_PASS;
	return tg_flow_on_egress(skb, flow);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
