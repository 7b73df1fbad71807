/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Kernel → agent events, one ring buffer record each. */
#ifndef TLSGUARD_EVENT_H
#define TLSGUARD_EVENT_H

#include <linux/types.h>

#define TG_PAYLOAD_MAX		256	/* first payload bytes handed to the agent */

enum tg_event_type {
	TG_EV_PLAINTEXT = 1,		/* first payload of a tracked flow was not TLS */
	TG_EV_TLS = 2,			/* compliant TLS flow (events.log_tls_flows) */
	TG_EV_BLOCKED_CONNECT = 3,	/* connect() refused or flagged: see enum tg_connect_reason */
	TG_EV_WEAK_TLS = 4,		/* a hello below the class's min_tls_version */
	TG_EV_SNI_MISMATCH = 5,		/* SNI not one of the class's names, or missing */
};

enum tg_tls_side {
	TG_SIDE_NONE = 0,
	TG_SIDE_CLIENT = 1,		/* the workload's bytes (weak_tls: the ClientHello) */
	TG_SIDE_SERVER = 2,		/* the peer's bytes (weak_tls: the ServerHello) */
};

/*
 * Why a plaintext event was written (tg_event.reason). With anything but
 * TG_PR_FIRST_BYTES the event's payload holds the offending bytes of the
 * segment, not the flow's first bytes.
 */
enum tg_plain_reason {
	TG_PR_FIRST_BYTES = 0,		/* the flow's first bytes were not its protocol's way to TLS */
	TG_PR_AFTER_HELLO = 1,		/* after a hello, bytes that are not TLS records */
	TG_PR_NOT_SERVER_HELLO = 2,	/* the server's first bytes were not a ServerHello */
	TG_PR_SERVER_FIRST = 3,		/* the server sent before the client's hello */
	TG_PR_UNDECIDED = 4,		/* more passed undecided than the bounds allow */
	TG_PR_NOT_QUIC = 5,		/* a datagram of a QUIC flow that is not QUIC */
	TG_PR_UNPARSEABLE = 6,		/* headers that cannot be parsed (IPv6 extension chain) */
	TG_PR_RAW_SOCKET = 7,		/* a raw socket's TCP/UDP packet to a protected destination */
};

enum tg_sni_result {
	TG_SNI_UNCHECKED = 0,		/* the class names no hosts */
	TG_SNI_MATCH = 1,
	TG_SNI_MISMATCH = 2,		/* a name the class does not list */
	TG_SNI_MISSING = 3,		/* no (usable) server_name at all */
};

/*
 * What the kernel learnt from the handshake. The strings are copied raw;
 * the agent checks and formats them. SMB flows (l7 TG_L7_SMB3) use the
 * version fields for SMB: offered is the highest dialect the client
 * offered, negotiated the server's, hello_flags the 3.1.1 cipher id,
 * legacy the SMB2 command sent in the clear (0xffff: none) and finding
 * what made the flow plaintext.
 */
#define TG_ALPN_MAX	64		/* ALPN protocol_name_list bytes kept */
#define TG_TUNNEL_MAX	64		/* CONNECT host bytes kept */

struct tg_tls_summary {
	__u16 offered;			/* highest version the client offered (0x0303), 0 unknown */
	__u16 legacy;			/* ClientHello legacy_version */
	__u16 negotiated;		/* ServerHello's version, 0 before/unknown */
	__u16 min;			/* the class minimum (0x0303), 0 none */
	__u8 side;			/* enum tg_tls_side: which side was weak */
	__u8 hello_flags;		/* enum tg_hello_flags of the ClientHello */
	__u8 sni_len;
	__u8 alpn_len;
	__u8 sni_result;		/* enum tg_sni_result */
	__u8 l7;			/* enum tg_l7 of the flow */
	__u8 pf_kind;			/* enum tg_preface_kind of the client's preface */
	__u8 finding;			/* smb3: enum tg_smb_finding (tlsguard/smb.h) */
	__u16 tls_off;			/* stream offset where TLS was due (after a preface) */
	__u16 tunnel_port;		/* CONNECT port, proxy flows */
	char sni[256];
	__u8 alpn[TG_ALPN_MAX];
	char tunnel[TG_TUNNEL_MAX];	/* the host a proxy flow asked for (cut to fit) */
};
_Static_assert(sizeof(struct tg_tls_summary) == 404, "tg_tls_summary layout");

/* Why a blocked_connect event was written (tg_event.reason). */
enum tg_connect_reason {
	TG_CR_PORT = 0,			/* a port the class does not allow */
	TG_CR_FLOW_CAP = 1,		/* limits.max_tracked_flows reached: the flow cannot be judged */
	TG_CR_STORAGE = 2,		/* no flow state could be allocated: the flow cannot be judged */
	TG_CR_PROXY_TARGET = 3,		/* a proxy request whose target cannot be read or framed */
	TG_CR_UDP_SECOND_DEST = 4,	/* unconnected UDP: a second protected destination from one socket */
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
	__u8 reason;			/* blocked_connect: enum tg_connect_reason; plaintext: enum tg_plain_reason */
	__u16 sport;			/* host byte order, 0 before the socket is bound */
	__u16 dport;
	__u16 payload_len;		/* bytes valid in payload[] */
	__u8 saddr[16];			/* v4-mapped for IPv4 */
	__u8 daddr[16];
	char comm[16];
	__u32 segment_len;		/* payload bytes in the classified segment */
	__u8 rule;			/* 1 + the policy override that decided the mode, 0: the class */
	__u8 pad2[3];
	__u8 payload[TG_PAYLOAD_MAX];	/* the flow's first bytes (client side) */
	struct tg_tls_summary tls;
	__u32 pad3;
};
_Static_assert(sizeof(struct tg_event) == 760, "tg_event layout");

/*
 * Bump when struct tg_event or the meaning of a field changes. During an
 * upgrade the new agent reads the old generation's ring buffer only when
 * both say the same (handoff.h).
 */
#define TG_EVENT_ABI		2	/* 2: plaintext reason and side */

#endif /* TLSGUARD_EVENT_H */
