// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * DNS answers watched workloads receive, copied to the agent (which parses
 * them and learns which addresses the policy's host names stand for).
 *
 * Observe only: every path returns 1, nothing is ever dropped.
 *
 * Each answer is also read for its names before it is delivered (the
 * question, and the target of every CNAME in the answer section, pointers
 * followed): when one of them is a policy host (tg_names, the keyed hashes
 * SNI binding uses), the receiving cgroup is stamped in tg_dns_pending, so
 * that a connect() racing the agent's learning is held until the agent has
 * caught up (tlsguard/dns.h, connect.bpf.h). What cannot be read whole (TCP
 * segments, a datagram past TG_DNS_CHUNK, more than DNS_MAX_RRS answers, a
 * name past the bounds) is stamped too: a hold too many costs a retransmit,
 * a hold too few lets plaintext through.
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
#include <stdbool.h>
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
#include "tlsguard/names.h"
#include "tlsguard/opaque.h"
#include "lib/common.bpf.h"
#include "lib/dns_port.bpf.h"
#include "lib/shared_maps.bpf.h"

#define OBSERVE 1

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TG_DNS_RINGBUF_BYTES);
} tg_dns_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TG_DNS_CNT_SLOTS);
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

#define DNS_HDR_LEN	12
#define DNS_MAX_RRS	16		/* answer records read for CNAMEs */
#define DNS_MAX_JUMPS	8		/* compression pointers followed in one name */
#define DNS_MAX_DOTS	16		/* suffixes tried against "*.suffix" hosts */
#define DNS_TYPE_CNAME	5
#define DNS_TYPE_DNAME	39
#define DNS_MASK	(TG_DNS_CHUNK - 1)
/*
 * Byte @i of the copied message. Opaque, then masked: clang would drop the
 * mask where it can prove the index small, and the verifier cannot.
 */
#define DNS_BYTE(s, i)	((s)->data[TG_OPAQUE((__u32)(i)) & DNS_MASK])
/* Global functions: each verified once, on its own, not once per call site. */
#define DNS_GLOBAL	__attribute__((noinline))

enum dns_names_result {
	DNS_NAMES_OTHER = 0,		/* every name read, none a policy host */
	DNS_NAMES_POLICY,		/* a name that is a policy host */
	DNS_NAMES_UNREAD,		/* not read whole */
};

/* One name being read: dotted, lower case, zero padded for tg_siphash(). */
struct dns_name_buf {
	__u8 name[2 * TG_NAME_BUF];	/* room for a suffix hashed in place (see dns_hash_at) */
	__u32 len;
	__u32 ndots;
	__u32 dots[DNS_MAX_DOTS];	/* where each '.' is, first first */
	__u32 pos, out, end, jumps;	/* dns_read_name()'s walk */
	__u32 class_id;			/* DNS_NAMES_POLICY: the class of the name that matched */
	__u32 an_off, ancount;		/* where the answer section starts, its records */
	struct tg_dns_query_key qkey;	/* the query a message asks or answers */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_name_buf);
} tg_dns_namebuf SEC(".maps");

/* The L4 facts the copy needs. */
struct dns_pkt {
	__u32 payload_off;		/* from the network header */
	__u32 payload_len;
	__u32 seq;
	__u16 sport;
	__u16 client_port;		/* the workload's end, host byte order */
	__u8 proto;
	__u8 tcp_flags;
	__u8 family;
	__u8 saddr[16];			/* the DNS server's address (source in, destination out) */
};

/* Queries sent, until answered (tlsguard/dns.h); the agent sweeps the unanswered. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TG_DNS_QUERIES_MAX);
	__type(key, struct tg_dns_query_key);
	__type(value, __u64);
} tg_dns_queries SEC(".maps");

/*
 * [0]: when a query last did not fit tg_dns_queries. For a while after,
 * answers that match none are learned all the same: unable to tell, the
 * answer that adds protection is the safer mistake.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tg_dns_query_overflow SEC(".maps");

/*
 * The query being read (egress): its own scratch, apart from the answers',
 * in DNS_QSLOTS slots per CPU. Egress is not always one user at a time per
 * CPU: a query sent from softirq, or on a preemptible kernel another task
 * (cgroup_skb programs run with migration disabled, not always preemption),
 * can interrupt one being read and would rewrite its key; that query's
 * answer then looks unasked for and is not learned. A slot's user count
 * (tg_dns_qslot_users) says whether it is taken, as for the handshake
 * scratch (lib/hsstate.bpf.h). Not pinned: a new program starts them anew.
 */
#define DNS_QSLOTS	2

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DNS_QSLOTS);
	__type(key, __u32);
	__type(value, struct tg_dns_scratch);
} tg_dns_qscratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DNS_QSLOTS);
	__type(key, __u32);
	__type(value, struct dns_name_buf);
} tg_dns_qnamebuf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DNS_QSLOTS);
	__type(key, __u32);
	__type(value, __u64);
} tg_dns_qslot_users SEC(".maps");

static __always_inline void dns_count_n(enum tg_dns_counter c, __u64 n)
{
	tg_slot_add(&tg_dns_counters, c, n);
}

static __always_inline void dns_count(enum tg_dns_counter c)
{
	dns_count_n(c, 1);
}

/* One exit for every skip and error: count why, let the packet through. */
static __always_inline int dns_skip(enum tg_dns_counter why)
{
	dns_count(why);
	return OBSERVE;
}

/* IP header → L4 offset and protocol; the counter to bump when it is not one we read. */
static __always_inline int dns_parse_l3(struct __sk_buff *skb, struct dns_pkt *p, __u32 *l4_off,
					bool egress)
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
		__builtin_memcpy(&p->saddr[12], egress ? &ip.daddr : &ip.saddr, 4);
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
		__builtin_memcpy(p->saddr, egress ? &ip6.daddr : &ip6.saddr, 16);
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
static __always_inline int dns_port_not_53(struct __sk_buff *skb, int dst)
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
	if ((void *)(ports + 2) > end)
		return 0;
	return ports[dst ? 1 : 0] != bpf_htons(TG_DNS_PORT);
}

/*
 * Returns 0 with @p filled for a packet from port 53 (@egress: to port 53),
 * or -counter to skip it.
 */
static __always_inline int dns_parse(struct __sk_buff *skb, struct dns_pkt *p, bool egress)
{
	__u32 l4_off, end;
	int err = dns_parse_l3(skb, p, &l4_off, egress);

	if (err)
		return err;
	if (p->proto == IPPROTO_UDP) {
		struct udphdr uh;

		if (bpf_skb_load_bytes(skb, l4_off, &uh, sizeof(uh)) < 0)
			return -TG_DNS_CNT_ERR_HEADER;
		if ((egress ? uh.dest : uh.source) != bpf_htons(TG_DNS_PORT))
			return -TG_DNS_CNT_SKIP_NOT_DNS;
		p->client_port = bpf_ntohs(egress ? uh.source : uh.dest);
		p->payload_off = l4_off + sizeof(uh);
		p->seq = 0;
		p->tcp_flags = 0;
	} else if (p->proto == IPPROTO_TCP) {
		struct tcphdr th;

		if (bpf_skb_load_bytes(skb, l4_off, &th, sizeof(th)) < 0 || th.doff < 5)
			return -TG_DNS_CNT_ERR_HEADER;
		if ((egress ? th.dest : th.source) != bpf_htons(TG_DNS_PORT))
			return -TG_DNS_CNT_SKIP_NOT_DNS;
		p->client_port = bpf_ntohs(egress ? th.source : th.dest);
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

/* The record in @s (dns_load()) to the ring. */
static __always_inline int dns_output(struct tg_dns_scratch *s, bool wake)
{
	__u32 n = s->rec.len & (TG_DNS_CHUNK * 2 - 1);

	if (n > TG_DNS_CHUNK)
		return -TG_DNS_CNT_ERR_LOAD;
	/*
	 * Wake the agent only when a connect may be waiting on it (the answer
	 * stamped its cgroup): a wakeup is an irq_work, ~14 us on a VM, more than
	 * all the rest of an answer's cost. The others, already learned here or
	 * teaching nothing, the agent reads within its lazy interval (dnslearn.c)
	 * or with the next wakeup.
	 */
	/*
	 * ... but never let a burst fill the ring behind a sleeping agent: a
	 * wakeup each time the unread data crosses another eighth of the ring
	 */
	if (!wake) {
		__u64 avail = bpf_ringbuf_query(&tg_dns_ring, BPF_RB_AVAIL_DATA);
		__u64 step = TG_DNS_RINGBUF_BYTES / 8;

		wake = avail / step != (avail + sizeof(s->rec) + n + 8) / step;
	}
	if (bpf_ringbuf_output(&tg_dns_ring, s, sizeof(s->rec) + n,
			       wake ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP) < 0)
		return -TG_DNS_CNT_ERR_RINGBUF;
	dns_count(TG_DNS_CNT_RECORDS);
	return 0;
}

/* A record into @s: header + @n payload bytes from @off (n <= TG_DNS_CHUNK). */
static __always_inline int dns_load(struct __sk_buff *skb, struct tg_dns_scratch *s,
				    const struct dns_pkt *p, __u64 cookie, __u32 off, __u32 n,
				    __u32 seq)
{
	s->rec.ts_ns = bpf_ktime_get_ns();
	s->rec.cookie = cookie;
	s->rec.seq = seq;
	s->rec.wire_len = p->payload_len;
	s->rec.proto = p->proto;
	s->rec.tcp_flags = p->tcp_flags;
	s->rec.family = p->family;
	s->rec.flags = 0;
	s->rec.sport = p->sport;
	s->rec.cgroup_id = bpf_skb_cgroup_id(skb);
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
	return 0;
}

/* Big-endian 16 bits of the copied message at @off (the caller checked off + 1 < n). */
static __always_inline __u32 dns_be16(const struct tg_dns_scratch *s, __u32 off)
{
	return (__u32)DNS_BYTE(s, off) << 8 | DNS_BYTE(s, off + 1);
}

/*
 * Read the name at @off of the message (s->data[0 .. n)) into @w, following
 * compression pointers. Returns the offset just past the name where it
 * starts (its pointer, or its terminating zero), or -1 when it cannot be
 * read within the bounds (then the answer counts as unread: stamped).
 *
 * A label at a time, its bytes eight at a time (SWAR, lower-cased as
 * tg_name_copy() does), the walk's position in @w rather than in registers:
 * read back from memory each step, it is an unknown number to the verifier,
 * which then walks DNS_NAME_STEPS steps once instead of every byte offset.
 */
#define DNS_NAME_STEPS	72		/* labels (a 255-byte name has at most 127) + pointers */
#define DNS_SWAR_HIGH	0x8080808080808080ULL

DNS_GLOBAL int dns_read_name(const struct tg_dns_scratch *s, struct dns_name_buf *w,
			     __u32 off, __u32 n)
{
	__u32 i, k;

	if (!s || !w || n > TG_DNS_CHUNK)
		return -1;
	w->ndots = 0;
	w->pos = off;
	w->out = 0;
	w->end = 0;
	w->jumps = 0;
	for (i = 0; i < DNS_NAME_STEPS; i++) {
		__u32 pos = TG_READ_ONCE(w->pos), out = TG_READ_ONCE(w->out);
		__u32 c, base;

		if (pos >= n)
			return -1;
		c = DNS_BYTE(s, pos);
		if (c == 0) {
			out &= 255;
			w->len = out;
			/* tg_siphash() reads the word after the name whole: zeros there */
			*(__u64 *)&w->name[out] = 0;
			return w->end ? w->end : pos + 1;
		}
		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= n || ++w->jumps > DNS_MAX_JUMPS)
				return -1;
			if (!w->end)
				w->end = pos + 2;
			w->pos = (c & 0x3f) << 8 | DNS_BYTE(s, pos + 1);
			continue;
		}
		if (c & 0xc0)
			return -1;	/* 0x40/0x80: extended label types, not host names */
		/* the label's bytes, read whole words: they must lie inside the copy */
		if (pos + 1 + c > n || pos + 1 + 64 > TG_DNS_CHUNK || out + 1 + c > 255)
			return -1;
		if (out) {
			if (w->ndots < DNS_MAX_DOTS)
				w->dots[w->ndots & (DNS_MAX_DOTS - 1)] = out;
			w->ndots++;
			w->name[out & 255] = '.';
			out++;
		}
		base = TG_OPAQUE(pos + 1) & DNS_MASK;
		if (base > TG_DNS_CHUNK - 64)
			return -1;
		out &= 255;
		for (k = 0; k < 8; k++) {
			__u64 x = *(__u64 *)&s->data[base + k * 8], upper;

			upper = (x + 0x3f3f3f3f3f3f3f3fULL) & ~(x + 0x2525252525252525ULL) &
				DNS_SWAR_HIGH;
			*(__u64 *)&w->name[out + k * 8] = x | upper >> 2;
		}
		w->out = out + c;
		w->pos = pos + 1 + c;
	}
	return -1;
}

/* Past the name at @off without reading it: the offset after it, or -1. */
DNS_GLOBAL int dns_skip_name(const struct tg_dns_scratch *s, __u32 off, __u32 n)
{
	__u32 pos = off, i;

	if (!s)
		return -1;
	for (i = 0; i < 128; i++) {
		__u8 c;

		if (pos >= n || pos >= TG_DNS_CHUNK)
			return -1;
		c = DNS_BYTE(s, pos);
		if (c == 0)
			return pos + 1;
		if ((c & 0xc0) == 0xc0)
			return pos + 2;
		if (c & 0xc0)
			return -1;
		pos += c + 1;
	}
	return -1;
}

/* SipHash of w->name[at .. len): the whole name (at 0) or one of its ".suffix"es. */
DNS_GLOBAL __u64 dns_hash_at(struct dns_name_buf *w, const struct tg_sipkey *sk, __u32 at)
{
	__u32 len;

	if (!w || !sk)
		return 0;
	at &= 255;
	len = w->len & 255;
	if (at > len)
		return 0;
	return tg_siphash(sk, w->name + at, len - at);
}

/*
 * Is the name in @w a policy host, exactly or under a "*.suffix" (names.h)?
 * 1 with w->class_id set (the first class naming it, as for CONNECT), or 0.
 * The longest suffix is tried first, as the agent's matching prefers it.
 */
DNS_GLOBAL int dns_name_is_policy(struct dns_name_buf *w)
{
	struct tg_name_key key = { .class_id = TG_NAME_ANY_CLASS };
	const struct tg_name_value *val;
	const struct tg_sipkey *sk;
	__u32 zero = 0, i;

	if (!w)
		return 0;
	sk = bpf_map_lookup_elem(&tg_sipkey, &zero);
	if (!sk)
		return 0;
	key.hash = dns_hash_at(w, sk, 0);
	val = bpf_map_lookup_elem(&tg_names, &key);
	key.flags = TG_NAME_WILDCARD;
	for (i = 0; i < DNS_MAX_DOTS && !val; i++) {
		if (i >= w->ndots)
			break;
		key.hash = dns_hash_at(w, sk, w->dots[i & (DNS_MAX_DOTS - 1)]);
		val = bpf_map_lookup_elem(&tg_names, &key);
	}
	if (!val || !val->class_id)
		return 0;
	w->class_id = val->class_id;
	return 1;
}

/* The answer section from @off: a CNAME whose target is a policy host? */
DNS_GLOBAL int dns_judge_answers(const struct tg_dns_scratch *s, struct dns_name_buf *w,
					__u32 off, __u32 n, __u32 ancount)
{
	__u32 i, type, rdlen;
	int next;

	if (!s || !w)
		return DNS_NAMES_UNREAD;
	if (ancount > DNS_MAX_RRS)
		return DNS_NAMES_UNREAD;
	for (i = 0; i < DNS_MAX_RRS; i++) {
		if (i >= ancount)
			break;
		next = dns_skip_name(s, off, n);
		if (next < 0 || (__u32)next + 10 > n)
			return DNS_NAMES_UNREAD;
		off = next;
		type = dns_be16(s, off);
		rdlen = dns_be16(s, off + 8);
		off += 10;
		if (off + rdlen > n)
			return DNS_NAMES_UNREAD;
		if (type == DNS_TYPE_DNAME)
			return DNS_NAMES_UNREAD;	/* a rewritten suffix: not followed here */
		if (type == DNS_TYPE_CNAME) {
			if (dns_read_name(s, w, off, n) < 0)
				return DNS_NAMES_UNREAD;
			if (dns_name_is_policy(w))
				return DNS_NAMES_POLICY;
		}
		off += rdlen;
	}
	return DNS_NAMES_OTHER;
}

/* The names of the DNS message in s->data[0 .. n): enum dns_names_result. */
DNS_GLOBAL int dns_judge_names(const struct tg_dns_scratch *s, __u32 n)
{
	struct dns_name_buf *w;
	__u32 zero = 0;
	int off;

	if (!s)
		return DNS_NAMES_UNREAD;
	if (n < DNS_HDR_LEN || n > TG_DNS_CHUNK)
		return DNS_NAMES_UNREAD;
	if (!(s->data[2] & 0x80))
		return DNS_NAMES_OTHER;		/* a query, not an answer: nothing to learn */
	if (dns_be16(s, 4) != 1)
		return DNS_NAMES_UNREAD;	/* resolvers ask one question */
	w = bpf_map_lookup_elem(&tg_dns_namebuf, &zero);
	if (!w)
		return DNS_NAMES_UNREAD;
	off = dns_read_name(s, w, DNS_HDR_LEN, n);
	if (off < 0)
		return DNS_NAMES_UNREAD;
	w->an_off = off + 4;			/* past QTYPE and QCLASS */
	w->ancount = dns_be16(s, 6);
	if (dns_name_is_policy(w))
		return DNS_NAMES_POLICY;
	return dns_judge_answers(s, w, off + 4, n, w->ancount);
}

#define DNS_TYPE_A	1
#define DNS_TYPE_AAAA	28

/* The address of an A/AAAA record's rdata at @off (the caller checked it lies within n). */
static __always_inline int dns_addr_at(const struct tg_dns_scratch *s, __u32 off, __u32 rdlen,
				       struct tg_dns_klearned_key *key)
{
	__u32 at = TG_OPAQUE(off) & DNS_MASK;

	if (at > TG_DNS_CHUNK - 16)
		return -1;
	if (rdlen == 4) {
		__builtin_memset(key->addr, 0, 10);
		key->addr[10] = 0xff;
		key->addr[11] = 0xff;
		__builtin_memcpy(&key->addr[12], &s->data[at], 4);
	} else {
		__builtin_memcpy(key->addr, &s->data[at], 16);
	}
	return 0;
}

/*
 * Every A/AAAA address of an answer whose names matched (w->class_id) into
 * tg_dns_klearned, so that a connect() made before the agent has learned
 * finds its class. Returns how many, or -1 when one did not fit or could not
 * be read (the answer is then stamped: its connects wait for the agent).
 */
DNS_GLOBAL int dns_learn_addrs(const struct tg_dns_scratch *s, struct dns_name_buf *w, __u32 n)
{
	struct tg_dns_klearned_key key;
	struct tg_dns_klearned_val val = {};
	__u32 i, off, type, rdlen, ancount;
	int next, learned = 0;

	if (!s || !w || n > TG_DNS_CHUNK)
		return -1;
	off = w->an_off;
	ancount = w->ancount;
	val.ts_ns = s->rec.ts_ns;
	val.class_id = w->class_id;
	if (ancount > DNS_MAX_RRS)
		return -1;
	for (i = 0; i < DNS_MAX_RRS; i++) {
		if (i >= ancount)
			break;
		next = dns_skip_name(s, off, n);
		if (next < 0 || (__u32)next + 10 > n)
			return -1;
		off = next;
		type = dns_be16(s, off);
		rdlen = dns_be16(s, off + 8);
		off += 10;
		if (off + rdlen > n)
			return -1;
		if ((type == DNS_TYPE_A && rdlen == 4) || (type == DNS_TYPE_AAAA && rdlen == 16)) {
			if (dns_addr_at(s, off, rdlen, &key) < 0 ||
			    bpf_map_update_elem(&tg_dns_klearned, &key, &val, BPF_ANY))
				return -1;
			learned++;
		}
		off += rdlen;
	}
	return learned;
}

/*
 * Raise tg_dns_newest to @ts, never lower it: another CPU may have acted on a
 * later answer. Before a stamp or a kernel-learned address is written: while
 * tg_dns_caught_up is at or past it, a connect() reads neither.
 */
static __always_inline void dns_newest_raise(__u64 ts)
{
	struct tg_dns_newest *n;
	__u32 zero = 0;

	n = bpf_map_lookup_elem(&tg_dns_newest, &zero);
	if (!n)
		return;
	bpf_spin_lock(&n->lock);
	if (n->stamp < ts)
		n->stamp = ts;
	bpf_spin_unlock(&n->lock);
}

/* dns_learn_addrs(), tg_dns_newest raised first to the answer's time (its entries' ts_ns). */
static __always_inline int dns_learn_answer(const struct tg_dns_scratch *s, struct dns_name_buf *w,
					    __u32 n)
{
	dns_newest_raise(s->rec.ts_ns);
	return dns_learn_addrs(s, w, n);
}

/* Stamp the receiving cgroup: a connect() from it waits for the agent (tlsguard/dns.h). */
static __always_inline void dns_stamp(struct __sk_buff *skb, __u64 ts, enum tg_dns_counter why)
{
	__u64 cgid = bpf_skb_cgroup_id(skb);

	dns_count(why);
	dns_newest_raise(ts);	/* before the answer is delivered, as the stamp */
	if (bpf_map_update_elem(&tg_dns_pending, &cgid, &ts, BPF_ANY))
		dns_count(TG_DNS_CNT_ERR_STAMP);
}

/*
 * A datagram, before its record goes out: read its names. A policy host's
 * addresses are learned here and now; what cannot be read whole, or learned,
 * stamps the cgroup. True when it stamped: the agent is needed now.
 */
static __always_inline bool dns_judge_datagram(struct __sk_buff *skb, const struct dns_pkt *p)
{
	struct tg_dns_scratch *s;
	struct dns_name_buf *w;
	__u32 key = 0;
	int r, learned;

	s = bpf_map_lookup_elem(&tg_dns_scratch, &key);
	w = bpf_map_lookup_elem(&tg_dns_namebuf, &key);
	if (!s || !w)
		return true;
	if (p->payload_len > TG_DNS_CHUNK) {
		dns_stamp(skb, s->rec.ts_ns, TG_DNS_CNT_ANS_UNREAD);
		return true;
	}
	r = dns_judge_names(s, p->payload_len);
	if (r == DNS_NAMES_OTHER) {
		dns_count(TG_DNS_CNT_ANS_OTHER);
		return false;
	}
	if (r != DNS_NAMES_POLICY) {
		dns_stamp(skb, s->rec.ts_ns, TG_DNS_CNT_ANS_UNREAD);
		return true;
	}
	dns_count(TG_DNS_CNT_ANS_POLICY);
	learned = dns_learn_answer(s, w, p->payload_len);
	if (learned < 0) {
		dns_stamp(skb, s->rec.ts_ns, TG_DNS_CNT_ERR_KLEARN);
		return true;
	}
	dns_count_n(TG_DNS_CNT_KLEARNED, learned);
	return false;
}

/*
 * w->qkey's id and question-name hash from the message in s->data[0 .. n),
 * a query (@answer 0) or an answer (1): 0, or -1 when it is not one with a
 * question that can be read.
 */
DNS_GLOBAL int dns_query_fill(const struct tg_dns_scratch *s, struct dns_name_buf *w, __u32 n,
			      __u32 answer)
{
	const struct tg_sipkey *sk;
	__u32 zero = 0;

	if (!s || !w || n < DNS_HDR_LEN || n > TG_DNS_CHUNK)
		return -1;
	if (!(s->data[2] & 0x80) != !answer)
		return -1;
	if (dns_be16(s, 4) != 1 || dns_read_name(s, w, DNS_HDR_LEN, n) < 0)
		return -1;
	sk = bpf_map_lookup_elem(&tg_sipkey, &zero);
	if (!sk)
		return -1;
	w->qkey.id = dns_be16(s, 0);
	w->qkey.qname_hash = dns_hash_at(w, sk, 0);
	return 0;
}

static __always_inline void dns_qkey_start(struct tg_dns_query_key *k, const struct dns_pkt *p)
{
	__builtin_memcpy(k->server, p->saddr, 16);
	k->client_port = p->client_port;
	k->pad = 0;
}

/* A query did not fit tg_dns_queries lately: answers are learned unmatched for a while. */
static __always_inline int dns_queries_overflowing(void)
{
	__u32 zero = 0;
	__u64 *at = bpf_map_lookup_elem(&tg_dns_query_overflow, &zero);

	return at && *at && bpf_ktime_get_ns() - *at < TG_DNS_QUERY_MAX_AGE_NS;
}

/* Does this datagram answer a query the socket sent? The query is used up. */
static __always_inline __u8 dns_datagram_solicited(struct tg_dns_scratch *s, struct dns_name_buf *w,
						   const struct dns_pkt *p)
{
	dns_qkey_start(&w->qkey, p);
	if (dns_query_fill(s, w, s->rec.len, 1) == 0 && !bpf_map_delete_elem(&tg_dns_queries, &w->qkey))
		return TG_DNS_REC_SOLICITED;
	if (dns_queries_overflowing())
		return TG_DNS_REC_SOLICITED;
	dns_count(TG_DNS_CNT_UNSOLICITED);
	return 0;
}

/* Is this segment from a connection the socket opened to port 53? */
static __always_inline __u8 dns_stream_solicited(const struct dns_pkt *p)
{
	struct tg_dns_query_key k = { .id = TG_DNS_QUERY_STREAM };

	dns_qkey_start(&k, p);
	if (bpf_map_lookup_elem(&tg_dns_queries, &k) || dns_queries_overflowing())
		return TG_DNS_REC_SOLICITED;
	if (p->payload_len)
		dns_count(TG_DNS_CNT_UNSOLICITED);
	return 0;
}

/*
 * A TCP segment that is exactly one answer (its 2-byte length, then a message
 * that ends with the segment: a resolver's reply to one query, usually), read
 * like a datagram into @s. True only when it names a policy host and all of
 * its addresses were learned here: everything else stamps, because a segment
 * from the middle of a stream could read as a message.
 */
static __always_inline bool dns_segment_learned(struct __sk_buff *skb, struct tg_dns_scratch *s,
						const struct dns_pkt *p)
{
	struct dns_name_buf *w;
	__u8 lenb[2];
	__u32 mlen, zero = 0;
	int learned;

	if (p->payload_len < 2 + DNS_HDR_LEN || p->payload_len > TG_DNS_CHUNK + 2)
		return false;
	if (bpf_skb_load_bytes(skb, p->payload_off, lenb, 2) < 0)
		return false;
	mlen = (__u32)lenb[0] << 8 | lenb[1];
	if (mlen != p->payload_len - 2 || mlen < DNS_HDR_LEN)
		return false;
	w = bpf_map_lookup_elem(&tg_dns_namebuf, &zero);
	if (!w)
		return false;
	mlen = ((mlen - 1) & (TG_DNS_CHUNK - 1)) + 1;	/* 1..TG_DNS_CHUNK, as the verifier sees it */
	if (bpf_skb_load_bytes(skb, p->payload_off + 2, s->data, mlen) < 0)
		return false;
	s->rec.ts_ns = bpf_ktime_get_ns();
	s->rec.len = mlen;
	if (dns_judge_names(s, mlen) != DNS_NAMES_POLICY)
		return false;
	learned = dns_learn_answer(s, w, mlen);
	if (learned < 0) {
		dns_count(TG_DNS_CNT_ERR_KLEARN);
		return false;
	}
	dns_count(TG_DNS_CNT_ANS_POLICY);
	dns_count_n(TG_DNS_CNT_KLEARNED, learned);
	return true;
}

static __noinline int dns_copy(struct __sk_buff *skb)
{
	struct dns_pkt p = {};
	struct tg_dns_scratch *s;
	struct dns_name_buf *w;
	__u32 i, zero = 0;
	__u64 cookie;
	__u8 flags;
	bool wake;
	int err;

	err = dns_parse(skb, &p, false);
	if (err)
		return dns_skip(-err);
	if (!p.payload_len && !p.tcp_flags)
		return dns_skip(TG_DNS_CNT_SKIP_EMPTY);	/* pure ACK */
	s = bpf_map_lookup_elem(&tg_dns_scratch, &zero);
	w = bpf_map_lookup_elem(&tg_dns_namebuf, &zero);
	if (!s || !w)	/* cannot fail for index 0; the verifier needs the check */
		return dns_skip(TG_DNS_CNT_ERR_LOAD);
	cookie = bpf_get_socket_cookie(skb);
	if (p.proto == IPPROTO_UDP) {
		err = dns_load(skb, s, &p, cookie, p.payload_off, p.payload_len, 0);
		if (err)
			return dns_skip(-err);
		flags = dns_datagram_solicited(s, w, &p);
		wake = (flags & TG_DNS_REC_SOLICITED) && dns_judge_datagram(skb, &p);
		s->rec.flags = flags;	/* the judging reads s->data only: the record is as loaded */
		err = dns_output(s, wake);
		if (err)
			return dns_skip(-err);
		dns_count(p.payload_len > TG_DNS_CHUNK ? TG_DNS_CNT_TRUNCATED : TG_DNS_CNT_COPIED);
		return OBSERVE;
	}
	/*
	 * TCP: a segment (GRO may merge many) in records of TG_DNS_CHUNK bytes.
	 * A segment that is one whole answer is read here like a datagram;
	 * any other answer segment stamps the cgroup and wakes the agent, which
	 * reassembles the stream.
	 */
	flags = dns_stream_solicited(&p);
	wake = p.payload_len && (flags & TG_DNS_REC_SOLICITED) && !dns_segment_learned(skb, s, &p);
	if (wake)
		dns_stamp(skb, bpf_ktime_get_ns(), TG_DNS_CNT_ANS_UNREAD);
	for (i = 0; i < TG_DNS_TCP_MAX_CHUNKS; i++) {
		__u32 off = i * TG_DNS_CHUNK, n;

		if (i && off >= p.payload_len)
			break;
		n = p.payload_len > off ? p.payload_len - off : 0;
		err = dns_load(skb, s, &p, cookie, p.payload_off + off, n, p.seq + off);
		if (!err) {
			s->rec.flags = flags;
			err = dns_output(s, wake);
		}
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
	if (!tg_skb_may_be_dns(skb))
		return OBSERVE;	/* the fast path: connected, not to DNS */
	if (tg_skb_unconnected(skb) && dns_port_not_53(skb, 0))
		return dns_skip(TG_DNS_CNT_SKIP_NOT_DNS);
	return dns_copy(skb);
}

/*
 * A query that could not be recorded (counted as @why): its answer would
 * look unasked for, so answers that match none are learned for a while
 * (dns_queries_overflowing()): the answer that adds protection is the safer
 * mistake.
 */
static __always_inline int dns_query_unrecorded(__u64 now, enum tg_dns_counter why)
{
	__u32 zero = 0;
	__u64 *at = bpf_map_lookup_elem(&tg_dns_query_overflow, &zero);

	if (at)
		*at = now;
	dns_count(why);
	return OBSERVE;
}

/* @key into tg_dns_queries: its answer will be taken as asked for. */
static __always_inline int dns_remember_query(const struct tg_dns_query_key *key)
{
	__u64 now = bpf_ktime_get_ns();

	if (bpf_map_update_elem(&tg_dns_queries, key, &now, BPF_ANY))
		return dns_query_unrecorded(now, TG_DNS_CNT_ERR_QUERY);
	dns_count(TG_DNS_CNT_QUERIES);
	return OBSERVE;
}

/*
 * A DNS-over-TCP connection: the connection is the question, only its own
 * answers come back on it. The key is built on the stack, not in the per-CPU
 * query buffer: TCP sends ACKs and retransmits from softirq, which can
 * interrupt a UDP query being recorded in that buffer on the same CPU and
 * would rewrite its key (its answer would then look unasked for).
 */
static __always_inline int dns_record_stream(const struct dns_pkt *p)
{
	struct tg_dns_query_key key = {};

	if (!p->payload_len && !(p->tcp_flags & TG_DNS_TCP_SYN))
		return OBSERVE;
	dns_qkey_start(&key, p);
	key.id = TG_DNS_QUERY_STREAM;
	key.qname_hash = 0;
	return dns_remember_query(&key);
}

/* The index of a free query slot of this CPU, now taken, or -1 (tg_scratch_take()). */
DNS_GLOBAL int dns_qslot_take(void)
{
	return tg_scratch_take(&tg_dns_qslot_users, DNS_QSLOTS);
}

/* The UDP query in @p into tg_dns_queries, read in query slot @slot. */
static __always_inline int dns_record_datagram(struct __sk_buff *skb, const struct dns_pkt *p,
					       __u32 slot)
{
	struct tg_dns_scratch *s = bpf_map_lookup_elem(&tg_dns_qscratch, &slot);
	struct dns_name_buf *w = bpf_map_lookup_elem(&tg_dns_qnamebuf, &slot);

	if (!s || !w)
		return OBSERVE;
	dns_qkey_start(&w->qkey, p);
	if (dns_load(skb, s, p, 0, p->payload_off, p->payload_len, 0) ||
	    dns_query_fill(s, w, s->rec.len, 0) < 0)
		return OBSERVE;	/* not a DNS query: nothing to answer */
	return dns_remember_query(&w->qkey);
}

/* A query leaves: remember it, so that only its answer is learned. */
static __noinline int dns_record_query(struct __sk_buff *skb)
{
	struct dns_pkt p = {};
	int slot;

	if (dns_parse(skb, &p, true))
		return OBSERVE;
	if (p.proto == IPPROTO_TCP)
		return dns_record_stream(&p);
	slot = dns_qslot_take();
	if (slot < 0)	/* every slot of this CPU in use: more nesting than there is room for */
		return dns_query_unrecorded(bpf_ktime_get_ns(), TG_DNS_CNT_QUERY_SCRATCH_BUSY);
	dns_record_datagram(skb, &p, slot);
	tg_scratch_give(&tg_dns_qslot_users, slot);
	return OBSERVE;
}

SEC("cgroup_skb/egress")
int tg_dns_egress(struct __sk_buff *skb)
{
	if (!tg_skb_may_be_dns(skb))
		return OBSERVE;	/* the fast path, as on ingress */
	if (tg_skb_unconnected(skb) && dns_port_not_53(skb, 1))
		return OBSERVE;
	return dns_record_query(skb);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
