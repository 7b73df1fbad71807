// SPDX-License-Identifier: MIT
/*
 * The smb3 protocol machine (include/tlsguard/smb.h) on real smbd/smbclient
 * messages (smb_fixtures.h, tests/unit/capture-smb-fixtures.sh): what each
 * step accepts, every truncation of the negotiate messages, and the
 * findings that make a flow plaintext.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "describe.h"
#include "tlsguard/smb.h"
#include "smb_fixtures.h"

static uint8_t buf[TG_HELLO_BUF];

static const uint8_t *put(const unsigned char *m, unsigned int n)
{
	memset(buf, 0, sizeof(buf));
	memcpy(buf, m, n);
	return buf;
}

static int client(const unsigned char *m, unsigned int n, struct tg_smb_info *si)
{
	memset(si, 0, sizeof(*si));
	return tg_smb_negotiate(put(m, n), n, si);
}

static int server(const unsigned char *m, unsigned int n, int full, struct tg_smb_info *si)
{
	memset(si, 0, sizeof(*si));
	return tg_smb_negotiate_response(put(m, n), n, full, si);
}

static void test_client_311_offers_encryption(void **state)
{
	struct tg_smb_info si;

	assert_int_equal(client(smb_c_negotiate_311, smb_c_negotiate_311_len, &si), TG_PF_TLS);
	assert_int_equal(si.client_max, TG_SMB_DIALECT_311);
	assert_int_equal(si.client_enc, 1);
	assert_int_equal(si.next_msg, smb_c_negotiate_311_len);
	assert_int_equal(si.finding, TG_SMB_OK);
}

static void test_client_30_offers_encryption_by_capability(void **state)
{
	struct tg_smb_info si;

	assert_int_equal(client(smb_c_negotiate_30, smb_c_negotiate_30_len, &si), TG_PF_TLS);
	assert_int_equal(si.client_max, TG_SMB_DIALECT_300);
	/* the same message without SMB2_GLOBAL_CAP_ENCRYPTION offers none */
	memcpy(buf, smb_c_negotiate_30, smb_c_negotiate_30_len);
	buf[TG_SMB_BODY + 8] &= ~TG_SMB_CAP_ENCRYPTION;
	memset(&si, 0, sizeof(si));
	assert_int_equal(tg_smb_negotiate(buf, smb_c_negotiate_30_len, &si), TG_PF_PLAINTEXT);
	assert_int_equal(si.finding, TG_SMB_CLIENT_NO_ENCRYPTION);
}

/* 3.1.1 without an encryption context (or with cipher 0 only): no encryption offered. */
static void test_client_311_without_ciphers(void **state)
{
	struct tg_smb_info si;
	uint32_t p, off, count;

	memcpy(buf, smb_c_negotiate_311, smb_c_negotiate_311_len);
	off = tg_smb_le32(buf, TG_SMB_BODY + 28);
	count = tg_smb_le16(buf, TG_SMB_BODY + 32);
	/* find the encryption context and zero its ciphers */
	p = TG_SMB_NBSS + off;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t type = tg_smb_le16(buf, p), len = tg_smb_le16(buf, p + 2);

		if (type == TG_SMB_CTX_ENCRYPTION)
			memset(buf + p + 10, 0, len - 2);
		p = ((p + 8 + len - TG_SMB_NBSS + 7) & ~7U) + TG_SMB_NBSS;
	}
	/* and no capability either (3.0/3.0.2 stay offered with CAP_ENCRYPTION otherwise) */
	buf[TG_SMB_BODY + 8] &= ~TG_SMB_CAP_ENCRYPTION;
	memset(&si, 0, sizeof(si));
	assert_int_equal(tg_smb_negotiate(buf, smb_c_negotiate_311_len, &si), TG_PF_PLAINTEXT);
	assert_int_equal(si.finding, TG_SMB_CLIENT_NO_ENCRYPTION);
	assert_int_equal(si.client_max, TG_SMB_DIALECT_311);
}

static void test_client_2x_and_smb1_are_plaintext(void **state)
{
	struct tg_smb_info si;

	assert_int_equal(client(smb_c_negotiate_2x, smb_c_negotiate_2x_len, &si), TG_PF_PLAINTEXT);
	assert_int_equal(si.finding, TG_SMB_NO_SMB3);
	assert_int_equal(si.client_max, TG_SMB_DIALECT_210);
	assert_int_equal(client(smb_c_smb1, smb_c_smb1_len, &si), TG_PF_PLAINTEXT);
	assert_int_equal(si.finding, TG_SMB_SMB1);
}

/* Every prefix of a good NEGOTIATE needs more; nothing is decided early. */
static void test_client_truncations_need_more(void **state)
{
	struct tg_smb_info si;

	for (unsigned int n = 0; n < smb_c_negotiate_311_len; n++)
		assert_int_equal(client(smb_c_negotiate_311, n, &si), TG_PF_NEED_MORE);
	for (unsigned int n = 0; n < smb_c_negotiate_30_len; n++)
		assert_int_equal(client(smb_c_negotiate_30, n, &si), TG_PF_NEED_MORE);
}

/* Not SMB at all: HTTP, TLS, a TRANSFORM before negotiation, a response sent by a client. */
static void test_client_not_smb(void **state)
{
	static const char get[] = "GET / HTTP/1.1\r\nHost: acct.file.core.windows.net\r\n\r\n";
	struct tg_smb_info si;

	assert_int_equal(client((const unsigned char *)get, strlen(get), &si), TG_PF_PLAINTEXT);
	assert_int_equal(si.finding, TG_SMB_NOT_SMB);
	assert_int_equal(client(smb_c_transform, smb_c_transform_len, &si), TG_PF_PLAINTEXT);
	assert_int_equal(si.finding, TG_SMB_NOT_SMB);
	assert_int_equal(client(smb_s_negotiate_311, smb_s_negotiate_311_len, &si), TG_PF_PLAINTEXT);
	assert_int_equal(client(smb_c_session_setup_1, smb_c_session_setup_1_len, &si), TG_PF_PLAINTEXT);
	/* a length the message cannot have */
	memcpy(buf, smb_c_negotiate_311, smb_c_negotiate_311_len);
	buf[1] = 0x10;
	memset(&si, 0, sizeof(si));
	assert_int_equal(tg_smb_negotiate(buf, smb_c_negotiate_311_len, &si), TG_PF_PLAINTEXT);
}

static void test_server_311_cipher(void **state)
{
	struct tg_smb_info si;

	assert_int_equal(server(smb_s_negotiate_311, smb_s_negotiate_311_len, 0, &si), TG_PF_TLS);
	assert_int_equal(si.dialect, TG_SMB_DIALECT_311);
	assert_int_equal(si.cipher, TG_SMB_CIPHER_AES128_GCM);
	for (unsigned int n = 0; n < smb_s_negotiate_311_len; n++)
		assert_int_equal(server(smb_s_negotiate_311, n, 0, &si), TG_PF_NEED_MORE);
}

static void test_server_without_encryption(void **state)
{
	struct tg_smb_info si;

	assert_int_equal(server(smb_s_negotiate_311_noenc, smb_s_negotiate_311_noenc_len, 0, &si),
			 TG_PF_PLAINTEXT);
	assert_int_equal(si.finding, TG_SMB_SERVER_NO_ENCRYPTION);
	assert_int_equal(si.dialect, TG_SMB_DIALECT_311);
	assert_int_equal(server(smb_s_negotiate_21, smb_s_negotiate_21_len, 0, &si), TG_PF_PLAINTEXT);
	assert_int_equal(si.finding, TG_SMB_SERVER_SMB2);
	assert_int_equal(si.dialect, TG_SMB_DIALECT_210);
}

static void test_server_30_capability(void **state)
{
	struct tg_smb_info si;

	assert_int_equal(server(smb_s_negotiate_30, smb_s_negotiate_30_len, 0, &si), TG_PF_TLS);
	assert_int_equal(si.dialect, TG_SMB_DIALECT_300);
	memcpy(buf, smb_s_negotiate_30, smb_s_negotiate_30_len);
	buf[TG_SMB_BODY + 24] &= ~TG_SMB_CAP_ENCRYPTION;
	memset(&si, 0, sizeof(si));
	assert_int_equal(tg_smb_negotiate_response(buf, smb_s_negotiate_30_len, 0, &si),
			 TG_PF_PLAINTEXT);
	assert_int_equal(si.finding, TG_SMB_SERVER_NO_ENCRYPTION);
}

/* An error status, garbage, or a response cut short: unjudged, the session phase decides. */
static void test_server_unjudged(void **state)
{
	struct tg_smb_info si;

	memcpy(buf, smb_s_negotiate_311, smb_s_negotiate_311_len);
	buf[12] = 0xbb;		/* Status: not STATUS_SUCCESS */
	memset(&si, 0, sizeof(si));
	assert_int_equal(tg_smb_negotiate_response(buf, smb_s_negotiate_311_len, 0, &si), TG_PF_TLS);
	assert_int_equal(si.dialect, 0);
	assert_int_equal(server((const unsigned char *)"HTTP/1.1 400 Bad", 16, 1, &si), TG_PF_TLS);
	/* the whole buffer was full and the 3.1.1 contexts did not fit */
	assert_int_equal(server(smb_s_negotiate_311, 200, 1, &si), TG_PF_TLS);
	assert_int_equal(si.dialect, TG_SMB_DIALECT_311);
	/* but a cut 2.1 response still says 2.1 */
	assert_int_equal(server(smb_s_negotiate_21, 140, 1, &si), TG_PF_PLAINTEXT);
}

static void test_session_phase(void **state)
{
	struct tg_smb_info si = { 0 };

	put(smb_c_session_setup_1, smb_c_session_setup_1_len);
	for (unsigned int n = 0; n < 18; n++)
		assert_int_equal(tg_smb_session_msg(buf, n, &si), TG_SMB_MSG_NEED_MORE);
	assert_int_equal(tg_smb_session_msg(buf, 18, &si), TG_SMB_MSG_SKIP);
	assert_int_equal(si.msg_len, smb_c_session_setup_1_len);
	put(smb_c_session_setup_2, smb_c_session_setup_2_len);
	assert_int_equal(tg_smb_session_msg(buf, TG_SMB_PEEK, &si), TG_SMB_MSG_SKIP);
	assert_int_equal(si.msg_len, smb_c_session_setup_2_len);
	assert_int_equal(si.setups, 2);
	put(smb_c_transform, smb_c_transform_len);
	assert_int_equal(tg_smb_session_msg(buf, 7, &si), TG_SMB_MSG_NEED_MORE);
	assert_int_equal(tg_smb_session_msg(buf, 8, &si), TG_SMB_MSG_ENCRYPTED);
	put(smb_c_tree_connect, smb_c_tree_connect_len);
	assert_int_equal(tg_smb_session_msg(buf, TG_SMB_PEEK, &si), TG_SMB_MSG_CLEAR);
	assert_int_equal(si.finding, TG_SMB_CLEAR_AFTER_SETUP);
	assert_int_equal(si.command, 3);	/* TREE_CONNECT */
}

static void test_session_keepalive_and_rounds(void **state)
{
	static const uint8_t keepalive[4] = { 0x85, 0, 0, 0 };
	struct tg_smb_info si = { 0 };

	put(keepalive, 4);
	assert_int_equal(tg_smb_session_msg(buf, 4, &si), TG_SMB_MSG_SKIP);
	assert_int_equal(si.msg_len, 4);
	put(smb_c_session_setup_1, smb_c_session_setup_1_len);
	for (int i = 0; i < TG_SMB_MAX_SETUPS; i++)
		assert_int_equal(tg_smb_session_msg(buf, TG_SMB_PEEK, &si), TG_SMB_MSG_SKIP);
	assert_int_equal(tg_smb_session_msg(buf, TG_SMB_PEEK, &si), TG_SMB_MSG_CLEAR);
	assert_int_equal(si.finding, TG_SMB_SETUP_ROUNDS);
	/* SMB1 or an unencrypted compressed message after setup: in the clear */
	memset(&si, 0, sizeof(si));
	put(smb_c_smb1, smb_c_smb1_len);
	assert_int_equal(tg_smb_session_msg(buf, TG_SMB_PEEK, &si), TG_SMB_MSG_CLEAR);
	assert_int_equal(si.command, 0xffff);
	memcpy(buf, smb_c_transform, smb_c_transform_len);
	buf[4] = 0xfc;
	assert_int_equal(tg_smb_session_msg(buf, TG_SMB_PEEK, &si), TG_SMB_MSG_CLEAR);
}

/* Hostile lengths and counts stay inside the message and the buffer. */
static void test_hostile_counts(void **state)
{
	struct tg_smb_info si;

	memcpy(buf, smb_c_negotiate_311, smb_c_negotiate_311_len);
	buf[TG_SMB_BODY + 2] = 0xff;		/* DialectCount 255 */
	memset(&si, 0, sizeof(si));
	assert_int_equal(tg_smb_negotiate(buf, smb_c_negotiate_311_len, &si), TG_PF_PLAINTEXT);
	memcpy(buf, smb_c_negotiate_311, smb_c_negotiate_311_len);
	buf[TG_SMB_BODY + 28] = 0xf0;		/* contexts past the message */
	buf[TG_SMB_BODY + 29] = 0xff;
	memset(&si, 0, sizeof(si));
	buf[TG_SMB_BODY + 8] &= ~TG_SMB_CAP_ENCRYPTION;
	assert_int_equal(tg_smb_negotiate(buf, smb_c_negotiate_311_len, &si), TG_PF_PLAINTEXT);
	assert_int_equal(si.finding, TG_SMB_CLIENT_NO_ENCRYPTION);
	memcpy(buf, smb_s_negotiate_311, smb_s_negotiate_311_len);
	buf[TG_SMB_BODY + 6] = 0xff;		/* 255 contexts */
	memset(&si, 0, sizeof(si));
	tg_smb_negotiate_response(buf, smb_s_negotiate_311_len, 1, &si);
	/* a context offset that wraps around 2^32 (found by fuzz_preface): no cipher, no read */
	memcpy(buf, smb_s_negotiate_311, smb_s_negotiate_311_len);
	buf[TG_SMB_BODY + 60] = 0xfc;
	buf[TG_SMB_BODY + 61] = buf[TG_SMB_BODY + 62] = buf[TG_SMB_BODY + 63] = 0xff;
	memset(&si, 0, sizeof(si));
	assert_int_equal(tg_smb_negotiate_response(buf, smb_s_negotiate_311_len, 0, &si), TG_PF_PLAINTEXT);
	assert_int_equal(si.finding, TG_SMB_SERVER_NO_ENCRYPTION);
}

/* What the agent says about an SMB flow (describe.c). */
static void test_describe(void **state)
{
	struct tg_payload_desc d;

	describe_smb(TG_SMB_CLEAR_AFTER_SETUP, TG_SMB_DIALECT_311, TG_SMB_DIALECT_311, 2, 3, &d);
	assert_string_equal(d.detected, "smb");
	assert_string_equal(d.dialect, "3.1.1");
	assert_string_equal(d.encryption, "none");	/* a cipher was agreed, never used */
	assert_non_null(strstr(d.finding, "TREE_CONNECT"));
	describe_smb(TG_SMB_SERVER_SMB2, TG_SMB_DIALECT_311, TG_SMB_DIALECT_210, 0, 0xffff, &d);
	assert_string_equal(d.dialect, "2.1");
	assert_string_equal(d.encryption, "none");
	describe_smb(TG_SMB_SMB1, 0, 0, 0, 0xffff, &d);
	assert_string_equal(d.dialect, "1");
	describe_smb(TG_SMB_OK, TG_SMB_DIALECT_311, TG_SMB_DIALECT_300, 0, 0xffff, &d);
	assert_string_equal(d.encryption, "aes-ccm");	/* 3.0 has one cipher */
	assert_null(d.finding);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_311_offers_encryption),
		cmocka_unit_test(test_client_30_offers_encryption_by_capability),
		cmocka_unit_test(test_client_311_without_ciphers),
		cmocka_unit_test(test_client_2x_and_smb1_are_plaintext),
		cmocka_unit_test(test_client_truncations_need_more),
		cmocka_unit_test(test_client_not_smb),
		cmocka_unit_test(test_server_311_cipher),
		cmocka_unit_test(test_server_without_encryption),
		cmocka_unit_test(test_server_30_capability),
		cmocka_unit_test(test_server_unjudged),
		cmocka_unit_test(test_session_phase),
		cmocka_unit_test(test_session_keepalive_and_rounds),
		cmocka_unit_test(test_hostile_counts),
		cmocka_unit_test(test_describe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
