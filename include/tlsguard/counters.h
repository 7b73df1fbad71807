/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-CPU counters: one slot for every verdict and every failure reason.
 * Nothing is dropped or skipped in the kernel without one of these moving.
 * Append only: the index is part of the pinned map's meaning.
 */
#ifndef TLSGUARD_COUNTERS_H
#define TLSGUARD_COUNTERS_H

enum tg_counter {
	TG_CNT_FLOWS_TRACKED = 0,	/* connects to protected destinations */
	TG_CNT_EXCEPTION_HIT,		/* connects matching an exception */
	TG_CNT_CONNECT_FLAGGED,		/* disallowed port, audit */
	TG_CNT_CONNECT_BLOCKED,		/* disallowed port, enforce (EPERM) */
	TG_CNT_VERDICT_TLS,		/* first payload was a ClientHello */
	TG_CNT_PLAINTEXT_FLAGGED,	/* plaintext first payload, audit */
	TG_CNT_PLAINTEXT_BLOCKED,	/* plaintext first payload, enforce */
	TG_CNT_SEGMENTS_DROPPED,	/* payload segments dropped on blocked flows */
	TG_CNT_PARTIAL_PREFIX,		/* segment shorter than the TLS prefix, waited */
	TG_CNT_OUT_OF_ORDER,		/* undecided flow segment past the prefix gap, dropped */
	TG_CNT_ERR_STORAGE,		/* sk_storage could not be created: flow untracked (refused or passed) */
	TG_CNT_ERR_RINGBUF,		/* event lost: ring buffer full */
	TG_CNT_ERR_HEADER,		/* IP/TCP header unreadable: passed */
	TG_CNT_ERR_NO_SOCK,		/* egress packet without a full socket */
	TG_CNT_WEAK_TLS_FLAGGED,	/* TLS below the class minimum, audit */
	TG_CNT_WEAK_TLS_BLOCKED,	/* TLS below the class minimum, enforce */
	TG_CNT_SNI_MISMATCH_FLAGGED,	/* SNI not one of the class's names (or missing), audit */
	TG_CNT_SNI_MISMATCH_BLOCKED,	/* the same, enforce */
	TG_CNT_HELLO_SPLIT,		/* ClientHello assembled from more than one segment */
	TG_CNT_HELLO_TRUNCATED,		/* ClientHello longer than the assembly buffer */
	TG_CNT_SERVER_HELLO,		/* ServerHello parsed (negotiated version known) */
	TG_CNT_SERVER_UNJUDGED,		/* server side could not be parsed: client verdict stands */
	TG_CNT_PROXY_UNTRACKED,		/* proxy flow to a host no class names: let go */
	TG_CNT_ERR_HS_STORAGE,		/* no handshake state could be made: dropped or passed */
	TG_CNT_QUIC_INITIAL,		/* UDP flow opened by a QUIC Initial */
	TG_CNT_FAIL_OPEN_PASSED,	/* enforce violation let through: fail_mode open, agent gone */
	TG_CNT_SKIPPED_CGROUP,		/* connect from a cgroup outside the workload selector */
	TG_CNT_UNTRACKED_FLOW_CAP,	/* limits.max_tracked_flows reached: flow untracked (refused or passed) */
	TG_CNT_UNTRACKED_REFUSED,	/* untracked (cap or storage), enforce + fail_mode closed: EPERM */
	TG_CNT_UNTRACKED_PASSED,	/* untracked (cap or storage), audit or fail_mode open: passed unjudged */
	TG_CNT_SMB_ENCRYPTED,		/* smb3 flow whose first message after session setup was encrypted */
	TG_CNT_OVERRIDE_HIT,		/* connect whose mode a policy override decided */
	TG_CNT_RECORDS_WALKED,		/* TLS record headers checked after a hello (both sides) */
	TG_CNT_HELLO_RETRY,		/* HelloRetryRequest: a second hello each way */
	TG_CNT_SERVER_ALERT,		/* the server answered the ClientHello with an alert */
	TG_CNT_SERVER_FIRST,		/* the server sent before the client's hello */
	TG_CNT_UNDECIDED_BOUND,		/* a flow passed its undecided bound: plaintext */
	TG_CNT_IPV6_EXTHDR,		/* IPv6 extension headers walked to the transport header */
	TG_CNT_IPV6_UNPARSEABLE,	/* IPv6 extension chain that could not be walked, tracked flow */
	TG_CNT_RAW_SOCKETS,		/* SOCK_RAW sockets marked at socket() in watched cgroups */
	TG_CNT_RAW_CHECKED,		/* raw sockets' packets to protected destinations (violations) */
	TG_CNT_SENDMSG_TRACKED,		/* unconnected UDP sendmsg() to a protected destination, tracked */
	TG_CNT_SENDMSG_SECOND_DEST,	/* ... to a second protected destination from one socket */
	TG_CNT_QUIC_LATER,		/* later datagrams of a QUIC flow checked */
	TG_CNT_PROXY_REQUESTS,		/* requests judged on keep-alive proxy connections */
	TG_CNT_PROXY_UNFRAMED,		/* proxy request that could not be read or framed: failed closed */
	TG_CNT_DNS_HELD,		/* TCP connects held for the agent's DNS learning (DNS_WAIT) */
	TG_CNT_DNS_HELD_SEGMENTS,	/* ... payload segments dropped while waiting (retransmitted) */
	TG_CNT_DNS_HELD_PROTECTED,	/* ... released into a class: judged from the first byte */
	TG_CNT_DNS_HELD_UNLISTED,	/* ... released without one: passed */
	TG_CNT_DNS_HOLD_TIMEOUT,	/* ... released after TG_DNS_HOLD_MAX_NS, agent not caught up */
	TG_CNT_DNS_KLEARNED_HIT,	/* connects whose class came from tg_dns_klearned (before the agent) */
	TG_CNT_HS_KEPT,			/* segments that left a hello incomplete: state kept in sk_storage */
	TG_CNT_HS_SCRATCH_BUSY,		/* no free per-CPU scratch slot (nested use): as err_hs_storage */
	TG_CNT_HELLO_SUMMARY_LOST,	/* a ClientHello summary gone before the verdict: event without it */
	TG_CNT_DNS_HELD_UNREADABLE,	/* a held flow's packet whose headers could not be read: dropped */
	TG_CNT_BLOCKED_UNREADABLE,	/* a blocked flow's packet whose headers could not be read: dropped */
	TG_CNT_QUIC_UNREADABLE,		/* a UDP flow's datagram whose first bytes could not be read: dropped */
	TG_CNT__MAX,
};

/*
 * tg_counters' size: fixed, with room, so that a new counter does not change
 * the pinned map (a changed map is a new TG_PIN_LAYOUT_VERSION).
 */
#define TG_CNT_SLOTS	128
_Static_assert(TG_CNT__MAX <= TG_CNT_SLOTS, "kernel counters fit tg_counters");

/*
 * Per-class verdict counters: slot class_id * TG_CS_STRIDE + stat of a
 * per-CPU array. Counted once per flow (at connect or at the verdict), never
 * per packet.
 */
enum tg_class_stat {
	TG_CS_TRACKED = 0,
	TG_CS_TLS,
	TG_CS_PLAINTEXT_FLAGGED,
	TG_CS_PLAINTEXT_BLOCKED,
	TG_CS_CONNECT_FLAGGED,
	TG_CS_CONNECT_BLOCKED,
	TG_CS_WEAK_TLS,			/* flagged or blocked */
	TG_CS_SNI_MISMATCH,		/* flagged or blocked */
	TG_CS__MAX,
};

#define TG_CS_STRIDE 8
_Static_assert(TG_CS__MAX <= TG_CS_STRIDE, "class stats fit their stride");

#endif /* TLSGUARD_COUNTERS_H */
