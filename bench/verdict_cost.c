// SPDX-License-Identifier: MIT
/*
 * verdict_cost: what judging costs per segment, by flow state and segment,
 * measured with BPF_PROG_TEST_RUN on the BPF tests' object
 * (tests/bpf/verdict_test.bpf.c: the production egress and ingress verdict
 * code, with array maps where tg_egress/tg_ingress have sk_storage). Prints a
 * markdown section for bench/results.md.
 *
 *   verdict_cost
 *   verdict_cost --only TEXT [--seconds N]
 *
 * --only runs just the cases whose description holds TEXT, over and over
 * for N seconds (default 10), and prints their median at the end: a steady
 * load to profile, e.g. under `perf record -e cpu-clock -a`, where each of
 * the verdict code's global functions is a symbol of its own.
 *
 * A short connection to a protected destination is a handful of such
 * segments; this splits its cost the way bpf_stats (one number per program)
 * cannot. Each case puts one flow state in place before every run (the
 * object's bench_restore), runs BATCH segments per test run (the kernel
 * times the batch and divides) and ROUNDS test runs; the median is
 * reported. The yardstick is a segment of a decided flow: the restore, the
 * state switch and the pass, so that Δ is what judging adds.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "tlsguard/config.h"
#include "tlsguard/dest.h"
#include "tlsguard/flow.h"
#include "tlsguard/names.h"
#include "verdict_test.skel.h"
#include "handshakes.h"

#define BATCH	2000
#define ROUNDS	21
#define CPORT	41234
#define SPORT	443
#define CSEQ	1000000u	/* the client's first payload byte */
#define SSEQ	7000u		/* the server's */

/* The client's first record after the server's hello in TLS 1.3: its compatibility CCS. */
static const unsigned char client_ccs[6] = { 0x14, 0x03, 0x03, 0x00, 0x01, 0x01 };
static const char http_get[] = "GET /c/blob.bin HTTP/1.1\r\nHost: acct.blob.core.windows.net\r\n\r\n";

struct segment {
	unsigned char b[2048] __attribute__((aligned(4)));	/* from b + 2: an aligned IP header */
	size_t len;
};

/* An Ethernet + IPv4 + TCP frame of the workload's flow, @to_server or back. */
static void tcp_segment(struct segment *s, int to_server, __u32 seq, const void *data, size_t len)
{
	struct ethhdr *eth = (struct ethhdr *)(s->b + 2);
	struct iphdr *ip = (struct iphdr *)(eth + 1);
	struct tcphdr *th = (struct tcphdr *)(ip + 1);
	__u32 client = htonl(0x0af40107), server = htonl(0xc633640a);	/* 10.244.1.7, 198.51.100.10 */

	memset(s->b, 0, sizeof(s->b));
	eth->h_proto = htons(ETH_P_IP);
	*ip = (struct iphdr){ .version = 4, .ihl = 5, .ttl = 64, .protocol = IPPROTO_TCP,
			      .tot_len = htons(sizeof(*ip) + sizeof(*th) + len),
			      .saddr = to_server ? client : server, .daddr = to_server ? server : client };
	th->source = htons(to_server ? CPORT : SPORT);
	th->dest = htons(to_server ? SPORT : CPORT);
	th->seq = htonl(seq);
	th->doff = 5;
	th->ack = 1;
	th->psh = len > 0;
	th->window = htons(65535);
	memcpy(th + 1, data, len);
	s->len = sizeof(*eth) + sizeof(*ip) + sizeof(*th) + len;
}

static int drain(void *ctx, void *data, size_t size)
{
	(void)ctx;
	(void)data;
	(void)size;
	return 0;
}

struct bench {
	struct verdict_test_bpf *skel;
	struct ring_buffer *rb;
	int flow_fd, tmpl_fd;
};

static int set_flow(int fd, const struct tg_flow *flow)
{
	__u32 key = 0;

	return bpf_map_update_elem(fd, &key, flow, BPF_ANY);
}

static int get_flow(int fd, struct tg_flow *flow)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(fd, &key, flow);
}

/* One segment through the egress (@to_server) or ingress program: its verdict, or -1. */
static int run_once(struct bench *b, int to_server, const struct segment *s, int repeat, __u32 *ns)
{
	struct bpf_program *prog = to_server ? b->skel->progs.test_egress : b->skel->progs.test_ingress;
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = s->b + 2, .data_size_in = s->len, .repeat = repeat);

	if (bpf_prog_test_run_opts(bpf_program__fd(prog), &o))
		return -1;
	ring_buffer__consume(b->rb);
	if (ns)
		*ns = o.duration;
	return o.retval;
}

static int cmp_u32(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/* Median ns per segment of @s judged again and again in flow state @state; -1 on failure. */
static long cost_ns(struct bench *b, const struct tg_flow *state, int to_server,
		    const struct segment *s, int repeat)
{
	__u32 d[ROUNDS];

	if (set_flow(b->tmpl_fd, state))
		return -1;
	b->skel->bss->bench_restore = 1;
	for (int r = 0; r < ROUNDS; r++)
		if (run_once(b, to_server, s, repeat, &d[r]) < 0)
			return -1;
	b->skel->bss->bench_restore = 0;
	qsort(d, ROUNDS, sizeof(d[0]), cmp_u32);
	return d[ROUNDS / 2];
}

/* An undecided TLS flow of a class with a minimum of TLS 1.2, in enforce (as bench/run.sh's policy). */
static struct tg_flow pending_flow(void)
{
	struct tg_flow f = { .cookie = 81234, .cgroup_id = 77, .tgid = 4242, .class_id = 1,
			     .dport = SPORT, .family = AF_INET, .mode = TG_MODE_ENFORCE,
			     .state = TG_FLOW_PENDING, .proto = TG_L7_TLS, .min_tls = 3,
			     .hs_flags = TG_HSF_SRV_PREFACE, .counted = TG_FLOW_COUNTED };

	memcpy(f.daddr + 10, "\xff\xff\xc6\x33\x64\x0a", 6);
	strcpy(f.comm, "python3");
	return f;
}

/*
 * The class's names as the agent writes them (keyed hash, per class): a
 * wildcard, as the built-in Azure classes have, which the SNI check walks
 * label by label. Returns the flow @f bound to them.
 */
static int bind_sni(struct bench *b, const struct tg_flow *f, const char *wildcard,
		    struct tg_flow *bound)
{
	struct tg_sipkey key = { .k0 = 0x1111, .k1 = 0x2222 };
	struct tg_name_key k = { .flags = TG_NAME_WILDCARD, .class_id = f->class_id };
	struct tg_name_value v = { .class_id = f->class_id };
	__u8 buf[TG_NAME_BUF] = { 0 };
	const char *suffix = wildcard + 1;	/* "*.x.y" is stored as ".x.y" */
	__u32 zero = 0;

	memcpy(buf, suffix, strlen(suffix));
	k.hash = tg_siphash(&key, buf, strlen(suffix));
	if (bpf_map_update_elem(bpf_map__fd(b->skel->maps.tg_sipkey), &zero, &key, 0) ||
	    bpf_map_update_elem(bpf_map__fd(b->skel->maps.tg_names), &k, &v, 0))
		return -1;
	k.class_id = TG_NAME_ANY_CLASS;
	if (bpf_map_update_elem(bpf_map__fd(b->skel->maps.tg_names), &k, &v, 0))
		return -1;
	*bound = *f;
	bound->cls_flags |= TG_CLS_SNI_BIND;
	return 0;
}

struct verdict_case {
	const char *what;
	const struct tg_flow *state;
	int to_server;
	const struct segment *seg;
	int repeat;
};

static int setup(struct bench *b)
{
	struct tg_config cfg = { .log_tls_flows = 0 };
	__u32 key = 0;

	b->skel = verdict_test_bpf__open_and_load();
	if (!b->skel)
		return -1;
	b->rb = ring_buffer__new(bpf_map__fd(b->skel->maps.tg_events), drain, NULL, NULL);
	b->flow_fd = bpf_map__fd(b->skel->maps.test_flow);
	b->tmpl_fd = bpf_map__fd(b->skel->maps.test_flow_tmpl);
	if (!b->rb || bpf_map_update_elem(bpf_map__fd(b->skel->maps.tg_config), &key, &cfg, 0))
		return -1;
	return 0;
}

/* --only: the chosen cases again and again for @seconds; 1 when none matched or a run failed. */
static int profile_cases(struct bench *b, const struct verdict_case *cases, size_t n,
			 const char *only, int seconds)
{
	time_t end = time(NULL) + seconds;
	size_t i, matched = 0;
	long ns;
	int last;

	for (i = 0; i < n; i++)
		matched += strstr(cases[i].what, only) != NULL;
	if (!matched) {
		fprintf(stderr, "verdict_cost: no case's description holds '%s'\n", only);
		return 1;
	}
	fprintf(stderr, "verdict_cost: %zu case(s) for %d s\n", matched, seconds);
	do {
		last = time(NULL) >= end;	/* the last pass prints its medians */
		for (i = 0; i < n; i++) {
			if (!strstr(cases[i].what, only))
				continue;
			ns = cost_ns(b, cases[i].state, cases[i].to_server, cases[i].seg, cases[i].repeat);
			if (ns < 0) {
				fprintf(stderr, "verdict_cost: BPF_PROG_TEST_RUN failed: %s\n", strerror(errno));
				return 1;
			}
			if (last)
				printf("%s: %ld ns\n", cases[i].what, ns);
		}
	} while (!last);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: verdict_cost [--only TEXT [--seconds N]]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static struct segment ack_out, ack_in, hello, server_hello, ccs, get;
	struct tg_flow pending = pending_flow(), after_ch, after_sh, decided, sni_bound, after_sni;
	struct bench b = { 0 };
	const char *only = NULL;
	int seconds = 10;
	long base, ns;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = argv[++i];
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc && atoi(argv[i + 1]) > 0)
			seconds = atoi(argv[++i]);
		else
			return usage();
	}
	if (setup(&b)) {
		fprintf(stderr, "verdict_cost: cannot load tests/bpf/verdict_test.bpf.c: %s\n", strerror(errno));
		return 1;
	}
	tcp_segment(&ack_out, 1, CSEQ, NULL, 0);
	tcp_segment(&ack_in, 0, SSEQ, NULL, 0);
	tcp_segment(&hello, 1, CSEQ, hs_client_curl, hs_client_curl_len);
	tcp_segment(&server_hello, 0, SSEQ, hs_server_tls13, hs_server_tls13_len);
	tcp_segment(&ccs, 1, CSEQ + hs_client_curl_len, client_ccs, sizeof(client_ccs));
	tcp_segment(&get, 1, CSEQ, http_get, strlen(http_get));

	if (bind_sni(&b, &pending, "*.blob.core.windows.net", &sni_bound)) {
		fprintf(stderr, "verdict_cost: cannot write the class's names: %s\n", strerror(errno));
		return 1;
	}
	/* the states a real handshake leaves, taken from the programs themselves */
	if (set_flow(b.flow_fd, &pending) || run_once(&b, 1, &hello, 1, NULL) != 1 ||
	    get_flow(b.flow_fd, &after_ch) || after_ch.state != TG_FLOW_SERVER_HELLO ||
	    run_once(&b, 0, &server_hello, 1, NULL) != 1 || get_flow(b.flow_fd, &after_sh) ||
	    run_once(&b, 1, &ccs, 1, NULL) != 1 || get_flow(b.flow_fd, &decided) ||
	    decided.state != TG_FLOW_TLS || set_flow(b.flow_fd, &sni_bound) ||
	    run_once(&b, 1, &hello, 1, NULL) != 1 || get_flow(b.flow_fd, &after_sni) ||
	    after_sni.state != TG_FLOW_SERVER_HELLO) {
		fprintf(stderr, "verdict_cost: the recorded handshake did not end in a TLS verdict, "
			"or its ClientHello did not pass the SNI binding\n");
		return 1;
	}

	const struct verdict_case cases[] = {
		{ "a decided flow's segment (the yardstick)", &decided, 1, &ccs, BATCH },
		{ "SYN or ACK of an undecided flow, out", &pending, 1, &ack_out, BATCH },
		{ "the ClientHello (curl, 517 bytes): judged, summary kept", &pending, 1, &hello, BATCH },
		{ "the same, SNI bound to the class's *.blob.core.windows.net", &sni_bound, 1, &hello,
		  BATCH },
		{ "ACK while the ServerHello is awaited, out", &after_ch, 1, &ack_out, BATCH },
		{ "ACK while the ServerHello is awaited, in", &after_ch, 0, &ack_in, BATCH },
		{ "the ServerHello (TLS 1.3 first flight, 761 bytes)", &after_ch, 0, &server_hello, BATCH },
		{ "the client's next record: the TLS verdict", &after_sh, 1, &ccs, BATCH },
		{ "a plaintext request: blocked, its event", &pending, 1, &get, 100 },
	};

	if (only) {
		int rc = profile_cases(&b, cases, sizeof(cases) / sizeof(cases[0]), only, seconds);

		ring_buffer__free(b.rb);
		verdict_test_bpf__destroy(b.skel);
		return rc;
	}
	printf("## 9: judging, per segment (BPF_PROG_TEST_RUN)\n\n");
	printf("The egress and ingress verdict code of `tg_egress`/`tg_ingress` as the BPF tests load it "
	       "(tests/bpf/verdict_test.bpf.c: array maps where the programs have sk_storage), one flow "
	       "state put back before every run; IPv4, recorded handshakes (curl's ClientHello, a TLS 1.3 "
	       "server's first flight). Median of %d test runs of %d segments (100 for the blocked one, "
	       "whose events fill the ring). Δ is over the yardstick: what judging the segment adds.\n\n",
	       ROUNDS, BATCH);
	printf("| segment | direction | ns | Δ ns |\n|---|---|---:|---:|\n");
	base = cost_ns(&b, cases[0].state, cases[0].to_server, cases[0].seg, cases[0].repeat);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ns = i ? cost_ns(&b, cases[i].state, cases[i].to_server, cases[i].seg, cases[i].repeat) : base;
		if (ns < 0 || base < 0) {
			fprintf(stderr, "verdict_cost: BPF_PROG_TEST_RUN failed: %s\n", strerror(errno));
			return 1;
		}
		printf("| %s | %s | %ld | %+ld |\n", cases[i].what, cases[i].to_server ? "egress" : "ingress",
		       ns, ns - base);
	}
	printf("\n");
	ring_buffer__free(b.rb);
	verdict_test_bpf__destroy(b.skel);
	return 0;
}
