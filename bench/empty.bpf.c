// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The bench's yardstick: programs of the types tlsguard attaches, doing nothing.
 * bench/run.sh attaches one per type tlsguard uses to a sibling cgroup.
 * bpf_stats run time includes two clock reads per invocation; run on the same
 * workload in a sibling cgroup, these measure that floor so bench/run.sh can
 * report tlsguard's cost as the difference.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

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
