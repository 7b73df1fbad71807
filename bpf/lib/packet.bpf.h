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
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "common.bpf.h"
#include "count.bpf.h"

/* Which way a packet goes, seen from the workload's socket. */
#define TG_DIR_EGRESS	0
#define TG_DIR_INGRESS	1

struct tg_segment {
	__u8 saddr[16];			/* the workload's (local) address, v4-mapped for IPv4 */
	__u16 sport;			/* the workload's port, host byte order */
	__u8 l4;			/* IPPROTO_TCP or IPPROTO_UDP (UDP-Lite too) */
	__u8 pad;
	__u32 seq;			/* host byte order: seq of the first payload byte */
	__u32 payload_off;		/* from the network header */
	__u32 payload_len;		/* whole skb, GSO super-packets included */
	__u8 peer[16];			/* the other end's address, v4-mapped for IPv4 */
	__u16 pport;			/* the other end's port, host byte order */
	__u8 pad2[2];
};

static __always_inline void tg_v4_mapped(__u8 out[16], __u32 addr_be)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(&out[12], &addr_be, 4);
}

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif

/* tg_parse_segment() failures */
#define TG_SEG_NOT_OURS		(-1)	/* not IPv4/IPv6 TCP/UDP, or unreadable */
#define TG_SEG_UNPARSEABLE	(-2)	/* IPv6 extension headers that cannot be walked */

/* TCP, UDP and UDP-Lite (its header is UDP's, with a checksum coverage for a length). */
static __always_inline int tg_l4_known(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE;
}

/*
 * IPv6 extension headers, walked to the transport header: hop-by-hop,
 * routing, destination options (length in 8-byte units past the first 8),
 * AH (in 4-byte units past the first 8) and a first fragment. Anything else
 * (ESP, "no next header", a later fragment, more than TG_IPV6_MAX_EXT
 * headers) cannot be walked. Returns the transport header's offset with
 * *proto set, or TG_SEG_UNPARSEABLE.
 */
#define TG_IPV6_MAX_EXT	8

static __always_inline int tg_ipv6_walk(struct __sk_buff *skb, __u8 nexthdr, __u8 *proto)
{
	__u32 off = sizeof(struct ipv6hdr), i;
	__u8 nh = nexthdr, h[4];

	for (i = 0; i < TG_IPV6_MAX_EXT; i++) {
		if (tg_l4_known(nh)) {
			*proto = nh;
			return off;
		}
		if (bpf_skb_load_bytes(skb, off, h, sizeof(h)) < 0)
			return TG_SEG_UNPARSEABLE;
		switch (nh) {
		case 0:		/* hop-by-hop options */
		case 43:	/* routing */
		case 60:	/* destination options */
			off += ((__u32)h[1] + 1) * 8;
			break;
		case 51:	/* authentication header */
			off += ((__u32)h[1] + 2) * 4;
			break;
		case 44:	/* fragment: only a first fragment carries the transport header */
			if ((((__u32)h[2] << 8) | h[3]) & 0xfff8)
				return TG_SEG_UNPARSEABLE;
			off += 8;
			break;
		default:
			return TG_SEG_UNPARSEABLE;
		}
		nh = h[0];
	}
	if (!tg_l4_known(nh))
		return TG_SEG_UNPARSEABLE;
	*proto = nh;
	return off;
}

/* Returns the L4 offset, or TG_SEG_NOT_OURS / TG_SEG_UNPARSEABLE. */
static __always_inline int tg_parse_l3(struct __sk_buff *skb, struct tg_segment *seg, int dir)
{
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0)
			return TG_SEG_NOT_OURS;
		if (!tg_l4_known(ip.protocol) || ip.ihl < 5)
			return TG_SEG_NOT_OURS;
		seg->l4 = ip.protocol == IPPROTO_TCP ? IPPROTO_TCP : IPPROTO_UDP;
		tg_v4_mapped(seg->saddr, dir == TG_DIR_EGRESS ? ip.saddr : ip.daddr);
		tg_v4_mapped(seg->peer, dir == TG_DIR_EGRESS ? ip.daddr : ip.saddr);
		return ip.ihl * 4;
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;
		__u8 proto = 0;
		int off;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) < 0)
			return TG_SEG_NOT_OURS;
		if (tg_l4_known(ip6.nexthdr)) {
			off = sizeof(ip6);
			proto = ip6.nexthdr;
		} else {
			/* IPV6_HOPOPTS, IPV6_DSTOPTS, IPV6_RTHDR on the socket put these in */
			off = tg_ipv6_walk(skb, ip6.nexthdr, &proto);
			if (off < 0)
				return off;
			tg_count(TG_CNT_IPV6_EXTHDR);
		}
		seg->l4 = proto == IPPROTO_TCP ? IPPROTO_TCP : IPPROTO_UDP;
		if (dir == TG_DIR_EGRESS) {
			__builtin_memcpy(seg->saddr, &ip6.saddr, 16);
			__builtin_memcpy(seg->peer, &ip6.daddr, 16);
		} else {
			__builtin_memcpy(seg->saddr, &ip6.daddr, 16);
			__builtin_memcpy(seg->peer, &ip6.saddr, 16);
		}
		return off;
	}
	return TG_SEG_NOT_OURS;
}

static __always_inline int tg_parse_segment(struct __sk_buff *skb, struct tg_segment *seg, int dir)
{
	struct tcphdr th;
	__u32 l4_off, hdr_end;
	int off;

	/* every field defined on every path: clang may merge paths and copy
	 * values the error path never set, which the verifier refuses */
	__builtin_memset(seg, 0, sizeof(*seg));
	off = tg_parse_l3(skb, seg, dir);
	if (off < 0)
		return off;
	l4_off = off;
	if (seg->l4 == IPPROTO_UDP) {
		struct udphdr uh;

		if (bpf_skb_load_bytes(skb, l4_off, &uh, sizeof(uh)) < 0)
			return -1;
		hdr_end = l4_off + sizeof(uh);
		if (hdr_end > skb->len)
			return -1;
		seg->sport = bpf_ntohs(dir == TG_DIR_EGRESS ? uh.source : uh.dest);
		seg->pport = bpf_ntohs(dir == TG_DIR_EGRESS ? uh.dest : uh.source);
		seg->seq = 0;
		seg->payload_off = hdr_end;
		seg->payload_len = skb->len - hdr_end;
		return 0;
	}
	if (bpf_skb_load_bytes(skb, l4_off, &th, sizeof(th)) < 0)
		return -1;
	if (th.doff < 5)
		return -1;
	hdr_end = l4_off + th.doff * 4;
	if (hdr_end > skb->len)
		return -1;
	seg->sport = bpf_ntohs(dir == TG_DIR_EGRESS ? th.source : th.dest);
	seg->pport = bpf_ntohs(dir == TG_DIR_EGRESS ? th.dest : th.source);
	/* data on a SYN (TCP Fast Open) starts one past the SYN's own sequence number */
	seg->seq = bpf_ntohl(th.seq) + (th.syn ? 1 : 0);
	seg->payload_off = hdr_end;
	seg->payload_len = skb->len - hdr_end;
	return 0;
}

/*
 * A TCP segment without payload (SYN, pure ACK, FIN, RST): a flow still being
 * judged has nothing to judge in it, and half of a short connection's
 * segments are such. Told from the headers by direct packet access (no
 * helper call, no tg_segment): cheaper than tg_parse_segment(), whose
 * payload_len would be 0 for it. 0 for whatever it cannot tell this way (UDP,
 * IPv6 extension headers, headers not in the linear part, a header that does
 * not add up): tg_parse_segment() then decides, and judges what it must.
 */
static __always_inline int tg_tcp_bare(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct tcphdr *th;
	__u32 l3;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = data;

		if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_TCP || ip->ihl < 5)
			return 0;
		l3 = ip->ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = data;

		if ((void *)(ip6 + 1) > end || ip6->nexthdr != IPPROTO_TCP)
			return 0;
		l3 = sizeof(*ip6);
	} else {
		return 0;
	}
	th = data + l3;
	if ((void *)(th + 1) > end || th->doff < 5)
		return 0;
	return skb->len == l3 + th->doff * 4;
}

#endif /* TLSGUARD_PACKET_BPF_H */
