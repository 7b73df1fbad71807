/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Locate the TCP payload of an egress skb. cgroup_skb programs see the packet
 * from the network header on; bpf_skb_load_bytes copes with non-linear skbs.
 */
#ifndef TLSGUARD_PACKET_BPF_H
#define TLSGUARD_PACKET_BPF_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct tg_segment {
	__u8 saddr[16];			/* v4-mapped for IPv4 */
	__u16 sport;			/* host byte order */
	__u16 pad;
	__u32 seq;			/* host byte order */
	__u32 payload_off;		/* from the network header */
	__u32 payload_len;		/* whole skb, GSO super-packets included */
};

static __always_inline void tg_v4_mapped(__u8 out[16], __u32 addr_be)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(&out[12], &addr_be, 4);
}

/* Returns the L4 offset, or -1 when the packet is not IPv4/IPv6 TCP. */
static __always_inline int tg_parse_l3(struct __sk_buff *skb, struct tg_segment *seg)
{
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0)
			return -1;
		if (ip.protocol != IPPROTO_TCP || ip.ihl < 5)
			return -1;
		tg_v4_mapped(seg->saddr, ip.saddr);
		return ip.ihl * 4;
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) < 0)
			return -1;
		/* our own TCP sockets do not emit extension headers */
		if (ip6.nexthdr != IPPROTO_TCP)
			return -1;
		__builtin_memcpy(seg->saddr, &ip6.saddr, 16);
		return sizeof(ip6);
	}
	return -1;
}

static __always_inline int tg_parse_segment(struct __sk_buff *skb, struct tg_segment *seg)
{
	struct tcphdr th;
	__u32 l4_off, hdr_end;
	int off = tg_parse_l3(skb, seg);

	if (off < 0)
		return -1;
	l4_off = off;
	if (bpf_skb_load_bytes(skb, l4_off, &th, sizeof(th)) < 0)
		return -1;
	if (th.doff < 5)
		return -1;
	hdr_end = l4_off + th.doff * 4;
	if (hdr_end > skb->len)
		return -1;
	seg->sport = bpf_ntohs(th.source);
	seg->seq = bpf_ntohl(th.seq);
	seg->payload_off = hdr_end;
	seg->payload_len = skb->len - hdr_end;
	return 0;
}

#endif /* TLSGUARD_PACKET_BPF_H */
