// SPDX-License-Identifier: MIT
/* The control protocol's request parser and event filters (agent/serve/control.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <errno.h>

#include <cmocka.h>

#include "control.h"

static int parse(const char *line, struct tg_control_request *r, const char **err)
{
	return control_parse_request(line, strlen(line), r, err);
}

static void test_status_and_events(void **state)
{
	struct tg_control_request r;
	const char *err;

	assert_int_equal(parse("{\"v\":1,\"cmd\":\"status\"}", &r, &err), 0);
	assert_int_equal(r.cmd, TG_CMD_STATUS);
	assert_null(err);
	control_request_free(&r);
	assert_int_equal(parse("{\"v\":1,\"cmd\":\"events\",\"follow\":true,\"type\":\"plaintext\","
			       "\"workload\":\"train-0\"}\r", &r, &err), 0);
	assert_int_equal(r.cmd, TG_CMD_EVENTS);
	assert_true(r.follow);
	assert_string_equal(r.type, "plaintext");
	assert_string_equal(r.workload, "train-0");
	control_request_free(&r);
}

static void test_rejections_say_why(void **state)
{
	static const struct {
		const char *line, *why;
	} cases[] = {
		{ "hello", "request is not a JSON object" },
		{ "", "request is not a JSON object" },
		{ "[1,2]", "request is not a JSON object" },
		{ "{\"v\":1,\"cmd\":\"status\"} trailing", "request is not a JSON object" },
		{ "{\"v\":1,\"cmd\":\"status\"", "request is not a JSON object" },
		{ "{\"v\":2,\"cmd\":\"status\"}", "unsupported protocol version (this agent speaks v1)" },
		{ "{\"v\":\"1\",\"cmd\":\"status\"}", "unsupported protocol version (this agent speaks v1)" },
		{ "{\"cmd\":\"status\"}", "unsupported protocol version (this agent speaks v1)" },
		{ "{\"v\":1}", "missing \"cmd\"" },
		{ "{\"v\":1,\"cmd\":7}", "missing \"cmd\"" },
		{ "{\"v\":1,\"cmd\":\"reboot\"}", "unknown command" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tg_control_request r;
		const char *err = NULL;

		assert_int_equal(parse(cases[i].line, &r, &err), -EINVAL);
		assert_non_null(err);
		assert_string_equal(err, cases[i].why);
	}
}

static void test_embedded_nul_is_not_a_request(void **state)
{
	struct tg_control_request r;
	const char line[] = "{\"v\":1,\"cmd\":\"status\"}\0garbage";
	const char *err;

	assert_int_equal(control_parse_request(line, sizeof(line) - 1, &r, &err), -EINVAL);
}

static void test_event_filters(void **state)
{
	json_object *ev = json_tokener_parse(
		"{\"type\":\"plaintext\",\"workload\":{\"cgroup\":\"/kubepods.slice/pod-x/cri-y.scope\","
		"\"comm\":\"python3\",\"pod\":\"train-0\"}}");

	assert_true(control_event_matches(ev, NULL, NULL));
	assert_true(control_event_matches(ev, "plaintext", NULL));
	assert_false(control_event_matches(ev, "tls", NULL));
	assert_true(control_event_matches(ev, NULL, "train-0"));
	assert_true(control_event_matches(ev, NULL, "python3"));
	assert_true(control_event_matches(ev, NULL, "pod-x"));
	assert_false(control_event_matches(ev, NULL, "train"));	/* pod and comm match whole */
	assert_false(control_event_matches(ev, "plaintext", "nobody"));
	json_object_put(ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_and_events),
		cmocka_unit_test(test_rejections_say_why),
		cmocka_unit_test(test_embedded_nul_is_not_a_request),
		cmocka_unit_test(test_event_filters),
	};

	return cmocka_run_group_tests_name("control", tests, NULL, NULL);
}
