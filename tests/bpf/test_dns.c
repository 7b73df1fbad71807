// SPDX-License-Identifier: MIT
/*
 * The DNS copy program (bpf/dns.bpf.c): crafted packets through
 * BPF_PROG_TEST_RUN (its fake socket is unconnected, so every packet takes
 * the header-reading path), then real sockets in a private network namespace
 * and cgroup, which is the only way to see what __sk_buff->remote_port holds
 * and that connected non-DNS sockets never get past the fast path.
 * Needs root (loads BPF programs, makes a cgroup and a netns).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup.h"
#include "tlsguard/dns.h"
#include "tlsguard/names.h"
#include "dns.skel.h"
#include "tlsguard.skel.h"

#define MAX_RECS 64

struct rec {
	struct tg_dns_rec h;
	uint8_t data[TG_DNS_CHUNK];
};

struct fixture {
	struct dns_bpf *skel;
	struct ring_buffer *rb;
	struct rec recs[MAX_RECS];
	int nrecs;
};

static int on_rec(void *ctx, void *data, size_t size)
{
	struct fixture *f = ctx;
	struct rec *r;

	if (size < sizeof(struct tg_dns_rec) || f->nrecs >= MAX_RECS)
		return 0;
	r = &f->recs[f->nrecs++];
	memset(r, 0, sizeof(*r));
	memcpy(r, data, size < sizeof(*r) ? size : sizeof(*r));
	assert_int_equal(size, sizeof(struct tg_dns_rec) + r->h.len);
	return 0;
}

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	f.skel = dns_bpf__open_and_load();
	if (!f.skel)
		return -1;
	f.rb = ring_buffer__new(bpf_map__fd(f.skel->maps.tg_dns_ring), on_rec, &f, NULL);
	if (!f.rb)
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ring_buffer__free(f->rb);
	dns_bpf__destroy(f->skel);
	return 0;
}

static __u64 counter(struct fixture *f, enum tg_dns_counter c)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 vals[ncpu], sum = 0;
	__u32 key = c;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.tg_dns_counters), &key, vals), 0);
	for (int i = 0; i < ncpu; i++)
		sum += vals[i];
	return sum;
}

/* tg_dns_newest[0].stamp: what a connect() compares with tg_dns_caught_up first. */
static __u64 newest_stamp(struct fixture *f)
{
	struct tg_dns_newest v;
	__u32 zero = 0;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.tg_dns_newest), &zero, &v), 0);
	return v.stamp;
}

static void set_newest_stamp(struct fixture *f, __u64 stamp)
{
	struct tg_dns_newest v = { .stamp = stamp };
	__u32 zero = 0;

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_dns_newest), &zero, &v, 0),
			 0);
}

static void reset(struct fixture *f)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 zero[ncpu];

	memset(zero, 0, sizeof(zero));
	__u64 key, next;
	int pending = bpf_map__fd(f->skel->maps.tg_dns_pending);

	for (__u32 c = 0; c < TG_DNS_CNT__MAX; c++)
		bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_dns_counters), &c, zero, 0);
	struct tg_dns_klearned_key kk;
	int klearned = bpf_map__fd(f->skel->maps.tg_dns_klearned);

	while (!bpf_map_get_next_key(pending, NULL, &next)) {
		key = next;
		bpf_map_delete_elem(pending, &key);
	}
	struct tg_dns_query_key qk;
	int queries = bpf_map__fd(f->skel->maps.tg_dns_queries);

	while (!bpf_map_get_next_key(klearned, NULL, &kk))
		bpf_map_delete_elem(klearned, &kk);
	while (!bpf_map_get_next_key(queries, NULL, &qk))
		bpf_map_delete_elem(queries, &qk);
	set_newest_stamp(f, 0);
	ring_buffer__consume(f->rb);
	f->nrecs = 0;
}

/*
 * Cgroups stamped in tg_dns_pending (the hold), and the last stamp seen.
 * Each stamp is at most tg_dns_newest's, or a connect() from its cgroup
 * would pass the hold on the one-look check (connect.bpf.h).
 */
static int stamped(struct fixture *f, __u64 *stamp)
{
	int fd = bpf_map__fd(f->skel->maps.tg_dns_pending), n = 0;
	__u64 key, next, *prev = NULL, v;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		assert_int_equal(bpf_map_lookup_elem(fd, &key, &v), 0);
		assert_true(v <= newest_stamp(f));
		if (stamp)
			*stamp = v;
		n++;
	}
	return n;
}

/* The answer's names are a tally of their own (ANS_*), next to the copy's. */
static bool is_names_counter(int i)
{
	return i == TG_DNS_CNT_ANS_POLICY || i == TG_DNS_CNT_ANS_OTHER || i == TG_DNS_CNT_ANS_UNREAD ||
	       i == TG_DNS_CNT_KLEARNED || i == TG_DNS_CNT_ERR_KLEARN || i == TG_DNS_CNT_QUERIES ||
	       i == TG_DNS_CNT_ERR_QUERY || i == TG_DNS_CNT_UNSOLICITED ||
	       i == TG_DNS_CNT_QUERY_SCRATCH_BUSY;
}

/* The class tg_dns_klearned gives @ip (IPv4 dotted or IPv6), 0 when it has no entry. */
static int klearned_class(struct fixture *f, const char *ip, __u64 *ts)
{
	struct tg_dns_klearned_key k = { 0 };
	struct tg_dns_klearned_val v;

	if (strchr(ip, ':')) {
		assert_int_equal(inet_pton(AF_INET6, ip, k.addr), 1);
	} else {
		k.addr[10] = k.addr[11] = 0xff;
		assert_int_equal(inet_pton(AF_INET, ip, k.addr + 12), 1);
	}
	if (bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.tg_dns_klearned), &k, &v))
		return 0;
	/* at most tg_dns_newest, or a connect() would not look it up (connect.bpf.h) */
	assert_true(v.ts_ns <= newest_stamp(f));
	if (ts)
		*ts = v.ts_ns;
	return v.class_id;
}

/* Only the counter @c moved (by @n), every other one of the copy's tally stayed 0. */
static void assert_only(struct fixture *f, enum tg_dns_counter c, __u64 n)
{
	for (int i = 0; i < TG_DNS_CNT__MAX; i++) {
		if (i == (int)c || i == TG_DNS_CNT_RECORDS || is_names_counter(i))
			continue;
		if (counter(f, i)) {
			fprintf(stderr, "counter %d is %llu\n", i, (unsigned long long)counter(f, i));
			fail();
		}
	}
	assert_int_equal(counter(f, c), n);
}

/* ---- crafted packets ------------------------------------------------------ */

#define PKT_MAX 4096

/*
 * Crafted packets come from the server 10.0.0.10 / fd00::a to the client
 * port 41234; with build_query set they go the other way (a query from
 * 41234 to the server's @sport).
 */
static bool build_query;
#define CLIENT_PORT 41234

/* eth + IPv4/IPv6 + UDP/TCP/ICMP header + payload; returns the frame length. */
static size_t build(uint8_t *buf, int family, int proto, uint16_t sport, uint32_t seq, uint8_t flags,
		    const void *payload, size_t len)
{
	struct ethhdr *eth = (struct ethhdr *)buf;
	size_t l3, l4 = proto == IPPROTO_TCP ? sizeof(struct tcphdr) :
			proto == IPPROTO_UDP ? sizeof(struct udphdr) : 8;
	uint8_t *l4p;

	memset(buf, 0, sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + 60);
	if (family == AF_INET) {
		struct iphdr *ip = (struct iphdr *)(eth + 1);

		eth->h_proto = htons(ETH_P_IP);
		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		ip->protocol = proto;
		ip->tot_len = htons(sizeof(*ip) + l4 + len);
		inet_pton(AF_INET, "10.0.0.10", build_query ? &ip->daddr : &ip->saddr);
		inet_pton(AF_INET, "10.244.1.7", build_query ? &ip->saddr : &ip->daddr);
		l3 = sizeof(*ip);
	} else {
		struct ipv6hdr *ip6 = (struct ipv6hdr *)(eth + 1);

		eth->h_proto = htons(ETH_P_IPV6);
		ip6->version = 6;
		ip6->nexthdr = proto;
		ip6->hop_limit = 64;
		ip6->payload_len = htons(l4 + len);
		inet_pton(AF_INET6, "fd00::a", build_query ? &ip6->daddr : &ip6->saddr);
		inet_pton(AF_INET6, "2001:db8::7", build_query ? &ip6->saddr : &ip6->daddr);
		l3 = sizeof(*ip6);
	}
	l4p = (uint8_t *)(eth + 1) + l3;
	if (proto == IPPROTO_UDP) {
		struct udphdr *uh = (struct udphdr *)l4p;

		uh->source = htons(build_query ? CLIENT_PORT : sport);
		uh->dest = htons(build_query ? sport : CLIENT_PORT);
		uh->len = htons(sizeof(*uh) + len);
	} else if (proto == IPPROTO_TCP) {
		struct tcphdr *th = (struct tcphdr *)l4p;

		th->source = htons(build_query ? CLIENT_PORT : sport);
		th->dest = htons(build_query ? sport : CLIENT_PORT);
		th->seq = htonl(seq);
		th->doff = 5;
		l4p[13] = flags;
		th->window = htons(65535);
	} else {
		l4p[0] = 8;	/* ICMP echo request */
	}
	if (len)
		memcpy(l4p + l4, payload, len);
	return sizeof(*eth) + l3 + l4 + len;
}

static int run(struct fixture *f, int family, int proto, uint16_t sport, uint32_t seq, uint8_t flags,
	       const void *payload, size_t len)
{
	static uint8_t storage[PKT_MAX + 4] __attribute__((aligned(4)));
	uint8_t *pkt = storage + 2;	/* IP header 4-byte aligned after Ethernet */
	size_t n = build(pkt, family, proto, sport, seq, flags, payload, len);
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = n, .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(f->skel->progs.tg_dns_ingress), &opts), 0);
	ring_buffer__consume(f->rb);
	return opts.retval;
}

/* A query from the client (egress): tg_dns_egress records it. */
static int run_query(struct fixture *f, int family, int proto, const void *payload, size_t len)
{
	static uint8_t storage[PKT_MAX + 4] __attribute__((aligned(4)));
	uint8_t *pkt = storage + 2;
	size_t n;

	build_query = true;
	n = build(pkt, family, proto, 53, 1, proto == IPPROTO_TCP ? 0x18 : 0, payload, len);
	build_query = false;
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = n, .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(f->skel->progs.tg_dns_egress), &opts), 0);
	return opts.retval;
}

/* The same, without consuming the ring. */
static int run_quiet(struct fixture *f, int family, int proto, uint16_t sport, const void *payload,
		     size_t len)
{
	static uint8_t storage[PKT_MAX + 4] __attribute__((aligned(4)));
	uint8_t *pkt = storage + 2;
	size_t n = build(pkt, family, proto, sport, 0, 0, payload, len);
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = n, .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(f->skel->progs.tg_dns_ingress), &opts), 0);
	return opts.retval;
}

static const uint8_t answer[] = {	/* any bytes: the program does not parse DNS */
	0x1a, 0x2b, 0x85, 0x80, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x04, 'a', 'c', 'c', 't',
};

#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_PSH 0x08
#define TH_ACK 0x10

static void test_udp_answer_copied(void **state)
{
	struct fixture *f = *state;
	char ip[INET_ADDRSTRLEN];

	reset(f);
	assert_int_equal(run(f, AF_INET, IPPROTO_UDP, 53, 0, 0, answer, sizeof(answer)), 1);
	assert_only(f, TG_DNS_CNT_COPIED, 1);
	assert_int_equal(counter(f, TG_DNS_CNT_RECORDS), 1);
	assert_int_equal(f->nrecs, 1);
	assert_int_equal(f->recs[0].h.proto, IPPROTO_UDP);
	assert_int_equal(f->recs[0].h.family, AF_INET);
	assert_int_equal(f->recs[0].h.sport, 53);
	assert_int_equal(f->recs[0].h.len, sizeof(answer));
	assert_int_equal(f->recs[0].h.wire_len, sizeof(answer));
	assert_memory_equal(f->recs[0].data, answer, sizeof(answer));
	assert_non_null(inet_ntop(AF_INET, f->recs[0].h.saddr + 12, ip, sizeof(ip)));
	assert_string_equal(ip, "10.0.0.10");
}

static void test_udp6_answer_copied(void **state)
{
	struct fixture *f = *state;
	char ip[INET6_ADDRSTRLEN];

	reset(f);
	assert_int_equal(run(f, AF_INET6, IPPROTO_UDP, 53, 0, 0, answer, sizeof(answer)), 1);
	assert_only(f, TG_DNS_CNT_COPIED, 1);
	assert_int_equal(f->nrecs, 1);
	assert_int_equal(f->recs[0].h.family, AF_INET6);
	assert_non_null(inet_ntop(AF_INET6, f->recs[0].h.saddr, ip, sizeof(ip)));
	assert_string_equal(ip, "fd00::a");
}

static void test_not_dns_skipped(void **state)
{
	struct fixture *f = *state;

	reset(f);
	assert_int_equal(run(f, AF_INET, IPPROTO_UDP, 5353, 0, 0, answer, sizeof(answer)), 1);
	assert_int_equal(run(f, AF_INET6, IPPROTO_TCP, 443, 1, TH_ACK | TH_PSH, answer, sizeof(answer)), 1);
	assert_only(f, TG_DNS_CNT_SKIP_NOT_DNS, 2);
	assert_int_equal(f->nrecs, 0);
	reset(f);
	assert_int_equal(run(f, AF_INET, IPPROTO_ICMP, 0, 0, 0, answer, sizeof(answer)), 1);
	assert_only(f, TG_DNS_CNT_SKIP_L4, 1);
	assert_int_equal(f->nrecs, 0);
}

static void test_tcp_segments(void **state)
{
	struct fixture *f = *state;

	reset(f);
	/* SYN-ACK: the stream's first byte is at seq + 1 */
	assert_int_equal(run(f, AF_INET, IPPROTO_TCP, 53, 1000, TH_SYN | TH_ACK, NULL, 0), 1);
	assert_int_equal(f->nrecs, 1);
	assert_int_equal(f->recs[0].h.tcp_flags, TG_DNS_TCP_SYN);
	assert_int_equal(f->recs[0].h.seq, 1001);
	assert_int_equal(f->recs[0].h.len, 0);
	/* a pure ACK is nothing */
	assert_int_equal(run(f, AF_INET, IPPROTO_TCP, 53, 1001, TH_ACK, NULL, 0), 1);
	assert_int_equal(f->nrecs, 1);
	assert_int_equal(counter(f, TG_DNS_CNT_SKIP_EMPTY), 1);
	assert_int_equal(run(f, AF_INET, IPPROTO_TCP, 53, 1001, TH_ACK | TH_PSH, answer, sizeof(answer)), 1);
	assert_int_equal(f->nrecs, 2);
	assert_int_equal(f->recs[1].h.seq, 1001);
	assert_int_equal(f->recs[1].h.len, sizeof(answer));
	assert_memory_equal(f->recs[1].data, answer, sizeof(answer));
	/* FIN and RST tell the agent the stream ended */
	assert_int_equal(run(f, AF_INET, IPPROTO_TCP, 53, 1001 + sizeof(answer), TH_FIN | TH_ACK, NULL, 0), 1);
	assert_int_equal(f->recs[2].h.tcp_flags, TG_DNS_TCP_FIN);
	assert_int_equal(run(f, AF_INET6, IPPROTO_TCP, 53, 2000, TH_RST, NULL, 0), 1);
	assert_int_equal(f->recs[3].h.tcp_flags, TG_DNS_TCP_RST);
	assert_int_equal(counter(f, TG_DNS_CNT_COPIED), 4);
}

static void test_ringbuf_full_counted(void **state)
{
	struct fixture *f = *state;
	static uint8_t big[3000];	/* test runs take at most a page per packet */
	__u64 lost;
	int i;

	reset(f);
	/* nobody consumes: ~3 KiB records fill the 256 KiB ring */
	for (i = 0; i < 120; i++)
		assert_int_equal(run_quiet(f, AF_INET, IPPROTO_UDP, 53, big, sizeof(big)), 1);
	lost = counter(f, TG_DNS_CNT_ERR_RINGBUF);
	assert_true(lost > 0);
	assert_int_equal(counter(f, TG_DNS_CNT_COPIED) + lost, 120);
	reset(f);
}

/* ---- the answer's names: is the cgroup stamped for the hold? -------------------- */

static const struct tg_sipkey test_key = { 0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL };

/* A policy host in tg_names, as the agent writes it (handshake.c): "*.x" is the hash of ".x". */
static void add_host(struct fixture *f, const char *host)
{
	struct tg_name_key k = { .class_id = TG_NAME_ANY_CLASS };
	struct tg_name_value v = { .class_id = 1 };
	uint8_t buf[TG_NAME_BUF] = { 0 };
	__u32 zero = 0;

	if (host[0] == '*') {
		host++;
		k.flags = TG_NAME_WILDCARD;
	}
	memcpy(buf, host, strlen(host));
	k.hash = tg_siphash(&test_key, buf, strlen(host));
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_sipkey), &zero, &test_key,
					     BPF_ANY), 0);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_names), &k, &v, BPF_ANY),
			 0);
}

/* @name as DNS labels at @p; its length. */
static size_t enc_name(uint8_t *p, const char *name)
{
	size_t n = 0;

	while (*name) {
		size_t l = strcspn(name, ".");

		p[n++] = l;
		memcpy(p + n, name, l);
		n += l;
		name += l;
		if (*name == '.')
			name++;
	}
	p[n++] = 0;
	return n;
}

struct msg {
	uint8_t b[1024];
	size_t len;
	size_t qend;	/* where the question ends */
};

/* An answer to @qname: header (QR set unless @query), the question; RRs follow with rr_*(). */
static void msg_start(struct msg *m, const char *qname, int ancount, bool query)
{
	static const uint8_t hdr[12] = { 0x1a, 0x2b, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0 };

	memcpy(m->b, hdr, sizeof(hdr));
	if (query)
		m->b[2] = 0x01;
	m->b[7] = ancount;
	m->len = 12 + enc_name(m->b + 12, qname);
	memcpy(m->b + m->len, "\0\1\0\1", 4);	/* QTYPE A, QCLASS IN */
	m->len += 4;
	m->qend = m->len;
}

/* The query @m answers, sent by the client first (its header and question, QR clear). */
static void ask(struct fixture *f, const struct msg *m)
{
	uint8_t q[1024];

	memcpy(q, m->b, m->qend);
	q[2] = 0x01;		/* RD */
	q[3] = 0;
	q[6] = q[7] = 0;	/* no answers */
	assert_int_equal(run_query(f, AF_INET, IPPROTO_UDP, q, m->qend), 1);
}

/* One RR owned by the question's name (pointer 0xc00c) with @rdata. */
static void rr(struct msg *m, uint16_t type, const uint8_t *rdata, size_t rdlen)
{
	uint8_t *p = m->b + m->len;

	p[0] = 0xc0;
	p[1] = 0x0c;
	p[2] = type >> 8;
	p[3] = type;
	memcpy(p + 4, "\0\1\0\0\0\x3c", 6);	/* class IN, TTL 60 */
	p[10] = rdlen >> 8;
	p[11] = rdlen;
	memcpy(p + 12, rdata, rdlen);
	m->len += 12 + rdlen;
}

static void rr_a(struct msg *m)
{
	rr(m, 1, (const uint8_t *)"\xc6\x33\x64\x0a", 4);
}

static void rr_cname(struct msg *m, const char *target)
{
	uint8_t rd[256];

	rr(m, 5, rd, enc_name(rd, target));
}

/* The result for one datagram: which ANS_* counter moved, and the stamp with it. */
static enum tg_dns_counter judged(struct fixture *f, const struct msg *m)
{
	static const enum tg_dns_counter c[] = {
		TG_DNS_CNT_ANS_POLICY, TG_DNS_CNT_ANS_OTHER, TG_DNS_CNT_ANS_UNREAD,
	};
	enum tg_dns_counter got = TG_DNS_CNT__MAX;
	__u64 stamp = 0;

	reset(f);
	ask(f, m);
	assert_int_equal(run(f, AF_INET, IPPROTO_UDP, 53, 0, 0, m->b, m->len), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_COPIED), 1);	/* copied whatever the names say */
	for (size_t i = 0; i < 3; i++) {
		if (!counter(f, c[i]))
			continue;
		assert_int_equal(got, TG_DNS_CNT__MAX);	/* exactly one */
		assert_int_equal(counter(f, c[i]), 1);
		got = c[i];
	}
	if (got == TG_DNS_CNT__MAX) {
		/* not one: the answer matched no query, and taught nothing */
		assert_int_equal(counter(f, TG_DNS_CNT_UNSOLICITED), 1);
		assert_int_equal(f->recs[0].h.flags & TG_DNS_REC_SOLICITED, 0);
		assert_int_equal(stamped(f, NULL), 0);
		return TG_DNS_CNT_UNSOLICITED;
	}
	assert_int_equal(f->recs[0].h.flags & TG_DNS_REC_SOLICITED, TG_DNS_REC_SOLICITED);
	/* a stamp exactly when what matters could not be read (or learned), at the record's time */
	assert_int_equal(stamped(f, &stamp), got == TG_DNS_CNT_ANS_UNREAD ? 1 : 0);
	if (got == TG_DNS_CNT_ANS_UNREAD)
		assert_int_equal(stamp, f->recs[0].h.ts_ns);
	/* raised to the answer's time when it stamped or taught the kernel, else left at reset()'s 0 */
	assert_int_equal(newest_stamp(f), got == TG_DNS_CNT_ANS_OTHER ? 0 : f->recs[0].h.ts_ns);
	return got;
}

static void test_names_of_answers(void **state)
{
	struct fixture *f = *state;
	struct msg m;

	add_host(f, "*.blob.core.windows.net");
	add_host(f, "exact.vault.azure.net");

	msg_start(&m, "acct.blob.core.windows.net", 1, false);
	rr_a(&m);
	assert_int_equal(judged(f, &m), TG_DNS_CNT_ANS_POLICY);
	/* its address learned in the kernel, with the class, at the answer's time */
	{
		__u64 ts = 0;

		assert_int_equal(klearned_class(f, "198.51.100.10", &ts), 1);
		assert_int_equal(ts, f->recs[0].h.ts_ns);
		assert_int_equal(counter(f, TG_DNS_CNT_KLEARNED), 1);
	}
	/* A and AAAA alike */
	msg_start(&m, "acct.blob.core.windows.net", 2, false);
	rr_a(&m);
	rr(&m, 28, (const uint8_t *)"\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x10", 16);
	assert_int_equal(judged(f, &m), TG_DNS_CNT_ANS_POLICY);
	assert_int_equal(klearned_class(f, "2001:db8::10", NULL), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_KLEARNED), 2);
	/* DNS names are case-insensitive; policy hosts are lower case */
	msg_start(&m, "Acct.BLOB.core.Windows.NET", 1, false);
	rr_a(&m);
	assert_int_equal(judged(f, &m), TG_DNS_CNT_ANS_POLICY);
	/* more labels in place of the star */
	msg_start(&m, "a.b.c.acct.blob.core.windows.net", 0, false);
	assert_int_equal(judged(f, &m), TG_DNS_CNT_ANS_POLICY);
	msg_start(&m, "exact.vault.azure.net", 0, false);
	assert_int_equal(judged(f, &m), TG_DNS_CNT_ANS_POLICY);

	/* not policy hosts: no stamp, nothing waits */
	msg_start(&m, "www.example.org", 1, false);
	rr_a(&m);
	assert_int_equal(judged(f, &m), TG_DNS_CNT_ANS_OTHER);
	assert_int_equal(klearned_class(f, "198.51.100.10", NULL), 0);
	msg_start(&m, "blob.core.windows.net", 0, false);	/* the star needs a label */
	assert_int_equal(judged(f, &m), TG_DNS_CNT_ANS_OTHER);
	msg_start(&m, "x.exact.vault.azure.net", 0, false);	/* an exact host is only itself */
	assert_int_equal(judged(f, &m), TG_DNS_CNT_ANS_OTHER);
	msg_start(&m, "acct.blob.core.windows.net.evil.example", 0, false);
	assert_int_equal(judged(f, &m), TG_DNS_CNT_ANS_OTHER);
	/* a query that came in (the workload is a resolver): answers nothing, teaches nothing */
	msg_start(&m, "acct.blob.core.windows.net", 0, true);
	assert_int_equal(judged(f, &m), TG_DNS_CNT_UNSOLICITED);
}

static void test_names_of_cname_chains(void **state)
{
	struct fixture *f = *state;
	struct msg m;
	uint8_t rd[64];
	size_t n;

	add_host(f, "*.blob.core.windows.net");

	/* the customer's own name, a CNAME to the storage account */
	msg_start(&m, "data.contoso.com", 2, false);
	rr_cname(&m, "acct.blob.core.windows.net");
	rr_a(&m);
	assert_int_equal(judged(f, &m), TG_DNS_CNT_ANS_POLICY);
	assert_int_equal(klearned_class(f, "198.51.100.10", NULL), 1);
	/* a CNAME target compressed against the question: "acct.blob.core" + "windows.net" */
	msg_start(&m, "portal.windows.net", 2, false);
	n = enc_name(rd, "acct.blob.core") - 1;
	rd[n++] = 0xc0;
	rd[n++] = 12 + 1 + 6;	/* "windows" in the question */
	rr(&m, 5, rd, n);
	rr_a(&m);
	assert_int_equal(judged(f, &m), TG_DNS_CNT_ANS_POLICY);
	/* a chain of unrelated names */
	msg_start(&m, "www.example.org", 2, false);
	rr_cname(&m, "cdn.example.net");
	rr_a(&m);
	assert_int_equal(judged(f, &m), TG_DNS_CNT_ANS_OTHER);

	/* what cannot be read whole is stamped: a pointer loop in a CNAME target ... */
	msg_start(&m, "www.example.org", 1, false);
	rd[0] = 0xc0;
	rd[1] = m.len + 12;	/* its own offset */
	rr(&m, 5, rd, 2);
	assert_int_equal(judged(f, &m), TG_DNS_CNT_ANS_UNREAD);
	/* ... more answer records than are read ... */
	msg_start(&m, "www.example.org", 17, false);
	for (int i = 0; i < 17; i++)
		rr_a(&m);
	assert_int_equal(judged(f, &m), TG_DNS_CNT_ANS_UNREAD);
	/* ... a record cut short, a DNAME, two questions */
	msg_start(&m, "www.example.org", 2, false);
	rr_a(&m);
	assert_int_equal(judged(f, &m), TG_DNS_CNT_ANS_UNREAD);
	msg_start(&m, "www.example.org", 1, false);
	rr(&m, 39, rd, enc_name(rd, "example.net"));
	assert_int_equal(judged(f, &m), TG_DNS_CNT_ANS_UNREAD);
	/* two questions: no resolver asks that, so no query matches: not learned at all */
	msg_start(&m, "www.example.org", 0, false);
	m.b[5] = 2;
	assert_int_equal(judged(f, &m), TG_DNS_CNT_UNSOLICITED);
}

/* Only an answer to a query the socket sent is learned: server, port, id and name must match. */
static void test_unsolicited_answers(void **state)
{
	struct fixture *f = *state;
	struct msg m, other;

	add_host(f, "*.blob.core.windows.net");
	msg_start(&m, "acct.blob.core.windows.net", 1, false);
	rr_a(&m);

	/* nobody asked: copied (the agent counts it), not learned, nothing stamped */
	reset(f);
	assert_int_equal(run(f, AF_INET, IPPROTO_UDP, 53, 0, 0, m.b, m.len), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_UNSOLICITED), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_ANS_POLICY), 0);
	assert_int_equal(f->recs[0].h.flags, 0);
	assert_int_equal(klearned_class(f, "198.51.100.10", NULL), 0);

	/* asked: learned once; the same answer again finds its query used up */
	reset(f);
	ask(f, &m);
	assert_int_equal(counter(f, TG_DNS_CNT_QUERIES), 1);
	assert_int_equal(run(f, AF_INET, IPPROTO_UDP, 53, 0, 0, m.b, m.len), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_ANS_POLICY), 1);
	assert_int_equal(klearned_class(f, "198.51.100.10", NULL), 1);
	assert_int_equal(run(f, AF_INET, IPPROTO_UDP, 53, 0, 0, m.b, m.len), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_UNSOLICITED), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_ANS_POLICY), 1);

	/* another id, another name: not the query that was asked */
	reset(f);
	ask(f, &m);
	other = m;
	other.b[1] ^= 0x55;
	assert_int_equal(run(f, AF_INET, IPPROTO_UDP, 53, 0, 0, other.b, other.len), 1);
	msg_start(&other, "evil.blob.core.windows.net", 1, false);
	rr_a(&other);
	assert_int_equal(run(f, AF_INET, IPPROTO_UDP, 53, 0, 0, other.b, other.len), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_UNSOLICITED), 2);
	assert_int_equal(counter(f, TG_DNS_CNT_ANS_POLICY), 0);
	/* the right one still finds it */
	assert_int_equal(run(f, AF_INET, IPPROTO_UDP, 53, 0, 0, m.b, m.len), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_ANS_POLICY), 1);

	/* the query map full: answers are learned unmatched for a while (more protection) */
	reset(f);
	{
		int fd = bpf_map__fd(f->skel->maps.tg_dns_queries);
		struct tg_dns_query_key k = { .id = 7 };
		__u64 ts = 1;

		for (__u32 i = 0; i < TG_DNS_QUERIES_MAX; i++) {
			k.qname_hash = i + 1;
			assert_int_equal(bpf_map_update_elem(fd, &k, &ts, BPF_NOEXIST), 0);
		}
		ask(f, &m);
		assert_int_equal(counter(f, TG_DNS_CNT_ERR_QUERY), 1);
		other = m;
		other.b[1] ^= 0x55;	/* matches nothing */
		assert_int_equal(run(f, AF_INET, IPPROTO_UDP, 53, 0, 0, other.b, other.len), 1);
		assert_int_equal(counter(f, TG_DNS_CNT_ANS_POLICY), 1);
		assert_int_equal(counter(f, TG_DNS_CNT_UNSOLICITED), 0);
		__u32 zero = 0;
		__u64 none = 0;

		assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_dns_query_overflow),
						     &zero, &none, BPF_ANY), 0);
	}
	reset(f);
}

/* ---- the query slots: a query sent while another is being read on the CPU ------------ */

#define QSLOTS 2	/* DNS_QSLOTS of bpf/dns.bpf.c */

/* Query slot @slot's user count, @n on every CPU. */
static void qslot_users_set(struct fixture *f, __u32 slot, __u64 n)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 vals[ncpu];

	for (int i = 0; i < ncpu; i++)
		vals[i] = n;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_dns_qslot_users), &slot, vals,
					     BPF_ANY), 0);
}

/* Query slot @slot's user count on the CPU that holds the most (all CPUs were set alike). */
static __u64 qslot_users_max(struct fixture *f, __u32 slot)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 vals[ncpu], max = 0;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.tg_dns_qslot_users), &slot, vals),
			 0);
	for (int i = 0; i < ncpu; i++)
		if (vals[i] > max)
			max = vals[i];
	return max;
}

/*
 * The name buffer of query slot @slot: zeroed on every CPU (@key NULL), or
 * does one CPU's hold @key (the query read in that slot)?
 */
static bool qslot_name_buf(struct fixture *f, __u32 slot, const struct tg_dns_query_key *key)
{
	int fd = bpf_map__fd(f->skel->maps.tg_dns_qnamebuf), ncpu = libbpf_num_possible_cpus();
	size_t vsz = (bpf_map__value_size(f->skel->maps.tg_dns_qnamebuf) + 7) & ~(size_t)7;
	uint8_t *vals = calloc(ncpu, vsz);
	bool found = false;

	assert_non_null(vals);
	if (!key)
		assert_int_equal(bpf_map_update_elem(fd, &slot, vals, BPF_ANY), 0);
	else
		assert_int_equal(bpf_map_lookup_elem(fd, &slot, vals), 0);
	for (int i = 0; key && i < ncpu && !found; i++)
		found = memmem(vals + i * vsz, vsz, key, sizeof(*key)) != NULL;
	free(vals);
	return found;
}

/* The one query tg_dns_queries holds. */
static void only_query(struct fixture *f, struct tg_dns_query_key *key)
{
	int fd = bpf_map__fd(f->skel->maps.tg_dns_queries);
	struct tg_dns_query_key next;

	assert_int_equal(bpf_map_get_next_key(fd, NULL, key), 0);
	assert_int_not_equal(bpf_map_get_next_key(fd, key, &next), 0);
}

/*
 * A query sent while slot 0 is being read on this CPU (an interrupted
 * send, as the user count says) is read in slot 1, slot 0 left alone, and
 * its answer learned; with both taken it is counted and its answer still
 * learned (the overflow window). Every slot is given back.
 */
static void test_query_slots_nested(void **state)
{
	struct fixture *f = *state;
	struct tg_dns_query_key key;
	__u32 zero = 0;
	__u64 none = 0;
	struct msg m;

	add_host(f, "*.blob.core.windows.net");
	msg_start(&m, "acct.blob.core.windows.net", 1, false);
	rr_a(&m);

	/* nobody in: slot 0, and given back */
	reset(f);
	for (__u32 i = 0; i < QSLOTS; i++)
		qslot_name_buf(f, i, NULL);
	ask(f, &m);
	only_query(f, &key);
	assert_true(qslot_name_buf(f, 0, &key));
	assert_false(qslot_name_buf(f, 1, &key));
	assert_int_equal(qslot_users_max(f, 0), 0);
	assert_int_equal(qslot_users_max(f, 1), 0);

	/* slot 0 in use: slot 1, slot 0 not touched */
	reset(f);
	for (__u32 i = 0; i < QSLOTS; i++)
		qslot_name_buf(f, i, NULL);
	qslot_users_set(f, 0, 1);
	ask(f, &m);
	assert_int_equal(counter(f, TG_DNS_CNT_QUERIES), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_QUERY_SCRATCH_BUSY), 0);
	only_query(f, &key);
	assert_true(qslot_name_buf(f, 1, &key));
	assert_false(qslot_name_buf(f, 0, &key));
	assert_int_equal(qslot_users_max(f, 0), 1);	/* the interrupted user's, still */
	assert_int_equal(qslot_users_max(f, 1), 0);
	assert_int_equal(run(f, AF_INET, IPPROTO_UDP, 53, 0, 0, m.b, m.len), 1);
	assert_int_equal(f->recs[0].h.flags & TG_DNS_REC_SOLICITED, TG_DNS_REC_SOLICITED);
	assert_int_equal(counter(f, TG_DNS_CNT_ANS_POLICY), 1);
	assert_int_equal(klearned_class(f, "198.51.100.10", NULL), 1);

	/* both in use: not recorded, counted, and its answer learned all the same */
	reset(f);
	qslot_users_set(f, 1, 1);
	ask(f, &m);
	assert_int_equal(counter(f, TG_DNS_CNT_QUERY_SCRATCH_BUSY), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_QUERIES), 0);
	assert_int_equal(counter(f, TG_DNS_CNT_ERR_QUERY), 0);
	assert_int_equal(qslot_users_max(f, 0), 1);
	assert_int_equal(qslot_users_max(f, 1), 1);
	assert_int_equal(run(f, AF_INET, IPPROTO_UDP, 53, 0, 0, m.b, m.len), 1);
	assert_int_equal(f->recs[0].h.flags & TG_DNS_REC_SOLICITED, TG_DNS_REC_SOLICITED);
	assert_int_equal(counter(f, TG_DNS_CNT_UNSOLICITED), 0);
	assert_int_equal(counter(f, TG_DNS_CNT_ANS_POLICY), 1);
	assert_int_equal(klearned_class(f, "198.51.100.10", NULL), 1);

	for (__u32 i = 0; i < QSLOTS; i++)
		qslot_users_set(f, i, 0);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_dns_query_overflow), &zero,
					     &none, BPF_ANY), 0);
	reset(f);
}

/* tg_dns_klearned full (a flood of answers): the answer that does not fit stamps instead. */
static void test_learning_full_stamps(void **state)
{
	struct fixture *f = *state;
	int fd = bpf_map__fd(f->skel->maps.tg_dns_klearned);
	struct tg_dns_klearned_val v = { .ts_ns = 1, .class_id = 1 };
	struct msg m;
	__u64 stamp = 0;

	add_host(f, "*.blob.core.windows.net");
	reset(f);
	for (__u32 i = 0; i < TG_DNS_KLEARNED_MAX; i++) {
		struct tg_dns_klearned_key k = { .addr = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 } };

		memcpy(k.addr + 12, &i, 4);
		assert_int_equal(bpf_map_update_elem(fd, &k, &v, BPF_NOEXIST), 0);
	}
	msg_start(&m, "acct.blob.core.windows.net", 1, false);
	rr_a(&m);
	ask(f, &m);
	assert_int_equal(run(f, AF_INET, IPPROTO_UDP, 53, 0, 0, m.b, m.len), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_ANS_POLICY), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_ERR_KLEARN), 1);
	assert_int_equal(stamped(f, &stamp), 1);
	assert_int_equal(stamp, f->recs[0].h.ts_ns);
	reset(f);
}

/*
 * tg_dns_newest is only ever raised: an answer stamped after a later one
 * (another CPU's, in the same microsecond) must not lower it below that
 * one's stamp, or that cgroup's connect() would pass the hold unjudged.
 */
static void test_newest_stamp_only_raised(void **state)
{
	struct fixture *f = *state;
	const __u64 later = (__u64)-1 / 2;	/* as if another CPU stamped just after */
	__u8 loop[2] = { 0xc0 };
	struct msg m;
	__u64 stamp = 0;

	add_host(f, "*.blob.core.windows.net");
	msg_start(&m, "www.example.org", 1, false);
	loop[1] = m.len + 12;	/* a CNAME pointing at itself: cannot be read, so stamped */
	rr(&m, 5, loop, 2);
	reset(f);
	set_newest_stamp(f, later);
	ask(f, &m);
	assert_int_equal(run(f, AF_INET, IPPROTO_UDP, 53, 0, 0, m.b, m.len), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_ANS_UNREAD), 1);
	assert_int_equal(stamped(f, &stamp), 1);
	assert_true(stamp < later);
	assert_int_equal(newest_stamp(f), later);	/* not lowered */
	reset(f);
}

/* DNS over TCP: the connection must be the socket's own; segments that are not one whole answer stamp. */
static void test_tcp_answers_stamped(void **state)
{
	struct fixture *f = *state;
	static uint8_t storage[128 + 4] __attribute__((aligned(4)));
	uint8_t *syn_q = storage + 2;	/* IP header 4-byte aligned after Ethernet */
	LIBBPF_OPTS(bpf_test_run_opts, syn_opts, .data_in = syn_q, .repeat = 1);

	reset(f);
	/* a connection nobody opened to port 53 from here: not an answer to anything */
	assert_int_equal(run(f, AF_INET, IPPROTO_TCP, 53, 1001, TH_ACK | TH_PSH, answer, sizeof(answer)), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_UNSOLICITED), 1);
	assert_int_equal(stamped(f, NULL), 0);
	assert_int_equal(f->recs[0].h.flags, 0);
	/* the client's SYN to port 53 opens it */
	reset(f);
	assert_int_equal(run_query(f, AF_INET, IPPROTO_TCP, NULL, 0), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_QUERIES), 0);	/* 0x18: PSH|ACK, no payload: nothing */
	build_query = true;
	syn_opts.data_size_in = build(syn_q, AF_INET, IPPROTO_TCP, 53, 1000, TH_SYN, NULL, 0);
	build_query = false;
	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(f->skel->progs.tg_dns_egress),
						&syn_opts), 0);
	assert_int_equal(counter(f, TG_DNS_CNT_QUERIES), 1);
	assert_int_equal(run(f, AF_INET, IPPROTO_TCP, 53, 1001, TH_ACK | TH_PSH, answer, sizeof(answer)), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_ANS_UNREAD), 1);
	assert_int_equal(stamped(f, NULL), 1);
	assert_int_equal(f->recs[0].h.flags, TG_DNS_REC_SOLICITED);

	/* a segment that is exactly one answer (length, message) is read like a datagram */
	{
		struct msg m;
		uint8_t seg[1100];

		add_host(f, "*.blob.core.windows.net");
		msg_start(&m, "acct.blob.core.windows.net", 1, false);
		rr_a(&m);
		seg[0] = m.len >> 8;
		seg[1] = m.len;
		memcpy(seg + 2, m.b, m.len);
		reset(f);
		assert_int_equal(run(f, AF_INET, IPPROTO_TCP, 53, 1001, TH_ACK | TH_PSH, seg, m.len + 2), 1);
		assert_int_equal(counter(f, TG_DNS_CNT_UNSOLICITED), 1);	/* not without its SYN */
		assert_int_equal(klearned_class(f, "198.51.100.10", NULL), 0);
		reset(f);
		assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(f->skel->progs.tg_dns_egress),
							&syn_opts), 0);
		assert_int_equal(run(f, AF_INET, IPPROTO_TCP, 53, 1001, TH_ACK | TH_PSH, seg, m.len + 2), 1);
		assert_int_equal(counter(f, TG_DNS_CNT_ANS_POLICY), 1);
		assert_int_equal(klearned_class(f, "198.51.100.10", NULL), 1);
		assert_int_equal(stamped(f, NULL), 0);		/* learned: nothing waits */
		assert_int_equal(f->recs[0].h.len, m.len + 2);	/* the agent still gets the segment */
		/* one byte more than the message: not one whole answer, stamped as before */
		reset(f);
		assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(f->skel->progs.tg_dns_egress),
							&syn_opts), 0);
		seg[m.len + 2] = 0;
		assert_int_equal(run(f, AF_INET, IPPROTO_TCP, 53, 1001, TH_ACK | TH_PSH, seg, m.len + 3), 1);
		assert_int_equal(counter(f, TG_DNS_CNT_ANS_POLICY), 0);
		assert_int_equal(stamped(f, NULL), 1);
	}
	/* a pure ACK, a FIN: no answer, no stamp */
	reset(f);
	assert_int_equal(run(f, AF_INET, IPPROTO_TCP, 53, 2000, TH_FIN | TH_ACK, NULL, 0), 1);
	assert_int_equal(stamped(f, NULL), 0);
}

/* ---- real sockets ------------------------------------------------------------ */

static int lo_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	if (fd < 0)
		return -errno;
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		err = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (!err && ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		err = -errno;
	close(fd);
	return err;
}

static int join_cgroup(const char *dir)
{
	char path[4200];
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	f = fopen(path, "we");
	if (!f)
		return -errno;
	ret = fprintf(f, "%d\n", getpid()) < 0 ? -EIO : 0;
	if (fclose(f))
		ret = -errno;
	return ret;
}

static int udp_server(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

/* Client @c sends to the server on @port (connect()ed or sendto), the server answers @ans. */
static void udp_exchange(int srv, int c, uint16_t port, int connected, const void *ans, size_t len)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_storage from;
	socklen_t fl = sizeof(from);
	static char buf[65536];
	ssize_t n;

	if (connected) {
		assert_int_equal(connect(c, (struct sockaddr *)&to, sizeof(to)), 0);
		assert_int_equal(send(c, "q", 1, 0), 1);
	} else {
		assert_int_equal(sendto(c, "q", 1, 0, (struct sockaddr *)&to, sizeof(to)), 1);
	}
	n = recvfrom(srv, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
	assert_int_equal(n, 1);
	assert_int_equal(sendto(srv, ans, len, 0, (struct sockaddr *)&from, fl), len);
	assert_int_equal(recv(c, buf, sizeof(buf), 0), len);
}

static int client(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	return fd;
}

/* What the real-socket test made, undone by its teardown even when it fails. */
static struct {
	char cg[4200], orig[8200];
	struct bpf_link *link;
	struct tlsguard_bpf *verdict;	/* chained: the verdict object, only tg_ingress loaded */
	int cg_fd;
	int fds[8];
	int nfds;
} real;

static int track(int fd)
{
	assert_true(fd >= 0);
	if (real.nfds < 8)
		real.fds[real.nfds++] = fd;
	return fd;
}

static int real_teardown(void **state)
{
	if (real.orig[0])
		join_cgroup(real.orig);
	for (int i = 0; i < real.nfds; i++)
		close(real.fds[i]);
	real.nfds = 0;
	bpf_link__destroy(real.link);
	real.link = NULL;
	tlsguard_bpf__destroy(real.verdict);
	real.verdict = NULL;
	if (real.cg_fd > 0)
		close(real.cg_fd);
	real.cg_fd = -1;
	if (real.cg[0] && rmdir(real.cg) && errno != ENOENT)
		fprintf(stderr, "cannot remove %s: %s\n", real.cg, strerror(errno));
	real.cg[0] = '\0';
	return 0;
}

/*
 * The verdict's tg_ingress, as the agent loads it where the kernel allows
 * chaining (loader.c): tg_dns_chained on, tg_dns_ingress in the slot. Its
 * link on the test cgroup is the only one: what the DNS program sees, it
 * sees through tg_ingress.
 */
static struct bpf_link *attach_chained(struct fixture *f, int cg_fd)
{
	struct bpf_program *p;
	__u32 slot = 0;
	int prog_fd = bpf_program__fd(f->skel->progs.tg_dns_ingress);

	real.verdict = tlsguard_bpf__open();
	assert_non_null(real.verdict);
	bpf_object__for_each_program(p, real.verdict->obj)
		bpf_program__set_autoload(p, p == real.verdict->progs.tg_ingress);
	real.verdict->rodata->tg_dns_chained = 1;
	assert_int_equal(tlsguard_bpf__load(real.verdict), 0);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(real.verdict->maps.tg_dns_chain_ingress),
					     &slot, &prog_fd, BPF_ANY), 0);
	return bpf_program__attach_cgroup(real.verdict->progs.tg_ingress, cg_fd);
}

static void real_setup(struct fixture *f, bool chained)
{
	char cg_mount[4096], line[4096];
	FILE *self;

	memset(&real, 0, sizeof(real));
	real.cg_fd = -1;
	if (cgroup_find_mount(cg_mount, sizeof(cg_mount)))
		skip();
	self = fopen("/proc/self/cgroup", "re");
	assert_non_null(self);
	while (fgets(line, sizeof(line), self))
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(real.orig, sizeof(real.orig), "%s%s", cg_mount, line + 3);
		}
	fclose(self);
	assert_true(real.orig[0]);
	snprintf(real.cg, sizeof(real.cg), "%s/tg-bpftest-dns-%d", cg_mount, getpid());
	if (mkdir(real.cg, 0755)) {
		real.cg[0] = '\0';
		fail_msg("mkdir cgroup: %s", strerror(errno));
	}
	real.cg_fd = open(real.cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(real.cg_fd >= 0);
	real.link = chained ? attach_chained(f, real.cg_fd) :
		    bpf_program__attach_cgroup(f->skel->progs.tg_dns_ingress, real.cg_fd);
	assert_non_null(real.link);
	/* our own loopback: port 53 here is nobody else's */
	assert_int_equal(unshare(CLONE_NEWNET), 0);
	assert_int_equal(lo_up(), 0);
}

/*
 * Sockets belong to the cgroup of the task that made them: the servers are
 * made before joining the test cgroup, the clients after, so only the
 * clients' ingress runs the program.
 */
static void real_sockets(struct fixture *f, bool chained)
{
	struct sockaddr_in ta = { .sin_family = AF_INET, .sin_port = htons(53),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	static uint8_t msg[2 + 10000], buf[sizeof(msg)];
	int srv53, srv5353, tsrv, c, a;
	size_t got;

	real_setup(f, chained);
	srv53 = track(udp_server(53));
	srv5353 = track(udp_server(5353));
	tsrv = track(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	assert_int_equal(bind(tsrv, (struct sockaddr *)&ta, sizeof(ta)), 0);
	assert_int_equal(listen(tsrv, 4), 0);
	assert_int_equal(join_cgroup(real.cg), 0);

	/* connected to port 53: remote_port says DNS, the answer is copied */
	reset(f);
	c = track(client());
	udp_exchange(srv53, c, 53, 1, answer, sizeof(answer));
	ring_buffer__consume(f->rb);
	assert_only(f, TG_DNS_CNT_COPIED, 1);
	assert_int_equal(f->nrecs, 1);
	assert_int_equal(f->recs[0].h.sport, 53);
	assert_int_equal(f->recs[0].h.proto, IPPROTO_UDP);
	assert_memory_equal(f->recs[0].data, answer, sizeof(answer));

	/* connected elsewhere: the fast path, not a single counter moves */
	reset(f);
	c = track(client());
	udp_exchange(srv5353, c, 5353, 1, answer, sizeof(answer));
	ring_buffer__consume(f->rb);
	assert_only(f, TG_DNS_CNT_COPIED, 0);
	assert_int_equal(f->nrecs, 0);

	/* unconnected (musl, dig): the UDP header tells */
	reset(f);
	c = track(client());
	udp_exchange(srv53, c, 53, 0, answer, sizeof(answer));
	udp_exchange(srv5353, c, 5353, 0, answer, sizeof(answer));
	ring_buffer__consume(f->rb);
	assert_int_equal(counter(f, TG_DNS_CNT_COPIED), 1);
	assert_int_equal(counter(f, TG_DNS_CNT_SKIP_NOT_DNS), 1);
	assert_int_equal(f->nrecs, 1);

	/* a datagram longer than a record: the first TG_DNS_CHUNK bytes, counted */
	reset(f);
	memset(msg, 0xab, sizeof(msg));
	udp_exchange(srv53, c, 53, 0, msg, 5000);
	ring_buffer__consume(f->rb);
	assert_only(f, TG_DNS_CNT_TRUNCATED, 1);
	assert_int_equal(f->nrecs, 1);
	assert_int_equal(f->recs[0].h.len, TG_DNS_CHUNK);
	assert_int_equal(f->recs[0].h.wire_len, 5000);

	/* TCP: SYN-ACK, a 10 KB length-prefixed answer (one loopback segment), FIN */
	reset(f);
	c = track(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	assert_int_equal(connect(c, (struct sockaddr *)&ta, sizeof(ta)), 0);
	a = track(accept(tsrv, NULL, NULL));
	msg[0] = (sizeof(msg) - 2) >> 8;
	msg[1] = (sizeof(msg) - 2) & 0xff;
	for (size_t i = 2; i < sizeof(msg); i++)
		msg[i] = i * 7;
	assert_int_equal(write(a, msg, sizeof(msg)), sizeof(msg));
	shutdown(a, SHUT_WR);
	assert_int_equal(recv(c, buf, sizeof(buf), MSG_WAITALL), sizeof(msg));
	assert_int_equal(recv(c, buf, sizeof(buf), 0), 0);	/* the FIN arrived */
	ring_buffer__consume(f->rb);
	assert_true(f->nrecs >= 3);
	assert_int_equal(f->recs[0].h.tcp_flags & TG_DNS_TCP_SYN, TG_DNS_TCP_SYN);
	assert_int_equal(f->recs[0].h.len, 0);
	/* the payload records, in order, from the SYN's seq + 1 on, whatever the segmentation */
	got = 0;
	for (int i = 1; i < f->nrecs; i++) {
		struct rec *r = &f->recs[i];

		assert_int_equal(r->h.cookie, f->recs[0].h.cookie);
		assert_int_equal(r->h.proto, IPPROTO_TCP);
		if (!r->h.len)
			continue;
		assert_int_equal(r->h.seq, f->recs[0].h.seq + got);
		assert_true(got + r->h.len <= sizeof(msg));
		assert_memory_equal(r->data, msg + got, r->h.len);
		got += r->h.len;
	}
	assert_int_equal(got, sizeof(msg));
	assert_int_equal(f->recs[f->nrecs - 1].h.tcp_flags & TG_DNS_TCP_FIN, TG_DNS_TCP_FIN);
	assert_int_equal(counter(f, TG_DNS_CNT_TRUNCATED), 0);
	assert_int_equal(counter(f, TG_DNS_CNT_ERR_RINGBUF), 0);
}

/* tg_dns_ingress attached to the cgroup: --dns-hooks separate. */
static void test_real_sockets(void **state)
{
	real_sockets(*state, false);
}

/* The same packets through tg_ingress with tg_dns_ingress chained: the same records. */
static void test_real_sockets_chained(void **state)
{
	real_sockets(*state, true);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_udp_answer_copied),
		cmocka_unit_test(test_udp6_answer_copied),
		cmocka_unit_test(test_not_dns_skipped),
		cmocka_unit_test(test_tcp_segments),
		cmocka_unit_test(test_ringbuf_full_counted),
		cmocka_unit_test(test_names_of_answers),
		cmocka_unit_test(test_names_of_cname_chains),
		cmocka_unit_test(test_tcp_answers_stamped),
		cmocka_unit_test(test_learning_full_stamps),
		cmocka_unit_test(test_newest_stamp_only_raised),
		cmocka_unit_test(test_unsolicited_answers),
		cmocka_unit_test(test_query_slots_nested),
		cmocka_unit_test_teardown(test_real_sockets, real_teardown),
		cmocka_unit_test_teardown(test_real_sockets_chained, real_teardown),
	};

	libbpf_set_strict_mode(LIBBPF_STRICT_ALL);
	return cmocka_run_group_tests_name("dns_ingress", tests, setup, teardown);
}
