// SPDX-License-Identifier: MIT
/* The shared first-payload classifier (include/tlsguard/tls_prefix.h), on the host. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "tlsguard/tls_prefix.h"

/* First bytes of real ClientHellos: OpenSSL 3 (TLS 1.3 capable) and a TLS 1.0-only client. */
static const uint8_t hello_openssl3[] = { 0x16, 0x03, 0x01, 0x01, 0x3a, 0x01, 0x00, 0x01, 0x36, 0x03, 0x03 };
static const uint8_t hello_tls10[] = { 0x16, 0x03, 0x01, 0x00, 0x5b, 0x01, 0x00, 0x00, 0x57, 0x03, 0x01 };

static void test_real_client_hellos_are_tls(void **state)
{
	assert_int_equal(tg_classify_prefix(hello_openssl3, sizeof(hello_openssl3)), TG_PREFIX_TLS);
	assert_int_equal(tg_classify_prefix(hello_tls10, sizeof(hello_tls10)), TG_PREFIX_TLS);
}

static void test_every_record_version_accepted(void **state)
{
	for (uint8_t minor = 1; minor <= 4; minor++) {
		uint8_t b[6] = { 0x16, 0x03, minor, 0x00, 0x40, 0x01 };

		assert_int_equal(tg_classify_prefix(b, 6), TG_PREFIX_TLS);
	}
}

static void test_prefixes_need_more(void **state)
{
	for (uint32_t n = 0; n < 6; n++)
		assert_int_equal(tg_classify_prefix(hello_openssl3, n), TG_PREFIX_NEED_MORE);
}

static void test_plaintext_decided_on_first_wrong_byte(void **state)
{
	assert_int_equal(tg_classify_prefix((const uint8_t *)"G", 1), TG_PREFIX_PLAINTEXT);
	assert_int_equal(tg_classify_prefix((const uint8_t *)"\x16\x02", 2), TG_PREFIX_PLAINTEXT);
	assert_int_equal(tg_classify_prefix((const uint8_t *)"\x16\x03\x00", 3), TG_PREFIX_PLAINTEXT);
	assert_int_equal(tg_classify_prefix((const uint8_t *)"\x16\x03\x05", 3), TG_PREFIX_PLAINTEXT);
	assert_int_equal(tg_classify_prefix((const uint8_t *)"\x16\x03\x01\x41", 4), TG_PREFIX_PLAINTEXT);
}

static void test_record_length_bounds(void **state)
{
	uint8_t b[6] = { 0x16, 0x03, 0x03, 0x00, 0x03, 0x01 };

	assert_int_equal(tg_classify_prefix(b, 6), TG_PREFIX_PLAINTEXT);	/* 3 < 4 */
	b[4] = 0x04;
	assert_int_equal(tg_classify_prefix(b, 6), TG_PREFIX_TLS);
	b[3] = 0x40;
	b[4] = 0x00;
	assert_int_equal(tg_classify_prefix(b, 6), TG_PREFIX_TLS);		/* exactly 2^14 */
	b[4] = 0x01;
	assert_int_equal(tg_classify_prefix(b, 6), TG_PREFIX_PLAINTEXT);	/* 2^14 + 1 */
}

static void test_other_handshake_and_content_types(void **state)
{
	const uint8_t server_hello[] = { 0x16, 0x03, 0x03, 0x00, 0x40, 0x02 };
	const uint8_t app_data[] = { 0x17, 0x03, 0x03, 0x00, 0x40, 0x01 };
	const uint8_t alert[] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02 };
	const uint8_t sslv2[] = { 0x80, 0x2e, 0x01, 0x03, 0x01, 0x00 };

	assert_int_equal(tg_classify_prefix(server_hello, 6), TG_PREFIX_PLAINTEXT);
	assert_int_equal(tg_classify_prefix(app_data, 6), TG_PREFIX_PLAINTEXT);
	assert_int_equal(tg_classify_prefix(alert, 6), TG_PREFIX_PLAINTEXT);
	assert_int_equal(tg_classify_prefix(sslv2, 6), TG_PREFIX_PLAINTEXT);
}

static void test_common_plaintext_protocols(void **state)
{
	const char *const samples[] = {
		"GET / HTTP/1.1\r\n", "PUT /c/b HTTP/1.1\r\n", "SSH-2.0-OpenSSH_9.2\r\n",
		"\x00\x00\x00\x08\x04\xd2\x16\x2f",	/* PostgreSQL SSLRequest: not TLS by itself */
		"*1\r\n$4\r\nPING\r\n",
	};

	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++)
		assert_int_equal(tg_classify_prefix((const uint8_t *)samples[i], 8), TG_PREFIX_PLAINTEXT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_client_hellos_are_tls),
		cmocka_unit_test(test_every_record_version_accepted),
		cmocka_unit_test(test_prefixes_need_more),
		cmocka_unit_test(test_plaintext_decided_on_first_wrong_byte),
		cmocka_unit_test(test_record_length_bounds),
		cmocka_unit_test(test_other_handshake_and_content_types),
		cmocka_unit_test(test_common_plaintext_protocols),
	};

	return cmocka_run_group_tests_name("classify", tests, NULL, NULL);
}
