// SPDX-License-Identifier: MIT
/*
 * DNS answer learning without a kernel: the parser on real dnsmasq answers
 * (dns_fixtures.h, captured by capture-dns-fixtures.sh) and on truncated,
 * corrupted and hostile messages; DNS over TCP reassembly; host matching;
 * the learned table (TTL + grace expiry, LRU bound, class conflicts, policy
 * changes); and how learned addresses enter the destination table.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dests.h"
#include "dnslearn.h"
#include "dnsparse.h"
#include "policy.h"
#include "tlsguard/dns.h"
#include "dns_fixtures.h"

#define S(x) ((uint64_t)(x) * 1000000000ULL)
#define NOW S(1000)

static struct tg_dns_answer ans;	/* ~40 KiB: not on the stack */

static void addr_of(const char *text, uint8_t out[16])
{
	memset(out, 0, 16);
	if (strchr(text, ':')) {
		assert_int_equal(inet_pton(AF_INET6, text, out), 1);
	} else {
		out[10] = out[11] = 0xff;
		assert_int_equal(inet_pton(AF_INET, text, out + 12), 1);
	}
}

static const char *addr_text(const uint8_t a[16])
{
	static char buf[INET6_ADDRSTRLEN];
	static const uint8_t v4[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	if (!memcmp(a, v4, 12))
		inet_ntop(AF_INET, a + 12, buf, sizeof(buf));
	else
		inet_ntop(AF_INET6, a, buf, sizeof(buf));
	return buf;
}

static struct tg_policy *load(const char *yaml)
{
	struct tg_diag diag = { 0 };
	struct tg_policy *p = NULL;
	int ret = policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, &diag);

	for (size_t i = 0; i < diag.n; i++)
		print_error("%s\n", diag.msgs[i]);
	diag_free(&diag);
	assert_int_equal(ret, 0);
	return p;
}

/* ---- parsing real answers ------------------------------------------------- */

static void test_parse_cname_a(void **state)
{
	assert_int_equal(dns_parse_answer(fx_cname_a, sizeof(fx_cname_a), &ans), TG_DNSP_OK);
	assert_int_equal(ans.qtype, ns_t_a);
	assert_int_equal(ans.nchain, 2);
	assert_string_equal(ans.chain[0], "acct.blob.core.windows.net");
	assert_string_equal(ans.chain[1], "acct.privatelink.blob.core.windows.net");
	assert_int_equal(ans.naddrs, 1);
	assert_string_equal(addr_text(ans.addrs[0].addr), "198.51.100.10");
	assert_int_equal(ans.addrs[0].ttl, 2);
	assert_int_equal(ans.addrs[0].owner, 1);
}

static void test_parse_aaaa_edns_plain(void **state)
{
	assert_int_equal(dns_parse_answer(fx_cname_aaaa, sizeof(fx_cname_aaaa), &ans), TG_DNSP_OK);
	assert_int_equal(ans.qtype, ns_t_aaaa);
	assert_int_equal(ans.naddrs, 1);
	assert_string_equal(addr_text(ans.addrs[0].addr), "2001:db8::10");

	/* the OPT record sits in the additional section: no difference */
	assert_int_equal(dns_parse_answer(fx_cname_a_edns, sizeof(fx_cname_a_edns), &ans), TG_DNSP_OK);
	assert_int_equal(ans.nchain, 2);
	assert_int_equal(ans.naddrs, 1);

	assert_int_equal(dns_parse_answer(fx_plain_a, sizeof(fx_plain_a), &ans), TG_DNSP_OK);
	assert_int_equal(ans.nchain, 1);
	assert_string_equal(ans.chain[0], "other.test");
	assert_int_equal(ans.naddrs, 1);
	assert_int_equal(ans.addrs[0].owner, 0);
	assert_string_equal(addr_text(ans.addrs[0].addr), "198.51.100.20");
}

static void test_parse_two_hop_chain(void **state)
{
	assert_int_equal(dns_parse_answer(fx_chain2_a, sizeof(fx_chain2_a), &ans), TG_DNSP_OK);
	assert_int_equal(ans.nchain, 3);
	assert_string_equal(ans.chain[0], "files.contoso.test");
	assert_string_equal(ans.chain[1], "acct2.blob.core.windows.net");
	assert_string_equal(ans.chain[2], "acct2.privatelink.blob.core.windows.net");
	assert_int_equal(ans.naddrs, 1);
	assert_int_equal(ans.addrs[0].owner, 2);
	assert_string_equal(addr_text(ans.addrs[0].addr), "198.51.100.11");
}

static void test_parse_refused_truncated(void **state)
{
	assert_int_equal(dns_parse_answer(fx_refused, sizeof(fx_refused), &ans), TG_DNSP_RCODE);
	/* TC: partial answers are not learned, the client asks again over TCP */
	assert_int_equal(dns_parse_answer(fx_big_udp_tc, sizeof(fx_big_udp_tc), &ans),
			 TG_DNSP_TRUNCATED);
	/* ... and that answer, less the 2-byte length, has all 40 */
	assert_int_equal(dns_parse_answer(fx_big_tcp + 2, sizeof(fx_big_tcp) - 2, &ans), TG_DNSP_OK);
	assert_int_equal(ans.naddrs, 40);
	assert_string_equal(ans.chain[0], "big.blob.core.windows.net");
}

/* Every prefix of every capture, and deterministic byte corruption: no crash, no overread. */
static void test_parse_truncated_and_corrupted(void **state)
{
	static const struct {
		const uint8_t *p;
		size_t n;
	} fx[] = {
		{ fx_cname_a, sizeof(fx_cname_a) }, { fx_cname_aaaa, sizeof(fx_cname_aaaa) },
		{ fx_cname_a_edns, sizeof(fx_cname_a_edns) }, { fx_chain2_a, sizeof(fx_chain2_a) },
		{ fx_big_tcp + 2, sizeof(fx_big_tcp) - 2 }, { fx_plain_a, sizeof(fx_plain_a) },
	};
	uint32_t rng = 12345;

	for (size_t f = 0; f < sizeof(fx) / sizeof(fx[0]); f++) {
		for (size_t n = 0; n < fx[f].n; n++) {
			/* an exact-size heap copy, so ASan sees any read past the end */
			uint8_t *copy = malloc(n ? n : 1);

			memcpy(copy, fx[f].p, n);
			assert_int_not_equal(dns_parse_answer(copy, n, &ans), TG_DNSP_OK);
			free(copy);
		}
		for (int round = 0; round < 2000; round++) {
			uint8_t *copy = malloc(fx[f].n);
			enum tg_dns_parse_result r;

			memcpy(copy, fx[f].p, fx[f].n);
			for (int k = 0; k < 3; k++) {
				rng = rng * 1103515245 + 12345;
				copy[(rng >> 8) % fx[f].n] ^= (rng >> 20) | 1;
			}
			r = dns_parse_answer(copy, fx[f].n, &ans);
			assert_true(r < TG_DNSP__MAX);
			if (r == TG_DNSP_OK) {
				assert_true(ans.nchain >= 1 && ans.nchain <= TG_DNS_MAX_CHAIN);
				assert_true(ans.naddrs <= TG_DNS_MAX_ADDRS);
				for (size_t i = 0; i < ans.naddrs; i++)
					assert_true(ans.addrs[i].owner < ans.nchain);
			}
			free(copy);
		}
	}
}

/* ---- hostile messages, written out byte by byte ----------------------------- */

#define HDR(id, flags, qd, an) (id) >> 8, (id) & 0xff, (flags) >> 8, (flags) & 0xff, 0, qd, 0, an, 0, 0, 0, 0
#define Q_A 0, 1, 0, 1
#define RR(type, ttl, rdlen) 0, type, 0, 1, (ttl) >> 24, ((ttl) >> 16) & 0xff, ((ttl) >> 8) & 0xff, (ttl) & 0xff, 0, rdlen

static void test_parse_hostile(void **state)
{
	/* a query, not an answer */
	static const uint8_t query[] = { HDR(1, 0x0100, 1, 0), 1, 'a', 0, Q_A };
	/* no question */
	static const uint8_t noq[] = { HDR(1, 0x8180, 0, 1), 1, 'a', 0, RR(1, 60, 4), 10, 0, 0, 1 };
	/* CNAME loop a -> b -> a, and an A for a name off the chain */
	static const uint8_t loop[] = {
		HDR(1, 0x8180, 1, 3), 1, 'a', 0, Q_A,
		0xc0, 12, RR(5, 60, 3), 1, 'b', 0,	/* "b" at offset 31 */
		0xc0, 31, RR(5, 60, 2), 0xc0, 12,
		1, 'x', 0, RR(1, 60, 4), 10, 9, 9, 9,
	};
	/* a compression pointer to itself */
	static const uint8_t ptrloop[] = { HDR(1, 0x8180, 1, 1), 1, 'a', 0, Q_A,
					   0xc0, 19, RR(1, 60, 4), 10, 0, 0, 1 };	/* at 19 */
	/* an A record with 5 bytes of data, then a good one; a TTL with the top bit set */
	static const uint8_t badlen[] = {
		HDR(1, 0x8180, 1, 2), 1, 'a', 0, Q_A,
		0xc0, 12, RR(1, 60, 5), 10, 0, 0, 1, 7,
		0xc0, 12, 0, 1, 0, 1, 0x80, 0, 0, 0, 0, 4, 10, 0, 0, 2,
	};
	/* more answers announced than present */
	static const uint8_t short_an[] = { HDR(1, 0x8180, 1, 2), 1, 'a', 0, Q_A,
					    0xc0, 12, RR(1, 60, 4), 10, 0, 0, 1 };
	/* a label with a dot in it: "b.c" as one label, matching nothing */
	static const uint8_t escaped[] = { HDR(1, 0x8180, 1, 1), 3, 'b', '.', 'c', 0, Q_A,
					   0xc0, 12, RR(1, 60, 4), 10, 0, 0, 3 };

	assert_int_equal(dns_parse_answer(query, sizeof(query), &ans), TG_DNSP_NOT_ANSWER);
	assert_int_equal(dns_parse_answer(noq, sizeof(noq), &ans), TG_DNSP_NO_QUESTION);
	assert_int_equal(dns_parse_answer(loop, sizeof(loop), &ans), TG_DNSP_OK);
	assert_int_equal(ans.nchain, 2);
	assert_string_equal(ans.chain[1], "b");
	assert_int_equal(ans.naddrs, 0);	/* 10.9.9.9 belongs to x, not to the chain */
	assert_int_equal(dns_parse_answer(ptrloop, sizeof(ptrloop), &ans), TG_DNSP_MALFORMED);
	assert_int_equal(dns_parse_answer(badlen, sizeof(badlen), &ans), TG_DNSP_OK);
	assert_int_equal(ans.naddrs, 1);
	assert_string_equal(addr_text(ans.addrs[0].addr), "10.0.0.2");
	assert_int_equal(ans.addrs[0].ttl, 0);
	assert_int_equal(dns_parse_answer(short_an, sizeof(short_an), &ans), TG_DNSP_MALFORMED);
	assert_int_equal(dns_parse_answer(escaped, sizeof(escaped), &ans), TG_DNSP_OK);
	assert_false(dns_host_matches("*.c", ans.chain[0]));
	assert_int_equal(dns_parse_answer(NULL, 0, &ans), TG_DNSP_MALFORMED);
}

/* ---- DNS over TCP ---------------------------------------------------------- */

struct msgs {
	int n;
	size_t len[8];
	uint8_t data[8][800];
};

static void collect(void *ctx, const uint8_t *msg, size_t len)
{
	struct msgs *m = ctx;

	assert_true(m->n < 8 && len <= sizeof(m->data[0]));
	memcpy(m->data[m->n], msg, len);
	m->len[m->n++] = len;
}

static void test_tcp_reassembly(void **state)
{
	static struct tg_dns_streams s;
	struct msgs m = { 0 };
	const uint8_t *stream = fx_big_tcp;
	size_t n = sizeof(fx_big_tcp);
	uint32_t isn = 0xfffffff0;	/* the stream wraps around 2^32 */

	memset(&s, 0, sizeof(s));
	/* SYN, then the answer a byte at a time with every byte sent twice */
	assert_int_equal(dns_streams_feed(&s, 7, isn, TG_DNS_TCP_SYN, NULL, 0, NOW, collect, &m), 0);
	for (size_t i = 0; i < n; i++) {
		dns_streams_feed(&s, 7, isn + i, 0, stream + i, 1, NOW, collect, &m);
		dns_streams_feed(&s, 7, isn + i, 0, stream + i, 1, NOW, collect, &m);
	}
	assert_int_equal(m.n, 1);
	assert_int_equal(m.len[0], n - 2);
	assert_memory_equal(m.data[0], stream + 2, n - 2);
	assert_int_equal(dns_parse_answer(m.data[0], m.len[0], &ans), TG_DNSP_OK);
	assert_int_equal(ans.naddrs, 40);

	/* two messages in one record, overlapping a retransmission */
	m.n = 0;
	{
		uint8_t two[2 * sizeof(fx_tcp_cname_a)];

		memcpy(two, fx_tcp_cname_a, sizeof(fx_tcp_cname_a));
		memcpy(two + sizeof(fx_tcp_cname_a), fx_tcp_cname_a, sizeof(fx_tcp_cname_a));
		dns_streams_feed(&s, 8, 100, TG_DNS_TCP_SYN, NULL, 0, NOW, collect, &m);
		dns_streams_feed(&s, 8, 100, 0, two, 50, NOW, collect, &m);
		dns_streams_feed(&s, 8, 120, 0, two + 20, sizeof(two) - 20, NOW, collect, &m);
	}
	assert_int_equal(m.n, 2);
	assert_memory_equal(m.data[1], fx_tcp_cname_a + 2, sizeof(fx_tcp_cname_a) - 2);
	assert_int_equal(s.stats.gaps, 0);

	/* a lost record: nothing more is read from that connection */
	m.n = 0;
	dns_streams_feed(&s, 9, 0, TG_DNS_TCP_SYN, NULL, 0, NOW, collect, &m);
	dns_streams_feed(&s, 9, 0, 0, fx_tcp_cname_a, 10, NOW, collect, &m);
	dns_streams_feed(&s, 9, 20, 0, fx_tcp_cname_a + 20, sizeof(fx_tcp_cname_a) - 20, NOW, collect, &m);
	dns_streams_feed(&s, 9, 10, 0, fx_tcp_cname_a + 10, 10, NOW, collect, &m);
	assert_int_equal(m.n, 0);
	assert_int_equal(s.stats.gaps, 1);

	/* a stream first seen mid-way starts at a message boundary; FIN frees it */
	dns_streams_feed(&s, 10, 5000, TG_DNS_TCP_FIN, fx_tcp_cname_a, sizeof(fx_tcp_cname_a), NOW,
			 collect, &m);
	assert_int_equal(m.n, 1);
	for (int i = 0; i < TG_DNS_MAX_STREAMS; i++)
		assert_int_not_equal(s.v[i].cookie, 10);

	/* bounded: the least recently used stream gives way */
	for (uint64_t c = 100; c < 100 + TG_DNS_MAX_STREAMS + 5; c++)
		dns_streams_feed(&s, c, 0, 0, fx_tcp_cname_a, 5, NOW + c, collect, &m);
	assert_true(s.stats.evicted >= 5);
	dns_streams_expire(&s, NOW + 1000);
	assert_false(dns_streams_active(&s));
	dns_streams_free(&s);
}

/* ---- matching ---------------------------------------------------------------- */

static void test_host_matching(void **state)
{
	const char *w = "*.blob.core.windows.net";

	assert_true(dns_host_matches(w, "acct.blob.core.windows.net"));
	assert_true(dns_host_matches(w, "acct.privatelink.blob.core.windows.net"));
	assert_false(dns_host_matches(w, "blob.core.windows.net"));
	assert_false(dns_host_matches(w, "acctblob.core.windows.net"));
	assert_false(dns_host_matches(w, "acct.blob.core.windows.net.evil.example"));
	assert_false(dns_host_matches(w, ".blob.core.windows.net"));
	assert_false(dns_host_matches(w, "a\\.blob.core.windows.net"));
	assert_true(dns_host_matches("mcr.microsoft.com", "mcr.microsoft.com"));
	assert_false(dns_host_matches("mcr.microsoft.com", "x.mcr.microsoft.com"));
}

/* ---- the learned table -------------------------------------------------------- */

/* An answer: qname, CNAME targets, then "addr" strings; all with @ttl. */
static const struct tg_dns_answer *answer(uint32_t ttl, const char *const *chain, size_t nchain,
					  const char *const *addrs, size_t naddrs)
{
	memset(&ans, 0, sizeof(ans));
	for (size_t i = 0; i < nchain; i++)
		snprintf(ans.chain[i], sizeof(ans.chain[i]), "%s", chain[i]);
	ans.nchain = nchain;
	for (size_t i = 0; i < naddrs; i++) {
		addr_of(addrs[i], ans.addrs[i].addr);
		ans.addrs[i].ttl = ttl;
		ans.addrs[i].owner = nchain - 1;
	}
	ans.naddrs = naddrs;
	return &ans;
}

#define ANSWER(ttl, chain, addrs) \
	answer(ttl, chain, sizeof(chain) / sizeof(chain[0]), addrs, sizeof(addrs) / sizeof(addrs[0]))

static const char *const POLICY =
	"mode: audit\n"
	"dns: {grace: 30s, max_learned: 100}\n"
	"destinations:\n"
	"  - name: storage\n"
	"    hosts: [\"*.blob.core.windows.net\"]\n"
	"    mode: enforce\n"
	"  - name: registry\n"
	"    hosts: [\"*.azurecr.io\", \"*.privatelink.blob.core.windows.net\"]\n"
	"  - name: mcr\n"
	"    hosts: [\"mcr.microsoft.com\"]\n";

static const struct tg_learned_entry *get(struct tg_learned *t, const char *a)
{
	uint8_t addr[16];

	addr_of(a, addr);
	return learned_find(t, addr);
}

static void test_learn_real_answers(void **state)
{
	struct tg_policy *p = load(POLICY);
	struct tg_learned *t = learned_new();
	const struct tg_learned_entry *e;

	assert_non_null(t);
	assert_int_equal(learned_set_policy(t, p), 0);
	assert_int_equal(dns_parse_answer(fx_cname_a, sizeof(fx_cname_a), &ans), TG_DNSP_OK);
	assert_int_equal(learned_add_answer(t, &ans, NOW), 1);
	e = get(t, "198.51.100.10");
	assert_non_null(e);
	/* the name asked matches first: storage, even though the privatelink name is registry's */
	assert_string_equal(e->class_name, "storage");
	assert_string_equal(e->qname, "acct.blob.core.windows.net");
	assert_string_equal(e->matched, "acct.blob.core.windows.net");
	assert_string_equal(e->host, "*.blob.core.windows.net");
	assert_int_equal(e->expires_ns, NOW + S(2) + S(30));
	assert_int_equal(learned_next_expiry(t), NOW + S(32));

	/* an alias outside the policy, CNAME into it: the name asked is what events show */
	assert_int_equal(dns_parse_answer(fx_chain2_a, sizeof(fx_chain2_a), &ans), TG_DNSP_OK);
	assert_int_equal(learned_add_answer(t, &ans, NOW), 1);
	e = get(t, "198.51.100.11");
	assert_non_null(e);
	assert_string_equal(e->qname, "files.contoso.test");
	assert_string_equal(e->matched, "acct2.blob.core.windows.net");

	/* names the policy does not know teach nothing */
	assert_int_equal(dns_parse_answer(fx_plain_a, sizeof(fx_plain_a), &ans), TG_DNSP_OK);
	assert_int_equal(learned_add_answer(t, &ans, NOW), 0);
	assert_null(get(t, "198.51.100.20"));
	assert_int_equal(learned_count(t), 2);
	learned_free(t);
	policy_free(p);
}

static void test_match_precedence(void **state)
{
	struct tg_policy *p = load("destinations:\n"
				   "  - name: broad\n"
				   "    hosts: [\"*.windows.net\"]\n"
				   "  - name: narrow\n"
				   "    hosts: [\"*.core.windows.net\"]\n"
				   "  - name: exact\n"
				   "    hosts: [\"special.core.windows.net\"]\n");
	struct tg_learned *t = learned_new();
	static const char *const n1[] = { "acct.blob.core.windows.net" }, *const a1[] = { "10.0.0.1" };
	static const char *const n2[] = { "special.core.windows.net" }, *const a2[] = { "10.0.0.2" };
	static const char *const n3[] = { "x.windows.net" }, *const a3[] = { "10.0.0.3" };

	assert_int_equal(learned_set_policy(t, p), 0);
	learned_add_answer(t, ANSWER(60, n1, a1), NOW);
	learned_add_answer(t, ANSWER(60, n2, a2), NOW);
	learned_add_answer(t, ANSWER(60, n3, a3), NOW);
	assert_string_equal(get(t, "10.0.0.1")->class_name, "narrow");	/* longer suffix */
	assert_string_equal(get(t, "10.0.0.2")->class_name, "exact");	/* exact beats wildcards */
	assert_string_equal(get(t, "10.0.0.3")->class_name, "broad");
	learned_free(t);
	policy_free(p);
}

static void test_ttl_grace_expiry(void **state)
{
	struct tg_policy *p = load(POLICY);
	struct tg_learned *t = learned_new();
	static const char *const name[] = { "acct.blob.core.windows.net" };
	static const char *const addrs[] = { "198.51.100.10", "2001:db8::10" };

	assert_int_equal(learned_set_policy(t, p), 0);
	assert_int_equal(learned_add_answer(t, ANSWER(10, name, addrs), NOW), 2);
	assert_int_equal(learned_expire(t, NOW + S(39)), 0);
	assert_int_equal(learned_count(t), 2);
	/* learned again before it expired: later expiry, nothing the dests table shows changed */
	assert_int_equal(learned_add_answer(t, ANSWER(10, name, addrs), NOW + S(20)), 0);
	assert_int_equal(learned_expire(t, NOW + S(40)), 0);
	assert_int_equal(learned_expire(t, NOW + S(59)), 0);
	assert_int_equal(learned_expire(t, NOW + S(60)), 2);
	assert_int_equal(learned_count(t), 0);
	assert_int_equal(learned_next_expiry(t), UINT64_MAX);
	{
		struct tg_learned_stats st;

		learned_get_stats(t, &st);
		assert_int_equal(st.learned, 2);
		assert_int_equal(st.refreshed, 2);
		assert_int_equal(st.expired, 2);
	}
	/* a TTL of years is a day; TTL 0 still gets the grace */
	assert_int_equal(learned_add_answer(t, ANSWER(0x7fffffff, name, addrs), NOW), 2);
	assert_int_equal(get(t, "198.51.100.10")->expires_ns, NOW + S(TG_DNS_TTL_MAX_S) + S(30));
	learned_free(t);
	policy_free(p);
}

/* Full of live entries: new addresses are refused, none that has not expired is dropped. */
static void test_full_refuses_new(void **state)
{
	struct tg_policy *p = load("dns: {max_learned: 3, grace: 10s}\n"
				   "destinations:\n"
				   "  - name: storage\n"
				   "    hosts: [\"*.blob.core.windows.net\"]\n");
	struct tg_learned *t = learned_new();
	static const char *const name[] = { "acct.blob.core.windows.net" };
	const char *a[] = { "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5" };
	struct tg_learned_stats st;

	assert_int_equal(learned_set_policy(t, p), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(learned_add_answer(t, answer(60, name, 1, &a[i], 1), NOW), 1);
	/* a flood of other addresses (a workload answering itself): all refused */
	assert_int_equal(learned_add_answer(t, answer(60, name, 1, &a[3], 1), NOW + S(1)), 0);
	assert_int_equal(learned_add_answer(t, answer(60, name, 1, &a[4], 1), NOW + S(1)), 0);
	assert_int_equal(learned_count(t), 3);
	for (int i = 0; i < 3; i++)
		assert_non_null(get(t, a[i]));
	assert_null(get(t, "10.0.0.4"));
	assert_null(get(t, "10.0.0.5"));
	learned_get_stats(t, &st);
	assert_int_equal(st.evicted, 0);
	assert_int_equal(st.refused_full, 2);
	/* a refresh of a learned one is not new: allowed while full */
	assert_int_equal(learned_add_answer(t, answer(600, name, 1, &a[0], 1), NOW + S(2)), 0);
	/* once 10.0.0.2 and 10.0.0.3 expired (60 s + 10 s), new ones fit */
	assert_int_equal(learned_add_answer(t, answer(60, name, 1, &a[3], 1), NOW + S(71)), 1);
	assert_non_null(get(t, "10.0.0.1"));
	assert_non_null(get(t, "10.0.0.4"));
	assert_int_equal(learned_count(t), 2);
	learned_free(t);
	policy_free(p);
}

/* One cgroup's answers hold at most dns.max_learned_per_cgroup entries; others still learn. */
static void test_quota_per_cgroup(void **state)
{
	struct tg_policy *p = load("dns: {max_learned: 8, max_learned_per_cgroup: 2}\n"
				   "destinations:\n"
				   "  - name: storage\n"
				   "    hosts: [\"*.blob.core.windows.net\"]\n");
	struct tg_learned *t = learned_new();
	static const char *const name[] = { "acct.blob.core.windows.net" };
	const char *a[] = { "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4" };
	struct tg_learned_stats st;

	assert_int_equal(learned_set_policy(t, p), 0);
	assert_int_equal(learned_add_answer_from(t, answer(60, name, 1, &a[0], 1), 7, NOW), 1);
	assert_int_equal(learned_add_answer_from(t, answer(60, name, 1, &a[1], 1), 7, NOW), 1);
	assert_int_equal(learned_add_answer_from(t, answer(60, name, 1, &a[2], 1), 7, NOW), 0);
	/* another cgroup is not held back by the first one's flood */
	assert_int_equal(learned_add_answer_from(t, answer(60, name, 1, &a[3], 1), 9, NOW), 1);
	/* the first cgroup may still refresh what it holds, and a second cgroup's answer for
	 * an address the first holds refreshes it without a second entry */
	assert_int_equal(learned_add_answer_from(t, answer(60, name, 1, &a[0], 1), 9, NOW), 0);
	learned_get_stats(t, &st);
	assert_int_equal(st.refused_quota, 1);
	assert_int_equal(learned_count(t), 3);
	assert_null(get(t, "10.0.0.3"));
	/* an expired entry gives its owner's quota back */
	learned_expire(t, NOW + S(3600));
	assert_int_equal(learned_add_answer_from(t, answer(60, name, 1, &a[2], 1), 7,
						 NOW + S(3600)), 1);
	learned_free(t);
	policy_free(p);
}

static void test_class_conflicts(void **state)
{
	struct tg_policy *p = load(POLICY);
	struct tg_learned *t = learned_new();
	static const char *const reg[] = { "x.azurecr.io" }, *const sto[] = { "acct.blob.core.windows.net" };
	static const char *const sto2[] = { "other.blob.core.windows.net" };
	static const char *const a[] = { "10.0.0.1" }, *const b[] = { "10.0.0.2" };

	assert_int_equal(learned_set_policy(t, p), 0);
	/* audit class first, then the enforce class: the stricter takes the address */
	assert_int_equal(learned_add_answer(t, ANSWER(60, reg, a), NOW), 1);
	assert_int_equal(learned_add_answer(t, ANSWER(60, sto, a), NOW), 1);
	assert_string_equal(get(t, "10.0.0.1")->class_name, "storage");
	/* and a forged answer for an audit class cannot take it back */
	assert_int_equal(learned_add_answer(t, ANSWER(600, reg, a), NOW), 0);
	assert_string_equal(get(t, "10.0.0.1")->class_name, "storage");
	assert_string_equal(get(t, "10.0.0.1")->qname, "acct.blob.core.windows.net");
	/* ... though the address stays protected as long as any answer hands it out */
	assert_int_equal(get(t, "10.0.0.1")->expires_ns, NOW + S(600) + S(30));
	/* same class, another name: the newest name is the one events show */
	assert_int_equal(learned_add_answer(t, ANSWER(60, sto, b), NOW), 1);
	assert_int_equal(learned_add_answer(t, ANSWER(60, sto2, b), NOW), 1);
	assert_string_equal(get(t, "10.0.0.2")->qname, "other.blob.core.windows.net");
	learned_free(t);
	policy_free(p);
}

static int count_removed;

static void observer(void *ctx, const struct tg_learned_entry *e, bool removed)
{
	(*(int *)ctx)++;
	count_removed += removed;
}

static void test_policy_change(void **state)
{
	struct tg_policy *p = load(POLICY);
	struct tg_policy *q = load("dns: {max_learned: 1}\n"
				   "destinations:\n"
				   "  - name: blobs\n"
				   "    hosts: [\"*.blob.core.windows.net\"]\n"
				   "  - name: registry\n"
				   "    hosts: [\"*.azurecr.io\"]\n");
	struct tg_learned *t = learned_new();
	static const char *const sto[] = { "acct.blob.core.windows.net" }, *const mcr[] = { "mcr.microsoft.com" };
	static const char *const reg[] = { "x.azurecr.io" };
	static const char *const a[] = { "10.0.0.1" }, *const b[] = { "10.0.0.2" }, *const c[] = { "10.0.0.3" };
	int calls = 0;

	assert_int_equal(learned_set_policy(t, p), 0);
	learned_set_observer(t, observer, &calls);
	learned_add_answer(t, ANSWER(60, reg, c), NOW);
	learned_add_answer(t, ANSWER(60, mcr, b), NOW);
	learned_add_answer(t, ANSWER(60, sto, a), NOW);
	assert_int_equal(calls, 3);
	count_removed = 0;
	/*
	 * mcr.microsoft.com is gone from the policy: dropped. The storage class is
	 * now "blobs": the entry follows. The bound is now 1: the least recent goes.
	 */
	assert_true(learned_set_policy(t, q) >= 2);
	assert_int_equal(learned_count(t), 1);
	assert_null(get(t, "10.0.0.2"));
	assert_null(get(t, "10.0.0.3"));
	assert_string_equal(get(t, "10.0.0.1")->class_name, "blobs");
	assert_int_equal(count_removed, 2);
	/* restoring from the pinned copy: no room while the one entry lives (never evicted) */
	assert_int_equal(learned_restore(t, (uint8_t[16]){ [10] = 0xff, [11] = 0xff, 10, 0, 0, 9 },
					 "files.contoso.test", "acct.blob.core.windows.net", NOW + S(5),
					 NOW), 0);
	learned_expire(t, NOW + S(3600));
	assert_int_equal(learned_count(t), 0);
	/* then re-matched, expired ones refused */
	assert_int_equal(learned_restore(t, (uint8_t[16]){ [10] = 0xff, [11] = 0xff, 10, 0, 0, 9 },
					 "files.contoso.test", "acct.blob.core.windows.net", NOW + S(5),
					 NOW), 1);
	assert_int_equal(learned_restore(t, (uint8_t[16]){ [10] = 0xff, [11] = 0xff, 10, 0, 0, 8 },
					 "a.blob.core.windows.net", "a.blob.core.windows.net", NOW, NOW), 0);
	assert_int_equal(learned_restore(t, (uint8_t[16]){ [10] = 0xff, [11] = 0xff, 10, 0, 0, 7 },
					 "a.example", "a.example", NOW + S(5), NOW), 0);
	assert_string_equal(get(t, "10.0.0.9")->qname, "files.contoso.test");
	learned_free(t);
	policy_free(p);
	policy_free(q);
}

/* ---- into the destination table ------------------------------------------------- */

static void test_dests_add_learned(void **state)
{
	struct tg_policy *p = load("destinations:\n"
				   "  - name: storage\n"
				   "    hosts: [\"*.blob.core.windows.net\"]\n"
				   "    cidrs: [\"203.0.113.7/32\"]\n"
				   "  - name: registry\n"
				   "    hosts: [\"*.azurecr.io\"]\n"
				   "    cidrs: [\"198.18.0.0/15\"]\n"
				   "exceptions:\n"
				   "  - cidrs: [\"192.0.2.0/24\"]\n");
	struct tg_learned *t = learned_new();
	static const char *const sto[] = { "acct.blob.core.windows.net" };
	static const char *const addrs[] = { "203.0.113.5", "192.0.2.9", "203.0.113.7", "198.18.3.4",
					     "2001:db8::5" };
	struct tg_dest_table d;
	uint8_t a[16];
	size_t n_policy;

	assert_int_equal(learned_set_policy(t, p), 0);
	assert_int_equal(learned_add_answer(t, ANSWER(60, sto, addrs), NOW), 5);
	assert_int_equal(dests_build(p, -1, NULL, NULL, &d, NULL, 0), 0);
	n_policy = d.n;
	assert_int_equal(dests_add_learned(&d, t), 0);
	/* 192.0.2.9 is an exception's, 203.0.113.7 the policy's own /32 */
	assert_int_equal(d.learned, 3);
	assert_int_equal(d.n, n_policy + 3);
	for (size_t i = 1; i < d.n; i++)	/* still sorted for dests_apply's lookups */
		assert_true(d.v[i - 1].key.prefixlen < d.v[i].key.prefixlen ||
			    (d.v[i - 1].key.prefixlen == d.v[i].key.prefixlen &&
			     memcmp(d.v[i - 1].key.addr, d.v[i].key.addr, 16) < 0));
	addr_of("203.0.113.5", a);
	assert_string_equal(dests_name_for(&d, a), "acct.blob.core.windows.net");
	addr_of("2001:db8::5", a);
	assert_string_equal(dests_name_for(&d, a), "acct.blob.core.windows.net");
	addr_of("192.0.2.9", a);
	assert_null(dests_name_for(&d, a));
	addr_of("203.0.113.7", a);
	assert_null(dests_name_for(&d, a));
	/* inside registry's prefix: registry's class, with the name */
	addr_of("198.18.3.4", a);
	assert_string_equal(dests_name_for(&d, a), "acct.blob.core.windows.net");
	for (size_t i = 0; i < d.n; i++)
		if (!memcmp(d.v[i].key.addr, a, 16) && d.v[i].key.prefixlen == 128)
			assert_string_equal(dests_class_name(&d, d.v[i].val.class_id), "registry");
	dests_free(&d);
	/* no table, or an empty one: nothing added */
	assert_int_equal(dests_build(p, -1, NULL, NULL, &d, NULL, 0), 0);
	assert_int_equal(dests_add_learned(&d, NULL), 0);
	assert_int_equal(d.learned, 0);
	dests_free(&d);
	learned_free(t);
	policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_cname_a),
		cmocka_unit_test(test_parse_aaaa_edns_plain),
		cmocka_unit_test(test_parse_two_hop_chain),
		cmocka_unit_test(test_parse_refused_truncated),
		cmocka_unit_test(test_parse_truncated_and_corrupted),
		cmocka_unit_test(test_parse_hostile),
		cmocka_unit_test(test_tcp_reassembly),
		cmocka_unit_test(test_host_matching),
		cmocka_unit_test(test_learn_real_answers),
		cmocka_unit_test(test_match_precedence),
		cmocka_unit_test(test_ttl_grace_expiry),
		cmocka_unit_test(test_full_refuses_new),
		cmocka_unit_test(test_quota_per_cgroup),
		cmocka_unit_test(test_class_conflicts),
		cmocka_unit_test(test_policy_change),
		cmocka_unit_test(test_dests_add_learned),
	};

	return cmocka_run_group_tests_name("dnslearn", tests, NULL, NULL);
}
