// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The bench's yardstick: programs of the types tlsguard attaches, doing nothing.
 * bench/run.sh attaches one per type tlsguard uses to a sibling cgroup.
 * bpf_stats run time includes two clock reads per invocation; run on the same
 * workload in a sibling cgroup, these measure that floor so bench/run.sh can
 * report tlsguard's cost as the difference.
 *
 * The floor_* programs are the storage floor (variant S): what any design that
 * keeps per-flow state in sk_storage pays at least. connect() creates a value
 * the size of tlsguard's struct tg_flow, every packet looks it up once, and the
 * kernel frees it with the socket. bench/run.sh attaches them in place of the
 * empty programs of their hook types.
 *
 * The hfloor_* and pfloor_* programs are the same floor for a design that
 * keeps the state in a hash map keyed by socket cookie instead (variants H and
 * P, BENCH_ONLY=stats and conn only): connect() inserts, every packet reads
 * the cookie and looks it up, sock_release deletes. H allocates on insert
 * (BPF_F_NO_PREALLOC: bpf_mem_alloc's per-CPU caches on 6.1+), P takes a
 * preallocated element (memory for the whole flow cap, 262,144 flows, up
 * front). What they leave out, a real design would add: reclaiming entries
 * of sockets that are gone without losing a blocked flow's retransmits.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct floor_flow {
	__u64 words[14];	/* 112 bytes: sizeof(struct tg_flow) */
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct floor_flow);
} floor_flows SEC(".maps");

static __always_inline int floor_create(struct bpf_sock_addr *ctx)
{
	struct floor_flow *f = bpf_sk_storage_get(&floor_flows, ctx->sk, NULL,
						  BPF_SK_STORAGE_GET_F_CREATE);

	if (f)
		f->words[0] = 1;
	return 1;
}

static __always_inline int floor_lookup(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct floor_flow *f;

	if (!sk)
		return 1;
	f = bpf_sk_storage_get(&floor_flows, sk, NULL, 0);
	if (f)
		f->words[1]++;
	return 1;
}

/* the default limits.max_tracked_flows */
#define FLOOR_HASH_ENTRIES 262144

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, FLOOR_HASH_ENTRIES);
	__type(key, __u64);
	__type(value, struct floor_flow);
} hfloor_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FLOOR_HASH_ENTRIES);
	__type(key, __u64);
	__type(value, struct floor_flow);
} pfloor_flows SEC(".maps");

static __always_inline int hash_floor_create(void *map, struct bpf_sock_addr *ctx)
{
	struct floor_flow f = { .words = { 1 } };
	__u64 cookie = bpf_get_socket_cookie(ctx);

	bpf_map_update_elem(map, &cookie, &f, BPF_ANY);
	return 1;
}

static __always_inline int hash_floor_lookup(void *map, struct __sk_buff *skb)
{
	__u64 cookie = bpf_get_socket_cookie(skb);
	struct floor_flow *f = bpf_map_lookup_elem(map, &cookie);

	if (f)
		f->words[1]++;
	return 1;
}

static __always_inline int hash_floor_release(void *map, struct bpf_sock *sk)
{
	__u64 cookie = bpf_get_socket_cookie(sk);

	bpf_map_delete_elem(map, &cookie);
	return 1;
}

/* The four programs of one hash floor: PREFIX_connect4, _egress, _ingress, _sock_release. */
#define HASH_FLOOR_PROGS(prefix, map)						\
	SEC("cgroup/connect4")							\
	int prefix##_connect4(struct bpf_sock_addr *ctx)			\
	{									\
		return hash_floor_create(&map, ctx);				\
	}									\
	SEC("cgroup_skb/egress")						\
	int prefix##_egress(struct __sk_buff *skb)				\
	{									\
		return hash_floor_lookup(&map, skb);				\
	}									\
	SEC("cgroup_skb/ingress")						\
	int prefix##_ingress(struct __sk_buff *skb)				\
	{									\
		return hash_floor_lookup(&map, skb);				\
	}									\
	SEC("cgroup/sock_release")						\
	int prefix##_sock_release(struct bpf_sock *sk)				\
	{									\
		return hash_floor_release(&map, sk);				\
	}

HASH_FLOOR_PROGS(hfloor, hfloor_flows)
HASH_FLOOR_PROGS(pfloor, pfloor_flows)

/* IPv4 only: the bench's traffic is (connect6 keeps the empty program) */
SEC("cgroup/connect4")
int floor_connect4(struct bpf_sock_addr *ctx)
{
	return floor_create(ctx);
}

SEC("cgroup_skb/egress")
int floor_egress(struct __sk_buff *skb)
{
	return floor_lookup(skb);
}

SEC("cgroup_skb/ingress")
int floor_ingress(struct __sk_buff *skb)
{
	return floor_lookup(skb);
}

SEC("cgroup/connect4")
int empty_connect4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/connect6")
int empty_connect6(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/sendmsg4")
int empty_sendmsg4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/sendmsg6")
int empty_sendmsg6(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup_skb/egress")
int empty_egress(struct __sk_buff *skb)
{
	return 1;
}

SEC("cgroup_skb/ingress")
int empty_ingress(struct __sk_buff *skb)
{
	return 1;
}

SEC("sockops")
int empty_sock_ops(struct bpf_sock_ops *skops)
{
	return 1;
}

SEC("cgroup/sock_create")
int empty_sock_create(struct bpf_sock *sk)
{
	return 1;
}

SEC("cgroup/sock_release")
int empty_sock_release(struct bpf_sock *sk)
{
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
