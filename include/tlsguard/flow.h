/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-socket flow state, kept in sk_storage from connect() to close. Only
 * sockets that connect to a protected destination get one, so every other
 * packet pays exactly one failed sk_storage lookup.
 */
#ifndef TLSGUARD_FLOW_H
#define TLSGUARD_FLOW_H

#include <linux/types.h>

#define TG_TLS_PREFIX_LEN	6	/* record header (5) + handshake type (1) */

enum tg_flow_state {
	TG_FLOW_PENDING = 0,		/* connected, no payload classified yet */
	TG_FLOW_TLS = 1,		/* first payload was a ClientHello: pass */
	TG_FLOW_FLAGGED = 2,		/* plaintext in audit mode: pass, reported once */
	TG_FLOW_BLOCKED = 3,		/* plaintext in enforce mode: drop all payload */
};

struct tg_flow {
	__u64 cookie;			/* socket cookie, matches SOCK_DESTROY */
	__u64 cgroup_id;		/* cgroup of the connecting task */
	__u64 connect_ns;		/* bpf_ktime_get_ns() at connect */
	__u32 tgid;			/* 0 when the kernel cannot tell */
	__u32 first_seq;		/* TCP seq of the first payload byte */
	__u8 daddr[16];			/* v4-mapped for IPv4 */
	__u16 dport;			/* host byte order */
	__u16 class_id;
	__u8 family;			/* AF_INET or AF_INET6 of the destination */
	__u8 mode;			/* enum tg_mode, copied from the class */
	__u8 state;			/* enum tg_flow_state */
	__u8 prefix_len;		/* bytes of prefix[] collected so far */
	__u8 prefix[16];		/* first payload bytes (6 used; room for a masked
					 * offset plus a masked length, for the verifier) */
	char comm[16];
};
_Static_assert(sizeof(struct tg_flow) == 88, "tg_flow layout");

#endif /* TLSGUARD_FLOW_H */
