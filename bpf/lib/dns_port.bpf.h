/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The one test of "may this packet be DNS?" before any of it is read, shared
 * by the verdict programs (which tail-call the DNS programs after it) and the
 * DNS programs themselves, so the two can never disagree.
 */
#ifndef TLSGUARD_DNS_PORT_BPF_H
#define TLSGUARD_DNS_PORT_BPF_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>

#include "tlsguard/dns.h"

/*
 * __sk_buff->remote_port is the socket's peer port in network byte order,
 * in the upper 16 bits on little-endian hosts: bpf_htonl(53) compares it
 * whatever the host's byte order (tests/bpf/test_dns.c checks this on real
 * sockets). 0: the socket is not connected, and only the packet's own port
 * can tell (the DNS programs look at it then).
 */
static __always_inline bool tg_skb_may_be_dns(const struct __sk_buff *skb)
{
	__u32 rport = skb->remote_port;

	return rport == 0 || rport == bpf_htonl(TG_DNS_PORT);
}

/* Not connected: the DNS programs must read the packet's port themselves. */
static __always_inline bool tg_skb_unconnected(const struct __sk_buff *skb)
{
	return skb->remote_port == 0;
}

#endif /* TLSGUARD_DNS_PORT_BPF_H */
