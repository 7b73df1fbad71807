// SPDX-License-Identifier: MIT
/*
 * events_line() (JSON text written directly) against event_line() of the
 * json-c object events_to_json() builds, with the event_id the agent adds:
 * byte for byte, for many random records (odd bytes in comm, SNI, ALPN and
 * payload: escapes, invalid UTF-8, NULs, bidi controls).
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dests.h"
#include "events.h"
#include "policy.h"
#include "tlsguard/preface.h"
#include "tlsguard/tls_hello.h"

static const char policy_yaml[] =
	"mode: enforce\n"
	"destinations:\n"
	"  - name: storage\n"
	"    cidrs: [\"198.51.100.0/24\", \"2001:db8::/64\"]\n"
	"    ports: [80, 443]\n"
	"  - name: sql\n"
	"    cidrs: [\"203.0.113.0/24\"]\n"
	"    ports: [1433]\n"
	"    mode: audit\n";

static struct tg_policy *policy;
static struct tg_dest_table dests;
static struct tg_event_ctx ctx;

static int setup(void **state)
{
	struct tg_diag diag = { 0 };

	if (policy_load_buffer("test.yaml", policy_yaml, strlen(policy_yaml), &policy, &diag))
		return -1;
	diag_free(&diag);
	if (dests_build(policy, -1, NULL, NULL, &dests, NULL, 0))
		return -1;
	events_ctx_init(&ctx);
	strcpy(ctx.host, "aks-node-\"1\"");
	ctx.mono_to_real_ns = 1795374000LL * 1000000000LL;
	ctx.dests = &dests;
	return 0;
}

static int teardown(void **state)
{
	dests_free(&dests);
	policy_free(policy);
	return 0;
}

static uint64_t rng = 20261203;

static uint32_t rnd(void)
{
	rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
	return (uint32_t)(rng >> 33);
}

/* Mostly printable ASCII, sometimes the bytes escaping has to care about. */
static void odd_bytes(void *p, size_t n)
{
	static const char *pieces[] = { "\"", "\\", "/", "\n", "\t", "\x1b", "\x7f", "\xc3\xa9",
					"\xe2\x80\xae", "\xff", "\xc0\xaf", "\xe2\x82", "\0", "\xf0\x9f\x98\x80",
					"\xc2\x85", "\xe2\x80\xa8" };
	uint8_t *b = p;

	for (size_t i = 0; i < n;) {
		if (rnd() % 4) {
			b[i++] = (uint8_t)(0x20 + rnd() % 95);
		} else {
			const char *s = pieces[rnd() % (sizeof(pieces) / sizeof(pieces[0]))];
			size_t l = *s ? strlen(s) : 1;

			for (size_t j = 0; j < l && i < n; j++)
				b[i++] = (uint8_t)s[j];
		}
	}
}

static void random_event(struct tg_event *ev)
{
	static const char *reqs[] = { "PUT /x HTTP/1.1\r\nHost: acct.blob.core.windows.net\r\n\r\n",
				      "CONNECT db.example:443 HTTP/1.1\r\nHost: db.example:443\r\n\r\n",
				      "GET / HTTP/1.0\r\n\r\n" };
	uint8_t *raw = (uint8_t *)ev;

	for (size_t i = 0; i < sizeof(*ev); i++)
		raw[i] = (uint8_t)rnd();
	ev->ts_ns = rnd() % 4 ? (uint64_t)rnd() * 1000 + rnd() % 1000 : 0;
	ev->type = (uint8_t)(1 + rnd() % 6);	/* 6: not a type */
	ev->action = (uint8_t)(rnd() % 3);
	ev->reason = (uint8_t)(rnd() % 10);
	ev->class_id = (uint16_t)(rnd() % 4);
	ev->rule = (uint8_t)(rnd() % 3);
	ev->tgid = rnd() % 3 ? rnd() : 0;
	if (rnd() % 3) {
		memset(ev->saddr, 0, 16);
		ev->saddr[10] = ev->saddr[11] = 0xff;
		if (rnd() % 4 == 0)
			ev->sport = 0;
		else
			ev->saddr[12] = 10;
	}
	if (rnd() % 2) {
		memset(ev->daddr, 0, 12);
		ev->daddr[10] = ev->daddr[11] = 0xff;
		ev->daddr[12] = 198, ev->daddr[13] = 51, ev->daddr[14] = 100;
	}
	odd_bytes(ev->comm, sizeof(ev->comm));
	if (rnd() % 4 == 0)
		ev->comm[0] = '\0';
	else if (rnd() % 2)
		ev->comm[rnd() % sizeof(ev->comm)] = '\0';
	if (rnd() % 2) {
		const char *r = reqs[rnd() % 3];

		ev->payload_len = (uint16_t)strlen(r);
		memcpy(ev->payload, r, ev->payload_len);
	} else {
		ev->payload_len = (uint16_t)(rnd() % (TG_PAYLOAD_MAX + 8));
		odd_bytes(ev->payload, TG_PAYLOAD_MAX);
	}
	ev->tls.l7 = (uint8_t)(rnd() % 8);
	ev->tls.sni_len = (uint16_t)(rnd() % 3 ? rnd() % (TG_SNI_MAX + 4) : 0);
	odd_bytes(ev->tls.sni, sizeof(ev->tls.sni));
	if (rnd() % 2) {
		ev->tls.alpn_len = 12;
		memcpy(ev->tls.alpn, "\x02h2\x08http/1.1", 12);
	}
	ev->tls.negotiated = (uint16_t)(0x0300 + rnd() % 6);
	ev->tls.offered = (uint16_t)(rnd() % 2 ? 0x0304 : rnd());
	ev->tls.min = (uint16_t)(rnd() % 2 ? 0 : 0x0303);
	ev->tls.sni_result = (uint8_t)(rnd() % 4);
	ev->tls.side = (uint8_t)(rnd() % 2);
	if (rnd() % 3 == 0) {
		ev->tls.l7 = TG_L7_CONNECT;
		if (rnd() % 2) {
			strcpy(ev->tls.tunnel, "db.example");
			ev->tls.tunnel_port = 443;
		} else {
			ev->tls.tunnel[0] = '\0';
		}
	}
}

static void test_line_matches_json_c(void **state)
{
	struct tg_jbuf buf = { 0 };
	char id[TG_EVENT_ID_LEN + 1];
	int odd_seen = 0;

	for (int i = 0; i < 20000; i++) {
		struct tg_event ev;
		struct tg_event_keys keys;
		json_object *o;
		const char *line, *want;

		random_event(&ev);
		events_event_id(ctx.host, &ev, sizeof(ev), id);
		o = events_to_json(&ctx, &ev);
		assert_non_null(o);
		json_object_object_add(o, "event_id", json_object_new_string(id));
		want = event_line(o);
		line = events_line(&ctx, &ev, id, &buf, &keys);
		assert_non_null(line);
		if (strcmp(line, want))
			fail_msg("event %d:\n json-c: %s\n direct: %s", i, want, line);
		assert_int_equal(strlen(line), buf.len);
		odd_seen += strstr(want, "\\ufffd") || strstr(want, "\xef\xbf\xbd") || strstr(want, "\\u001b");
		/* the tally keys are what the object holds */
		json_object *w, *d, *v;

		assert_true(json_object_object_get_ex(o, "workload", &w));
		assert_true(json_object_object_get_ex(o, "destination", &d));
		assert_string_equal(keys.ip, json_object_get_string(json_object_object_get(d, "ip")));
		assert_int_equal(keys.port, json_object_get_int(json_object_object_get(d, "port")));
		assert_int_equal(!keys.comm, !json_object_object_get_ex(w, "comm", &v));
		assert_int_equal(!keys.name, !json_object_object_get_ex(d, "name", &v));
		json_object_put(o);
	}
	assert_true(odd_seen > 1000);	/* the escapes were exercised */
	tg_jbuf_free(&buf);
}

/* The event_id is the one the agent always gave (FNV-1a 64, two passes). */
static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

static void test_event_id_unchanged(void **state)
{
	char id[TG_EVENT_ID_LEN + 1], want[40];

	for (int i = 0; i < 200; i++) {
		struct tg_event ev;

		random_event(&ev);
		events_event_id(ctx.host, &ev, sizeof(ev), id);
		snprintf(want, sizeof(want), "%016llx%016llx",
			 (unsigned long long)fnv(fnv(0xcbf29ce484222325ULL, ctx.host, strlen(ctx.host)), &ev, sizeof(ev)),
			 (unsigned long long)fnv(fnv(0x84222325cbf29ce4ULL, &ev, sizeof(ev)), ctx.host, strlen(ctx.host)));
		assert_string_equal(id, want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_matches_json_c),
		cmocka_unit_test(test_event_id_unchanged),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
