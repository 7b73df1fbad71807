/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * DNS answer learning, kernel side (bpf/dns.bpf.c) and agent side
 * (agent/policy/dnslearn.c). The kernel program only copies: every packet a watched
 * socket receives from port 53 (UDP datagrams, TCP segments) goes to the
 * agent as one or more records of this ring buffer; the agent parses the DNS
 * messages with libresolv, never the kernel. Its own BPF object, maps and
 * pins (a "dns" directory under the agent's pin directory), so it can be
 * loaded, replaced and tested apart from the verdict programs.
 */
#ifndef TLSGUARD_DNS_H
#define TLSGUARD_DNS_H

#include <linux/bpf.h>
#include <linux/types.h>

#define TG_DNS_PORT		53

/*
 * Where the kernel allows it the dns programs are not attached but run from
 * the verdict programs (bpf/tlsguard.bpf.c), out of slot 0 of these program
 * arrays: the verdict object's maps, pinned by a generation at the top of its
 * pin directory (and moved with it into retiring/ by an upgrade).
 */
#define TG_DNS_CHAIN_PIN_INGRESS	"tg_dns_chain_ingress"
#define TG_DNS_CHAIN_PIN_EGRESS		"tg_dns_chain_egress"
#define TG_DNS_CHUNK		4096	/* payload bytes per record; a power of 2 */
#define TG_DNS_TCP_MAX_CHUNKS	16	/* one TCP segment: up to 64 KiB in records */
#define TG_DNS_RINGBUF_BYTES	(256 << 10)
#define TG_DNS_MAX_LEARNED	65536	/* entries of the pinned learned map */
#define TG_DNS_NAME_MAX		128	/* names kept in the pinned learned map */

/*
 * Bump when a pinned map of the dns object changes its key, value or meaning:
 * an agent replaces the dns pins of another layout, carrying over the learned
 * addresses and queries in flight where their maps keep their form
 * (agent/policy/dnslearn.c). Set from outside by the test build's old-layout agent.
 */
#ifndef TG_DNS_PIN_LAYOUT_VERSION
#define TG_DNS_PIN_LAYOUT_VERSION	3	/* 2: answer verdict counters, the hold maps;
						   3: tg_dns_counters with room (TG_DNS_CNT_SLOTS) */
#endif

/*
 * The hold (docs/policy.md, "Learned names and the first connect"). The
 * agent learns asynchronously, microseconds to milliseconds after the
 * client has its answer; a client that connects at once would reach an
 * address the destination map does not list yet. So the dns program, before
 * the answer is delivered, reads its names (the question and every CNAME of
 * the answer section) and, when one of them may be a policy host, stamps
 * the receiving socket's cgroup in tg_dns_pending. A TCP connect() from that
 * cgroup to an address no map lists, while the agent has not caught up with
 * the stamp (tg_dns_caught_up), is tracked in the TG_FLOW_DNS_WAIT state:
 * its payload waits (dropped, TCP retransmits) until the agent has learned,
 * then the flow is classified and judged like any other. Enforce with
 * fail_mode closed only; at most TG_DNS_HOLD_MAX_NS.
 *
 * Most answers need no hold: when the names match, the program puts every
 * A/AAAA address of the answer into tg_dns_klearned (address → class) before
 * the answer is delivered, and connect() finds the class there until the
 * agent has written the address to the destination map (the agent then
 * removes the entry: from there on its decisions, exceptions, conflicts and
 * quotas, are the ones in force). Only what the kernel could not learn this
 * way (an answer it cannot read whole, a full map) stamps the cgroup.
 *
 * The maps are pinned in the agent's pin directory (not dns/): the verdict
 * programs read them too.
 */
/*
 * A query a watched socket sent (the dns program's egress side), until its
 * answer comes: the answer is learned only when it matches one.
 */
struct tg_dns_query_key {
	__u8 server[16];		/* v4-mapped for IPv4 */
	__u32 id;			/* the message id, or TG_DNS_QUERY_STREAM */
	__u16 client_port;		/* host byte order */
	__u16 pad;
	__u64 qname_hash;		/* SipHash of the question name (names.h); 0 for a stream */
};
_Static_assert(sizeof(struct tg_dns_query_key) == 32, "tg_dns_query_key layout");

/*
 * tg_dns_newest[0]: the time of the newest answer the dns program acted on,
 * a stamp in tg_dns_pending or an address in tg_dns_klearned. While
 * tg_dns_caught_up is at or past it, the agent has processed all of them: no
 * cgroup waits and the destination map holds the agent's verdict on every
 * kernel-learned address, so a connect() reads two arrays instead of the
 * cgroup id, tg_dns_pending and tg_dns_klearned. Only ever raised, under the
 * lock: two answers at once on two CPUs must not leave the older time.
 */
struct tg_dns_newest {
	struct bpf_spin_lock lock;
	__u32 pad;
	__u64 stamp;			/* bpf_ktime_get_ns(), as the stamps and ts_ns */
};

struct tg_dns_klearned_key {
	__u8 addr[16];			/* v4-mapped for IPv4 */
};

struct tg_dns_klearned_val {
	__u64 ts_ns;			/* bpf_ktime_get_ns() of the answer */
	__u16 class_id;			/* the class of the name that matched */
	__u8 pad[6];
};
_Static_assert(sizeof(struct tg_dns_klearned_val) == 16, "tg_dns_klearned_val layout");
#define TG_DNS_PENDING_MAX	8192		/* cgroups with a stamp (LRU) */
#define TG_DNS_KLEARNED_MAX	4096		/* addresses between an answer and the agent */
#define TG_DNS_QUERIES_MAX	16384		/* queries waiting for their answer */
#define TG_DNS_QUERY_STREAM	0xffffffffu	/* tg_dns_query_key.id of a TCP connection */
#define TG_DNS_QUERY_MAX_AGE_NS	(30ULL * 1000 * 1000 * 1000)	/* unanswered: the agent sweeps them */
#define TG_DNS_HOLD_MAX_NS	(2000ULL * 1000 * 1000)
/*
 * The agent publishes caught_up = (when its last read of the ring began) -
 * TG_DNS_CATCHUP_SLACK_NS: a record stamped before that moment may reach
 * the ring a little later than another CPU's (ktime is read before the ring
 * reservation), never this much later.
 */
#define TG_DNS_CATCHUP_SLACK_NS	(1000ULL * 1000)

enum tg_dns_tcp_flags {
	TG_DNS_TCP_SYN = 1 << 0,	/* stream starts at seq (the SYN's seq + 1) */
	TG_DNS_TCP_FIN = 1 << 1,
	TG_DNS_TCP_RST = 1 << 2,
};

enum tg_dns_rec_flags {
	/*
	 * The answer matches a query this socket sent (UDP: the server, the
	 * client port, the message id and the question name; TCP: a connection
	 * the socket opened to port 53). Only these are learned: a datagram from
	 * port 53 that nobody asked for (sent to a workload's open UDP port from
	 * outside, say) teaches nothing.
	 */
	TG_DNS_REC_SOLICITED = 1 << 0,
};

/*
 * One record of the ring buffer: a UDP datagram's payload, or a TCP
 * segment's payload from @seq on (a long segment becomes several records).
 * Variable length: this header, then @len bytes of payload.
 */
struct tg_dns_rec {
	__u64 ts_ns;			/* bpf_ktime_get_ns() */
	__u64 cookie;			/* socket cookie: identifies a TCP stream */
	__u32 seq;			/* TCP: sequence number of the first payload byte; UDP: 0 */
	__u32 wire_len;			/* payload bytes of the whole datagram/segment */
	__u16 len;			/* payload bytes following this header */
	__u8 proto;			/* IPPROTO_UDP or IPPROTO_TCP */
	__u8 tcp_flags;			/* enum tg_dns_tcp_flags */
	__u8 family;			/* AF_INET or AF_INET6 */
	__u8 flags;			/* enum tg_dns_rec_flags */
	__u16 sport;			/* host byte order: 53 */
	__u8 saddr[16];			/* the DNS server, v4-mapped for IPv4 */
	__u64 cgroup_id;		/* the receiving socket's cgroup (the learning quota) */
};
_Static_assert(sizeof(struct tg_dns_rec) == 56, "tg_dns_rec layout");

/* The per-CPU scratch record the program assembles before ring output. */
struct tg_dns_scratch {
	struct tg_dns_rec rec;
	__u8 data[TG_DNS_CHUNK];
};

/*
 * Per-CPU counters of the dns program. Every packet that gets past the
 * one-load fast path (socket not connected to port 53 and connected
 * elsewhere) ends in exactly one of the *_SKIP/ERR or COPIED buckets.
 * Append only: the index is part of the pinned map's meaning.
 */
enum tg_dns_counter {
	TG_DNS_CNT_COPIED = 0,		/* packets copied to the ring (all records) */
	TG_DNS_CNT_RECORDS,		/* ring records written */
	TG_DNS_CNT_SKIP_NOT_DNS,	/* unconnected socket, packet not from port 53 */
	TG_DNS_CNT_SKIP_L3,		/* not IPv4/IPv6, or IPv6 extension headers */
	TG_DNS_CNT_SKIP_L4,		/* not UDP/TCP */
	TG_DNS_CNT_SKIP_EMPTY,		/* TCP segment without payload, SYN, FIN or RST */
	TG_DNS_CNT_TRUNCATED,		/* datagram/segment longer than was copied */
	TG_DNS_CNT_ERR_HEADER,		/* header unreadable or inconsistent */
	TG_DNS_CNT_ERR_LOAD,		/* bpf_skb_load_bytes of the payload failed */
	TG_DNS_CNT_ERR_RINGBUF,		/* ring buffer full: record lost */
	/* every answer copied is also read for names, with one of these results */
	TG_DNS_CNT_ANS_POLICY,		/* a name of it is a policy host: its addresses learned */
	TG_DNS_CNT_ANS_OTHER,		/* every name read, none a policy host */
	TG_DNS_CNT_ANS_UNREAD,		/* not read whole (TCP, too long, odd format): stamped */
	TG_DNS_CNT_ERR_STAMP,		/* the stamp could not be written */
	TG_DNS_CNT_KLEARNED,		/* addresses put into tg_dns_klearned */
	TG_DNS_CNT_ERR_KLEARN,		/* ... that did not fit (map full): the answer stamped */
	TG_DNS_CNT_QUERIES,		/* queries recorded (egress) */
	TG_DNS_CNT_ERR_QUERY,		/* ... that did not fit: answers accepted unmatched a while */
	TG_DNS_CNT_UNSOLICITED,		/* answers no query of the socket asked for: not learned */
	TG_DNS_CNT_QUERY_SCRATCH_BUSY,	/* a query sent while every per-CPU query slot was in use
					   (nested sends): not recorded, as err_query */
	TG_DNS_CNT__MAX,
};

/*
 * tg_dns_counters' size: fixed, with room, so that a new counter does not
 * change the pinned map (a changed map is a new TG_DNS_PIN_LAYOUT_VERSION).
 */
#define TG_DNS_CNT_SLOTS	64
_Static_assert(TG_DNS_CNT__MAX <= TG_DNS_CNT_SLOTS, "dns counters fit tg_dns_counters");

/*
 * What the agent has learned, pinned so a restarted agent keeps protecting
 * the addresses its predecessor learned (the kernel's LPM entries outlive
 * the agent; without this the first sync after a restart would remove them).
 * Written by the agent only; the program does not touch it.
 */
struct tg_dns_learned_key {
	__u8 addr[16];			/* v4-mapped for IPv4 */
};

struct tg_dns_learned_val {
	__u64 expires_ns;		/* CLOCK_BOOTTIME */
	char qname[TG_DNS_NAME_MAX];	/* the name the client asked for */
	char matched[TG_DNS_NAME_MAX];	/* the name of the chain that matched the policy */
};
_Static_assert(sizeof(struct tg_dns_learned_val) == 264, "tg_dns_learned_val layout");

#endif /* TLSGUARD_DNS_H */
