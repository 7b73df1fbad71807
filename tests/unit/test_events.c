// SPDX-License-Identifier: MIT
/* Kernel event → tlsguard.event/v1 JSON, field by field. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dests.h"
#include "events.h"
#include "policy.h"
#include "json_get.h"

static const char policy_yaml[] =
	"mode: enforce\n"
	"destinations:\n"
	"  - name: storage\n"
	"    cidrs: [\"198.51.100.0/24\", \"2001:db8::/64\"]\n"
	"    ports: [80, 443]\n";

struct fixture {
	struct tg_policy *policy;
	struct tg_dest_table dests;
	struct tg_event_ctx ctx;
};

static int setup(void **state)
{
	static struct fixture f;
	struct tg_diag diag = { 0 };

	memset(&f, 0, sizeof(f));
	if (policy_load_buffer("test.yaml", policy_yaml, strlen(policy_yaml), &f.policy, &diag))
		return -1;
	diag_free(&diag);
	if (dests_build(f.policy, -1, NULL, NULL, &f.dests, NULL, 0))
		return -1;
	events_ctx_init(&f.ctx);
	strcpy(f.ctx.host, "aks-node-1");
	f.ctx.mono_to_real_ns = 1795374000LL * 1000000000LL;	/* 2026-11-22T19:00:00Z at ts 0 */
	f.ctx.dests = &f.dests;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	dests_free(&f->dests);
	policy_free(f->policy);
	return 0;
}

static void v4(uint8_t out[16], const char *s)
{
	memset(out, 0, 16);
	out[10] = out[11] = 0xff;
	assert_int_equal(inet_pton(AF_INET, s, out + 12), 1);
}

static struct tg_event plaintext_event(void)
{
	static const char req[] = "PUT /c/b.bin HTTP/1.1\r\nHost: acct.blob.core.windows.net\r\n\r\n";
	struct tg_event ev = { .ts_ns = 123456000, .cookie = 81234, .cgroup_id = 99, .tgid = 4242,
			       .class_id = 1, .type = TG_EV_PLAINTEXT, .action = TG_ACT_BLOCKED,
			       .family = AF_INET, .sport = 41234, .dport = 80 };

	v4(ev.saddr, "10.244.1.7");
	v4(ev.daddr, "198.51.100.2");
	strcpy(ev.comm, "python3");
	memcpy(ev.payload, req, sizeof(req) - 1);
	ev.payload_len = sizeof(req) - 1;
	return ev;
}

static void test_plaintext_event_schema(void **state)
{
	struct fixture *f = *state;
	struct tg_event ev = plaintext_event();
	json_object *o = events_to_json(&f->ctx, &ev);

	assert_non_null(o);
	assert_string_equal(get_str(o, "schema", NULL), "tlsguard.event/v1");
	assert_string_equal(get_str(o, "time", NULL), "2026-11-22T19:00:00.123456Z");
	assert_string_equal(get_str(o, "host", NULL), "aks-node-1");
	assert_string_equal(get_str(o, "type", NULL), "plaintext");
	assert_string_equal(get_str(o, "action", NULL), "blocked");
	assert_string_equal(get_str(o, "destination", "class"), "storage");
	assert_string_equal(get_str(o, "destination", "ip"), "198.51.100.2");
	assert_string_equal(get_str(o, "destination", "port"), "80");
	assert_string_equal(get_str(o, "source", "ip"), "10.244.1.7");
	assert_string_equal(get_str(o, "source", "port"), "41234");
	assert_string_equal(get_str(o, "workload", "pid"), "4242");
	assert_string_equal(get_str(o, "workload", "comm"), "python3");
	assert_string_equal(get_str(o, "protocol", "detected"), "http");
	assert_string_equal(get_str(o, "protocol", "method"), "PUT");
	assert_string_equal(get_str(o, "protocol", "host"), "acct.blob.core.windows.net");
	assert_string_equal(get_str(o, "flow", "cookie"), "81234");
	assert_null(get_str(o, "tls", NULL));
	/* the path never appears anywhere in the event */
	assert_null(strstr(json_object_to_json_string(o), "b.bin"));
	json_object_put(o);
}

static void test_blocked_connect_has_no_source_or_protocol(void **state)
{
	struct fixture *f = *state;
	struct tg_event ev = plaintext_event();
	json_object *o, *x;

	ev.type = TG_EV_BLOCKED_CONNECT;
	ev.action = TG_ACT_FLAGGED;
	ev.sport = 0;
	memset(ev.saddr, 0, 16);
	ev.payload_len = 0;
	o = events_to_json(&f->ctx, &ev);
	assert_string_equal(get_str(o, "type", NULL), "blocked_connect");
	assert_string_equal(get_str(o, "action", NULL), "flagged");
	assert_true(json_object_object_get_ex(o, "source", &x));
	assert_null(x);
	assert_true(json_object_object_get_ex(o, "protocol", &x));
	assert_null(x);
	assert_string_equal(get_str(o, "reason", NULL), "port");
	json_object_put(o);
}

/* Why a connect was refused: the port, the flow cap, no memory for flow state. */
static void test_blocked_connect_reason(void **state)
{
	struct fixture *f = *state;
	struct tg_event ev = plaintext_event();
	json_object *o, *x;

	ev.type = TG_EV_BLOCKED_CONNECT;
	ev.action = TG_ACT_BLOCKED;
	ev.reason = TG_CR_FLOW_CAP;
	o = events_to_json(&f->ctx, &ev);
	assert_string_equal(get_str(o, "reason", NULL), "flow_cap");
	json_object_put(o);
	ev.reason = TG_CR_STORAGE;
	o = events_to_json(&f->ctx, &ev);
	assert_string_equal(get_str(o, "reason", NULL), "flow_storage");
	json_object_put(o);
	/* plaintext says which bytes and whose: first bytes of the client by default */
	ev = plaintext_event();
	o = events_to_json(&f->ctx, &ev);
	assert_string_equal(get_str(o, "reason", NULL), "first_bytes");
	assert_string_equal(get_str(o, "side", NULL), "client");
	json_object_put(o);
	/* the server's answer to a hello, in the clear: described from its own bytes */
	ev.reason = TG_PR_NOT_SERVER_HELLO;
	ev.tls.side = TG_SIDE_SERVER;
	memcpy(ev.payload, "HTTP/1.1 400 Bad Request\r\n", 26);
	ev.payload_len = 26;
	o = events_to_json(&f->ctx, &ev);
	assert_string_equal(get_str(o, "reason", NULL), "not_server_hello");
	assert_string_equal(get_str(o, "side", NULL), "server");
	assert_string_equal(get_str(o, "protocol", "detected"), "http");
	json_object_put(o);
	/* other types carry no reason and no side */
	ev = plaintext_event();
	ev.type = TG_EV_TLS;
	o = events_to_json(&f->ctx, &ev);
	assert_false(json_object_object_get_ex(o, "reason", &x));
	assert_false(json_object_object_get_ex(o, "side", &x));
	json_object_put(o);
}

static void test_ipv6_addresses(void **state)
{
	struct fixture *f = *state;
	struct tg_event ev = plaintext_event();
	json_object *o;

	ev.family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8::7", ev.saddr);
	inet_pton(AF_INET6, "2001:db8::10", ev.daddr);
	o = events_to_json(&f->ctx, &ev);
	assert_string_equal(get_str(o, "source", "ip"), "2001:db8::7");
	assert_string_equal(get_str(o, "destination", "ip"), "2001:db8::10");
	json_object_put(o);
}

static void test_comm_without_terminator(void **state)
{
	struct fixture *f = *state;
	struct tg_event ev = plaintext_event();
	json_object *o;

	memset(ev.comm, 'x', sizeof(ev.comm));
	o = events_to_json(&f->ctx, &ev);
	assert_int_equal(strlen(get_str(o, "workload", "comm")), sizeof(ev.comm));
	json_object_put(o);
}

static void test_event_file_writes_one_line_each(void **state)
{
	struct fixture *f = *state;
	struct tg_event ev = plaintext_event();
	struct tg_event_file ef;
	char path[] = "/tmp/tg-events-XXXXXX", line[4096];
	int fd = mkstemp(path), lines = 0;
	json_object *o = events_to_json(&f->ctx, &ev);
	FILE *in;

	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(event_file_open(&ef, path), 0);
	assert_int_equal(event_file_write(&ef, o), 0);
	assert_int_equal(event_file_write(&ef, o), 0);
	event_file_close(&ef);
	in = fopen(path, "r");
	while (fgets(line, sizeof(line), in)) {
		json_object *back = json_tokener_parse(line);

		assert_non_null(back);
		json_object_put(back);
		lines++;
	}
	fclose(in);
	unlink(path);
	assert_int_equal(lines, 2);
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plaintext_event_schema),
		cmocka_unit_test(test_blocked_connect_has_no_source_or_protocol),
		cmocka_unit_test(test_blocked_connect_reason),
		cmocka_unit_test(test_ipv6_addresses),
		cmocka_unit_test(test_comm_without_terminator),
		cmocka_unit_test(test_event_file_writes_one_line_each),
	};

	return cmocka_run_group_tests_name("events", tests, setup, teardown);
}
