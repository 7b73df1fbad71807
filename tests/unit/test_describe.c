// SPDX-License-Identifier: MIT
/* What an event says about a payload: protocol, HTTP method and Host, never more. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "describe.h"

static void describe_str(const char *s, struct tg_payload_desc *d)
{
	describe_payload((const uint8_t *)s, strlen(s), d);
}

static void test_http_method_and_host(void **state)
{
	struct tg_payload_desc d;

	describe_str("PUT /container/secret-blob.bin?sig=abc HTTP/1.1\r\n"
		     "Host: acct.blob.core.windows.net\r\nAuthorization: SharedKey x\r\n\r\nbody", &d);
	assert_string_equal(d.detected, "http");
	assert_string_equal(d.method, "PUT");
	assert_string_equal(d.host, "acct.blob.core.windows.net");
}

static void test_never_keeps_path_or_other_headers(void **state)
{
	struct tg_payload_desc d;

	describe_str("GET /secret/path HTTP/1.1\r\nX-Token: hunter2\r\nHost: h\r\n\r\n", &d);
	assert_null(strstr(d.host, "secret"));
	assert_null(strstr(d.method, "secret"));
	assert_string_equal(d.host, "h");
}

static void test_host_case_and_whitespace(void **state)
{
	struct tg_payload_desc d;

	describe_str("GET / HTTP/1.1\r\nhOsT: \t example.com \r\n\r\n", &d);
	assert_string_equal(d.host, "example.com");
}

static void test_header_cut_by_capture_is_ignored(void **state)
{
	struct tg_payload_desc d;

	describe_str("GET / HTTP/1.1\r\nHost: exam", &d);
	assert_string_equal(d.detected, "http");
	assert_string_equal(d.host, "");
}

static void test_host_stops_at_control_characters(void **state)
{
	struct tg_payload_desc d;

	describe_payload((const uint8_t *)"GET / HTTP/1.1\r\nHost: ev\x01il\"x\r\n\r\n", 34, &d);
	assert_string_equal(d.host, "ev");
}

static void test_host_after_blank_line_not_taken(void **state)
{
	struct tg_payload_desc d;

	describe_str("POST / HTTP/1.1\r\nA: b\r\n\r\nHost: in-body\r\n", &d);
	assert_string_equal(d.host, "");
}

static void test_tls_and_unknown(void **state)
{
	struct tg_payload_desc d;
	const uint8_t hello[] = { 0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00 };

	describe_payload(hello, sizeof(hello), &d);
	assert_string_equal(d.detected, "tls");
	describe_str("SSH-2.0-OpenSSH\r\n", &d);
	assert_string_equal(d.detected, "unknown");
	describe_payload(NULL, 0, &d);
	assert_string_equal(d.detected, "unknown");
	describe_str("GETX / HTTP/1.1\r\n", &d);
	assert_string_equal(d.detected, "unknown");
}

static void test_long_host_truncated_safely(void **state)
{
	char req[1024];
	struct tg_payload_desc d;

	strcpy(req, "GET / HTTP/1.1\r\nHost: ");
	memset(req + strlen(req), 'a', 600);
	strcpy(req + 22 + 600, "\r\n\r\n");
	describe_str(req, &d);
	assert_int_equal(strlen(d.host), TG_DESCRIBE_HOST_MAX - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_method_and_host),
		cmocka_unit_test(test_never_keeps_path_or_other_headers),
		cmocka_unit_test(test_host_case_and_whitespace),
		cmocka_unit_test(test_header_cut_by_capture_is_ignored),
		cmocka_unit_test(test_host_stops_at_control_characters),
		cmocka_unit_test(test_host_after_blank_line_not_taken),
		cmocka_unit_test(test_tls_and_unknown),
		cmocka_unit_test(test_long_host_truncated_safely),
	};

	return cmocka_run_group_tests_name("describe", tests, NULL, NULL);
}
