/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-socket flow state, kept in sk_storage from connect() to close. Only
 * sockets that connect to a protected destination (or to a listed forward
 * proxy) get one, so every other packet pays exactly one failed sk_storage
 * lookup.
 */
#ifndef TLSGUARD_FLOW_H
#define TLSGUARD_FLOW_H

#include <linux/types.h>

#include "tlsguard/event.h"
#include "tlsguard/names.h"
#include "tlsguard/preface.h"
#include "tlsguard/smb.h"
#include "tlsguard/tls_hello.h"

#define TG_SRV_PREFACE_MAX	256	/* server bytes before its TLS that are looked at */
#define TG_SRV_NONE		0xffff	/* srv_tls_off: no ServerHello to judge */

enum tg_flow_state {
	TG_FLOW_PENDING = 0,		/* connected, client side not decided yet */
	TG_FLOW_TLS = 1,		/* compliant: pass, never parsed again */
	TG_FLOW_FLAGGED = 2,		/* violation in audit mode: pass, reported once */
	TG_FLOW_BLOCKED = 3,		/* violation in enforce mode: drop all payload */
	TG_FLOW_SERVER_HELLO = 4,	/* ClientHello allowed; the ServerHello (ingress) decides */
	TG_FLOW_UNTRACKED = 5,		/* proxy flow to a host no class names: pass */
	TG_FLOW_QUIC = 6,		/* compliant QUIC: every datagram must stay QUIC of this connection */
	TG_FLOW_RAW = 7,		/* a raw socket: its packets to protected destinations are judged */
	TG_FLOW_LITE = 8,		/* a UDP-Lite socket (connect() hooks never see it): its first
					 * datagram to a protected destination starts a UDP flow */
	TG_FLOW_PROXY_REQ = 9,		/* a keep-alive proxy connection: each request judged */
	TG_FLOW_SMB_SESSION = 10,	/* smb3: negotiated; the first message after session
					 * setup (egress) decides */
	TG_FLOW_DNS_WAIT = 11,		/* an address no map lists, connected while the agent
					 * learns an answer its cgroup just got (tlsguard/dns.h):
					 * payload waits, then the flow is classified */
};

/*
 * A tracked flow holds one slot of limits.max_tracked_flows (the tg_live_flows
 * gauge) from connect() until its socket is released (close()); the state
 * itself stays until the kernel frees the socket (see tg_on_release()).
 */
enum tg_flow_counted {
	TG_FLOW_NOT_COUNTED = 0,
	TG_FLOW_COUNTED = 1,		/* holds a slot */
	TG_FLOW_RELEASED = 2,		/* gave it back at sock_release: never twice */
};

enum tg_hs_flags {
	TG_HSF_STARTED = 1 << 0,	/* first_seq holds the client's first payload byte */
	TG_HSF_SRV_STARTED = 1 << 1,	/* srv_first_seq holds the server's */
	TG_HSF_SRV_PREFACE = 1 << 2,	/* srv_tls_off is known */
	TG_HSF_UDP = 1 << 3,		/* a UDP socket: QUIC or plaintext */
	TG_HSF_UNCONNECTED = 1 << 4,	/* tracked from sendmsg(): datagrams to daddr/dport are judged */
	TG_HSF_HS_STORED = 1 << 5,	/* the flow has handshake state in sk_storage (tg_hs_map) */
};

/*
 * What a QUIC flow's handshake established (RFC 9000 17.2): the version, the
 * client's first destination connection id and the server's source
 * connection id (learnt from its long-header packets), compared by length
 * and first 8 bytes.
 */
struct tg_quic_ids {
	__u32 version;
	__u8 dcid_len;			/* the client's first DCID */
	__u8 scid_len;			/* the server's SCID: the client's DCID from then on */
	__u8 have_scid;
	__u8 pad;
	__u8 dcid[8];
	__u8 scid[8];
};
_Static_assert(sizeof(struct tg_quic_ids) == 24, "tg_quic_ids layout");

/*
 * The handshake after the ClientHello (tg_flow.wflags). A TLS flow is
 * decided only once the server's hello and the client's next record after
 * it have been seen; until then both directions are walked record by record
 * (struct tg_rec_walk), from the end of each side's hello on.
 */
enum tg_walk_flags {
	TG_WF_CH_DONE = 1 << 0,		/* ClientHello judged: cw walks the client's records */
	TG_WF_SH_DONE = 1 << 1,		/* the (final) ServerHello judged: sw walks the server's */
	TG_WF_HRR = 1 << 2,		/* a HelloRetryRequest came: a second hello each way */
	TG_WF_ALERT = 1 << 3,		/* the server answered with an alert: never decided TLS */
	TG_WF_NO_WALK = 1 << 4,		/* TDS: records are wrapped in TDS packets, not walked */
	TG_WF_SUM_KEPT = 1 << 5,	/* the ClientHello's summary is in tg_hello_sums until the verdict */
};

/*
 * Bounds on what may pass undecided (bytes of stream offset): the client's
 * records before the server's hello (early data, the compatibility CCS) and
 * the server's records after its hello, before the client's next record
 * (certificates). Past them the flow is plaintext (reason "undecided").
 */
#define TG_PRE_SH_MAX		32768	/* client stream, prefaces and hello included */
#define TG_SRV_FLIGHT_MAX	65536	/* server stream from its TLS start */

/* Record headers after the hellos: type 20-23, version 3.1-3.4, 1..2^14+256 bytes. */
#define TG_REC_MAX_LEN		(16384 + 256)

enum tg_walk_mode {
	TG_WM_ANY = 0,			/* any valid record */
	TG_WM_HANDSHAKE_NEXT = 1,	/* after an HRR: the next record that is not a CCS is a hello */
};

/* One direction's record walk: where the next TLS record header starts. */
struct tg_rec_walk {
	__u32 next;			/* stream offset of the next record header */
	__u8 have;			/* bytes of it seen so far (a header split over segments) */
	__u8 hdr[5];
	__u8 mode;			/* enum tg_walk_mode */
	__u8 pad;
};
_Static_assert(sizeof(struct tg_rec_walk) == 12, "tg_rec_walk layout");

struct tg_flow {
	__u64 cookie;			/* socket cookie, matches SOCK_DESTROY */
	__u64 cgroup_id;		/* cgroup of the connecting task */
	__u64 connect_ns;		/* bpf_ktime_get_ns() at connect */
	__u32 tgid;			/* 0 when the kernel cannot tell */
	__u32 first_seq;		/* TCP seq of the client's first payload byte */
	__u8 daddr[16];			/* v4-mapped for IPv4 */
	__u16 dport;			/* host byte order */
	__u16 class_id;			/* 0 for a proxy flow until its CONNECT names a class */
	__u8 family;			/* AF_INET or AF_INET6 of the destination */
	__u8 mode;			/* enum tg_mode, copied from the class */
	__u8 state;			/* enum tg_flow_state */
	__u8 proto;			/* enum tg_l7, copied from the class */
	__u8 min_tls;			/* copied from the class */
	__u8 cls_flags;			/* enum tg_class_flags, copied from the class */
	__u8 hs_flags;			/* enum tg_hs_flags */
	__u8 pf_kind;			/* enum tg_preface_kind, once the client's preface is known */
	__u32 srv_first_seq;		/* TCP seq of the server's first payload byte */
	__u16 tls_off;			/* client stream offset where its TLS starts */
	__u16 srv_tls_off;		/* server stream offset where its TLS starts */
	__u8 counted;			/* enum tg_flow_counted: its slot in tg_live_flows */
	__u8 rule;			/* 1 + the policy override that set ->mode, 0: the class did */
	__u8 wflags;			/* enum tg_walk_flags */
	__u8 sh_minor;			/* ServerHello version 0x03XX as XX + 1; 0: none, or kept in the summary */
	char comm[16];
	union {
		struct {
			struct tg_rec_walk cw;	/* the client's records after its hello */
			struct tg_rec_walk sw;	/* the server's records after its hello */
		};
		struct tg_quic_ids quic;	/* UDP flows */
		struct {
			__u32 next;		/* stream offset where the next request starts */
			__u32 reqs;		/* requests judged so far */
		} px;				/* TG_FLOW_PROXY_REQ */
		struct {
			__u64 stamp;		/* the cgroup's tg_dns_pending stamp at connect */
		} dw;				/* TG_FLOW_DNS_WAIT */
	};
};
_Static_assert(sizeof(struct tg_flow) == 112, "tg_flow layout");

/*
 * Handshake state: the bytes of a hello being judged and the parsers'
 * results. Judged in a per-CPU scratch copy (bpf/lib/hsstate.bpf.h); only
 * when a segment ends with the hello still incomplete (or for protocols
 * whose machine spans segments) is it kept in sk_storage (tg_hs_map) until
 * the next segment, and deleted at the verdict. buf holds the first bytes
 * of one direction: the client's until its verdict, then the server's.
 */
struct tg_hs {
	__u16 have;			/* bytes of buf filled */
	__u8 dir;			/* 0: client bytes, 1: server bytes */
	__u8 tls_lazy;			/* 1: tls not loaded, the flow's kept summary stands for it */
	__u8 pad[4];
	/*
	 * Parser results live here, not on the stack: read back from a map
	 * value they are unknown numbers to the verifier, which keeps it from
	 * verifying the rest of the program once per loop exit.
	 */
	struct tg_preface pf;
	struct tg_hello_info hi;
	__u32 rec_off, rec_len;		/* the hello message within buf */
	struct tg_tls_recs recs;	/* its pieces, when records split it */
	__u32 name_len;			/* bytes of name that are the name */
	__u32 name_dot;			/* offset of the first dot in name, 0: none */
	__u32 name_bad;			/* name holds a byte no DNS name has */
	struct tg_tls_summary tls;	/* what the ClientHello said, for later events */
	struct tg_smb_info smb;		/* the smb3 machine's state (tlsguard/smb.h) */
	struct tg_host_scan hscan;	/* a proxy target's host being read (preface.h) */
	struct tg_http_req rq;		/* a proxy request being framed (preface.h) */
	__u8 name[TG_NAME_BUF];		/* a host name being hashed (zero padded) */
	__u8 srv[TG_SRV_PREFACE_MAX];	/* the server's first bytes (its preface) */
	__u8 buf[TG_HELLO_BUF];		/* TG_HELLO_MAX used; the rest is verifier room */
};

#endif /* TLSGUARD_FLOW_H */
