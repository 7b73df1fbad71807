// SPDX-License-Identifier: MIT
/* Entra ID token responses, refresh timing, mode selection. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ai_auth.h"

#define NOW 1795374000

static int parse(const char *body, char **tok, time_t *exp)
{
	return ai_auth_parse_token(body, strlen(body), NOW, tok, exp);
}

static void test_imds_strings(void **state)
{
	char *tok;
	time_t exp = 0;

	/* IMDS sends the numbers as strings */
	assert_int_equal(parse("{\"access_token\":\"eyJ0eXAi.abc\",\"expires_in\":\"3599\","
			       "\"expires_on\":\"1795377599\",\"resource\":\"https://monitor.azure.com/\","
			       "\"token_type\":\"Bearer\"}", &tok, &exp), 0);
	assert_string_equal(tok, "eyJ0eXAi.abc");
	assert_int_equal(exp, 1795377599);
	free(tok);
}

static void test_v2_numbers(void **state)
{
	char *tok;
	time_t exp = 0;

	assert_int_equal(parse("{\"token_type\":\"Bearer\",\"expires_in\":3599,"
			       "\"ext_expires_in\":3599,\"access_token\":\"xyz\"}", &tok, &exp), 0);
	assert_string_equal(tok, "xyz");
	assert_int_equal(exp, NOW + 3599);
	free(tok);
}

static void test_bad_responses(void **state)
{
	static const char *const bad[] = {
		"", "null", "[]", "{}", "{\"access_token\":\"\",\"expires_in\":1}",
		"{\"access_token\":\"x\"}",				/* no expiry */
		"{\"access_token\":\"x\",\"expires_in\":\"soon\"}",
		"{\"access_token\":\"x\",\"expires_in\":-5}",
		"{\"access_token\":\"a b\",\"expires_in\":60}",	/* not a header value */
		"{\"access_token\":\"a\\r\\nX-Evil: 1\",\"expires_in\":60}",
		"{\"access_token\":7,\"expires_in\":60}",
		"{\"error\":\"invalid_client\"}",
	};
	char *tok;
	time_t exp;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], &tok, &exp), -EBADMSG);
		assert_null(tok);
	}
}

static void test_refresh_at(void **state)
{
	/* an hour: five minutes early */
	assert_int_equal(ai_auth_refresh_at(NOW, NOW + 3600), NOW + 3300);
	/* short-lived: at half its life */
	assert_int_equal(ai_auth_refresh_at(NOW, NOW + 60), NOW + 30);
	/* already expired: now */
	assert_int_equal(ai_auth_refresh_at(NOW, NOW - 1), NOW);
}

static void test_resolve_mode(void **state)
{
	unsetenv("AZURE_FEDERATED_TOKEN_FILE");
	assert_int_equal(ai_auth_resolve_mode(TG_AI_AUTH_AUTO, NULL), TG_AI_AUTH_NONE);
	assert_int_equal(ai_auth_resolve_mode(TG_AI_AUTH_AUTO, "ikey"), TG_AI_AUTH_NONE);
	assert_int_equal(ai_auth_resolve_mode(TG_AI_AUTH_AUTO, "aad"), TG_AI_AUTH_MANAGED_IDENTITY);
	setenv("AZURE_FEDERATED_TOKEN_FILE", "/var/run/secrets/azure/tokens/azure-identity-token", 1);
	assert_int_equal(ai_auth_resolve_mode(TG_AI_AUTH_AUTO, "AAD"), TG_AI_AUTH_WORKLOAD_IDENTITY);
	assert_int_equal(ai_auth_resolve_mode(TG_AI_AUTH_NONE, "aad"), TG_AI_AUTH_NONE);
	assert_int_equal(ai_auth_resolve_mode(TG_AI_AUTH_MANAGED_IDENTITY, NULL),
			 TG_AI_AUTH_MANAGED_IDENTITY);
	unsetenv("AZURE_FEDERATED_TOKEN_FILE");
}

static void test_workload_identity_env(void **state)
{
	struct tg_ai_auth_config cfg = { .mode = TG_AI_AUTH_WORKLOAD_IDENTITY };
	struct tg_ai_auth *a;
	char err[256];

	unsetenv("AZURE_FEDERATED_TOKEN_FILE");
	unsetenv("AZURE_TENANT_ID");
	unsetenv("AZURE_CLIENT_ID");
	a = ai_auth_new(&cfg, err, sizeof(err));
	assert_null(a);
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, "AZURE_FEDERATED_TOKEN_FILE"));
	setenv("AZURE_FEDERATED_TOKEN_FILE", "/nonexistent", 1);
	setenv("AZURE_TENANT_ID", "t", 1);
	a = ai_auth_new(&cfg, err, sizeof(err));
	assert_null(a);
	assert_non_null(strstr(err, "AZURE_CLIENT_ID"));
	setenv("AZURE_CLIENT_ID", "c", 1);
	a = ai_auth_new(&cfg, err, sizeof(err));
	assert_non_null(a);
	/* the federated token file is read when a token is needed: a clear error then */
	{
		const char *tok;

		assert_int_not_equal(ai_auth_token(a, &tok, err, sizeof(err)), 0);
		assert_non_null(strstr(err, "/nonexistent"));
	}
	ai_auth_free(a);
	unsetenv("AZURE_FEDERATED_TOKEN_FILE");
	unsetenv("AZURE_TENANT_ID");
	unsetenv("AZURE_CLIENT_ID");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_imds_strings),
		cmocka_unit_test(test_v2_numbers),
		cmocka_unit_test(test_bad_responses),
		cmocka_unit_test(test_refresh_at),
		cmocka_unit_test(test_resolve_mode),
		cmocka_unit_test(test_workload_identity_env),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
