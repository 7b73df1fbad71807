// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tlsguard entry programs. Thin on purpose: the logic lives in the lib/ headers so
 * the BPF unit tests (tests/bpf/) run the same code on crafted packets.
 */
#include "lib/connect.bpf.h"
#include "lib/ingress.bpf.h"
#include "lib/dns_port.bpf.h"
#include "tlsguard/dns.h"

/* Handshake state lives in sk_storage next to the flow (see flow.h). */
static __always_inline struct tg_hs *tg_hs_get(struct bpf_sock *sk, struct tg_flow *flow, int create)
{
	return bpf_sk_storage_get(&tg_hs_map, sk, NULL, create ? BPF_SK_STORAGE_GET_F_CREATE : 0);
}

static __always_inline void tg_hs_drop_stored(struct bpf_sock *sk, struct tg_flow *flow)
{
	bpf_sk_storage_delete(&tg_hs_map, sk);
}

/* Keep @scratch for the next segment: replaced, as sk_storage_get initializes only a new value. */
static __always_inline int tg_hs_store(struct bpf_sock *sk, struct tg_flow *flow, struct tg_hs *scratch)
{
	bpf_sk_storage_delete(&tg_hs_map, sk);
	return bpf_sk_storage_get(&tg_hs_map, sk, scratch, BPF_SK_STORAGE_GET_F_CREATE) ? 0 : -1;
}

/* The generation that tracked the socket last judges it (handoff.h). */
static __always_inline int tg_gen_owns(struct bpf_sock *sk, struct tg_flow *flow)
{
	struct tg_owner *o = bpf_sk_storage_get(&tg_owner, sk, NULL, 0);

	return !o || o->layout == TG_PIN_LAYOUT_VERSION;
}

/* connect() and sendto(), both families: tg_on_sock_addr() (connect.bpf.h). */
#define TG_SOCK_ADDR_PROG(name, family, hook)			\
	int name(struct bpf_sock_addr *ctx)			\
	{							\
		return tg_on_sock_addr(ctx, family, hook);	\
	}

SEC("cgroup/connect4") TG_SOCK_ADDR_PROG(tg_connect4, AF_INET, TG_HOOK_CONNECT)
SEC("cgroup/connect6") TG_SOCK_ADDR_PROG(tg_connect6, AF_INET6, TG_HOOK_CONNECT)
SEC("cgroup/sendmsg4") TG_SOCK_ADDR_PROG(tg_sendmsg4, AF_INET, TG_HOOK_SENDMSG)
SEC("cgroup/sendmsg6") TG_SOCK_ADDR_PROG(tg_sendmsg6, AF_INET6, TG_HOOK_SENDMSG)

/* socket(): raw sockets are marked for judging on egress (Linux 5.11: sk_storage here). */
SEC("cgroup/sock_create")
int tg_sock_create(struct bpf_sock *ctx)
{
	return tg_raw_mark(ctx);
}

/*
 * Every packet of a socket in a watched cgroup: one sk_storage lookup finds
 * the flow, untracked traffic ends there. @dir is a constant in each caller.
 */
static __always_inline int tg_on_skb(struct __sk_buff *skb, int dir)
{
	struct bpf_sock *sk = skb->sk;
	struct tg_flow *flow;

	if (!sk)
		return TG_PASS;
	/* no bpf_sk_fullsock(): sk_storage_get checks for a full socket itself,
	 * and every helper call counts on this path (bench: 15-20 ns) */
	flow = bpf_sk_storage_get(&tg_flows, sk, NULL, 0);
	if (!flow)
		return TG_PASS;	/* untracked: the fast path ends here */
	if (dir == TG_DIR_INGRESS)
		return tg_flow_on_ingress(skb, sk, flow);
	return tg_flow_on_egress(skb, sk, flow);
}

/*
 * DNS answer learning's programs (dns.bpf.c: tg_dns_egress, tg_dns_ingress),
 * run from here when tg_dns_chained, instead of attached beside these: a
 * program of its own costs every packet of the cgroup one more run of the
 * kernel's dispatch (bench: a quarter of tlsguard's share of a bulk flow),
 * while the test below costs two loads. The agent puts the programs in slot
 * 0 (dnslearn.c) and pins these maps, so the slots outlive it: an array of
 * programs is emptied when its last user reference goes.
 */
struct tg_dns_chain {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
};
struct tg_dns_chain tg_dns_chain_egress SEC(".maps");
struct tg_dns_chain tg_dns_chain_ingress SEC(".maps");

/*
 * Set by the loader where the kernel allows a tail call from a program with
 * BPF-to-BPF calls (x86-64 5.10+, arm64 6.0+). Off, the tail call is dead
 * code the verifier removes unchecked, and dnslearn attaches its programs.
 */
const volatile __u8 tg_dns_chained = 0;

/*
 * A packet this program let through goes on to the DNS program when it may
 * be DNS: its socket is connected to port 53, or not connected at all (the
 * DNS program looks at the packet's port then). A dropped packet is never
 * delivered: there is nothing to learn from it.
 */
static __always_inline int tg_then_dns(struct __sk_buff *skb, void *chain, int verdict)
{
	if (!tg_dns_chained || verdict != TG_PASS || !tg_skb_may_be_dns(skb))
		return verdict;
	bpf_tail_call(skb, chain, 0);
	return verdict;	/* the slot is empty: no DNS learning on this kernel or yet */
}

SEC("cgroup_skb/egress")
int tg_egress(struct __sk_buff *skb)
{
	return tg_then_dns(skb, &tg_dns_chain_egress, tg_on_skb(skb, TG_DIR_EGRESS));
}

SEC("cgroup_skb/ingress")
int tg_ingress(struct __sk_buff *skb)
{
	return tg_then_dns(skb, &tg_dns_chain_ingress, tg_on_skb(skb, TG_DIR_INGRESS));
}

/*
 * close() of a socket: a tracked flow gives back its slot of
 * limits.max_tracked_flows. Its state stays until the kernel frees the
 * socket (see tg_flow_on_release()). sk_storage from cgroup/sock programs:
 * Linux 5.11; the hook itself: 5.9.
 */
SEC("cgroup/sock_release")
int tg_release(struct bpf_sock *ctx)
{
	struct tg_flow *flow = bpf_sk_storage_get(&tg_flows, ctx, NULL, 0);

	if (flow)
		tg_flow_on_release(flow);
	return 1;
}

/*
 * The census (handoff.h): run by an agent over this generation's tg_flows
 * while the generation drains after an upgrade. Kernel types are declared
 * here, not taken from vmlinux.h: only their first fields are read, at
 * offsets the iterator ABI fixes.
 */
struct seq_file;
struct bpf_iter_meta {
	struct seq_file *seq;
} __attribute__((preserve_access_index));

struct bpf_iter__bpf_sk_storage_map {
	struct bpf_iter_meta *meta;
	void *map;
	void *sk;
	void *value;
} __attribute__((preserve_access_index));

SEC("iter/bpf_sk_storage_map")
int tg_census(struct bpf_iter__bpf_sk_storage_map *ctx)
{
	struct tg_flow *flow = ctx->value;
	struct tg_census_rec rec = {};

	if (!ctx->sk || !flow)
		return 0;
	/* decided flows need nothing; a blocked one needs its drops until it is
	 * closed, QUIC, keep-alive proxy, raw and UDP-Lite sockets their judging */
	switch (flow->state) {
	case TG_FLOW_PENDING:
	case TG_FLOW_SERVER_HELLO:
	case TG_FLOW_SMB_SESSION:
	case TG_FLOW_BLOCKED:
	case TG_FLOW_QUIC:
	case TG_FLOW_PROXY_REQ:
	case TG_FLOW_RAW:
	case TG_FLOW_LITE:
	case TG_FLOW_DNS_WAIT:
		break;
	default:
		return 0;
	}
	rec.cookie = flow->cookie;
	rec.state = flow->state;
	bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
