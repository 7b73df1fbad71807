// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The egress and ingress verdict logic of bpf/lib, run by BPF_PROG_TEST_RUN
 * on crafted packets. Test runs have no real socket (each run gets a fresh
 * dummy one), so the flow state and the handshake state come from array maps
 * the test fills instead of sk_storage; everything after the lookup is the
 * production code path.
 */
#include "lib/ingress.bpf.h"
#include "lib/flowcap.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tg_flow);
} test_flow SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tg_hs);
} test_hs SEC(".maps");

/*
 * bench/verdict_cost: with bench_restore set, test_flow is copied from
 * test_flow_tmpl before every run, so that BPF_PROG_TEST_RUN's repeats
 * judge one segment in one flow state. The tests leave it 0.
 */
__u32 bench_restore;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tg_flow);
} test_flow_tmpl SEC(".maps");

static __always_inline struct tg_flow *test_flow_get(void)
{
	__u32 key = 0;
	struct tg_flow *flow = bpf_map_lookup_elem(&test_flow, &key), *tmpl;

	if (flow && bench_restore) {
		tmpl = bpf_map_lookup_elem(&test_flow_tmpl, &key);
		if (tmpl)
			__builtin_memcpy(flow, tmpl, sizeof(*flow));
	}
	return flow;
}

/* 1 while test_hs holds live handshake state (sk_storage "exists") */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} test_hs_live SEC(".maps");

static __always_inline struct tg_hs *tg_hs_get(struct bpf_sock *sk, struct tg_flow *flow, int create)
{
	__u32 key = 0, *live = bpf_map_lookup_elem(&test_hs_live, &key);
	struct tg_hs *hs = bpf_map_lookup_elem(&test_hs, &key);

	if (!live || !hs)
		return NULL;
	if (*live)
		return hs;
	if (!create)
		return NULL;
	/* like a new sk_storage value: zeroed (the buffers are only read up to what was written) */
	hs->have = 0;
	hs->dir = 0;
	__builtin_memset(&hs->tls, 0, sizeof(hs->tls));
	__builtin_memset(&hs->smb, 0, sizeof(hs->smb));
	*live = 1;
	return hs;
}

static __always_inline void tg_hs_drop_stored(struct bpf_sock *sk, struct tg_flow *flow)
{
	__u32 key = 0, *live = bpf_map_lookup_elem(&test_hs_live, &key);

	if (live)
		*live = 0;
}

static __always_inline int tg_hs_store(struct bpf_sock *sk, struct tg_flow *flow, struct tg_hs *scratch)
{
	__u32 key = 0, *live = bpf_map_lookup_elem(&test_hs_live, &key);

	if (!live || bpf_map_update_elem(&test_hs, &key, scratch, BPF_ANY))
		return -1;
	*live = 1;
	return 0;
}

/* one generation only: every flow is ours */
static __always_inline int tg_gen_owns(struct bpf_sock *sk, struct tg_flow *flow)
{
	return 1;
}

SEC("cgroup_skb/egress")
int test_egress(struct __sk_buff *skb)
{
	struct tg_flow *flow = test_flow_get();

	if (!flow)
		return TG_PASS;
	return tg_flow_on_egress(skb, NULL, flow);
}

SEC("cgroup_skb/ingress")
int test_ingress(struct __sk_buff *skb)
{
	struct tg_flow *flow = test_flow_get();

	if (!flow)
		return TG_PASS;
	return tg_flow_on_ingress(skb, NULL, flow);
}

/* The flow cap: take a slot as connect() does (1: taken, 0: at the cap). */
SEC("cgroup_skb/egress")
int test_slot_take(struct __sk_buff *skb)
{
	return tg_flow_slot_take();
}

/* The flow cap: what cgroup/sock_release does with test_flow. */
SEC("cgroup_skb/egress")
int test_release(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct tg_flow *flow = bpf_map_lookup_elem(&test_flow, &key);

	if (flow)
		tg_flow_on_release(flow);
	return TG_PASS;
}

/* The pods-outside-the-selector check of connect(): 1 when it leaves test_skip_cgid alone. */
__u64 test_skip_cgid;

SEC("cgroup_skb/egress")
int test_cgroup_skipped(struct __sk_buff *skb)
{
	__u64 cgid = test_skip_cgid;

	return tg_cgroup_skipped(&cgid);
}

/*
 * tg_name_class() on test_name_in's name, placed at .off in test_hs's buf
 * (tests/bpf/test_verdict.c compares it with a reference matcher): its
 * result goes to test_name_out.
 */
struct test_name {
	__u32 off, len, class_id;
	__u8 bytes[TG_SNI_MAX + 1];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct test_name);
} test_name_in SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __s32);
} test_name_out SEC(".maps");

SEC("cgroup_skb/egress")
int test_name_class(struct __sk_buff *skb)
{
	__u32 key = 0, off, i;
	struct test_name *in = bpf_map_lookup_elem(&test_name_in, &key);
	struct tg_hs *hs = bpf_map_lookup_elem(&test_hs, &key);
	__s32 *out = bpf_map_lookup_elem(&test_name_out, &key);

	if (!in || !hs || !out)
		return TG_PASS;
	off = in->off & 255;
	for (i = 0; i < sizeof(in->bytes); i++)
		hs->buf[(off + i) & TG_HELLO_MASK] = in->bytes[i];
	*out = tg_name_class(hs, off, in->len, in->class_id);
	return TG_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
