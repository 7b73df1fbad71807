// SPDX-License-Identifier: MIT
/*
 * BPF_PROG_TEST_RUN tests of the first-payload verdict: crafted IPv4 and
 * IPv6 TCP segments go through the real egress logic; each test checks the
 * verdict (pass/drop), the flow state left behind, the counters and the
 * event the agent would receive. Needs root (loads BPF programs).
 */
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
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
#include "verdict_test.skel.h"

#define PASS 1
#define DROP 0
#define SPORT 41234
#define DPORT 443
#define SEQ0 1000000u

static const uint8_t client_hello[] = {
	0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03, 0xaa, 0xbb,
};
static const char http_get[] = "GET /container/blob.bin HTTP/1.1\r\nHost: acct.blob.core.windows.net\r\n\r\n";

struct fixture {
	struct verdict_test_bpf *skel;
	struct ring_buffer *rb;
	struct tg_event events[8];
	int nevents;
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

/* A fresh, undecided flow in the given mode; counters and events reset. */
static void reset_flow(struct fixture *f, int mode, int family)
{
	struct tg_flow flow = { .cookie = 81234, .cgroup_id = 77, .tgid = 4242, .class_id = 1,
				.dport = DPORT, .family = family, .mode = mode,
				.state = TG_FLOW_PENDING };
	int ncpu = libbpf_num_possible_cpus();
	__u64 zero[ncpu];
	__u32 key = 0;

	memset(zero, 0, sizeof(zero));
	strcpy(flow.comm, "python3");
	assert_int_equal(bpf_map_update_elem(bpf_map__fd(f->skel->maps.test_flow), &key, &flow, 0), 0);
	for (__u32 c = 0; c < TG_CNT__MAX; c++)
		bpf_map_update_elem(bpf_map__fd(f->skel->maps.tg_counters), &c, zero, 0);
	ring_buffer__consume(f->rb);
	f->nevents = 0;
	set_config(f, 0);
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

/* Build eth + IPv4/IPv6 + TCP + payload; returns the frame length. */
static size_t build_packet(uint8_t *buf, int family, uint32_t seq, const void *payload, size_t len,
			   uint8_t tcp_flags)
{
	struct ethhdr *eth = (struct ethhdr *)buf;
	struct tcphdr *th;
	size_t l3;

	memset(buf, 0, 1600);
	if (family == AF_INET) {
		struct iphdr *ip = (struct iphdr *)(eth + 1);

		eth->h_proto = htons(ETH_P_IP);
		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		ip->protocol = IPPROTO_TCP;
		ip->tot_len = htons(sizeof(*ip) + sizeof(*th) + len);
		inet_pton(AF_INET, "10.244.1.7", &ip->saddr);
		inet_pton(AF_INET, "198.51.100.10", &ip->daddr);
		l3 = sizeof(*ip);
	} else {
		struct ipv6hdr *ip6 = (struct ipv6hdr *)(eth + 1);

		eth->h_proto = htons(ETH_P_IPV6);
		ip6->version = 6;
		ip6->nexthdr = IPPROTO_TCP;
		ip6->hop_limit = 64;
		ip6->payload_len = htons(sizeof(*th) + len);
		inet_pton(AF_INET6, "2001:db8::7", &ip6->saddr);
		inet_pton(AF_INET6, "2001:db8::10", &ip6->daddr);
		l3 = sizeof(*ip6);
	}
	th = (struct tcphdr *)((uint8_t *)(eth + 1) + l3);
	th->source = htons(SPORT);
	th->dest = htons(DPORT);
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
	static uint8_t storage[1604] __attribute__((aligned(4)));
	uint8_t *pkt = storage + 2;
	size_t n = build_packet(pkt, family, seq, payload, len, len ? 0x18 : 0x10);
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = n, .repeat = 1);

	assert_int_equal(bpf_prog_test_run_opts(bpf_program__fd(f->skel->progs.test_egress), &opts), 0);
	ring_buffer__consume(f->rb);
	return opts.retval;
}

static void test_v4_client_hello_passes(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, sizeof(client_hello)), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_TLS);
	assert_int_equal(counter(f, TG_CNT_VERDICT_TLS), 1);
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
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, sizeof(client_hello)), PASS);
	assert_int_equal(run(f, AF_INET, SEQ0 + 300, http_get, strlen(http_get)), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_TLS);
	assert_int_equal(counter(f, TG_CNT_PLAINTEXT_BLOCKED), 0);
}

static void test_syn_and_ack_leave_flow_pending(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0 - 1, NULL, 0), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_PENDING);
	assert_int_equal(get_flow(f).prefix_len, 0);
}

static void test_split_client_hello_one_byte_writes(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	for (size_t i = 0; i < 5; i++) {
		assert_int_equal(run(f, AF_INET, SEQ0 + i, &client_hello[i], 1), PASS);
		assert_int_equal(get_flow(f).state, TG_FLOW_PENDING);
		assert_int_equal(get_flow(f).prefix_len, i + 1);
	}
	assert_int_equal(run(f, AF_INET, SEQ0 + 5, &client_hello[5], 1), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_TLS);
	assert_int_equal(counter(f, TG_CNT_PARTIAL_PREFIX), 5);
}

static void test_split_then_retransmit_overlapping(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, 2), PASS);
	/* retransmission of the same two bytes: nothing new */
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, 2), PASS);
	assert_int_equal(get_flow(f).prefix_len, 2);
	/* a coalesced retransmission from the start with the rest */
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, sizeof(client_hello)), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_TLS);
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

	reset_flow(f, TG_MODE_ENFORCE, AF_INET);
	set_config(f, 1);
	assert_int_equal(run(f, AF_INET, SEQ0, client_hello, sizeof(client_hello)), PASS);
	assert_int_equal(f->nevents, 1);
	assert_int_equal(f->events[0].type, TG_EV_TLS);
	assert_int_equal(f->events[0].action, TG_ACT_ALLOWED);
	assert_memory_equal(f->events[0].payload, client_hello, sizeof(client_hello));
}

static void test_v6_client_hello_passes(void **state)
{
	struct fixture *f = *state;

	reset_flow(f, TG_MODE_ENFORCE, AF_INET6);
	assert_int_equal(run(f, AF_INET6, SEQ0, client_hello, sizeof(client_hello)), PASS);
	assert_int_equal(get_flow(f).state, TG_FLOW_TLS);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v4_client_hello_passes),
		cmocka_unit_test(test_v4_http_blocked_in_enforce),
		cmocka_unit_test(test_v4_http_flagged_in_audit),
		cmocka_unit_test(test_blocked_flow_drops_payload_passes_control),
		cmocka_unit_test(test_decided_tls_flow_never_reparsed),
		cmocka_unit_test(test_syn_and_ack_leave_flow_pending),
		cmocka_unit_test(test_split_client_hello_one_byte_writes),
		cmocka_unit_test(test_split_then_retransmit_overlapping),
		cmocka_unit_test(test_split_plaintext_blocked_on_first_bad_byte),
		cmocka_unit_test(test_gap_before_prefix_complete_is_dropped),
		cmocka_unit_test(test_not_a_client_hello),
		cmocka_unit_test(test_log_tls_flows_emits_allowed_event),
		cmocka_unit_test(test_v6_client_hello_passes),
		cmocka_unit_test(test_v6_http_blocked),
		cmocka_unit_test(test_v6_http_flagged_in_audit),
		cmocka_unit_test(test_payload_capture_is_bounded),
	};

	if (geteuid() != 0) {
		fprintf(stderr, "test_verdict: needs root to load BPF programs\n");
		return 1;
	}
	return cmocka_run_group_tests_name("bpf_verdict", tests, setup, teardown);
}
