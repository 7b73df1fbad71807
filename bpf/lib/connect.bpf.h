/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* connect(): find the destination's class, check the port, start tracking. */
#ifndef TLSGUARD_CONNECT_BPF_H
#define TLSGUARD_CONNECT_BPF_H

#include <linux/socket.h>
#include "emit.bpf.h"
#include "flowcap.bpf.h"
#include "dest.bpf.h"
#include "handoff.bpf.h"
#include "override.bpf.h"
#include "tlsguard/preface.h"

/*
 * Helpers a kernel may not offer to cgroup/connect programs (pid and comm of
 * the caller arrived for sock_addr programs later than the hooks themselves).
 * The agent probes and sets these before load; the verifier prunes the
 * branches that are off, so the program loads either way.
 */
const volatile __u8 tg_have_current_task = 1;
const volatile __u8 tg_have_current_cgroup = 1;

#define TG_PORT_ANY	-1	/* the class lists no ports: every one is allowed */
#define TG_PORT_NONE	-2	/* not one of the class's ports */

/* Which of the class's port ranges holds @port: its index, TG_PORT_ANY or TG_PORT_NONE. */
static __always_inline int tg_port_range(const struct tg_class *cls, __u16 port)
{
	int i;

	if (cls->nranges == 0)
		return TG_PORT_ANY;
	for (i = 0; i < TG_MAX_PORT_RANGES && i < cls->nranges; i++) {
		if (port >= cls->ports[i].lo && port <= cls->ports[i].hi)
			return i;
	}
	return TG_PORT_NONE;
}

/*
 * The class a port entry gives a range of its own (SMB on 445 of a TLS
 * class): *class_id and the class become that one. 0 when it cannot be
 * read (ids come from one policy write: cannot happen).
 */
static __always_inline struct tg_class *tg_port_class(struct tg_class *cls, int range,
						      __u32 *class_id)
{
	__u32 id;

	if (range < 0)
		return cls;
	id = cls->port_class[range & (TG_MAX_PORT_RANGES - 1)];
	if (!id)
		return cls;
	*class_id = id;
	return bpf_map_lookup_elem(&tg_classes, class_id);
}


/* The connecting task's cgroup (0 where the kernel cannot tell): read once per connect. */
static __always_inline __u64 tg_current_cgid(void)
{
	return tg_have_current_cgroup ? bpf_get_current_cgroup_id() : 0;
}

static __always_inline void tg_flow_init(struct tg_flow *flow, struct bpf_sock_addr *ctx,
					 const struct tg_dest_key *key, __u8 family,
					 __u16 port, __u16 class_id, const struct tg_class *cls,
					 __u8 mode, __u8 rule, __u64 cgid)
{
	__builtin_memset(flow, 0, sizeof(*flow));
	/* connect_ns only times a DNS hold (tg_dns_wait_connect()): no clock read for the others */
	flow->cookie = bpf_get_socket_cookie(ctx);
	if (tg_have_current_task) {
		flow->tgid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(flow->comm, sizeof(flow->comm));
	}
	flow->cgroup_id = cgid;
	__builtin_memcpy(flow->daddr, key->addr, 16);
	flow->dport = port;
	flow->class_id = class_id;
	flow->family = family;
	flow->state = TG_FLOW_PENDING;
	if (ctx->protocol == IPPROTO_UDP || ctx->protocol == IPPROTO_UDPLITE)
		flow->hs_flags |= TG_HSF_UDP;
	if (!cls) {
		/* a forward proxy: the class comes with the CONNECT */
		flow->proto = TG_L7_CONNECT;
		return;
	}
	flow->mode = mode;
	flow->rule = rule;
	flow->proto = cls->protocol < TG_L7__MAX ? cls->protocol : TG_L7_TLS;
	flow->min_tls = cls->min_tls;
	flow->cls_flags = cls->flags;
	if (flow->proto == TG_L7_TLS || flow->proto == TG_L7_SMB3)
		flow->hs_flags |= TG_HSF_SRV_PREFACE;	/* its hello / NEGOTIATE comes first */
}

/*
 * Generation handoff (handoff.h), for a socket connecting to a protected
 * destination or a proxy. An inactive generation leaves new connects to the
 * active one and forgets the socket if it tracked it before (a reconnect);
 * the active one records itself as the owner once it tracks.
 */
static __always_inline int tg_gen_pass(struct bpf_sock_addr *ctx)
{
	struct tg_flow *flow = bpf_sk_storage_get(&tg_flows, ctx->sk, NULL, 0);

	if (flow) {
		tg_flow_on_release(flow);	/* its slot of the flow cap, once */
		bpf_sk_storage_delete(&tg_flows, ctx->sk);
	}
	return 1;
}

/*
 * The owner record matters only while two generations are attached (an
 * upgrade: retiring_layout set, which the agent writes before it switches
 * active_layout). Outside one, no record is made (a second sk_storage
 * allocation on every tracked connect would be the costliest part of it);
 * a record left from an earlier upgrade is kept right.
 */
static __always_inline void tg_gen_claim(struct bpf_sock_addr *ctx)
{
	const struct tg_handoff *h;
	struct tg_owner *o;
	__u32 key = 0;
	__u64 flags;

	h = bpf_map_lookup_elem(&tg_handoff, &key);
	flags = h && h->retiring_layout ? BPF_SK_STORAGE_GET_F_CREATE : 0;
	o = bpf_sk_storage_get(&tg_owner, ctx->sk, NULL, flags);
	if (o)	/* without one the socket counts as ours (tg_gen_owns) */
		o->layout = TG_PIN_LAYOUT_VERSION;
}

static __always_inline void tg_emit_connect(const struct tg_flow *flow, __u8 action, __u8 reason)
{
	struct tg_event *ev = tg_event_reserve();

	if (!ev)
		return;
	tg_event_from_flow(ev, flow, TG_EV_BLOCKED_CONNECT, action);
	ev->reason = reason;
	ev->tls.l7 = flow->proto;
	bpf_ringbuf_submit(ev, 0);
}

/*
 * The flow state for a socket about to be tracked, holding a slot of
 * limits.max_tracked_flows. NULL, with *reason set, when the flow cannot be
 * tracked: the cap is reached (TG_CR_FLOW_CAP) or no state could be
 * allocated (TG_CR_STORAGE; its slot is given back).
 */
static __always_inline struct tg_flow *tg_flow_create(struct bpf_sock_addr *ctx, __u8 *reason)
{
	struct tg_flow *flow;

	if (!tg_flow_slot_take()) {
		/* connect() again on a socket that holds a slot (a UDP re-connect, a
		 * TCP retry after a failed attempt) needs no second one */
		flow = bpf_sk_storage_get(&tg_flows, ctx->sk, NULL, 0);
		if (flow && flow->counted == TG_FLOW_COUNTED)
			return flow;
		*reason = TG_CR_FLOW_CAP;
		return NULL;
	}
	flow = bpf_sk_storage_get(&tg_flows, ctx->sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!flow) {
		tg_flow_slot_put();
		*reason = TG_CR_STORAGE;
		return NULL;
	}
	if (flow->counted == TG_FLOW_COUNTED)
		tg_flow_slot_put();	/* the same socket again: it keeps the slot it has */
	return flow;
}

/*
 * A connect to a protected destination that cannot be tracked: nothing would
 * judge its bytes. Enforce with fail_mode closed refuses it (EPERM) and
 * reports a blocked_connect with the reason; audit, or fail_mode open, lets
 * it pass unjudged. Counted by reason and by outcome either way. A proxy
 * flow's class comes later, so it is refused when any class enforces.
 */
static __always_inline int tg_untracked(struct bpf_sock_addr *ctx, const struct tg_dest_key *key,
					__u8 family, __u16 port, __u16 class_id,
					const struct tg_class *cls, __u8 mode, __u8 rule, __u8 reason,
					__u64 cgid)
{
	const struct tg_config *cfg = tg_get_config();
	struct tg_flow scratch;
	int enforce;

	tg_count(reason == TG_CR_FLOW_CAP ? TG_CNT_UNTRACKED_FLOW_CAP : TG_CNT_ERR_STORAGE);
	enforce = cls ? mode == TG_MODE_ENFORCE : cfg && cfg->any_enforce;
	if (!enforce || !cfg || cfg->fail_open) {
		tg_count(TG_CNT_UNTRACKED_PASSED);
		return 1;
	}
	tg_count(TG_CNT_UNTRACKED_REFUSED);
	tg_flow_init(&scratch, ctx, key, family, port, class_id, cls, mode, rule, cgid);
	tg_emit_connect(&scratch, TG_ACT_BLOCKED, reason);
	return 0;
}

/* Every answer stamped up to this bpf_ktime_get_ns() is learned (the agent writes it). */
static __always_inline __u64 tg_dns_caught_ns(void)
{
	const __u64 *caught;
	__u32 zero = 0;

	caught = bpf_map_lookup_elem(&tg_dns_caught_up, &zero);
	return caught ? *caught : 0;
}

/*
 * The agent has processed every answer the dns program stamped a cgroup for
 * or learned an address from (tg_dns_newest, tlsguard/dns.h): no connect()
 * waits, and tg_dns_klearned has nothing the destination map lacks. The
 * common case, and two array reads instead of the cgroup id and the
 * tg_dns_pending and tg_dns_klearned lookups (a connect to an unlisted
 * address under enforce: about 200 ns of its 660).
 */
static __always_inline int tg_dns_all_learned(void)
{
	const struct tg_dns_newest *newest;
	__u32 zero = 0;

	newest = bpf_map_lookup_elem(&tg_dns_newest, &zero);
	return newest && tg_dns_caught_ns() >= newest->stamp;
}

/*
 * A TCP connect to an address no map lists, from a cgroup that has just been
 * given an answer naming a policy host the agent has not learned yet
 * (tlsguard/dns.h): the address may be that host's. Tracked as
 * TG_FLOW_DNS_WAIT, so its payload waits for the agent (tg_dns_wait()).
 * Under an enforcing policy every other unlisted connect pays two lookups
 * (the stamp, and with one the agent's progress); under audit none. Only TCP (a held datagram would be lost, not
 * retransmitted) and only while a class enforces with fail_mode closed:
 * audit never delays traffic.
 */
static __always_inline int tg_dns_wait_connect(struct bpf_sock_addr *ctx,
					       const struct tg_dest_key *key, __u8 family,
					       __u16 port)
{
	const struct tg_config *cfg;
	struct tg_flow *flow;
	__u64 cgid, *stamp;
	__u8 reason = 0;

	/* DNS over TCP itself (the next lookup of a resolver that uses TCP) never waits */
	if (ctx->protocol != IPPROTO_TCP || !tg_have_current_cgroup || port == TG_DNS_PORT)
		return 1;
	/* the config first: an audit-only or fail-open policy never holds;
	 * then nothing may wait at all (the common case) */
	cfg = tg_get_config();
	if (!cfg || !cfg->any_enforce || cfg->fail_open || tg_dns_all_learned())
		return 1;
	cgid = bpf_get_current_cgroup_id();
	stamp = bpf_map_lookup_elem(&tg_dns_pending, &cgid);
	if (!stamp || tg_dns_caught_ns() >= *stamp)
		return 1;	/* the agent has learned all this cgroup was told */
	if (tg_cgroup_skipped(&cgid) || !tg_gen_active())
		return 1;
	flow = tg_flow_create(ctx, &reason);
	if (!flow)
		return tg_untracked(ctx, key, family, port, 0, NULL, 0, 0, reason, cgid);
	tg_flow_init(flow, ctx, key, family, port, 0, NULL, 0, 0, cgid);
	flow->proto = TG_L7_TLS;
	flow->state = TG_FLOW_DNS_WAIT;
	flow->connect_ns = bpf_ktime_get_ns();	/* the hold's start (tg_dns_wait_over()) */
	flow->dw.stamp = *stamp;
	flow->counted = TG_FLOW_COUNTED;
	tg_count(TG_CNT_DNS_HELD);
	tg_gen_claim(ctx);
	return 1;
}

/* A connect to a listed forward proxy: tracked, its class comes later. */
static __always_inline int tg_on_proxy_connect(struct bpf_sock_addr *ctx,
					       const struct tg_dest_key *key, __u8 family,
					       __u16 port)
{
	struct tg_proxy_key pk = { .port = port };
	struct tg_flow *flow;
	__u8 reason = 0;
	__u64 cgid;

	if (ctx->protocol != IPPROTO_TCP)
		return 1;
	__builtin_memcpy(pk.addr, key->addr, 16);
	if (!bpf_map_lookup_elem(&tg_proxies, &pk))
		return tg_dns_wait_connect(ctx, key, family, port);
	if (!tg_gen_active())
		return tg_gen_pass(ctx);
	cgid = tg_current_cgid();
	flow = tg_flow_create(ctx, &reason);
	if (!flow)
		return tg_untracked(ctx, key, family, port, 0, NULL, 0, 0, reason, cgid);
	tg_flow_init(flow, ctx, key, family, port, 0, NULL, 0, 0, cgid);
	flow->counted = TG_FLOW_COUNTED;
	tg_gen_claim(ctx);
	return 1;
}

/*
 * An address the destination map does not list (yet): did the dns program
 * just learn it from an answer the agent has not processed (tlsguard/dns.h)?
 * Then it has that answer's class, as the map will give it. Once the agent
 * has processed every answer the kernel learned from, the destination map
 * holds its verdict on them all (dnslearn.c removes such entries) and there
 * is nothing to look up.
 */
static __always_inline struct tg_dest_value *tg_dns_learned_dest(const struct tg_dest_key *key,
								 struct tg_dest_value *out)
{
	const struct tg_dns_klearned_val *kl;

	if (tg_dns_all_learned())
		return NULL;
	kl = bpf_map_lookup_elem(&tg_dns_klearned, key->addr);
	if (!kl || !kl->class_id)
		return NULL;
	out->class_id = kl->class_id;
	out->flags = 0;
	out->pad = 0;
	tg_count(TG_CNT_DNS_KLEARNED_HIT);
	return out;
}

/* Returns 1 to let connect() proceed, 0 to fail it with EPERM. */
static __always_inline int tg_on_connect(struct bpf_sock_addr *ctx, const struct tg_dest_key *key,
					 __u8 family, __u16 port)
{
	struct tg_dest_value *dest, learned;
	struct tg_class *cls;
	struct tg_flow *flow;
	struct tg_flow scratch;
	__u64 cgid = 0;
	__u32 class_id;
	__u8 reason = 0, mode, rule;
	int range;

	if (!tg_l4_known(ctx->protocol))
		return 1;
	dest = bpf_map_lookup_elem(&tg_dests, key);
	if (!dest)
		dest = tg_dns_learned_dest(key, &learned);
	if (!dest)
		return tg_on_proxy_connect(ctx, key, family, port);
	if (!tg_gen_active())
		return tg_gen_pass(ctx);
	if (dest->flags & TG_DEST_EXCEPTION) {
		tg_count(TG_CNT_EXCEPTION_HIT);
		return 1;
	}
	/* only for protected destinations: untracked traffic pays nothing more */
	cgid = tg_current_cgid();
	if (tg_have_current_cgroup && tg_cgroup_skipped(&cgid)) {
		tg_count(TG_CNT_SKIPPED_CGROUP);
		return 1;
	}
	class_id = dest->class_id;
	cls = bpf_map_lookup_elem(&tg_classes, &class_id);
	if (!cls)
		return 1;	/* class ids come from the same policy; cannot miss */
	range = tg_port_range(cls, port);
	cls = tg_port_class(cls, range, &class_id);
	if (!cls)
		return 1;
	mode = tg_flow_mode(cls, class_id, cgid, &rule);

	if (range == TG_PORT_NONE) {
		tg_flow_init(&scratch, ctx, key, family, port, class_id, cls, mode, rule, cgid);
		if (mode == TG_MODE_ENFORCE && !tg_failing_open()) {
			tg_count(TG_CNT_CONNECT_BLOCKED);
			tg_count_class(class_id, TG_CS_CONNECT_BLOCKED);
			tg_emit_connect(&scratch, TG_ACT_BLOCKED, TG_CR_PORT);
			return 0;
		}
		tg_count(TG_CNT_CONNECT_FLAGGED);
		tg_count_class(class_id, TG_CS_CONNECT_FLAGGED);
		tg_emit_connect(&scratch, TG_ACT_FLAGGED, TG_CR_PORT);
		/* audit: the flow goes on and its payload is judged too */
	}

	flow = tg_flow_create(ctx, &reason);
	if (!flow)
		return tg_untracked(ctx, key, family, port, class_id, cls, mode, rule, reason, cgid);
	tg_flow_init(flow, ctx, key, family, port, class_id, cls, mode, rule, cgid);
	flow->counted = TG_FLOW_COUNTED;
	tg_count(TG_CNT_FLOWS_TRACKED);
	tg_count_class(class_id, TG_CS_TRACKED);
	tg_gen_claim(ctx);
	return 1;
}

/*
 * A second protected destination from one unconnected UDP socket: its flow
 * is tracked for the first one, and sendmsg() cannot see the payload that
 * would have to be judged. Refused in enforce (EPERM), flagged in audit.
 */
static __always_inline int tg_sendmsg_second_dest(struct bpf_sock_addr *ctx,
						  const struct tg_dest_key *key, __u8 family,
						  __u16 port)
{
	__u32 class_id = tg_addr_class_id(key);
	__u64 cgid = tg_current_cgid();
	struct tg_class *cls;
	struct tg_flow scratch;
	__u8 mode, rule;

	if (!class_id)
		return 1;	/* an exception */
	cls = bpf_map_lookup_elem(&tg_classes, &class_id);
	if (cls)	/* the port's own class, and the workload's override, as at connect() */
		cls = tg_port_class(cls, tg_port_range(cls, port), &class_id);
	if (!cls)
		return 1;
	mode = tg_flow_mode(cls, class_id, cgid, &rule);
	tg_count(TG_CNT_SENDMSG_SECOND_DEST);
	tg_flow_init(&scratch, ctx, key, family, port, class_id, cls, mode, rule, cgid);
	if (mode == TG_MODE_ENFORCE && !tg_failing_open()) {
		tg_emit_connect(&scratch, TG_ACT_BLOCKED, TG_CR_UDP_SECOND_DEST);
		return 0;
	}
	tg_emit_connect(&scratch, TG_ACT_FLAGGED, TG_CR_UDP_SECOND_DEST);
	return 1;
}

/*
 * cgroup/sendmsg4/6: a datagram with an address (unconnected UDP or
 * UDP-Lite, sendto()). Unprotected destinations pay one LPM lookup; the
 * first protected destination of a socket is tracked as connect() would
 * track it, its datagrams judged on egress (TG_HSF_UNCONNECTED).
 */
static __always_inline int tg_on_sendmsg(struct bpf_sock_addr *ctx, const struct tg_dest_key *key,
					 __u8 family, __u16 port)
{
	const __u32 *a, *b = (const __u32 *)key->addr;
	struct tg_flow *flow;
	int ret;

	/* a destination the map lists, or one the dns program just learned (tlsguard/dns.h) */
	if (!tg_addr_class(key) &&
	    (tg_dns_all_learned() || !bpf_map_lookup_elem(&tg_dns_klearned, key->addr)))
		return 1;
	flow = bpf_sk_storage_get(&tg_flows, ctx->sk, NULL, 0);
	if (flow) {
		a = (const __u32 *)flow->daddr;
		if (flow->state == TG_FLOW_RAW || flow->state == TG_FLOW_LITE ||
		    flow->state == TG_FLOW_UNTRACKED ||
		    (flow->dport == port && a[0] == b[0] && a[1] == b[1] && a[2] == b[2] &&
		     a[3] == b[3]))
			return 1;	/* the destination it is tracked for */
		return tg_sendmsg_second_dest(ctx, key, family, port);
	}
	ret = tg_on_connect(ctx, key, family, port);
	flow = bpf_sk_storage_get(&tg_flows, ctx->sk, NULL, 0);
	if (flow && flow->state == TG_FLOW_PENDING) {
		flow->hs_flags |= TG_HSF_UNCONNECTED;
		tg_count(TG_CNT_SENDMSG_TRACKED);
	}
	return ret;
}

#define TG_HOOK_CONNECT	0	/* cgroup/connect4, connect6 */
#define TG_HOOK_SENDMSG	1	/* cgroup/sendmsg4, sendmsg6 */

/*
 * The entry of the four sock_addr programs: the address they are given as a
 * destination key (prefixlen 128, IPv4 v4-mapped so that both families land
 * on the same LPM entries), then tg_on_connect() or tg_on_sendmsg().
 * @family and @hook are constants in every caller and only their branches
 * are compiled: a connect6 or sendmsg6 program may not read user_ip4.
 */
static __always_inline int tg_on_sock_addr(struct bpf_sock_addr *ctx, __u8 family, int hook)
{
	struct tg_dest_key key = { .prefixlen = 128 };
	__u32 *words = (__u32 *)key.addr;

	if (family == AF_INET) {
		tg_v4_mapped(key.addr, ctx->user_ip4);
	} else {
		words[0] = ctx->user_ip6[0];
		words[1] = ctx->user_ip6[1];
		words[2] = ctx->user_ip6[2];
		words[3] = ctx->user_ip6[3];
	}
	if (hook == TG_HOOK_SENDMSG)
		return tg_on_sendmsg(ctx, &key, family, bpf_ntohs(ctx->user_port));
	return tg_on_connect(ctx, &key, family, bpf_ntohs(ctx->user_port));
}

/*
 * cgroup/sock_create: a SOCK_RAW socket (CAP_NET_RAW, in the default
 * container capability set) gets a flow of its own kind, so that its
 * packets find state on egress and are judged there (tg_raw_egress()); so
 * does a UDP-Lite socket, whose connect() runs no cgroup hook (udplite_prot
 * has no pre_connect): its first datagram to a protected destination makes
 * it a UDP flow (tg_lite_egress()). Every other socket pays these two
 * tests. Without memory for the mark, enforce refuses the socket
 * (fail_mode closed): it could not be judged.
 */
#ifndef SOCK_RAW
#define SOCK_RAW 3
#endif

static __always_inline int tg_raw_mark(struct bpf_sock *sk)
{
	const struct tg_config *cfg;
	struct tg_flow *flow;

	if (sk->type != SOCK_RAW && sk->protocol != IPPROTO_UDPLITE)
		return 1;
	flow = bpf_sk_storage_get(&tg_flows, sk, NULL, BPF_SK_STORAGE_GET_F_CREATE);
	if (!flow) {
		tg_count(TG_CNT_ERR_STORAGE);
		cfg = tg_get_config();
		return !(cfg && cfg->any_enforce && !cfg->fail_open);
	}
	flow->proto = TG_L7_TLS;
	if (sk->type != SOCK_RAW) {
		flow->state = TG_FLOW_LITE;
		return 1;
	}
	flow->state = TG_FLOW_RAW;
	tg_count(TG_CNT_RAW_SOCKETS);
	return 1;
}

#endif /* TLSGUARD_CONNECT_BPF_H */
