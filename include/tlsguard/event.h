/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Kernel → agent events, one ring buffer record each. */
#ifndef TLSGUARD_EVENT_H
#define TLSGUARD_EVENT_H

#include <linux/types.h>

#define TG_PAYLOAD_MAX		256	/* first payload bytes handed to the agent */

enum tg_event_type {
	TG_EV_PLAINTEXT = 1,		/* first payload of a tracked flow was not TLS */
	TG_EV_TLS = 2,			/* first payload was a TLS ClientHello */
	TG_EV_BLOCKED_CONNECT = 3,	/* connect() to a port the class does not allow */
};

enum tg_action {
	TG_ACT_FLAGGED = 0,
	TG_ACT_BLOCKED = 1,
	TG_ACT_ALLOWED = 2,
};

struct tg_event {
	__u64 ts_ns;			/* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__u64 cookie;
	__u64 cgroup_id;
	__u32 tgid;
	__u16 class_id;
	__u8 type;			/* enum tg_event_type */
	__u8 action;			/* enum tg_action */
	__u8 family;			/* AF_INET or AF_INET6 */
	__u8 pad[1];
	__u16 sport;			/* host byte order, 0 before the socket is bound */
	__u16 dport;
	__u16 payload_len;		/* bytes valid in payload[] */
	__u8 saddr[16];			/* v4-mapped for IPv4 */
	__u8 daddr[16];
	char comm[16];
	__u32 segment_len;		/* payload bytes in the classified segment */
	__u32 pad2;
	__u8 payload[TG_PAYLOAD_MAX];
};
_Static_assert(sizeof(struct tg_event) == 352, "tg_event layout");

#endif /* TLSGUARD_EVENT_H */
