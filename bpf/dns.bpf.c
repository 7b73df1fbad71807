// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * DNS answers watched workloads receive, copied to the agent (which parses
 * them and learns which addresses the policy's host names stand for).
 *
 * Observe only: every path returns 1, nothing is ever dropped.
 *
 * Cost for everything that is not DNS: the socket's remote port, read
 * through __sk_buff (two loads, no helper, no packet access). A socket
 * connected to port 53 (TCP, connected UDP as glibc and Go use) is DNS; a
 * socket connected anywhere else is not. Only unconnected sockets (remote
 * port 0: unconnected UDP, a listener seeing a SYN) need a look at the
 * packet's source port, read by direct packet access. Measured with
 * kernel.bpf_stats_enabled against an empty cgroup_skb program: within a
 * few ns of it on both paths.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "tlsguard/dns.h"

#define OBSERVE 1

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TG_DNS_RINGBUF_BYTES);
} tg_dns_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TG_DNS_CNT__MAX);
	__type(key, __u32);
	__type(value, __u64);
} tg_dns_counters SEC(".maps");

/* 4 KiB of record is too big for the stack: assembled here, then output */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tg_dns_scratch);
} tg_dns_scratch SEC(".maps");

/* Written by the agent only (see tlsguard/dns.h); here so it is pinned with the object. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TG_DNS_MAX_LEARNED);
	__uint(map_flags, BPF_F_NO_PREALLOC);	/* memory only for what is learned */
	__type(key, struct tg_dns_learned_key);
	__type(value, struct tg_dns_learned_val);
} tg_dns_learned SEC(".maps");

/* The L4 facts the copy needs. */
struct dns_pkt {
	__u32 payload_off;		/* from the network header */
	__u32 payload_len;
	__u32 seq;
	__u16 sport;
	__u8 proto;
	__u8 tcp_flags;
	__u8 family;
	__u8 saddr[16];
};

static __always_inline void dns_count(enum tg_dns_counter c)
{
	__u32 key = c;
	__u64 *v = bpf_map_lookup_elem(&tg_dns_counters, &key);

	if (v)	/* always true for an in-range index; the verifier needs the check */
		*v += 1;
}

/* One exit for every skip and error: count why, let the packet through. */
static __always_inline int dns_skip(enum tg_dns_counter why)
{
	dns_count(why);
	return OBSERVE;
}

/* IP header → L4 offset and protocol; the counter to bump when it is not one we read. */
static __always_inline int dns_parse_l3(struct __sk_buff *skb, struct dns_pkt *p, __u32 *l4_off)
{
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0 || ip.ihl < 5)
			return -TG_DNS_CNT_ERR_HEADER;
		p->proto = ip.protocol;
		p->family = AF_INET;
		__builtin_memset(p->saddr, 0, 10);
		p->saddr[10] = 0xff;
		p->saddr[11] = 0xff;
		__builtin_memcpy(&p->saddr[12], &ip.saddr, 4);
		*l4_off = ip.ihl * 4;
		return 0;
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) < 0)
			return -TG_DNS_CNT_ERR_HEADER;
		/* DNS servers do not send extension headers; not worth walking them */
		p->proto = ip6.nexthdr;
		p->family = AF_INET6;
		__builtin_memcpy(p->saddr, &ip6.saddr, 16);
		*l4_off = sizeof(ip6);
		return 0;
	}
	return -TG_DNS_CNT_SKIP_L3;
}

/*
 * Unconnected sockets: the source port decides. Read straight from the
 * packet (at ingress its headers are linear), no helper call: 1 when the
 * packet comes from a port other than 53, 0 when from 53 or when it cannot
 * be told this way (the full parse then decides and counts).
 */
static __always_inline int dns_not_from_53(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	__u16 *ports;
	__u8 proto;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data;

		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return 0;
		proto = ip->protocol;
		ports = data + ip->ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;

		if ((void *)(ip6 + 1) > end)
			return 0;
		proto = ip6->nexthdr;
		ports = (void *)(ip6 + 1);
	} else {
		return 0;
	}
	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return 0;
	if ((void *)(ports + 1) > end)
		return 0;
	return *ports != bpf_htons(TG_DNS_PORT);
}

/* Returns 0 with @p filled for a packet from port 53, or -counter to skip it. */
static __always_inline int dns_parse(struct __sk_buff *skb, struct dns_pkt *p)
{
	__u32 l4_off, end;
	int err = dns_parse_l3(skb, p, &l4_off);

	if (err)
		return err;
	if (p->proto == IPPROTO_UDP) {
		struct udphdr uh;

		if (bpf_skb_load_bytes(skb, l4_off, &uh, sizeof(uh)) < 0)
			return -TG_DNS_CNT_ERR_HEADER;
		if (uh.source != bpf_htons(TG_DNS_PORT))
			return -TG_DNS_CNT_SKIP_NOT_DNS;
		p->payload_off = l4_off + sizeof(uh);
		p->seq = 0;
		p->tcp_flags = 0;
	} else if (p->proto == IPPROTO_TCP) {
		struct tcphdr th;

		if (bpf_skb_load_bytes(skb, l4_off, &th, sizeof(th)) < 0 || th.doff < 5)
			return -TG_DNS_CNT_ERR_HEADER;
		if (th.source != bpf_htons(TG_DNS_PORT))
			return -TG_DNS_CNT_SKIP_NOT_DNS;
		p->payload_off = l4_off + th.doff * 4;
		p->seq = bpf_ntohl(th.seq);
		p->tcp_flags = (th.syn ? TG_DNS_TCP_SYN : 0) | (th.fin ? TG_DNS_TCP_FIN : 0) |
			       (th.rst ? TG_DNS_TCP_RST : 0);
		if (th.syn)
			p->seq += 1;	/* the first payload byte comes after the SYN */
	} else {
		return -TG_DNS_CNT_SKIP_L4;
	}
	end = skb->len;
	if (p->payload_off > end)
		return -TG_DNS_CNT_ERR_HEADER;
	p->payload_len = end - p->payload_off;
	p->sport = TG_DNS_PORT;
	return 0;
}

/* One ring record: header + @n payload bytes from @off (n <= TG_DNS_CHUNK). */
static __always_inline int dns_emit(struct __sk_buff *skb, const struct dns_pkt *p, __u64 cookie,
				    __u32 off, __u32 n, __u32 seq)
{
	struct tg_dns_scratch *s;
	__u32 key = 0;

	s = bpf_map_lookup_elem(&tg_dns_scratch, &key);
	if (!s)	/* cannot fail for index 0; the verifier needs the check */
		return -TG_DNS_CNT_ERR_LOAD;
	s->rec.ts_ns = bpf_ktime_get_ns();
	s->rec.cookie = cookie;
	s->rec.seq = seq;
	s->rec.wire_len = p->payload_len;
	s->rec.proto = p->proto;
	s->rec.tcp_flags = p->tcp_flags;
	s->rec.family = p->family;
	s->rec.pad[0] = 0;
	s->rec.sport = p->sport;
	__builtin_memcpy(s->rec.saddr, p->saddr, 16);
	if (n > TG_DNS_CHUNK)
		n = TG_DNS_CHUNK;
	if (n) {
		/* n is 1..TG_DNS_CHUNK already; the mask says so in a way the verifier follows */
		n = ((n - 1) & (TG_DNS_CHUNK - 1)) + 1;
		if (bpf_skb_load_bytes(skb, off, s->data, n) < 0)
			return -TG_DNS_CNT_ERR_LOAD;
	}
	s->rec.len = n;
	/* DNS answers are rare and someone is waiting on them: wake the agent now */
	if (bpf_ringbuf_output(&tg_dns_ring, s, sizeof(s->rec) + n, BPF_RB_FORCE_WAKEUP) < 0)
		return -TG_DNS_CNT_ERR_RINGBUF;
	dns_count(TG_DNS_CNT_RECORDS);
	return 0;
}

static __noinline int dns_copy(struct __sk_buff *skb)
{
	struct dns_pkt p = {};
	__u64 cookie;
	__u32 i;
	int err;

	err = dns_parse(skb, &p);
	if (err)
		return dns_skip(-err);
	if (!p.payload_len && !p.tcp_flags)
		return dns_skip(TG_DNS_CNT_SKIP_EMPTY);	/* pure ACK */
	cookie = bpf_get_socket_cookie(skb);
	if (p.proto == IPPROTO_UDP) {
		err = dns_emit(skb, &p, cookie, p.payload_off, p.payload_len, 0);
		if (err)
			return dns_skip(-err);
		dns_count(p.payload_len > TG_DNS_CHUNK ? TG_DNS_CNT_TRUNCATED : TG_DNS_CNT_COPIED);
		return OBSERVE;
	}
	/* TCP: a segment (GRO may merge many) in records of TG_DNS_CHUNK bytes */
	for (i = 0; i < TG_DNS_TCP_MAX_CHUNKS; i++) {
		__u32 off = i * TG_DNS_CHUNK, n;

		if (i && off >= p.payload_len)
			break;
		n = p.payload_len > off ? p.payload_len - off : 0;
		err = dns_emit(skb, &p, cookie, p.payload_off + off, n, p.seq + off);
		if (err)
			return dns_skip(-err);
	}
	dns_count(p.payload_len > TG_DNS_TCP_MAX_CHUNKS * TG_DNS_CHUNK ? TG_DNS_CNT_TRUNCATED :
		  TG_DNS_CNT_COPIED);
	return OBSERVE;
}

SEC("cgroup_skb/ingress")
int tg_dns_ingress(struct __sk_buff *skb)
{
	/*
	 * __sk_buff->remote_port is the socket's peer port in network byte
	 * order, in the upper 16 bits on little-endian hosts: bpf_htonl(53)
	 * compares it whatever the host's byte order (tests/bpf/test_dns.c
	 * checks this on real sockets). 0: the socket is not connected.
	 */
	__u32 rport = skb->remote_port;

	if (rport != 0 && rport != bpf_htonl(TG_DNS_PORT))
		return OBSERVE;	/* the fast path: connected, not to DNS */
	if (!rport && dns_not_from_53(skb))
		return dns_skip(TG_DNS_CNT_SKIP_NOT_DNS);
	return dns_copy(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
