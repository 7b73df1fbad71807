// SPDX-License-Identifier: MIT
/*
 * libFuzzer: DNS answers a workload receives (anyone who can send it a UDP
 * datagram or a TCP segment from port 53 chooses these bytes). The parser,
 * the TCP reassembly (the input cut into records at offsets the input picks)
 * and the learned table behind them. Seeds: tests/fuzz/corpus/dns (real
 * dnsmasq answers, see tests/unit/capture-dns-fixtures.sh).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Iagent/policy -Iagent/kernel -Iagent/lib -Ibuild \
 *     tests/fuzz/fuzz_dns.c agent/policy/dnsparse.c agent/policy/dnslearn.c agent/policy/policy.c \
 *     agent/policy/policy_default.c agent/kernel/pins.c agent/lib/log.c \
 *     -lbpf -lelf -lz -lyaml -lresolv -o fuzz_dns
 *   ./fuzz_dns tests/fuzz/corpus/dns
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnslearn.h"
#include "dnsparse.h"
#include "policy.h"
#include "tlsguard/dns.h"

static struct tg_dns_answer ans;
static struct tg_learned *table;
static struct tg_dns_streams streams;
static uint64_t now_ns = 1000000000ULL;

static void setup(void)
{
	static const char yaml[] =
		"dns: {grace: 5s, max_learned: 64}\n"
		"destinations:\n"
		"  - name: storage\n"
		"    hosts: [\"*.blob.core.windows.net\", \"acct.blob.core.windows.net\"]\n"
		"    mode: enforce\n"
		"  - name: other\n"
		"    hosts: [\"*.test\", \"*.privatelink.blob.core.windows.net\"]\n";
	struct tg_diag diag = { 0 };
	struct tg_policy *p = NULL;

	if (policy_load_buffer("fuzz.yaml", yaml, sizeof(yaml) - 1, &p, &diag))
		abort();
	diag_free(&diag);
	table = learned_new();
	if (!table || learned_set_policy(table, p) < 0)
		abort();
	policy_free(p);
}

static void learn(void *ctx, const uint8_t *msg, size_t len)
{
	if (dns_parse_answer(msg, len, &ans) != TG_DNSP_OK)
		return;
	if (ans.nchain < 1 || ans.nchain > TG_DNS_MAX_CHAIN || ans.naddrs > TG_DNS_MAX_ADDRS)
		abort();
	for (size_t i = 0; i < ans.nchain; i++)
		if (strlen(ans.chain[i]) >= TG_DNS_NAME_LEN)
			abort();
	learned_add_answer(table, &ans, now_ns);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t cookie = 1 + (size & 7);
	size_t off = 0;
	uint32_t seq = 7;

	if (!table)
		setup();
	now_ns += 100000000ULL;

	/* as one UDP datagram */
	learn(NULL, data, size);

	/* as a TCP stream: the first byte sets the record size, records may repeat */
	if (size) {
		size_t step = 1 + data[0] % 64;

		dns_streams_feed(&streams, cookie, seq - 1, TG_DNS_TCP_SYN, NULL, 0, now_ns, learn, NULL);
		while (off < size) {
			size_t n = size - off < step ? size - off : step;

			dns_streams_feed(&streams, cookie, seq + off, 0, data + off, n, now_ns, learn, NULL);
			if (data[off] & 1)	/* a retransmission of what just came */
				dns_streams_feed(&streams, cookie, seq + off, 0, data + off, n, now_ns,
						 learn, NULL);
			off += n;
		}
		dns_streams_feed(&streams, cookie, seq + off, TG_DNS_TCP_FIN, NULL, 0, now_ns, learn, NULL);
	}
	learned_expire(table, now_ns);
	if (learned_count(table) > learned_max(table))
		abort();
	return 0;
}
