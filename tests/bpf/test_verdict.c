// SPDX-License-Identifier: MIT
/*
 * BPF_PROG_TEST_RUN tests of the verdicts: crafted IPv4 and IPv6 TCP (and
 * UDP) packets carrying recorded real handshakes (handshakes.h) go through
 * the real egress and ingress logic; each test checks the verdict
 * (pass/drop), the flow state left behind, the counters and the event the
 * agent would receive. Needs root (loads BPF programs).
 */
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tlsguard/config.h"
#include "tlsguard/counters.h"
#include "tlsguard/dest.h"
#include "tlsguard/event.h"
#include "tlsguard/flow.h"
#include "tlsguard/names.h"
#include "tlsguard/preface.h"
#include "verdict_test.skel.h"
#include "handshakes.h"
#include "../unit/smb_fixtures.h"
#include "../unit/tds_fixtures.h"

#define PASS 1
#define TG_HS_SCRATCH_SLOTS_TEST 2	/* TG_HS_SCRATCH_SLOTS of bpf/lib/maps.bpf.h */
#define DROP 0
#define SPORT 41234
#define DPORT 443
#define SEQ0 1000000u
#define TG_DIR_EGRESS 0
#define TG_DIR_INGRESS 1

/* a whole ClientHello (TLS 1.3, SNI storage.test) recorded from openssl s_client */
#define client_hello hs_client_openssl_tls13
#define CH_LEN hs_client_openssl_tls13_len
static const char http_get[] = "GET /container/blob.bin HTTP/1.1\r\nHost: acct.blob.core.windows.net\r\n\r\n";

struct fixture {
	struct verdict_test_bpf *skel;
	struct ring_buffer *rb;
	struct tg_event events[8];
	int nevents;
	int dir;		/* TG_DIR_EGRESS / TG_DIR_INGRESS for the next run() */
	int udp;		/* next run() sends UDP */
	uint8_t tcp_flags;	/* next run(): 0 = ACK|PSH (payload) or ACK */
	const uint8_t *v6_ext;	/* next IPv6 run(): extension headers after the fixed header */
	size_t v6_ext_len;
	uint8_t v6_ext_first;	/* the fixed header's next header */
};

static int on_event(void *ctx, void *data, size_t size)
{
	struct fixture *f = ctx;

	if (size >= sizeof(struct tg_event) && f->nevents < 8)
		memcpy(&f->events[f->nevents++], data, sizeof(struct tg_event));
	return 0;
}

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	f.skel = verdict_test_bpf__open_and_load();
	if (!f.skel)
		return -1;
	f.rb = ring_buffer__new(bpf_map__fd(f.skel->maps.tg_events), on_event, &f, NULL);
	if (!f.rb)
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ring_buffer__free(f->rb);
	verdict_test_bpf__destroy(f->skel);
	return 0;
}

static void set_config(struct fixture *f, int log_tls)
{
	struct tg_config cfg = { .log_tls_flows = log_tls };
	__u32 key = 0;

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_config), &key, &cfg, 0), 0);
}

/* The slot of tg_hello_sums a cookie's summary goes to (bpf/lib/maps.bpf.h). */
static __u32 sum_slot(struct fixture *f, __u64 cookie)
{
	return (__u32)cookie & (bpf_map__max_entries(f->skel->maps.tg_hello_sums) - 1);
}

/* No summary kept for @cookie: its slot belongs to nobody. */
static void forget_sum(struct fixture *f, __u64 cookie)
{
	__u32 slot = sum_slot(f, cookie);
	__u64 none = 0;

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_hello_sum_owner), &slot, &none, 0), 0);
}

/* A later flow (the next cookie with the same slot) takes @cookie's summary slot. */
static void give_sum_slot_away(struct fixture *f, __u64 cookie)
{
	__u32 slot = sum_slot(f, cookie);
	__u64 other = cookie + bpf_map__max_entries(f->skel->maps.tg_hello_sums);

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_hello_sum_owner), &slot,
					     &other, 0), 0);
}

/* The first event names @sni. */
static void assert_event_sni(struct fixture *f, const char *sni)
{
	assert_int_equal(f->events[0].tls.sni_len, strlen(sni));
	assert_memory_equal(f->events[0].tls.sni, sni, strlen(sni));
}

/* A fresh, undecided TLS flow (no minimum version) in the given mode; counters and events reset. */
static void reset_flow(struct fixture *f, int mode, int family)
{
	struct tg_flow flow = { .cookie = 81234, .cgroup_id = 77, .tgid = 4242, .class_id = 1,
				.dport = DPORT, .family = family, .mode = mode,
				.state = TG_FLOW_PENDING, .proto = TG_L7_TLS,
				.hs_flags = TG_HSF_SRV_PREFACE };
	int ncpu = libbpf_num_possible_cpus();
	__u64 zero[ncpu];
	__u32 key = 0;

	memset(zero, 0, sizeof(zero));
	strcpy(flow.comm, "python3");
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.test_flow), &key, &flow, 0), 0);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.test_hs_live), &key, &key, 0), 0);
	forget_sum(f, flow.cookie);
	f->dir = 0;
	f->udp = 0;
	f->tcp_flags = 0;
	f->v6_ext = NULL;
	f->v6_ext_len = 0;
	for (__u32 c = 0; c < TG_CNT__MAX; c++)
		bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_counters), &c, zero, 0);
	ring_buffer__consume(f->rb);
	f->nevents = 0;
	set_config(f, 0);
}

/* Change the undecided flow: protocol, minimum TLS minor, class flags. */
static void set_flow(struct fixture *f, int proto, int min_tls, int cls_flags)
{
	struct tg_flow flow;
	__u32 key = 0;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.test_flow), &key, &flow), 0);
	flow.proto = proto;
	flow.min_tls = min_tls;
	flow.cls_flags = cls_flags;
	if (proto != TG_L7_TLS)
		flow.hs_flags &= ~TG_HSF_SRV_PREFACE;
	if (proto == TG_L7_CONNECT) {
		flow.class_id = 0;
		flow.mode = TG_MODE_AUDIT;
	}
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.test_flow), &key, &flow, 0), 0);
}

static struct tg_hs get_hs(struct fixture *f)
{
	static struct tg_hs hs;
	__u32 key = 0;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.test_hs), &key, &hs), 0);
	return hs;
}

/* What the flow's good ClientHello said, kept by cookie after a hello judged in scratch. */
static struct tg_tls_summary get_sum(struct fixture *f)
{
	static struct tg_tls_summary sum;
	__u64 cookie = 81234, owner = 0;
	__u32 slot = sum_slot(f, cookie);

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.tg_hello_sum_owner), &slot, &owner), 0);
	assert_true(owner == cookie);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.tg_hello_sums), &slot, &sum), 0);
	return sum;
}

static struct tg_flow get_flow(struct fixture *f)
{
	struct tg_flow flow;
	__u32 key = 0;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.test_flow), &key, &flow), 0);
	return flow;
}

static __u64 counter(struct fixture *f, enum tg_counter c)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 vals[ncpu], sum = 0;
	__u32 key = c;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.tg_counters), &key, vals), 0);
	for (int i = 0; i < ncpu; i++)
		sum += vals[i];
	return sum;
}

/*
 * Build eth + IPv4/IPv6 + TCP (or UDP) + payload; returns the frame length.
 * @dir TG_DIR_INGRESS swaps the ends: the server's packet to the workload.
 */
#define PKT_MAX 8192
static const uint8_t *g_v6_ext;	/* build_packet(): IPv6 extension headers to put in */
static size_t g_v6_ext_len;
static uint8_t g_v6_ext_first;

static size_t build_packet(uint8_t *buf, int family, uint32_t seq, const void *payload, size_t len,
			   uint8_t tcp_flags, int dir, int udp)
{
	struct ethhdr *eth = (struct ethhdr *)buf;
	const char *local4 = "10.244.1.7", *remote4 = "198.51.100.10";
	const char *local6 = "2001:db8::7", *remote6 = "2001:db8::10";
	size_t l4len = udp ? sizeof(struct udphdr) : sizeof(struct tcphdr);
	struct tcphdr *th;
	size_t l3;

	if (dir == TG_DIR_INGRESS) {
		local4 = "198.51.100.10", remote4 = "10.244.1.7";
		local6 = "2001:db8::10", remote6 = "2001:db8::7";
	}
	memset(buf, 0, PKT_MAX);
	if (family == AF_INET) {
		struct iphdr *ip = (struct iphdr *)(eth + 1);

		eth->h_proto = htons(ETH_P_IP);
		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		ip->protocol = udp ? IPPROTO_UDP : IPPROTO_TCP;
		ip->tot_len = htons(sizeof(*ip) + l4len + len);
		inet_pton(AF_INET, local4, &ip->saddr);
		inet_pton(AF_INET, remote4, &ip->daddr);
		l3 = sizeof(*ip);
	} else {
		struct ipv6hdr *ip6 = (struct ipv6hdr *)(eth + 1);

		eth->h_proto = htons(ETH_P_IPV6);
		ip6->version = 6;
		ip6->nexthdr = udp ? IPPROTO_UDP : IPPROTO_TCP;
		ip6->hop_limit = 64;
		ip6->payload_len = htons(l4len + len + g_v6_ext_len);
		inet_pton(AF_INET6, local6, &ip6->saddr);
		inet_pton(AF_INET6, remote6, &ip6->daddr);
		l3 = sizeof(*ip6);
		if (g_v6_ext_len) {
			ip6->nexthdr = g_v6_ext_first;
			memcpy((uint8_t *)(ip6 + 1), g_v6_ext, g_v6_ext_len);
			l3 += g_v6_ext_len;
		}
	}
	if (udp) {
		struct udphdr *uh = (struct udphdr *)((uint8_t *)(eth + 1) + l3);

		uh->source = htons(dir == TG_DIR_INGRESS ? DPORT : SPORT);
		uh->dest = htons(dir == TG_DIR_INGRESS ? SPORT : DPORT);
		uh->len = htons(sizeof(*uh) + len);
		if (len)
			memcpy((uint8_t *)(uh + 1), payload, len);
		return sizeof(*eth) + l3 + sizeof(*uh) + len;
	}
	th = (struct tcphdr *)((uint8_t *)(eth + 1) + l3);
	th->source = htons(dir == TG_DIR_INGRESS ? DPORT : SPORT);
	th->dest = htons(dir == TG_DIR_INGRESS ? SPORT : DPORT);
	th->seq = htonl(seq);
	th->doff = 5;
	((uint8_t *)th)[13] = tcp_flags;
	th->window = htons(65535);
	if (len)
		memcpy((uint8_t *)(th + 1), payload, len);
	return sizeof(*eth) + l3 + sizeof(*th) + len;
}

static int run(struct fixture *f, int family, uint32_t seq, const void *payload, size_t len)
{
	/* 2 bytes in, so the IP header after the 14-byte Ethernet header is aligned */
	static uint8_t storage[PKT_MAX + 4] __attribute__((aligned(4)));
	uint8_t *pkt = storage + 2;
	uint8_t flags = f->tcp_flags ? f->tcp_flags : len ? 0x18 : 0x10;
	size_t n;

	g_v6_ext = f->v6_ext;
	g_v6_ext_len = f->v6_ext_len;
	g_v6_ext_first = f->v6_ext_first;
	n = build_packet(pkt, family, seq, payload, len, flags, f->dir, f->udp);
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = n, .repeat = 1);
	struct bpf_program *prog = f->dir == TG_DIR_INGRESS ? f->skel->progs.test_ingress :
							      f->skel->progs.test_egress;

	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(prog), &opts), 0);
	ring_buffer__consume(f->rb);
	return opts.retval;
}

/* The client's first record after the server's hello in TLS 1.3: its compatibility CCS. */
static const uint8_t client_ccs[6] = { 0x14, 0x03, 0x03, 0x00, 0x01, 0x01 };
#define SRV_SEQ 7000u

/*
 * The rest of a good handshake: the server's first flight (its ServerHello
 * at server stream offset @srv_off, from server seq @srv_seq) leaves the
 * flow waiting; the client's next record (at client seq @cseq) decides it.
 */
static void finish_handshake_at(struct fixture *f, int family, uint32_t srv_seq, uint32_t cseq)
{
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, family, srv_seq, hs_server_tls13, hs_server_tls13_len), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	assert_true(get_flow(f).wflags & TG_WF_SH_DONE);
	f->dir = TG_DIR_EGRESS;
	assert_int_equal(run(f, family, cseq, client_ccs, sizeof(client_ccs)), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_TLS);
}

static void finish_handshake(struct fixture *f, int family, uint32_t cseq)
{
	finish_handshake_at(f, family, SRV_SEQ, cseq);
}

static void assert_plaintext(struct fixture *f, int n, uint8_t side, uint8_t reason)
{
	assert_int_equal(f->nevents, n);
	assert_int_equal(f->events[n - 1].type, TG_EV_PLAINTEXT);
	assert_int_equal(f->events[n - 1].tls.side, side);
	assert_int_equal(f->events[n - 1].reason, reason);
}

static void test_v4_client_hello_passes(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	/* a good hello decides nothing yet: the server's hello and the records after do */
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	assert_int_equal(get_flow(f).cw.next, CH_LEN);
	assert_int_equal(counter(f, TG_CNT_VERDICT_TLS), 0);
	finish_handshake(f, AF_INET, SEQ0 + CH_LEN);
	assert_int_equal(counter(f, TG_CNT_VERDICT_TLS), 1);
	assert_int_equal(counter(f, TG_CNT_SERVER_HELLO), 1);
	assert_int_equal(f->nevents, 0);	/* log_tls_flows is off */
}

static void test_v4_http_blocked_in_enforce(void **state)
{
	struct fixture *f = *state;
	struct tg_event *ev;
	char saddr[INET_ADDRSTRLEN];

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, http_get, strlen(http_get)), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
	assert_int_equal(counter(f, TG_CNT_PLAINTEXT_BLOCKED), 1);
	assert_int_equal(f->nevents, 1);
	ev = &f->events[0];
	assert_int_equal(ev->type, TG_EV_PLAINTEXT);
	assert_int_equal(ev->action, TG_ACT_BLOCKED);
	assert_int_equal(ev->sport, SPORT);
	assert_int_equal(ev->dport, DPORT);
	assert_int_equal(ev->tgid, 4242);
	assert_int_equal(ev->cookie, 81234);
	assert_string_equal(ev->comm, "python3");
	assert_int_equal(ev->payload_len, strlen(http_get));
	assert_int_equal(ev->segment_len, strlen(http_get));
	assert_memory_equal(ev->payload, http_get, strlen(http_get));
	assert_non_null(inet_ntop(AF_INET, ev->saddr + 12, saddr, sizeof(saddr)));
	assert_string_equal(saddr, "10.244.1.7");
}

static void test_v4_http_flagged_in_audit(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, http_get, strlen(http_get)), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_FLAGGED);
	assert_int_equal(counter(f, TG_CNT_PLAINTEXT_FLAGGED), 1);
	assert_int_equal(f->nevents, 1);
	assert_int_equal(f->events[0].action, TG_ACT_FLAGGED);
	/* flagged once: the rest of the flow passes without a second event */
	assert_int_equal(run(f, AF_INET, SEQ0 + strlen(http_get), http_get, strlen(http_get)), PASS);
	assert_int_equal(f->nevents, 1);
}

static void test_blocked_flow_drops_payload_passes_control(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, http_get, strlen(http_get)), DROP);
	/* the retransmission and later data: dropped and counted */
	assert_int_equal(run(f, AF_INET, SEQ0, http_get, strlen(http_get)), DROP);
	assert_int_equal(run(f, AF_INET, SEQ0 + 70, "more", 4), DROP);
	assert_int_equal(counter(f, TG_CNT_SEGMENTS_DROPPED), 3);
	/* RST/ACK without payload still go out so both ends can tear down */
	assert_int_equal(run(f, AF_INET, SEQ0, NULL, 0), PASS);
	assert_int_equal(f->nevents, 1);
}

static void test_decided_tls_flow_never_reparsed(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	finish_handshake(f, AF_INET, SEQ0 + CH_LEN);
	assert_int_equal(run(f, AF_INET, SEQ0 + 300, http_get, strlen(http_get)), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_TLS);
	assert_int_equal(counter(f, TG_CNT_PLAINTEXT_BLOCKED), 0);
}

/* Set both scratch slots' user counts on every CPU (1: in use elsewhere, 0: free). */
static void set_scratch_users(struct fixture *f, __u64 users)
{
	int ncpu = libbpf_num_possible_cpus();
	__u64 vals[ncpu];

	for (int c = 0; c < ncpu; c++)
		vals[c] = users;
	for (__u32 slot = 0; slot < TG_HS_SCRATCH_SLOTS_TEST; slot++)
		assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_hs_scratch_users),
						     &slot, vals, 0), 0);
}

/*
 * A hello in one segment is judged in scratch: nothing is kept for the
 * flow, its summary is kept by cookie. Only a segment that leaves the hello
 * incomplete keeps state. With every scratch slot taken (nested use), the
 * segment is held back in enforce and passed in audit, never judged on
 * another user's bytes.
 */
static void test_hello_judged_in_scratch(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	assert_int_equal(get_flow(f).hs_flags & TG_HSF_HS_STORED, 0);
	assert_int_equal(counter(f, TG_CNT_HS_KEPT), 0);
	assert_int_equal(get_sum(f).offered, 0x0304);
	finish_handshake_at(f, AF_INET, SRV_SEQ, SEQ0 + CH_LEN);
	assert_int_equal(get_flow(f).state, TG_FLOW_TLS);
	assert_int_equal(counter(f, TG_CNT_HS_KEPT), 0);
	assert_int_equal(get_flow(f).wflags & TG_WF_SUM_KEPT, 0);	/* dropped at the verdict */

	/* split: the first part is kept, the second judged from that copy */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, 100), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_PENDING);
	assert_int_not_equal(get_flow(f).hs_flags & TG_HSF_HS_STORED, 0);
	assert_int_equal(counter(f, TG_CNT_HS_KEPT), 1);
	assert_int_equal(get_hs(f).have, 100);
	assert_int_equal(run(f, AF_INET, SEQ0 + 100, client_hello + 100, CH_LEN - 100), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	assert_int_equal(get_flow(f).hs_flags & TG_HSF_HS_STORED, 0);

	/* every slot taken: plaintext is held back in enforce, not judged on stale bytes */
	set_scratch_users(f, 1);
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, "GET / HTTP/1.1\r\n\r\n", 18), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_PENDING);
	assert_int_equal(counter(f, TG_CNT_HS_SCRATCH_BUSY), 1);
	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	assert_int_equal(counter(f, TG_CNT_HS_SCRATCH_BUSY), 1);
	set_scratch_users(f, 0);
	/* free again: the retransmission is judged */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, "GET / HTTP/1.1\r\n\r\n", 18), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
	assert_int_equal(counter(f, TG_CNT_HS_SCRATCH_BUSY), 0);
}

static void test_syn_and_ack_leave_flow_pending(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0 - 1, NULL, 0), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_PENDING);
	assert_int_equal(get_flow(f).hs_flags & TG_HSF_STARTED, 0);
}

/*
 * Segments without payload between the two hellos (the client's ACK of the
 * server's first bytes, the server's bare ACK, SYN-ACK, RST are such) pass
 * without a parse (tg_tcp_bare()) and change nothing: the server's stream
 * still starts at its first payload byte, and the hellos decide as before.
 */
static void test_bare_segments_between_hellos(void **state)
{
	struct fixture *f = *state;
	struct tg_flow before, after;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	before = get_flow(f);
	assert_int_equal(before.state, TG_FLOW_SERVER_HELLO);
	f->dir = TG_DIR_INGRESS;
	f->tcp_flags = 0x12;	/* SYN-ACK, late: a bare segment like any other */
	assert_int_equal(run(f, AF_INET, SRV_SEQ - 1, NULL, 0), PASS);
	f->tcp_flags = 0;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, NULL, 0), PASS);
	f->dir = TG_DIR_EGRESS;
	assert_int_equal(run(f, AF_INET, SEQ0 + CH_LEN, NULL, 0), PASS);
	after = get_flow(f);
	assert_memory_equal(&after, &before, sizeof(before));
	assert_int_equal(after.hs_flags & TG_HSF_SRV_STARTED, 0);
	finish_handshake(f, AF_INET, SEQ0 + CH_LEN);
	assert_int_equal(f->nevents, 0);
	/* the same before a plaintext request: it is still judged, and blocked */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET6);
	assert_int_equal(run(f, AF_INET6, SEQ0 - 1, NULL, 0), PASS);
	assert_int_equal(run(f, AF_INET6, SEQ0, http_get, strlen(http_get)), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
}

static void test_split_client_hello_one_byte_writes(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	for (size_t i = 0; i + 1 < CH_LEN; i++) {
		assert_int_equal(run(f, AF_INET, SEQ0 + i, &client_hello[i], 1), PASS);
		assert_int_equal(get_flow(f).state, TG_FLOW_PENDING);
		assert_int_equal(get_hs(f).have, i + 1);
	}
	assert_int_equal(run(f, AF_INET, SEQ0 + CH_LEN - 1, &client_hello[CH_LEN - 1], 1), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	finish_handshake(f, AF_INET, SEQ0 + CH_LEN);
	assert_int_equal(counter(f, TG_CNT_PARTIAL_PREFIX), CH_LEN - 1);
	assert_int_equal(counter(f, TG_CNT_HELLO_SPLIT), 1);
}

static void test_split_then_retransmit_overlapping(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, 2), PASS);
	/* retransmission of the same two bytes: nothing new */
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, 2), PASS);
	assert_int_equal(get_hs(f).have, 2);
	/* a coalesced retransmission from the start with the rest */
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	/* and once more: the walk has passed it, nothing is judged twice */
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	finish_handshake(f, AF_INET, SEQ0 + CH_LEN);
}

static void test_split_plaintext_blocked_on_first_bad_byte(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, "\x16", 1), PASS);
	assert_int_equal(run(f, AF_INET, SEQ0 + 1, "\x03\x09 hello", 8), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
	assert_int_equal(f->nevents, 1);
	/* the event carries the collected prefix, not the second segment alone */
	assert_int_equal(f->events[0].payload[0], 0x16);
}

static void test_gap_before_prefix_complete_is_dropped(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, 2), PASS);
	assert_int_equal(run(f, AF_INET, SEQ0 + 10, "GET / HTTP/1.1\r\n", 16), DROP);
	assert_int_equal(counter(f, TG_CNT_OUT_OF_ORDER), 1);
	assert_int_equal(get_flow(f).state, TG_FLOW_PENDING);
}

static void test_not_a_client_hello(void **state)
{
	struct fixture *f = *state;
	static const uint8_t cases[][6] = {
		{ 0x16, 0x03, 0x05, 0x00, 0xc8, 0x01 },	/* record version 0x0305 */
		{ 0x16, 0x03, 0x00, 0x00, 0xc8, 0x01 },	/* SSL 3.0 */
		{ 0x16, 0x03, 0x03, 0x00, 0xc8, 0x02 },	/* ServerHello */
		{ 0x16, 0x03, 0x01, 0x00, 0x00, 0x01 },	/* empty record */
		{ 0x16, 0x03, 0x01, 0x41, 0x00, 0x01 },	/* longer than 2^14 */
		{ 0x17, 0x03, 0x03, 0x00, 0x20, 0x01 },	/* application data first */
		{ 0x80, 0x2e, 0x01, 0x03, 0x01, 0x00 },	/* SSLv2 hello */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		reset_flow(f, TG_MODE_ENFORCE, AF_INET);
		assert_int_equal(run(f, AF_INET, SEQ0, cases[i], 6), DROP);
		assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
	}
}

static void test_log_tls_flows_emits_allowed_event(void **state)
{
	struct fixture *f = *state;
	struct tg_event *ev;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_config(f, 1);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	/* logged with what was negotiated: the ServerHello comes first */
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	assert_int_equal(f->nevents, 0);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, 5000, hs_server_tls13, hs_server_tls13_len), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	assert_int_equal(f->nevents, 0);
	f->dir = TG_DIR_EGRESS;
	assert_int_equal(run(f, AF_INET, SEQ0 + CH_LEN, client_ccs, sizeof(client_ccs)), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_TLS);
	assert_int_equal(f->nevents, 1);
	ev = &f->events[0];
	assert_int_equal(ev->type, TG_EV_TLS);
	assert_int_equal(ev->action, TG_ACT_ALLOWED);
	assert_int_equal(ev->tls.negotiated, 0x0304);
	assert_int_equal(ev->tls.offered, 0x0304);
	assert_int_equal(ev->tls.sni_len, strlen("storage.test"));
	assert_memory_equal(ev->tls.sni, "storage.test", ev->tls.sni_len);
	assert_int_equal(ev->sport, SPORT);
	assert_int_equal(ev->payload_len, 0);	/* the buffer holds the server's bytes by then */
	assert_int_equal(counter(f, TG_CNT_SERVER_HELLO), 1);
}

static void test_v6_client_hello_passes(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET6);
	assert_int_equal(run(f, AF_INET6, SEQ0, client_hello, CH_LEN), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	finish_handshake(f, AF_INET6, SEQ0 + CH_LEN);
}

static void test_v6_http_blocked(void **state)
{
	struct fixture *f = *state;
	char saddr[INET6_ADDRSTRLEN];

	reset_flow(f, TG_MODE_ENFORCE, AF_INET6);
	assert_int_equal(run(f, AF_INET6, SEQ0, http_get, strlen(http_get)), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
	assert_int_equal(f->nevents, 1);
	assert_non_null(inet_ntop(AF_INET6, f->events[0].saddr, saddr, sizeof(saddr)));
	assert_string_equal(saddr, "2001:db8::7");
	assert_int_equal(f->events[0].sport, SPORT);
}

static void test_v6_http_flagged_in_audit(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_AUDIT, AF_INET6);
	assert_int_equal(run(f, AF_INET6, SEQ0, http_get, strlen(http_get)), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_FLAGGED);
	assert_int_equal(f->events[0].action, TG_ACT_FLAGGED);
}

static void test_payload_capture_is_bounded(void **state)
{
	struct fixture *f = *state;
	char big[1200];

	memset(big, 'A', sizeof(big));
	memcpy(big, "PUT /x HTTP/1.1\r\n", 17);
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, big, sizeof(big)), DROP);
	assert_int_equal(f->events[0].payload_len, TG_PAYLOAD_MAX);
	assert_int_equal(f->events[0].segment_len, sizeof(big));
}


/* ---- handshake verdicts --------------------------------------------------- */

static void test_weak_client_blocked_in_enforce(void **state)
{
	struct fixture *f = *state;
	struct tg_event *ev;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_TLS, 3, 0);		/* min_tls_version 1.2 */
	assert_int_equal(run(f, AF_INET, SEQ0, hs_client_openssl_tls11, hs_client_openssl_tls11_len),
			 DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
	assert_int_equal(counter(f, TG_CNT_WEAK_TLS_BLOCKED), 1);
	assert_int_equal(f->nevents, 1);
	ev = &f->events[0];
	assert_int_equal(ev->type, TG_EV_WEAK_TLS);
	assert_int_equal(ev->action, TG_ACT_BLOCKED);
	assert_int_equal(ev->tls.side, TG_SIDE_CLIENT);
	assert_int_equal(ev->tls.offered, 0x0302);
	assert_int_equal(ev->tls.min, 0x0303);
	assert_memory_equal(ev->tls.sni, "storage.test", 12);
	/* nothing more of the flow goes out, not even the retransmission */
	assert_int_equal(run(f, AF_INET, SEQ0, hs_client_openssl_tls11, hs_client_openssl_tls11_len),
			 DROP);
}

static void test_weak_client_flagged_in_audit(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_AUDIT, AF_INET6);
	set_flow(f, TG_L7_TLS, 3, 0);
	assert_int_equal(run(f, AF_INET6, SEQ0, hs_client_openssl_tls11, hs_client_openssl_tls11_len),
			 PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_FLAGGED);
	assert_int_equal(counter(f, TG_CNT_WEAK_TLS_FLAGGED), 1);
	assert_int_equal(f->events[0].action, TG_ACT_FLAGGED);
}

/* A client offering up to 1.3 whose server settles for 1.1: the server side is weak. */
static void test_weak_server_blocked_on_ingress(void **state)
{
	struct fixture *f = *state;
	struct tg_event *ev;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_TLS, 3, 0);
	assert_int_equal(run(f, AF_INET, SEQ0, hs_client_curl, hs_client_curl_len), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, 7000, hs_server_tls11, hs_server_tls11_len), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
	assert_int_equal(f->nevents, 1);
	ev = &f->events[0];
	assert_int_equal(ev->type, TG_EV_WEAK_TLS);
	assert_int_equal(ev->tls.side, TG_SIDE_SERVER);
	assert_int_equal(ev->tls.negotiated, 0x0302);
	assert_int_equal(ev->tls.offered, 0x0304);
	assert_memory_equal(ev->tls.sni, "acct.blob.core.windows.net", 26);
	/* the client's next flight never leaves */
	f->dir = TG_DIR_EGRESS;
	assert_int_equal(run(f, AF_INET, SEQ0 + hs_client_curl_len, "\x16\x03\x03\x00\x05hello", 10),
			 DROP);
}

static void test_tls13_server_allowed(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_TLS, 4, 0);		/* min 1.3 */
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	f->dir = TG_DIR_INGRESS;
	/* the ServerHello split in two segments */
	assert_int_equal(run(f, AF_INET, 7000, hs_server_tls13, 40), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	assert_int_equal(run(f, AF_INET, 7040, hs_server_tls13 + 40, hs_server_tls13_len - 40), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	f->dir = TG_DIR_EGRESS;
	assert_int_equal(run(f, AF_INET, SEQ0 + CH_LEN, client_ccs, sizeof(client_ccs)), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_TLS);
	assert_int_equal(f->nevents, 0);
}

/* Names as the agent writes them: keyed hash per class and for any class. */
static void add_name(struct fixture *f, const char *name, int class_id)
{
	struct tg_sipkey key = { .k0 = 0x1111, .k1 = 0x2222 };
	struct tg_name_key k = { 0 };
	struct tg_name_value v = { .class_id = class_id };
	uint8_t buf[TG_NAME_BUF] = { 0 };
	__u32 zero = 0;

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_sipkey), &zero, &key, 0), 0);
	if (!strncmp(name, "*.", 2)) {
		name++;
		k.flags = TG_NAME_WILDCARD;
	}
	memcpy(buf, name, strlen(name));
	k.hash = tg_siphash(&key, buf, strlen(name));
	k.class_id = class_id;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_names), &k, &v, 0), 0);
	k.class_id = TG_NAME_ANY_CLASS;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_names), &k, &v, 0), 0);
}

static void clear_names(struct fixture *f)
{
	struct tg_name_key k, next;
	int fd = bpf_map__fd(f->skel->maps.tg_names);

	while (!bpf_map_get_next_key(fd, NULL, &next)) {
		k = next;
		bpf_map_delete_elem(fd, &k);
	}
}

static void test_sni_binding(void **state)
{
	struct fixture *f = *state;

	clear_names(f);
	add_name(f, "acct.blob.core.windows.net", 1);
	/* exact name: allowed */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_TLS, 0, TG_CLS_SNI_BIND);
	assert_int_equal(run(f, AF_INET, SEQ0, hs_client_curl, hs_client_curl_len), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);	/* the client passed */
	/* another name on the same address: blocked */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_TLS, 0, TG_CLS_SNI_BIND);
	assert_int_equal(run(f, AF_INET, SEQ0, hs_client_openssl_tls13, hs_client_openssl_tls13_len),
			 DROP);
	assert_int_equal(f->nevents, 1);
	assert_int_equal(f->events[0].type, TG_EV_SNI_MISMATCH);
	assert_int_equal(f->events[0].tls.sni_result, TG_SNI_MISMATCH);
	assert_int_equal(counter(f, TG_CNT_SNI_MISMATCH_BLOCKED), 1);
	/* a wildcard stands for one or more labels (as DNS learning matches) */
	clear_names(f);
	add_name(f, "*.blob.core.windows.net", 1);
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_TLS, 0, TG_CLS_SNI_BIND);
	assert_int_equal(run(f, AF_INET, SEQ0, hs_client_curl, hs_client_curl_len), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);	/* the client passed */
	clear_names(f);
	add_name(f, "*.core.windows.net", 1);
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_TLS, 0, TG_CLS_SNI_BIND);
	assert_int_equal(run(f, AF_INET, SEQ0, hs_client_curl, hs_client_curl_len), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);	/* the client passed */
	/* never the bare name nor a partial label: only whole labels before a listed suffix */
	clear_names(f);
	add_name(f, "*.acct.blob.core.windows.net", 1);
	add_name(f, "*.windows.com", 1);
	add_name(f, "*.ct.blob.core.windows.net", 1);
	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	set_flow(f, TG_L7_TLS, 0, TG_CLS_SNI_BIND);
	assert_int_equal(run(f, AF_INET, SEQ0, hs_client_curl, hs_client_curl_len), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_FLAGGED);
	assert_int_equal(f->events[0].type, TG_EV_SNI_MISMATCH);
	/* the class for another id does not count */
	clear_names(f);
	add_name(f, "acct.blob.core.windows.net", 2);
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_TLS, 0, TG_CLS_SNI_BIND);
	assert_int_equal(run(f, AF_INET, SEQ0, hs_client_curl, hs_client_curl_len), DROP);
	clear_names(f);
}

/*
 * tg_name_class() against a reference matcher written from docs/policy.md's
 * rules: an exact entry first, then "*.suffix" entries longest first (one or
 * more whole labels before the suffix, at most 16 suffixes tried), only
 * ASCII, A-Z lower-cased, the class asked for or any class. Thousands of
 * seeded names of every length up to 255, at odd offsets in the buffer, so
 * a suffix hashed from the wrong bytes or the wrong padding shows.
 */
static int run_prog(struct bpf_program *prog);

struct name_entry {
	const char *name;	/* "*.x" for a wildcard */
	int class_id;
};

static const struct name_entry name_entries[] = {
	{ "acct.blob.core.windows.net", 1 },
	{ "*.blob.core.windows.net", 1 },
	{ "*.core.windows.net", 3 },
	{ "*.azurecr.io", 2 },
	{ "registry.azurecr.io.", 4 },
	{ "*.a", 4 },
	{ "*.b.c", 5 },
	{ "x.y", 2 },
	{ "*.abcdefg.hijklmn", 6 },	/* 7-byte labels: suffix ends on and off word edges */
	{ "*.abcdefgh.ijklmnop", 6 },
	{ "*.l15.l14.l13.l12.l11.l10.l9.l8.l7.l6.l5.l4.l3.l2.l1", 7 },
};

struct test_name_in {
	__u32 off, len, class_id;
	__u8 bytes[TG_SNI_MAX + 1];
};

static int entry_class(const char *cand, size_t n, int wildcard, __u32 class_id)
{
	for (size_t e = 0; e < sizeof(name_entries) / sizeof(name_entries[0]); e++) {
		const char *en = name_entries[e].name;
		int is_wild = !strncmp(en, "*.", 2);

		if (is_wild != wildcard)
			continue;
		if (is_wild)
			en++;
		if (strlen(en) == n && !memcmp(en, cand, n) &&
		    (class_id == TG_NAME_ANY_CLASS || (__u32)name_entries[e].class_id == class_id))
			return name_entries[e].class_id;
	}
	return 0;
}

static int reference_name_class(const __u8 *raw, size_t len, __u32 class_id)
{
	char name[TG_SNI_MAX + 1];
	size_t pos = 0;
	int c;

	if (len == 0 || len > TG_SNI_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (raw[i] >= 0x80)
			return 0;
		name[i] = raw[i] >= 'A' && raw[i] <= 'Z' ? raw[i] + 32 : raw[i];
	}
	c = entry_class(name, len, 0, class_id);
	if (c)
		return c;
	for (int tries = 0; tries < 16; tries++) {
		size_t d = pos + 1;

		while (d < len && name[d] != '.')
			d++;
		if (d >= len || d + 1 >= len)
			return 0;
		c = entry_class(name + d, len - d, 1, class_id);
		if (c)
			return c;
		pos = d;
	}
	return 0;
}

static uint32_t name_rng(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(*s >> 33);
}

/* A random name: labels (some upper-cased, some odd bytes) before one of the entries' suffixes. */
static size_t random_name(uint64_t *rng, __u8 *out)
{
	static const char *const tails[] = {
		"blob.core.windows.net", "core.windows.net", "windows.net", "azurecr.io", "a", "b.c",
		"c", "x.y", "abcdefg.hijklmn", "abcdefgh.ijklmnop", "hijklmn", "acct.blob.core.windows.net",
		"registry.azurecr.io.", "l15.l14.l13.l12.l11.l10.l9.l8.l7.l6.l5.l4.l3.l2.l1",
		"l14.l13.l12.l11.l10.l9.l8.l7.l6.l5.l4.l3.l2.l1", "",
	};
	static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
	const char *tail = tails[name_rng(rng) % (sizeof(tails) / sizeof(tails[0]))];
	size_t n = 0, labels = name_rng(rng) % 20, tl = strlen(tail);

	for (size_t l = 0; l < labels; l++) {
		size_t ll = name_rng(rng) % 12;		/* 0: an empty label ("..") */

		if (name_rng(rng) % 8 == 0)
			ll = name_rng(rng) % 64;
		if (n + ll + 1 + tl > TG_SNI_MAX + 8)
			break;
		for (size_t k = 0; k < ll; k++)
			out[n++] = alphabet[name_rng(rng) % (sizeof(alphabet) - 1)];
		out[n++] = '.';
	}
	memcpy(out + n, tail, tl);
	n += tl;
	if (tl == 0 && n)
		n--;		/* the name ends with its last label */
	for (size_t k = 0; k < n; k++) {
		uint32_t r = name_rng(rng) % 64;

		if (r == 0 && out[k] >= 'a' && out[k] <= 'z')
			out[k] -= 32;		/* "ACCT.Blob.core..." */
		else if (r == 1 && name_rng(rng) % 16 == 0)
			out[k] = 0x80 | (name_rng(rng) & 0x7f);	/* not ASCII: matches nothing */
	}
	return n;
}

static int bpf_name_class(struct fixture *f, const __u8 *name, size_t len, __u32 off, __u32 class_id)
{
	struct test_name_in in = { .off = off, .len = (__u32)len, .class_id = class_id };
	__u32 key = 0;
	__s32 out = -1;

	memcpy(in.bytes, name, len < sizeof(in.bytes) ? len : sizeof(in.bytes));
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.test_name_in), &key, &in, 0), 0);
	assert_int_equal(run_prog(f->skel->progs.test_name_class), PASS);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.test_name_out), &key, &out), 0);
	return out;
}

static void test_name_class_matches_reference(void **state)
{
	struct fixture *f = *state;
	uint64_t rng = 20261207;
	int matched = 0, by_class = 0;
	__u8 name[TG_SNI_MAX + 16];

	clear_names(f);
	for (size_t e = 0; e < sizeof(name_entries) / sizeof(name_entries[0]); e++)
		add_name(f, name_entries[e].name, name_entries[e].class_id);
	for (int i = 0; i < 6000; i++) {
		size_t len = random_name(&rng, name);
		__u32 off = name_rng(&rng) % 256;
		__u32 cls = name_rng(&rng) % 3 ? TG_NAME_ANY_CLASS : 1 + name_rng(&rng) % 7;
		int want = reference_name_class(name, len, cls);
		int got = bpf_name_class(f, name, len, off, cls);

		if (got != want)
			fail_msg("name \"%.*s\" (%zu bytes at %u), class %u: kernel %d, reference %d",
				 (int)len, (const char *)name, len, off, cls, got, want);
		matched += want != 0;
		by_class += want != 0 && cls != TG_NAME_ANY_CLASS;
	}
	/* the seeded names cover both answers, for any class and for one */
	assert_true(matched > 600);
	assert_true(by_class > 50);
	clear_names(f);
}

static void test_missing_sni(void **state)
{
	struct fixture *f = *state;

	/* without require_sni a hello without SNI is fine */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_TLS, 0, TG_CLS_SNI_BIND);
	assert_int_equal(run(f, AF_INET, SEQ0, hs_client_openssl_nosni, hs_client_openssl_nosni_len),
			 PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);	/* the client passed */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_TLS, 0, TG_CLS_SNI_BIND | TG_CLS_REQUIRE_SNI);
	assert_int_equal(run(f, AF_INET, SEQ0, hs_client_openssl_nosni, hs_client_openssl_nosni_len),
			 DROP);
	assert_int_equal(f->events[0].type, TG_EV_SNI_MISMATCH);
	assert_int_equal(f->events[0].tls.sni_result, TG_SNI_MISSING);
}

/* The curl hello in records of 100 handshake bytes, all in one segment. */
static void test_hello_split_over_records(void **state)
{
	struct fixture *f = *state;
	uint8_t b[1024];
	size_t msg = hs_client_curl_len - 5, o = 0;

	for (size_t p = 0; p < msg; p += 100) {
		size_t l = msg - p < 100 ? msg - p : 100;

		memcpy(b + o, "\x16\x03\x01", 3);
		b[o + 3] = l >> 8;
		b[o + 4] = l & 0xff;
		memcpy(b + o + 5, hs_client_curl + 5 + p, l);
		o += 5 + l;
	}
	clear_names(f);
	add_name(f, "acct.blob.core.windows.net", 1);
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_TLS, 3, TG_CLS_SNI_BIND);
	/* and in two TCP segments, cut inside a record header */
	assert_int_equal(run(f, AF_INET, SEQ0, b, 107), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_PENDING);
	assert_int_equal(run(f, AF_INET, SEQ0 + 107, b + 107, o - 107), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	/* a plain TLS flow keeps no state past its hello: the summary is kept by cookie */
	assert_int_equal(get_flow(f).hs_flags & TG_HSF_HS_STORED, 0);
	assert_int_equal(get_sum(f).sni_result, TG_SNI_MATCH);
	clear_names(f);
}

static const uint8_t pg_sslrequest[8] = { 0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f };

static void test_postgres_sslrequest_then_tls(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_POSTGRES, 3, 0);
	assert_int_equal(run(f, AF_INET, SEQ0, pg_sslrequest, 8), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_PENDING);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, 9000, "S", 1), PASS);
	assert_int_equal(get_flow(f).srv_tls_off, 1);
	f->dir = TG_DIR_EGRESS;
	assert_int_equal(run(f, AF_INET, SEQ0 + 8, client_hello, CH_LEN), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	assert_int_equal(get_flow(f).tls_off, 8);
	finish_handshake_at(f, AF_INET, 9001, SEQ0 + 8 + CH_LEN);
	assert_int_equal(f->nevents, 0);
}

static void test_postgres_startup_is_plaintext(void **state)
{
	struct fixture *f = *state;
	static const uint8_t startup[] = { 0, 0, 0, 0x29, 0, 3, 0, 0, 'u', 's', 'e', 'r', 0,
					   'p', 'o', 's', 't', 'g', 'r', 'e', 's', 0, 0 };

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_POSTGRES, 3, 0);
	assert_int_equal(run(f, AF_INET, SEQ0, startup, sizeof(startup)), DROP);
	assert_int_equal(f->events[0].type, TG_EV_PLAINTEXT);
	assert_int_equal(f->events[0].tls.l7, TG_L7_POSTGRES);
	/* after the server refused SSL ('N'), the startup in the clear */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_POSTGRES, 3, 0);
	assert_int_equal(run(f, AF_INET, SEQ0, pg_sslrequest, 8), PASS);
	assert_int_equal(run(f, AF_INET, SEQ0 + 8, startup, sizeof(startup)), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
}

static void test_mysql_ssl_request_then_tls(void **state)
{
	struct fixture *f = *state;
	uint8_t greeting[80] = { 76, 0, 0, 0, 10, '1', '0', '.', '1', '1', 0 };
	uint8_t b[36 + 300] = { 32, 0, 0, 1, 0x00, 0x0a, 0, 0 };	/* PROTOCOL_41 | SSL */

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_MYSQL, 3, 0);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, 9000, greeting, sizeof(greeting)), PASS);
	assert_int_equal(get_flow(f).srv_tls_off, 80);
	f->dir = TG_DIR_EGRESS;
	memcpy(b + 36, client_hello, CH_LEN);	/* SSL request and hello in one segment */
	assert_int_equal(run(f, AF_INET, SEQ0, b, 36 + CH_LEN), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	finish_handshake_at(f, AF_INET, 9080, SEQ0 + 36 + CH_LEN);
	/* a HandshakeResponse without CLIENT_SSL: the user name in the clear */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_MYSQL, 3, 0);
	b[0] = 80;
	b[5] = 0x02;
	assert_int_equal(run(f, AF_INET, SEQ0, b, 84), DROP);
	assert_int_equal(f->events[0].tls.l7, TG_L7_MYSQL);
}

static void test_tds_prelogin_then_tls(void **state)
{
	struct fixture *f = *state;
	static const uint8_t prelogin[26] = {
		0x12, 0x01, 0x00, 0x1a, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0b, 0x00, 0x06,
		0x01, 0x00, 0x11, 0x00, 0x01, 0xff, 0x0f, 0x00, 0x07, 0xd0, 0x00, 0x00, 0x01,
	};
	static const uint8_t response[26] = { 0x04, 0x01, 0x00, 0x1a };
	uint8_t b[8 + 300] = { 0x12, 0x01 };

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_TDS, 3, 0);
	assert_int_equal(run(f, AF_INET, SEQ0, prelogin, sizeof(prelogin)), PASS);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, 9000, response, sizeof(response)), PASS);
	assert_int_equal(get_flow(f).srv_tls_off, 26 + 8);
	f->dir = TG_DIR_EGRESS;
	b[2] = (8 + CH_LEN) >> 8;
	b[3] = (8 + CH_LEN) & 0xff;
	memcpy(b + 8, client_hello, CH_LEN);
	assert_int_equal(run(f, AF_INET, SEQ0 + 26, b, 8 + CH_LEN), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	/* ENCRYPT_OFF: plaintext */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_TDS, 3, 0);
	{
		uint8_t off[26];

		memcpy(off, prelogin, 26);
		off[25] = 0x00;
		assert_int_equal(run(f, AF_INET, SEQ0, off, 26), DROP);
		assert_int_equal(f->events[0].tls.l7, TG_L7_TDS);
	}
}

static void set_class(struct fixture *f, __u32 id, int mode, int min_tls)
{
	struct tg_class c = { .mode = mode, .min_tls = min_tls, .protocol = TG_L7_TLS };

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_classes), &id, &c, 0), 0);
}

/* A protected destination (an IPv4 literal), as the agent writes it. */
static void add_dest(struct fixture *f, const char *ip4, int class_id)
{
	struct tg_dest_key k = { .prefixlen = 128 };
	struct tg_dest_value v = { .class_id = class_id };

	k.addr[10] = k.addr[11] = 0xff;
	assert_int_equal(inet_pton(AF_INET, ip4, &k.addr[12]), 1);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_dests), &k, &v, 0), 0);
}

static void clear_dests(struct fixture *f)
{
	struct tg_dest_key k, next;
	int fd = bpf_map__fd(f->skel->maps.tg_dests);

	while (!bpf_map_get_next_key(fd, NULL, &next)) {
		k = next;
		bpf_map_delete_elem(fd, &k);
	}
}

static void test_connect_tunnel(void **state)
{
	struct fixture *f = *state;
	static const char req[] = "CONNECT acct.blob.core.windows.net:80 HTTP/1.1\r\n"
				  "Host: acct.blob.core.windows.net:80\r\n\r\n";
	static const char ok[] = "HTTP/1.0 200 Connection established\r\n\r\n";
	static const char get[] = "GET / HTTP/1.1\r\nHost: acct.blob.core.windows.net\r\n\r\n";
	size_t n = strlen(req);

	clear_names(f);
	add_name(f, "acct.blob.core.windows.net", 1);
	set_class(f, 1, TG_MODE_ENFORCE, 3);
	/* plaintext inside the tunnel: blocked, the class is the tunnel's */
	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	set_flow(f, TG_L7_CONNECT, 0, 0);
	assert_int_equal(run(f, AF_INET, SEQ0, req, n), PASS);
	assert_int_equal(get_flow(f).class_id, 1);
	assert_int_equal(get_flow(f).mode, TG_MODE_ENFORCE);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, 9000, ok, strlen(ok)), PASS);
	f->dir = TG_DIR_EGRESS;
	assert_int_equal(run(f, AF_INET, SEQ0 + n, get, strlen(get)), DROP);
	assert_int_equal(f->events[0].type, TG_EV_PLAINTEXT);
	assert_int_equal(f->events[0].tls.l7, TG_L7_CONNECT);
	assert_int_equal(f->events[0].tls.tls_off, n);
	assert_memory_equal(f->events[0].payload, "CONNECT acct", 12);
	/* TLS inside the tunnel: allowed once the ServerHello is seen */
	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	set_flow(f, TG_L7_CONNECT, 0, 0);
	assert_int_equal(run(f, AF_INET, SEQ0, req, n), PASS);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, 9000, ok, strlen(ok)), PASS);
	f->dir = TG_DIR_EGRESS;
	assert_int_equal(run(f, AF_INET, SEQ0 + n, client_hello, CH_LEN), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	finish_handshake_at(f, AF_INET, 9000 + strlen(ok), SEQ0 + n + CH_LEN);
	/* a host no class names: not ours */
	clear_names(f);
	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	set_flow(f, TG_L7_CONNECT, 0, 0);
	assert_int_equal(run(f, AF_INET, SEQ0, req, n), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_UNTRACKED);
	assert_int_equal(counter(f, TG_CNT_PROXY_UNTRACKED), 1);
	assert_int_equal(run(f, AF_INET, SEQ0 + n, get, strlen(get)), PASS);
	assert_int_equal(f->nevents, 0);
}

/*
 * The host of a CONNECT read as the proxy's resolver will: every form of the
 * protected address, names with a trailing dot or in capitals, IPv6
 * literals (v4-mapped) all take the protected class; a target that cannot
 * be read fails closed where a class enforces.
 */
static void test_connect_host_forms(void **state)
{
	struct fixture *f = *state;
	static const char *const forms[] = {
		"198.51.100.10", "198.51.25610", "3325256714", "0xc633640a", "0306.063.0144.012",
		"0xc6.0x33.0x64.0x0a", "[::ffff:198.51.100.10]", "[::ffff:c633:640a]",
		"[::FFFF:198.51.100.10]", "acct.blob.core.windows.net.", "ACCT.Blob.Core.Windows.NET",
		"acct.blob.core.windows.net..",
	};
	static const char get[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	struct tg_config cfg = { .any_enforce = 1 };
	char req[256];
	__u32 key = 0;
	size_t n;

	clear_names(f);
	add_name(f, "acct.blob.core.windows.net", 1);
	add_dest(f, "198.51.100.10", 1);
	set_class(f, 1, TG_MODE_ENFORCE, 0);
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		reset_flow(f, TG_MODE_AUDIT, AF_INET);
		set_flow(f, TG_L7_CONNECT, 0, 0);
		n = snprintf(req, sizeof(req), "CONNECT %s:80 HTTP/1.1\r\nHost: %s:80\r\n\r\n", forms[i],
			     forms[i]);
		assert_int_equal(run(f, AF_INET, SEQ0, req, n), PASS);
		if (get_flow(f).class_id != 1)
			fail_msg("CONNECT %s: class %u, want 1", forms[i], get_flow(f).class_id);
		assert_int_equal(run(f, AF_INET, SEQ0 + n, get, strlen(get)), DROP);
		/* and as an absolute-form request */
		reset_flow(f, TG_MODE_AUDIT, AF_INET);
		set_flow(f, TG_L7_CONNECT, 0, 0);
		n = snprintf(req, sizeof(req), "GET http://%s/x HTTP/1.1\r\nHost: y\r\n\r\n", forms[i]);
		assert_int_equal(run(f, AF_INET, SEQ0, req, n), DROP);
		assert_int_equal(f->events[0].type, TG_EV_PLAINTEXT);
	}
	/* another address in any of those forms is not ours */
	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	set_flow(f, TG_L7_CONNECT, 0, 0);
	n = snprintf(req, sizeof(req), "CONNECT 198.51.25620:80 HTTP/1.1\r\n\r\n");
	assert_int_equal(run(f, AF_INET, SEQ0, req, n), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_UNTRACKED);
	/* a target that cannot be read: fails closed while a class enforces */
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_config), &key, &cfg, 0), 0);
	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_config), &key, &cfg, 0), 0);
	set_flow(f, TG_L7_CONNECT, 0, 0);
	n = snprintf(req, sizeof(req), "CONNECT [::ffff:198.51.100.10%%25lo]:80 HTTP/1.1\r\n\r\n");
	assert_int_equal(run(f, AF_INET, SEQ0, req, n), DROP);
	assert_int_equal(f->events[0].type, TG_EV_BLOCKED_CONNECT);
	assert_int_equal(f->events[0].reason, TG_CR_PROXY_TARGET);
	assert_int_equal(counter(f, TG_CNT_PROXY_UNFRAMED), 1);
	set_config(f, 0);
	clear_names(f);
	clear_dests(f);
}

/* A keep-alive proxy connection: every request is judged, framed by its head and body. */
static void test_proxy_keepalive_requests(void **state)
{
	struct fixture *f = *state;
	static const char other[] = "GET http://other.test/a HTTP/1.1\r\nHost: other.test\r\n\r\n";
	static const char prot[] = "GET http://acct.blob.core.windows.net/b HTTP/1.1\r\nHost: x\r\n\r\n";
	/* a body that looks like a request: it is not one */
	static const char post[] = "POST http://other.test/up HTTP/1.1\r\nHost: other.test\r\n"
				   "Content-Length: 60\r\n\r\n"
				   "GET http://acct.blob.core.windows.net/ HTTP/1.1\r\nHost: x\r\n\r\n";
	static const char chunked[] = "POST http://other.test/up HTTP/1.1\r\nHost: other.test\r\n"
				      "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
	struct tg_config cfg = { .any_enforce = 1 };
	char b[1024];
	size_t n, o;
	__u32 key = 0;

	assert_int_equal(strlen(post) - (strstr(post, "\r\n\r\n") + 4 - post), 60);
	clear_names(f);
	add_name(f, "acct.blob.core.windows.net", 1);
	set_class(f, 1, TG_MODE_ENFORCE, 0);
	/* one request to an unlisted host, then one to a protected one */
	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	set_flow(f, TG_L7_CONNECT, 0, 0);
	assert_int_equal(run(f, AF_INET, SEQ0, other, strlen(other)), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_PROXY_REQ);
	assert_int_equal(get_flow(f).px.next, strlen(other));
	assert_int_equal(run(f, AF_INET, SEQ0 + strlen(other), prot, strlen(prot)), DROP);
	assert_int_equal(get_flow(f).class_id, 1);
	assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_FIRST_BYTES);
	assert_memory_equal(f->events[0].payload, "GET http://acct", 15);
	assert_int_equal(counter(f, TG_CNT_PROXY_REQUESTS), 1);
	/* pipelined in one segment */
	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	set_flow(f, TG_L7_CONNECT, 0, 0);
	n = snprintf(b, sizeof(b), "%s%s", other, prot);
	assert_int_equal(run(f, AF_INET, SEQ0, b, n), DROP);
	/* a body (its bytes split over segments) is not a request; the one after it is */
	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	set_flow(f, TG_L7_CONNECT, 0, 0);
	n = strlen(post);
	assert_int_equal(run(f, AF_INET, SEQ0, post, n - 30), PASS);
	assert_int_equal(run(f, AF_INET, SEQ0 + n - 30, post + n - 30, 30), PASS);
	assert_int_equal(get_flow(f).px.next, n);
	o = SEQ0 + n;
	assert_int_equal(run(f, AF_INET, o, other, 20), PASS);	/* a head in two pieces */
	assert_int_equal(run(f, AF_INET, o + 20, other + 20, strlen(other) - 20), PASS);
	o += strlen(other);
	assert_int_equal(f->nevents, 0);
	assert_int_equal(run(f, AF_INET, o, prot, strlen(prot)), DROP);
	assert_int_equal(counter(f, TG_CNT_PROXY_REQUESTS), 2);
	/* a chunked body cannot be framed here: fails closed while a class enforces */
	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_config), &key, &cfg, 0), 0);
	set_flow(f, TG_L7_CONNECT, 0, 0);
	assert_int_equal(run(f, AF_INET, SEQ0, chunked, strlen(chunked)), DROP);
	assert_int_equal(f->events[0].type, TG_EV_BLOCKED_CONNECT);
	assert_int_equal(f->events[0].reason, TG_CR_PROXY_TARGET);
	/* a CONNECT to an unlisted host after them: a tunnel, not ours */
	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	set_flow(f, TG_L7_CONNECT, 0, 0);
	n = snprintf(b, sizeof(b), "%sCONNECT other.test:443 HTTP/1.1\r\n\r\n", other);
	assert_int_equal(run(f, AF_INET, SEQ0, b, n), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_UNTRACKED);
	set_config(f, 0);
	clear_names(f);
}

/* TCP Fast Open: the ClientHello (or plaintext) rides on the SYN. */
static void test_fast_open_syn_data(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	f->tcp_flags = 0x02;	/* SYN */
	assert_int_equal(run(f, AF_INET, SEQ0 - 1, client_hello, CH_LEN), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	assert_int_equal(get_flow(f).first_seq, SEQ0);
	f->tcp_flags = 0;
	finish_handshake(f, AF_INET, SEQ0 + CH_LEN);
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	f->tcp_flags = 0x02;
	assert_int_equal(run(f, AF_INET, SEQ0 - 1, http_get, strlen(http_get)), DROP);
	/* the data retransmitted after the handshake (cookie refused) is still dropped */
	f->tcp_flags = 0;
	assert_int_equal(run(f, AF_INET, SEQ0, http_get, strlen(http_get)), DROP);
}

static void test_udp_quic_and_plaintext(void **state)
{
	struct fixture *f = *state;
	uint8_t d[1250] = { 0xc3, 0, 0, 0, 1, 8 };
	struct tg_flow flow;
	__u32 key = 0;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.test_flow), &key, &flow), 0);
	flow.hs_flags |= TG_HSF_UDP;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.test_flow), &key, &flow, 0), 0);
	f->udp = 1;
	assert_int_equal(run(f, AF_INET, 0, d, sizeof(d)), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_QUIC);
	assert_int_equal(counter(f, TG_CNT_QUIC_INITIAL), 1);
	assert_int_equal(counter(f, TG_CNT_VERDICT_TLS), 1);
	{
		/* the server's Initial names its connection id (SCID "servercid") */
		static const uint8_t srv[64] = { 0xc1, 0, 0, 0, 1, 0, 9, 's', 'e', 'r', 'v', 'e', 'r',
						 'c', 'i', 'd' };
		static const uint8_t short_ok[32] = { 0x43, 's', 'e', 'r', 'v', 'e', 'r', 'c', 'i', 'd' };
		static const uint8_t short_bad[32] = { 0x43, 'o', 't', 'h', 'e', 'r', 'c', 'i', 'd', 'x' };

		/* a retransmitted Initial (the first DCID) still passes */
		assert_int_equal(run(f, AF_INET, 0, d, sizeof(d)), PASS);
		f->dir = TG_DIR_INGRESS;
		assert_int_equal(run(f, AF_INET, 0, srv, sizeof(srv)), PASS);
		assert_true(get_flow(f).quic.have_scid);
		assert_int_equal(get_flow(f).quic.scid_len, 9);
		f->dir = TG_DIR_EGRESS;
		assert_int_equal(run(f, AF_INET, 0, short_ok, sizeof(short_ok)), PASS);
		assert_int_equal(counter(f, TG_CNT_QUIC_LATER), 2);
		/* a short header for another connection, and plaintext: not this QUIC flow */
		assert_int_equal(run(f, AF_INET, 0, short_bad, sizeof(short_bad)), DROP);
		assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_NOT_QUIC);
		reset_flow(f, TG_MODE_AUDIT, AF_INET);
		assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.test_flow), &key, &flow), 0);
		flow.hs_flags |= TG_HSF_UDP;
		assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.test_flow), &key, &flow, 0), 0);
		f->udp = 1;
		assert_int_equal(run(f, AF_INET, 0, d, sizeof(d)), PASS);
		assert_int_equal(run(f, AF_INET, 0, "GET / HTTP/1.1\r\n\r\n", 18), PASS);
		assert_int_equal(get_flow(f).state, TG_FLOW_FLAGGED);
		assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_NOT_QUIC);
		/* a server that sends before the client's first datagram */
		reset_flow(f, TG_MODE_ENFORCE, AF_INET);
		assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.test_flow), &key, &flow), 0);
		flow.hs_flags |= TG_HSF_UDP;
		assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.test_flow), &key, &flow, 0), 0);
		f->udp = 1;
		f->dir = TG_DIR_INGRESS;
		assert_int_equal(run(f, AF_INET, 0, "hello", 5), DROP);
		assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_SERVER_FIRST);
	}
	reset_flow(f, TG_MODE_ENFORCE, AF_INET6);
	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.test_flow), &key, &flow), 0);
	flow.hs_flags |= TG_HSF_UDP;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.test_flow), &key, &flow, 0), 0);
	f->udp = 1;
	assert_int_equal(run(f, AF_INET6, 0, "hello plaintext", 15), DROP);
	assert_int_equal(f->events[0].type, TG_EV_PLAINTEXT);
	assert_int_equal(f->events[0].sport, SPORT);
	assert_int_equal(run(f, AF_INET6, 0, d, sizeof(d)), DROP);	/* decided */
}


/* ---- the whole handshake: issue 16's classes of talking around the verdict ---- */


/* A record header and handshake type that look like a hello, then plaintext. */
static void test_fake_hello_then_plaintext(void **state)
{
	struct fixture *f = *state;
	static const struct {
		const char *what;
		uint8_t b[16];
		size_t n;
	} fakes[] = {
		{ "zero-length hello", { 0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00 }, 9 },
		{ "6-byte prefix", { 0x16, 0x03, 0x01, 0x00, 0x06, 0x01, 0x00, 0x00, 0x02, 0x03, 0x03 }, 11 },
		{ "hello shorter than its random", { 0x16, 0x03, 0x01, 0x00, 0x0a, 0x01, 0x00, 0x00, 0x06,
						     0x03, 0x03, 1, 2, 3, 4 }, 15 },
	};
	uint8_t b[256];

	/* a hello prefix whose record is not all there yet, then HTTP: not a hello so far */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, "\x16\x03\x01\x02\x00\x01", 6), PASS);
	assert_int_equal(run(f, AF_INET, SEQ0 + 6, http_get, strlen(http_get)), DROP);
	assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_FIRST_BYTES);
	for (size_t i = 0; i < sizeof(fakes) / sizeof(fakes[0]); i++) {
		/* in one segment with the plaintext */
		reset_flow(f, TG_MODE_ENFORCE, AF_INET);
		memcpy(b, fakes[i].b, fakes[i].n);
		memcpy(b + fakes[i].n, http_get, strlen(http_get));
		assert_int_equal(run(f, AF_INET, SEQ0, b, fakes[i].n + strlen(http_get)), DROP);
		assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
		assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_FIRST_BYTES);
		/* and alone, the plaintext in the next segment */
		reset_flow(f, TG_MODE_ENFORCE, AF_INET);
		assert_int_equal(run(f, AF_INET, SEQ0, fakes[i].b, fakes[i].n), DROP);
		assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
		assert_int_equal(run(f, AF_INET, SEQ0 + fakes[i].n, http_get, strlen(http_get)), DROP);
		/* audit: flagged */
		reset_flow(f, TG_MODE_AUDIT, AF_INET);
		assert_int_equal(run(f, AF_INET, SEQ0, b, fakes[i].n + strlen(http_get)), PASS);
		assert_int_equal(get_flow(f).state, TG_FLOW_FLAGGED);
	}
}

/* A malformed but complete hello: inner lengths past the message. */
static void test_malformed_hello(void **state)
{
	struct fixture *f = *state;
	uint8_t b[600];

	/* the extensions block says one byte more than the message holds */
	memcpy(b, client_hello, CH_LEN);
	b[CH_LEN - 40] = 0x30;		/* key_share data length, past the end */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, b, CH_LEN), DROP);
	assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_FIRST_BYTES);
	/* a record longer than the hello in it: bytes that are not the hello */
	memcpy(b, client_hello, CH_LEN);
	b[4] += 10;
	memcpy(b + CH_LEN, "GET / HTTP", 10);
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, b, CH_LEN + 10), DROP);
	assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_FIRST_BYTES);
}

/* A real hello, then plaintext: in the same segment, or the next. */
static void test_real_hello_then_plaintext(void **state)
{
	struct fixture *f = *state;
	uint8_t b[1024];
	struct tg_event *ev;

	memcpy(b, client_hello, CH_LEN);
	memcpy(b + CH_LEN, http_get, strlen(http_get));
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, b, CH_LEN + strlen(http_get)), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
	assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_AFTER_HELLO);
	ev = &f->events[0];
	assert_memory_equal(ev->payload, "GET /", 5);	/* the bytes that were not a record */
	assert_memory_equal(ev->tls.sni, "storage.test", 12);

	reset_flow(f, TG_MODE_ENFORCE, AF_INET6);
	assert_int_equal(run(f, AF_INET6, SEQ0, client_hello, CH_LEN), PASS);
	assert_int_equal(run(f, AF_INET6, SEQ0 + CH_LEN, http_get, strlen(http_get)), DROP);
	assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_AFTER_HELLO);
	/* and after the server's hello, before any record */
	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, hs_server_tls13, hs_server_tls13_len), PASS);
	f->dir = TG_DIR_EGRESS;
	assert_int_equal(run(f, AF_INET, SEQ0 + CH_LEN, http_get, strlen(http_get)), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_FLAGGED);
	assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_AFTER_HELLO);
}

/*
 * The ClientHello's summary is kept in an array slot (cookie % size) for the
 * flow's later events; a later flow that takes the slot makes it the flow's
 * no longer: the event goes without it, counted, never with another's.
 */
static void test_hello_summary_slot(void **state)
{
	struct fixture *f = *state;
	static const char resp[] = "HTTP/1.1 400 Bad Request\r\n\r\n";

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	assert_int_equal(get_sum(f).sni_len, strlen("storage.test"));
	/* copied eight bytes at a time: nothing past the name */
	for (size_t i = strlen("storage.test"); i < sizeof(get_sum(f).sni); i++)
		assert_int_equal(get_sum(f).sni[i], 0);
	for (size_t i = get_sum(f).alpn_len; i < sizeof(get_sum(f).alpn); i++)
		assert_int_equal(get_sum(f).alpn[i], 0);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, resp, strlen(resp)), DROP);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_NOT_SERVER_HELLO);
	assert_event_sni(f, "storage.test");
	assert_int_equal(counter(f, TG_CNT_HELLO_SUMMARY_LOST), 0);

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	give_sum_slot_away(f, 81234);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, resp, strlen(resp)), DROP);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_NOT_SERVER_HELLO);
	assert_int_equal(f->events[0].tls.sni_len, 0);
	assert_int_equal(counter(f, TG_CNT_HELLO_SUMMARY_LOST), 1);
}

/*
 * A server's hello split across segments: its state is kept past the first
 * one, and a kept state carries the ClientHello's summary itself (the server's
 * segments judge without loading it, hsstate.bpf.h). So the event of a later
 * segment still names the SNI after another flow took the summary's slot.
 */
static void test_server_state_kept_whole(void **state)
{
	struct fixture *f = *state;
	static const char rest[] = "HTTP/1.1 400 Bad Request\r\n\r\n";

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	f->dir = TG_DIR_INGRESS;
	/* a handshake record's first three bytes: need more, the state is kept */
	assert_int_equal(run(f, AF_INET, SRV_SEQ, hs_server_tls13, 3), PASS);
	assert_true(get_flow(f).hs_flags & TG_HSF_HS_STORED);
	give_sum_slot_away(f, 81234);
	assert_int_equal(run(f, AF_INET, SRV_SEQ + 3, rest, strlen(rest)), DROP);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_NOT_SERVER_HELLO);
	assert_event_sni(f, "storage.test");
	assert_int_equal(counter(f, TG_CNT_HELLO_SUMMARY_LOST), 0);
}

/* What an earlier flow left in @cookie's summary slot: every byte 0xaa, owned by nobody. */
static void soil_sum_slot(struct fixture *f, __u64 cookie)
{
	struct tg_tls_summary junk;
	__u32 slot = sum_slot(f, cookie);

	memset(&junk, 0xaa, sizeof(junk));
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_hello_sums), &slot, &junk, 0), 0);
	forget_sum(f, cookie);
}

static void assert_zero_from(const void *p, size_t from, size_t size)
{
	for (size_t i = from; i < size; i++)
		assert_int_equal(((const uint8_t *)p)[i], 0);
}

/*
 * A summary slot an earlier flow filled to the brim: a later flow's event
 * carries none of it, not in the name, the ALPN or the tunnel, and a proxy
 * flow's tunnel comes whole.
 */
static void test_summary_slot_leftovers_never_read(void **state)
{
	struct fixture *f = *state;
	static const char resp[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
	static const char req[] = "CONNECT acct.blob.core.windows.net:443 HTTP/1.1\r\n"
				  "Host: acct.blob.core.windows.net:443\r\n\r\n";
	static const char ok[] = "HTTP/1.0 200 Connection established\r\n\r\n";
	const struct tg_event *ev = &f->events[0];
	const char *tunnel = "acct.blob.core.windows.net";

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	soil_sum_slot(f, 81234);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, resp, strlen(resp)), DROP);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_NOT_SERVER_HELLO);
	assert_event_sni(f, "storage.test");
	assert_zero_from(ev->tls.sni, strlen("storage.test"), sizeof(ev->tls.sni));
	assert_zero_from(ev->tls.alpn, ev->tls.alpn_len, sizeof(ev->tls.alpn));
	assert_zero_from(ev->tls.tunnel, 0, sizeof(ev->tls.tunnel));
	assert_int_equal(ev->tls.tunnel_port, 0);
	assert_int_equal(counter(f, TG_CNT_HELLO_SUMMARY_LOST), 0);

	clear_names(f);
	add_name(f, tunnel, 1);
	set_class(f, 1, TG_MODE_ENFORCE, 3);
	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	set_flow(f, TG_L7_CONNECT, 0, 0);
	soil_sum_slot(f, 81234);
	assert_int_equal(run(f, AF_INET, SEQ0, req, strlen(req)), PASS);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, 9000, ok, strlen(ok)), PASS);
	f->dir = TG_DIR_EGRESS;
	assert_int_equal(run(f, AF_INET, SEQ0 + strlen(req), client_hello, CH_LEN), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, 9000 + strlen(ok), resp, strlen(resp)), DROP);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_NOT_SERVER_HELLO);
	assert_event_sni(f, "storage.test");
	assert_int_equal(ev->tls.tunnel_port, 443);
	assert_string_equal(ev->tls.tunnel, tunnel);
	assert_zero_from(ev->tls.tunnel, strlen(tunnel), sizeof(ev->tls.tunnel));
	assert_zero_from(ev->tls.sni, strlen("storage.test"), sizeof(ev->tls.sni));
	clear_names(f);
}

/*
 * The ServerHello's version reaches the flow's later events: a TLS version
 * through the flow (sh_minor), any other through the summary.
 */
static void test_negotiated_version_in_later_event(void **state)
{
	static const uint16_t versions[] = { 0x0304, 0x0302, 0x7f1c, 0x03ff };
	static const char plain[] = "GET / HTTP/1.1\r\n\r\n";
	struct fixture *f = *state;
	uint8_t srv[sizeof(hs_server_tls13)];
	/* where hs_server_tls13's supported_versions says 0x0304 */
	const size_t at = 85;

	assert_int_equal(hs_server_tls13[at - 4], 0x00);
	assert_int_equal(hs_server_tls13[at - 3], 0x2b);
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		uint16_t v = versions[i];

		reset_flow(f, TG_MODE_AUDIT, AF_INET);
		assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
		memcpy(srv, hs_server_tls13, sizeof(srv));
		srv[at] = v >> 8;
		srv[at + 1] = v & 0xff;
		f->dir = TG_DIR_INGRESS;
		assert_int_equal(run(f, AF_INET, SRV_SEQ, srv, hs_server_tls13_len), PASS);
		assert_true(get_flow(f).wflags & TG_WF_SH_DONE);
		assert_int_equal(get_flow(f).sh_minor, v >> 8 == 3 && (v & 0xff) < 0xff ? (v & 0xff) + 1 : 0);
		f->dir = TG_DIR_EGRESS;
		assert_int_equal(run(f, AF_INET, SEQ0 + CH_LEN, plain, strlen(plain)), PASS);
		assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_AFTER_HELLO);
		assert_int_equal(f->events[0].tls.negotiated, v);
		assert_event_sni(f, "storage.test");
	}
}

/* The server answers the hello with plaintext (a plain HTTP server). */
static void test_server_answers_plaintext(void **state)
{
	struct fixture *f = *state;
	static const char resp[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, resp, strlen(resp)), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_NOT_SERVER_HELLO);
	assert_memory_equal(f->events[0].payload, "HTTP/1.1 400", 12);
	/* a first byte that could start a ServerHello, then not one */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, "\x16\x03", 2), PASS);
	assert_int_equal(run(f, AF_INET, SRV_SEQ + 2, "\x03\x00\x05\x01\x00\x00\x01", 7), DROP);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_NOT_SERVER_HELLO);
	/* a real ServerHello, then plaintext from the server */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, hs_server_tls13, 127), PASS);	/* SH alone */
	assert_int_equal(run(f, AF_INET, SRV_SEQ + 127, resp, strlen(resp)), DROP);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_AFTER_HELLO);
}

/*
 * The server's records after its hello in the hello's own segment are
 * walked in the bytes collected for it (tg_walk_collected()): whatever
 * follows the hello there is held to the same rules as in a segment of its
 * own, up to the segment's end and across it.
 */
static void sh_then(struct fixture *f, const void *rest, size_t n, int verdict)
{
	uint8_t seg[2048];

	memcpy(seg, hs_server_tls13, 127);	/* the ServerHello record alone */
	memcpy(seg + 127, rest, n);
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, seg, 127 + n), verdict);
}

static void test_server_flight_walked_where_collected(void **state)
{
	struct fixture *f = *state;
	static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
	uint8_t many[17 * 6], bad[761 + 5];

	/* plaintext right after the hello: the event's payload starts where it does */
	sh_then(f, resp, strlen(resp), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_AFTER_HELLO);
	assert_memory_equal(f->events[0].payload, "HTTP/1.1 200", 12);
	/* the whole first flight, then a heartbeat header (not a record before the end) */
	memcpy(bad, hs_server_tls13, hs_server_tls13_len);
	memcpy(bad + hs_server_tls13_len, "\x18\x03\x03\x00\x10", 5);
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, bad, sizeof(bad)), DROP);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_AFTER_HELLO);
	assert_memory_equal(f->events[0].payload, "\x18\x03\x03", 3);
	/* a header cut by the segment's end goes on in the next: good, then bad */
	sh_then(f, "\x17\x03", 2, PASS);
	assert_int_equal(get_flow(f).sw.have, 2);
	assert_int_equal(run(f, AF_INET, SRV_SEQ + 129, "\x03\x00\x01\x00", 4), PASS);
	assert_int_equal(get_flow(f).sw.next, 127 + 6);
	sh_then(f, "\x17\x03", 2, PASS);
	assert_int_equal(run(f, AF_INET, SRV_SEQ + 129, "\x07\x00\x01\x00", 4), DROP);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_AFTER_HELLO);
	/* a record whose body runs past the segment: its end is where the walk goes on */
	sh_then(f, "\x17\x03\x03\x00\x20\x01\x02", 7, PASS);
	assert_int_equal(get_flow(f).sw.next, 127 + 5 + 0x20);
	assert_int_equal(run(f, AF_INET, SRV_SEQ + 134, resp, 30), PASS);	/* inside the record */
	assert_int_equal(run(f, AF_INET, SRV_SEQ + 164, resp, strlen(resp)), DROP);
	/* TG_WALK_MAX (16) headers in one segment are more than a handshake has; 15 are not */
	for (int i = 0; i < 17; i++)
		memcpy(many + 6 * i, "\x14\x03\x03\x00\x01\x01", 6);
	sh_then(f, many, 15 * 6, PASS);
	assert_int_equal(get_flow(f).sw.next, 127 + 15 * 6);
	sh_then(f, many, 16 * 6, DROP);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_AFTER_HELLO);
	/* audit: flagged once, passes */
	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	memcpy(bad, hs_server_tls13, 127);
	memcpy(bad + 127, resp, strlen(resp));
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, bad, 127 + strlen(resp)), PASS);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_AFTER_HELLO);
}

/* A protected TLS server that speaks first. */
static void test_server_speaks_first(void **state)
{
	struct fixture *f = *state;
	static const char banner[] = "220 hello, plaintext here\r\n";

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, banner, strlen(banner)), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_SERVER_FIRST);
	assert_int_equal(counter(f, TG_CNT_SERVER_FIRST), 1);
	assert_int_equal(run(f, AF_INET, SRV_SEQ + 27, banner, strlen(banner)), DROP);
	/* the client's bytes after that go nowhere either */
	f->dir = TG_DIR_EGRESS;
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), DROP);
	/* audit: flagged, once */
	reset_flow(f, TG_MODE_AUDIT, AF_INET);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, banner, strlen(banner)), PASS);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_SERVER_FIRST);
	/* mysql: the greeting is the server's preface, more than it is not */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_MYSQL, 3, 0);
	{
		uint8_t g[100] = { 76, 0, 0, 0, 10, '1', '0', '.', '1', '1', 0 };

		f->dir = TG_DIR_INGRESS;
		assert_int_equal(run(f, AF_INET, SRV_SEQ, g, 80), PASS);
		assert_int_equal(run(f, AF_INET, SRV_SEQ + 80, "more", 4), DROP);
		assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_SERVER_FIRST);
	}
}

/* Client records after the hello: split headers, the CCS, early data; a bad header split. */
static void test_records_split_across_segments(void **state)
{
	struct fixture *f = *state;
	static const uint8_t early[5 + 16] = { 0x17, 0x03, 0x03, 0x00, 0x10 };

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	/* early data before the server's hello, its header cut after two bytes */
	assert_int_equal(run(f, AF_INET, SEQ0 + CH_LEN, early, 2), PASS);
	assert_int_equal(get_flow(f).cw.have, 2);
	assert_int_equal(run(f, AF_INET, SEQ0 + CH_LEN + 2, early + 2, sizeof(early) - 2), PASS);
	assert_int_equal(get_flow(f).cw.next, CH_LEN + sizeof(early));
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	finish_handshake(f, AF_INET, SEQ0 + CH_LEN + sizeof(early));
	assert_int_equal(counter(f, TG_CNT_RECORDS_WALKED), 1 + 5 + 1);	/* early, the server's 5 after its hello, CCS */
	/* a header whose third byte is wrong, alone in its segment: that byte never leaves */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	assert_int_equal(run(f, AF_INET, SEQ0 + CH_LEN, "\x17\x03", 2), PASS);
	assert_int_equal(run(f, AF_INET, SEQ0 + CH_LEN + 2, "\x07", 1), DROP);
	assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_AFTER_HELLO);
	/* heartbeat (24) and a length past 2^14+256 are not records */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	assert_int_equal(run(f, AF_INET, SEQ0 + CH_LEN, "\x18\x03\x03\x00\x10", 5), DROP);
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	assert_int_equal(run(f, AF_INET, SEQ0 + CH_LEN, "\x17\x03\x03\x41\x01", 5), DROP);
	/* a gap in the walk: dropped, TCP resends, the walk goes on */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	assert_int_equal(run(f, AF_INET, SEQ0 + CH_LEN + 3, early + 3, sizeof(early) - 3), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	assert_int_equal(run(f, AF_INET, SEQ0 + CH_LEN, early, sizeof(early)), PASS);
}

/* Bounded: client records before the server's hello, at most TG_PRE_SH_MAX of stream. */
static void test_undecided_is_bounded(void **state)
{
	struct fixture *f = *state;
	static uint8_t rec[3000] = { 0x17, 0x03, 0x03, (3000 - 5) >> 8, (3000 - 5) & 0xff };
	uint32_t seq = SEQ0 + CH_LEN;
	int i, r = PASS;

	memset(rec + 5, 'A', sizeof(rec) - 5);	/* plaintext in record bodies */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	for (i = 0; i < 30 && r == PASS; i++, seq += sizeof(rec))
		r = run(f, AF_INET, seq, rec, sizeof(rec));
	assert_int_equal(r, DROP);
	assert_true(seq - SEQ0 <= TG_PRE_SH_MAX + sizeof(rec));
	assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_UNDECIDED);
	assert_int_equal(counter(f, TG_CNT_UNDECIDED_BOUND), 1);
	/* the server's records after its hello are bounded the same way */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, hs_server_tls13, 127), PASS);
	seq = SRV_SEQ + 127;
	for (i = 0, r = PASS; i < 60 && r == PASS; i++, seq += sizeof(rec))
		r = run(f, AF_INET, seq, rec, sizeof(rec));
	assert_int_equal(r, DROP);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_UNDECIDED);
}

/*
 * A HelloRetryRequest (TLS 1.3, key_share for another group), then the
 * server's compatibility CCS; the client's CCS and second ClientHello; the
 * ServerHello; the client's next record decides.
 */
static size_t build_hrr(uint8_t *b)
{
	static const uint8_t hrr_random[32] = {
		0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
		0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
	};
	static const uint8_t exts[] = { 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04,	/* supported_versions */
					0x00, 0x33, 0x00, 0x02, 0x00, 0x17 };	/* key_share: secp256r1 */
	size_t n = 0, body;

	memcpy(b, "\x16\x03\x03\x00\x00\x02\x00\x00\x00\x03\x03", 11);
	n = 11;
	memcpy(b + n, hrr_random, 32);
	n += 32;
	b[n++] = 0;			/* session id */
	b[n++] = 0x13, b[n++] = 0x01;	/* TLS_AES_128_GCM_SHA256 */
	b[n++] = 0;			/* compression */
	b[n++] = 0, b[n++] = sizeof(exts);
	memcpy(b + n, exts, sizeof(exts));
	n += sizeof(exts);
	body = n - 9;
	b[3] = (n - 5) >> 8, b[4] = (n - 5) & 0xff;
	b[7] = body >> 8, b[8] = body & 0xff;
	memcpy(b + n, "\x14\x03\x03\x00\x01\x01", 6);	/* the server's CCS */
	return n + 6;
}

static void test_hello_retry_request(void **state)
{
	struct fixture *f = *state;
	uint8_t hrr[128], b[600];
	size_t hn = build_hrr(hrr);
	uint32_t c = SEQ0 + CH_LEN, sseq = SRV_SEQ;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_TLS, 4, 0);		/* min 1.3 */
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, sseq, hrr, hn), PASS);
	sseq += hn;
	assert_true(get_flow(f).wflags & TG_WF_HRR);
	assert_false(get_flow(f).wflags & TG_WF_SH_DONE);
	assert_int_equal(counter(f, TG_CNT_HELLO_RETRY), 1);
	/* the client: its CCS and the second hello, in one segment */
	f->dir = TG_DIR_EGRESS;
	memcpy(b, client_ccs, 6);
	memcpy(b + 6, client_hello, CH_LEN);
	assert_int_equal(run(f, AF_INET, c, b, 6 + CH_LEN), PASS);
	c += 6 + CH_LEN;
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	finish_handshake_at(f, AF_INET, sseq, c);
	assert_int_equal(f->nevents, 0);

	/* after the HRR, application data instead of a second hello: plaintext */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, hrr, hn), PASS);
	f->dir = TG_DIR_EGRESS;
	assert_int_equal(run(f, AF_INET, SEQ0 + CH_LEN, "\x17\x03\x03\x00\x10", 5), DROP);
	assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_AFTER_HELLO);
	/* two HRRs: not a server */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, hrr, hn), PASS);
	assert_int_equal(run(f, AF_INET, SRV_SEQ + hn, hrr, hn - 6), DROP);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_NOT_SERVER_HELLO);
}

/* The server turns the hello down with an alert: fine, but never decided TLS. */
static void test_server_alert(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, "\x15\x03\x03\x00\x02\x02\x46", 7), PASS);
	assert_int_equal(counter(f, TG_CNT_SERVER_ALERT), 1);
	f->dir = TG_DIR_EGRESS;
	assert_int_equal(run(f, AF_INET, SEQ0 + CH_LEN, "\x15\x03\x03\x00\x02\x02\x00", 7), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	assert_int_equal(run(f, AF_INET, SEQ0 + CH_LEN + 7, http_get, strlen(http_get)), DROP);
	assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_AFTER_HELLO);
	/* the alert's header alone, then its body: walked from the header, then plaintext */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, CH_LEN), PASS);
	f->dir = TG_DIR_INGRESS;
	assert_int_equal(run(f, AF_INET, SRV_SEQ, "\x15\x03\x03\x00\x02", 5), PASS);
	assert_int_equal(get_flow(f).sw.next, 7);
	assert_int_equal(run(f, AF_INET, SRV_SEQ + 5, "\x02\x46", 2), PASS);
	assert_int_equal(counter(f, TG_CNT_SERVER_ALERT), 1);
	assert_int_equal(get_flow(f).sw.next, 7);
	assert_int_equal(run(f, AF_INET, SRV_SEQ + 7, http_get, strlen(http_get)), DROP);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_AFTER_HELLO);
}

/*
 * A ClientHello over 2 KiB (a padding extension, as post-quantum key shares
 * make them), in records of 1000 bytes and segments of 700: judged on the
 * 2 KiB that fit, then the records after it are walked from the hello's end.
 */
static size_t build_big_hello(uint8_t *b, size_t pad)
{
	/* the curl hello's extensions end with padding (00 15 00 a3 + zeros) */
	size_t base = hs_client_curl_len - 4 - 0xa3, msg, n;
	uint8_t m[8192];

	memcpy(m, hs_client_curl + 5, base - 5);
	n = base - 5;
	m[n++] = 0x00, m[n++] = 0x15, m[n++] = pad >> 8, m[n++] = pad & 0xff;
	memset(m + n, 0, pad);
	n += pad;
	msg = n;
	m[1] = (msg - 4) >> 16, m[2] = (msg - 4) >> 8, m[3] = (msg - 4) & 0xff;
	/* extensions length: at 2+32+1+32 sid... the curl hello's is at offset 5+4+2+32+1+32+2+0x3e+2 */
	{
		size_t eo = 4 + 2 + 32 + 1 + 32 + 2 + 0x3e + 2, el = msg - eo - 2;

		m[eo] = el >> 8, m[eo + 1] = el & 0xff;
	}
	/* records of at most 1000 bytes */
	n = 0;
	for (size_t p = 0; p < msg; p += 1000) {
		size_t l = msg - p < 1000 ? msg - p : 1000;

		memcpy(b + n, "\x16\x03\x01", 3);
		b[n + 3] = l >> 8, b[n + 4] = l & 0xff;
		memcpy(b + n + 5, m + p, l);
		n += 5 + l;
	}
	return n;
}

static void test_big_hello_across_records_and_segments(void **state)
{
	struct fixture *f = *state;
	static uint8_t b[8192];
	size_t n = build_big_hello(b, 2600), o;

	assert_true(n > TG_HELLO_MAX + 500 && n < 3400);	/* BPF_PROG_TEST_RUN takes < 3.5 KiB */
	for (int mode = TG_MODE_AUDIT; mode <= TG_MODE_ENFORCE; mode++) {
		reset_flow(f, mode, AF_INET);
		set_flow(f, TG_L7_TLS, 3, 0);
		for (o = 0; o < n; o += 700)
			assert_int_equal(run(f, AF_INET, SEQ0 + o, b + o, n - o < 700 ? n - o : 700), PASS);
		assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
		assert_int_equal(counter(f, TG_CNT_HELLO_TRUNCATED), 1);
		assert_int_equal(get_flow(f).cw.next, n);
		finish_handshake(f, AF_INET, SEQ0 + n);
		assert_int_equal(f->nevents, 0);
	}
	/* the same hello in one GSO-sized segment */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, b, n), PASS);
	finish_handshake(f, AF_INET, SEQ0 + n);
}

/* IPv6 extension headers: walked to the transport header; a chain that cannot be is no pass. */
static void test_ipv6_extension_headers(void **state)
{
	struct fixture *f = *state;
	/* hop-by-hop (PadN) → destination options (PadN) → TCP */
	static const uint8_t opts[16] = { 60, 0, 1, 4, 0, 0, 0, 0, IPPROTO_TCP, 0, 1, 4, 0, 0, 0, 0 };
	static const uint8_t esp[8] = { 0, 0, 0, 1, 0, 0, 0, 1 };

	reset_flow(f, TG_MODE_ENFORCE, AF_INET6);
	f->v6_ext = opts, f->v6_ext_len = sizeof(opts), f->v6_ext_first = 0;
	assert_int_equal(run(f, AF_INET6, SEQ0, http_get, strlen(http_get)), DROP);
	assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_FIRST_BYTES);
	assert_memory_equal(f->events[0].payload, "GET /", 5);
	assert_int_equal(counter(f, TG_CNT_IPV6_EXTHDR), 1);
	reset_flow(f, TG_MODE_ENFORCE, AF_INET6);
	f->v6_ext = opts + 8, f->v6_ext_len = 8, f->v6_ext_first = 60;
	assert_int_equal(run(f, AF_INET6, SEQ0, client_hello, CH_LEN), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	/* ESP hides the transport header: blocked in enforce, flagged in audit */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET6);
	f->v6_ext = esp, f->v6_ext_len = sizeof(esp), f->v6_ext_first = 50;
	assert_int_equal(run(f, AF_INET6, SEQ0, client_hello, CH_LEN), DROP);
	assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_UNPARSEABLE);
	assert_int_equal(counter(f, TG_CNT_IPV6_UNPARSEABLE), 1);
	/* the blocked flow's next unreadable packet: dropped, with its own reason */
	assert_int_equal(run(f, AF_INET6, SEQ0, client_hello, CH_LEN), DROP);
	assert_int_equal(counter(f, TG_CNT_BLOCKED_UNREADABLE), 1);
	assert_int_equal(counter(f, TG_CNT_SEGMENTS_DROPPED), 1);
	reset_flow(f, TG_MODE_AUDIT, AF_INET6);
	f->v6_ext = esp, f->v6_ext_len = sizeof(esp), f->v6_ext_first = 50;
	assert_int_equal(run(f, AF_INET6, SEQ0, client_hello, CH_LEN), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_FLAGGED);
	/* on ingress too, side server */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET6);
	f->dir = TG_DIR_INGRESS;
	f->v6_ext = esp, f->v6_ext_len = sizeof(esp), f->v6_ext_first = 50;
	assert_int_equal(run(f, AF_INET6, SRV_SEQ, "x", 1), DROP);
	assert_plaintext(f, 1, TG_SIDE_SERVER, TG_PR_UNPARSEABLE);
}

/* A raw socket's TCP segment with payload to a protected destination; ICMP passes. */
static void test_raw_socket_packets(void **state)
{
	struct fixture *f = *state;
	struct tg_flow flow;
	__u32 key = 0;

	set_class(f, 1, TG_MODE_ENFORCE, 0);
	add_dest(f, "198.51.100.10", 1);
	for (int mode = TG_MODE_AUDIT; mode <= TG_MODE_ENFORCE; mode++) {
		reset_flow(f, mode, AF_INET);
		set_class(f, 1, mode, 0);
		memset(&flow, 0, sizeof(flow));
		flow.state = TG_FLOW_RAW;
		assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.test_flow), &key, &flow, 0), 0);
		/* no payload (a bare ACK): nothing to judge */
		assert_int_equal(run(f, AF_INET, SEQ0, NULL, 0), PASS);
		assert_int_equal(get_flow(f).state, TG_FLOW_RAW);
		assert_int_equal(run(f, AF_INET, SEQ0, http_get, strlen(http_get)),
				 mode == TG_MODE_ENFORCE ? DROP : PASS);
		assert_plaintext(f, 1, TG_SIDE_CLIENT, TG_PR_RAW_SOCKET);
		assert_int_equal(f->events[0].class_id, 1);
		assert_int_equal(f->events[0].dport, DPORT);
		assert_int_equal(counter(f, TG_CNT_RAW_CHECKED), 1);
	}
	/* to an unprotected destination (IPv6 here): not ours */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET6);
	memset(&flow, 0, sizeof(flow));
	flow.state = TG_FLOW_RAW;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.test_flow), &key, &flow, 0), 0);
	assert_int_equal(run(f, AF_INET6, SEQ0, http_get, strlen(http_get)), PASS);
	assert_int_equal(f->nevents, 0);
	clear_dests(f);
}

/* ---- the flow cap (limits.max_tracked_flows) ---------------------------------- */

static int run_prog(struct bpf_program *prog)
{
	static uint8_t storage[PKT_MAX + 4] __attribute__((aligned(4)));
	uint8_t *pkt = storage + 2;
	size_t n = build_packet(pkt, AF_INET, SEQ0, NULL, 0, 0x10, TG_DIR_EGRESS, 0);
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = n, .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(prog), &opts), 0);
	return opts.retval;
}

static __u64 live_flows(struct fixture *f)
{
	__u64 v = ~0ULL;
	__u32 key = 0;

	assert_int_equal(bpf_map_lookup_elem(bpf_map__fd(f->skel->maps.tg_live_flows), &key, &v), 0);
	return v;
}

static void set_cap(struct fixture *f, __u32 cap, __u64 live)
{
	struct tg_config cfg = { .max_flows = cap };
	__u32 key = 0;

	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_config), &key, &cfg, 0), 0);
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_live_flows), &key, &live, 0), 0);
}

static void set_counted(struct fixture *f, __u8 counted)
{
	struct tg_flow flow = get_flow(f);
	__u32 key = 0;

	flow.counted = counted;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.test_flow), &key, &flow, 0), 0);
}

/* Slots up to the cap, none past it (and the refused take leaves no trace). */
static void test_flow_cap_slots(void **state)
{
	struct fixture *f = *state;

	set_cap(f, 3, 0);
	for (int i = 1; i <= 3; i++) {
		assert_int_equal(run_prog(f->skel->progs.test_slot_take), 1);
		assert_int_equal(live_flows(f), i);
	}
	assert_int_equal(run_prog(f->skel->progs.test_slot_take), 0);
	assert_int_equal(live_flows(f), 3);
	assert_int_equal(run_prog(f->skel->progs.test_slot_take), 0);
	assert_int_equal(live_flows(f), 3);
	/* a lower cap (a reload) with more flows open: nothing new until below it */
	set_cap(f, 2, 3);
	assert_int_equal(run_prog(f->skel->progs.test_slot_take), 0);
	assert_int_equal(live_flows(f), 3);
	/* 0: the agent has not written its config yet, no cap */
	set_cap(f, 0, 5);
	assert_int_equal(run_prog(f->skel->progs.test_slot_take), 1);
	assert_int_equal(live_flows(f), 6);
	set_config(f, 0);
}

/*
 * tg_skip_cgroups (pods outside workloads.kubernetes) is looked up only when
 * the agent says the policy selects workloads: a listed cgroup is left alone
 * then, and judged when the flag is clear (the map is stale or empty).
 */
static void test_skip_cgroups_gated(void **state)
{
	struct fixture *f = *state;
	int cfg_fd = bpf_map__fd(f->skel->maps.tg_config);
	int skip_fd = bpf_map__fd(f->skel->maps.tg_skip_cgroups);
	struct tg_config cfg = { .skip_cgroups = 1 };
	__u64 cgid = 0x7e57c9;
	__u32 key = 0;
	__u8 one = 1;

	f->skel->bss->test_skip_cgid = cgid;
	assert_int_equal(bpf_map_update_elem(cfg_fd, &key, &cfg, 0), 0);
	assert_int_equal(run_prog(f->skel->progs.test_cgroup_skipped), 0);	/* not listed */
	assert_int_equal(bpf_map_update_elem(skip_fd, &cgid, &one, 0), 0);
	assert_int_equal(run_prog(f->skel->progs.test_cgroup_skipped), 1);
	cfg.skip_cgroups = 0;
	assert_int_equal(bpf_map_update_elem(cfg_fd, &key, &cfg, 0), 0);
	assert_int_equal(run_prog(f->skel->progs.test_cgroup_skipped), 0);	/* no selector */
	assert_int_equal(bpf_map_delete_elem(skip_fd, &cgid), 0);
	set_config(f, 0);
}

/* sock_release gives a counted flow's slot back once, and keeps the flow's verdict. */
static void test_flow_cap_release_once(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_cap(f, 4, 4);
	set_counted(f, TG_FLOW_NOT_COUNTED);
	run_prog(f->skel->progs.test_release);
	assert_int_equal(live_flows(f), 4);		/* never held a slot */
	set_counted(f, TG_FLOW_COUNTED);
	run_prog(f->skel->progs.test_release);
	assert_int_equal(live_flows(f), 3);
	assert_int_equal(get_flow(f).counted, TG_FLOW_RELEASED);
	run_prog(f->skel->progs.test_release);
	assert_int_equal(live_flows(f), 3);		/* not twice */
	assert_int_equal(run_prog(f->skel->progs.test_slot_take), 1);
	assert_int_equal(live_flows(f), 4);

	/* a released (closed) blocked flow still drops its retransmitted plaintext */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_counted(f, TG_FLOW_COUNTED);
	assert_int_equal(run(f, AF_INET, SEQ0, http_get, sizeof(http_get) - 1), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
	run_prog(f->skel->progs.test_release);
	assert_int_equal(live_flows(f), 3);
	assert_int_equal(run(f, AF_INET, SEQ0, http_get, sizeof(http_get) - 1), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
	set_cap(f, 0, 0);
}

/* FreeTDS tsql's real packets (tests/unit/capture-tds-fixtures.sh): no SQL Server in Debian. */
static void test_tds_freetds_client(void **state)
{
	struct fixture *f = *state;

	/* encryption = require: PRELOGIN offering it, then the hello in a PRELOGIN packet */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_TDS, 3, 0);
	assert_int_equal(run(f, AF_INET, SEQ0, tds_c_prelogin_encrypt, tds_c_prelogin_encrypt_len), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_PENDING);
	assert_int_equal(run(f, AF_INET, SEQ0 + tds_c_prelogin_encrypt_len, tds_c_prelogin_tls,
			     tds_c_prelogin_tls_len), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);	/* the class has a minimum */
	assert_int_equal(get_hs(f).tls.offered, 0x0304);
	assert_int_equal(f->nevents, 0);
	/* encryption = off: PRELOGIN without it is plaintext, LOGIN7 never goes out */
	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_flow(f, TG_L7_TDS, 3, 0);
	assert_int_equal(run(f, AF_INET, SEQ0, tds_c_prelogin_off, tds_c_prelogin_off_len), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
	assert_int_equal(f->events[0].tls.l7, TG_L7_TDS);
	assert_int_equal(run(f, AF_INET, SEQ0 + tds_c_prelogin_off_len, tds_c_login7, tds_c_login7_len), DROP);
}

/* ---- smb3: real smbd/smbclient messages (tests/unit/capture-smb-fixtures.sh) ---- */

#define SSEQ0 7000000u	/* the server's first payload byte */

/* An undecided smb3 flow to 445, as connect() leaves it (the NEGOTIATE response comes first). */
static void reset_smb(struct fixture *f, int mode)
{
	struct tg_flow flow;
	__u32 key = 0;

	reset_flow(f, mode, AF_INET);
	flow = get_flow(f);
	flow.proto = TG_L7_SMB3;
	flow.dport = 445;
	flow.hs_flags = TG_HSF_SRV_PREFACE;
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.test_flow), &key, &flow, 0), 0);
}

static int egress(struct fixture *f, uint32_t rel, const void *p, size_t n)
{
	f->dir = TG_DIR_EGRESS;
	return run(f, AF_INET, SEQ0 + rel, p, n);
}

static int ingress(struct fixture *f, uint32_t rel, const void *p, size_t n)
{
	f->dir = TG_DIR_INGRESS;
	return run(f, AF_INET, SSEQ0 + rel, p, n);
}

/* NEGOTIATE both ways (3.1.1, AES-128-GCM): the flow waits for the message after setup. */
static uint32_t smb_negotiate(struct fixture *f)
{
	assert_int_equal(egress(f, 0, smb_c_negotiate_311, smb_c_negotiate_311_len), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	assert_int_equal(ingress(f, 0, smb_s_negotiate_311, smb_s_negotiate_311_len), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SMB_SESSION);
	return smb_c_negotiate_311_len;
}

static uint32_t smb_setups(struct fixture *f, uint32_t rel)
{
	assert_int_equal(egress(f, rel, smb_c_session_setup_1, smb_c_session_setup_1_len), PASS);
	rel += smb_c_session_setup_1_len;
	assert_int_equal(egress(f, rel, smb_c_session_setup_2, smb_c_session_setup_2_len), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SMB_SESSION);
	return rel + smb_c_session_setup_2_len;
}

static void test_smb3_encrypted_session_allowed(void **state)
{
	struct fixture *f = *state;
	uint32_t rel;

	reset_smb(f, TG_MODE_ENFORCE);
	rel = smb_setups(f, smb_negotiate(f));
	assert_int_equal(egress(f, rel, smb_c_transform, smb_c_transform_len), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_TLS);
	assert_int_equal(counter(f, TG_CNT_SMB_ENCRYPTED), 1);
	assert_int_equal(counter(f, TG_CNT_VERDICT_TLS), 1);
	assert_int_equal(f->nevents, 0);
	/* decided: a cleartext-looking message later is never parsed again */
	rel += smb_c_transform_len;
	assert_int_equal(egress(f, rel, smb_c_tree_connect, smb_c_tree_connect_len), PASS);
	assert_int_equal(ingress(f, 5000, smb_c_tree_connect, smb_c_tree_connect_len), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_TLS);
	assert_int_equal(counter(f, TG_CNT_PLAINTEXT_BLOCKED), 0);
}

static void test_smb3_clear_tree_connect_blocked(void **state)
{
	struct fixture *f = *state;
	struct tg_event *ev;
	uint32_t rel;

	reset_smb(f, TG_MODE_ENFORCE);
	rel = smb_setups(f, smb_negotiate(f));
	assert_int_equal(egress(f, rel, smb_c_tree_connect, smb_c_tree_connect_len), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
	assert_int_equal(counter(f, TG_CNT_PLAINTEXT_BLOCKED), 1);
	assert_int_equal(f->nevents, 1);
	ev = &f->events[0];
	assert_int_equal(ev->type, TG_EV_PLAINTEXT);
	assert_int_equal(ev->action, TG_ACT_BLOCKED);
	assert_int_equal(ev->tls.l7, TG_L7_SMB3);
	assert_int_equal(ev->tls.finding, TG_SMB_CLEAR_AFTER_SETUP);
	assert_int_equal(ev->tls.legacy, 3);	/* TREE_CONNECT */
	assert_int_equal(ev->tls.offered, TG_SMB_DIALECT_311);
	assert_int_equal(ev->tls.negotiated, TG_SMB_DIALECT_311);
	assert_int_equal(ev->tls.hello_flags, TG_SMB_CIPHER_AES128_GCM);
	assert_int_equal(ev->payload_len, TG_SMB_PEEK);
	assert_memory_equal(ev->payload, smb_c_tree_connect, TG_SMB_PEEK);
	/* and everything after it */
	assert_int_equal(egress(f, rel, smb_c_tree_connect, smb_c_tree_connect_len), DROP);
}

static void test_smb3_audit_flags_once(void **state)
{
	struct fixture *f = *state;
	uint32_t rel;

	reset_smb(f, TG_MODE_AUDIT);
	rel = smb_setups(f, smb_negotiate(f));
	assert_int_equal(egress(f, rel, smb_c_tree_connect, smb_c_tree_connect_len), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_FLAGGED);
	assert_int_equal(f->nevents, 1);
	assert_int_equal(f->events[0].action, TG_ACT_FLAGGED);
	assert_int_equal(egress(f, rel + smb_c_tree_connect_len, smb_c_transform, smb_c_transform_len), PASS);
	assert_int_equal(f->nevents, 1);
}

static void test_smb_client_without_smb3(void **state)
{
	struct fixture *f = *state;

	reset_smb(f, TG_MODE_ENFORCE);
	assert_int_equal(egress(f, 0, smb_c_negotiate_2x, smb_c_negotiate_2x_len), DROP);
	assert_int_equal(f->events[0].tls.finding, TG_SMB_NO_SMB3);
	assert_int_equal(f->events[0].tls.offered, TG_SMB_DIALECT_210);
	assert_int_equal(f->events[0].tls.side, TG_SIDE_CLIENT);
	reset_smb(f, TG_MODE_ENFORCE);
	assert_int_equal(egress(f, 0, smb_c_smb1, smb_c_smb1_len), DROP);
	assert_int_equal(f->events[0].tls.finding, TG_SMB_SMB1);
	/* TLS where SMB was due is not SMB either */
	reset_smb(f, TG_MODE_ENFORCE);
	assert_int_equal(egress(f, 0, client_hello, CH_LEN), DROP);
	assert_int_equal(f->events[0].tls.finding, TG_SMB_NOT_SMB);
}

static void test_smb_server_without_encryption(void **state)
{
	struct fixture *f = *state;

	/* the server picks 2.1: its response is dropped, the client never logs in */
	reset_smb(f, TG_MODE_ENFORCE);
	assert_int_equal(egress(f, 0, smb_c_negotiate_311, smb_c_negotiate_311_len), PASS);
	assert_int_equal(ingress(f, 0, smb_s_negotiate_21, smb_s_negotiate_21_len), DROP);
	assert_int_equal(get_flow(f).state, TG_FLOW_BLOCKED);
	assert_int_equal(f->events[0].tls.finding, TG_SMB_SERVER_SMB2);
	assert_int_equal(f->events[0].tls.negotiated, TG_SMB_DIALECT_210);
	assert_int_equal(f->events[0].tls.side, TG_SIDE_SERVER);
	/* 3.1.1 without an encryption context (server smb encrypt = off) */
	reset_smb(f, TG_MODE_AUDIT);
	assert_int_equal(egress(f, 0, smb_c_negotiate_311, smb_c_negotiate_311_len), PASS);
	assert_int_equal(ingress(f, 0, smb_s_negotiate_311_noenc, smb_s_negotiate_311_noenc_len), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_FLAGGED);
	assert_int_equal(f->events[0].tls.finding, TG_SMB_SERVER_NO_ENCRYPTION);
	/* 3.0 with CAP_ENCRYPTION goes on to the session */
	reset_smb(f, TG_MODE_ENFORCE);
	assert_int_equal(egress(f, 0, smb_c_negotiate_30, smb_c_negotiate_30_len), PASS);
	assert_int_equal(ingress(f, 0, smb_s_negotiate_30, smb_s_negotiate_30_len), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SMB_SESSION);
}

/* Messages split and coalesced across segments, retransmissions, a header cut in two. */
static void test_smb_segments(void **state)
{
	struct fixture *f = *state;
	uint8_t b[1200];
	uint32_t rel, n1 = smb_c_session_setup_1_len, n2 = smb_c_session_setup_2_len;

	reset_smb(f, TG_MODE_ENFORCE);
	/* the NEGOTIATE in two writes, the response in two segments */
	assert_int_equal(egress(f, 0, smb_c_negotiate_311, 100), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_PENDING);
	assert_int_equal(egress(f, 100, smb_c_negotiate_311 + 100, smb_c_negotiate_311_len - 100), PASS);
	assert_int_equal(ingress(f, 0, smb_s_negotiate_311, 150), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SERVER_HELLO);
	assert_int_equal(ingress(f, 150, smb_s_negotiate_311 + 150, smb_s_negotiate_311_len - 150), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SMB_SESSION);
	rel = smb_c_negotiate_311_len;
	/* setup 1 whole; setup 2 and the first 10 bytes of the TRANSFORM in one segment */
	assert_int_equal(egress(f, rel, smb_c_session_setup_1, n1), PASS);
	assert_int_equal(egress(f, rel, smb_c_session_setup_1, n1), PASS);	/* retransmitted */
	memcpy(b, smb_c_session_setup_2, n2);
	memcpy(b + n2, smb_c_transform, 6);
	assert_int_equal(egress(f, rel + n1, b, n2 + 6), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_SMB_SESSION);
	assert_int_equal(egress(f, rel + n1 + n2 + 6, smb_c_transform + 6, smb_c_transform_len - 6), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_TLS);
	/* a TREE_CONNECT that follows the setup in the same segment is caught there */
	reset_smb(f, TG_MODE_ENFORCE);
	rel = smb_negotiate(f);
	memcpy(b, smb_c_session_setup_1, n1);
	memcpy(b + n1, smb_c_session_setup_2, n2);
	memcpy(b + n1 + n2, smb_c_tree_connect, smb_c_tree_connect_len);
	assert_int_equal(egress(f, rel, b, n1 + n2 + smb_c_tree_connect_len), DROP);
	assert_int_equal(f->events[0].tls.finding, TG_SMB_CLEAR_AFTER_SETUP);
	/* a segment past the next message's header (a gap) is held back for TCP to resend */
	reset_smb(f, TG_MODE_ENFORCE);
	rel = smb_negotiate(f);
	assert_int_equal(egress(f, rel + 10, smb_c_session_setup_1 + 10, n1 - 10), DROP);
	assert_int_equal(counter(f, TG_CNT_OUT_OF_ORDER), 1);
	assert_int_equal(get_flow(f).state, TG_FLOW_SMB_SESSION);
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v4_client_hello_passes),
		cmocka_unit_test(test_v4_http_blocked_in_enforce),
		cmocka_unit_test(test_v4_http_flagged_in_audit),
		cmocka_unit_test(test_blocked_flow_drops_payload_passes_control),
		cmocka_unit_test(test_decided_tls_flow_never_reparsed),
		cmocka_unit_test(test_syn_and_ack_leave_flow_pending),
		cmocka_unit_test(test_bare_segments_between_hellos),
		cmocka_unit_test(test_split_client_hello_one_byte_writes),
		cmocka_unit_test(test_split_then_retransmit_overlapping),
		cmocka_unit_test(test_split_plaintext_blocked_on_first_bad_byte),
		cmocka_unit_test(test_gap_before_prefix_complete_is_dropped),
		cmocka_unit_test(test_not_a_client_hello),
		cmocka_unit_test(test_log_tls_flows_emits_allowed_event),
		cmocka_unit_test(test_hello_summary_slot),
		cmocka_unit_test(test_server_state_kept_whole),
		cmocka_unit_test(test_summary_slot_leftovers_never_read),
		cmocka_unit_test(test_negotiated_version_in_later_event),
		cmocka_unit_test(test_v6_client_hello_passes),
		cmocka_unit_test(test_v6_http_blocked),
		cmocka_unit_test(test_v6_http_flagged_in_audit),
		cmocka_unit_test(test_payload_capture_is_bounded),
		cmocka_unit_test(test_weak_client_blocked_in_enforce),
		cmocka_unit_test(test_weak_client_flagged_in_audit),
		cmocka_unit_test(test_weak_server_blocked_on_ingress),
		cmocka_unit_test(test_tls13_server_allowed),
		cmocka_unit_test(test_sni_binding),
		cmocka_unit_test(test_name_class_matches_reference),
		cmocka_unit_test(test_missing_sni),
		cmocka_unit_test(test_hello_split_over_records),
		cmocka_unit_test(test_hello_judged_in_scratch),
		cmocka_unit_test(test_postgres_sslrequest_then_tls),
		cmocka_unit_test(test_postgres_startup_is_plaintext),
		cmocka_unit_test(test_mysql_ssl_request_then_tls),
		cmocka_unit_test(test_tds_prelogin_then_tls),
		cmocka_unit_test(test_tds_freetds_client),
		cmocka_unit_test(test_connect_tunnel),
		cmocka_unit_test(test_fast_open_syn_data),
		cmocka_unit_test(test_skip_cgroups_gated),
		cmocka_unit_test(test_udp_quic_and_plaintext),
		cmocka_unit_test(test_fake_hello_then_plaintext),
		cmocka_unit_test(test_malformed_hello),
		cmocka_unit_test(test_real_hello_then_plaintext),
		cmocka_unit_test(test_server_answers_plaintext),
		cmocka_unit_test(test_server_flight_walked_where_collected),
		cmocka_unit_test(test_server_speaks_first),
		cmocka_unit_test(test_records_split_across_segments),
		cmocka_unit_test(test_undecided_is_bounded),
		cmocka_unit_test(test_hello_retry_request),
		cmocka_unit_test(test_server_alert),
		cmocka_unit_test(test_big_hello_across_records_and_segments),
		cmocka_unit_test(test_ipv6_extension_headers),
		cmocka_unit_test(test_raw_socket_packets),
		cmocka_unit_test(test_connect_host_forms),
		cmocka_unit_test(test_proxy_keepalive_requests),
		cmocka_unit_test(test_flow_cap_slots),
		cmocka_unit_test(test_flow_cap_release_once),
		cmocka_unit_test(test_smb3_encrypted_session_allowed),
		cmocka_unit_test(test_smb3_clear_tree_connect_blocked),
		cmocka_unit_test(test_smb3_audit_flags_once),
		cmocka_unit_test(test_smb_client_without_smb3),
		cmocka_unit_test(test_smb_server_without_encryption),
		cmocka_unit_test(test_smb_segments),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_verdict: needs root to load BPF programs\n");
		return 1;
	}
	return cmocka_run_group_tests_name("bpf_verdict", tests, setup, teardown);
}
