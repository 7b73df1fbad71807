// SPDX-License-Identifier: MIT
/* Application Insights connection string parser. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "connstr.h"

#define IKEY "1a2b3c4d-0000-4e5f-8a9b-0123456789ab"

static char err[512];

static int parse(const char *s, struct tg_connstr *c)
{
	err[0] = '\0';
	return connstr_parse(s, c, err, sizeof(err));
}

static void test_minimal_default_endpoint(void **state)
{
	struct tg_connstr c;

	assert_int_equal(parse("InstrumentationKey=" IKEY, &c), 0);
	assert_string_equal(c.ikey, IKEY);
	assert_string_equal(c.endpoint, "https://dc.services.visualstudio.com");
	assert_string_equal(c.track_url, "https://dc.services.visualstudio.com/v2.1/track");
	assert_null(c.aad_audience);
	assert_null(c.authorization);
	connstr_free(&c);
}

static void test_keys_case_insensitive_and_trimmed(void **state)
{
	struct tg_connstr c;

	assert_int_equal(parse("  instrumentationKEY =  " IKEY " ; "
			       "INGESTIONENDPOINT = https://westeurope-5.in.applicationinsights.azure.com/ ;"
			       "liveendpoint=https://westeurope.livediagnostics.monitor.azure.com/;"
			       "ApplicationId=whatever;;", &c), 0);
	assert_string_equal(c.ikey, IKEY);
	assert_string_equal(c.endpoint, "https://westeurope-5.in.applicationinsights.azure.com");
	assert_string_equal(c.track_url,
			    "https://westeurope-5.in.applicationinsights.azure.com/v2.1/track");
	assert_non_null(c.live_endpoint);
	connstr_free(&c);
}

static void test_trailing_slashes_stripped(void **state)
{
	struct tg_connstr c;

	assert_int_equal(parse("InstrumentationKey=" IKEY
			       ";IngestionEndpoint=https://127.0.0.1:8443/prefix//", &c), 0);
	assert_string_equal(c.track_url, "https://127.0.0.1:8443/prefix/v2.1/track");
	connstr_free(&c);
}

static void test_duplicate_key_is_error_and_not_leaked(void **state)
{
	struct tg_connstr c;

	assert_int_equal(parse("InstrumentationKey=" IKEY ";instrumentationkey=" IKEY, &c), -EINVAL);
	assert_non_null(strstr(err, "duplicate key \"InstrumentationKey\""));
	assert_null(strstr(err, IKEY));
	assert_null(c.track_url);

	assert_int_equal(parse("Foo=secret-value-1;InstrumentationKey=" IKEY ";FOO=secret-value-2",
			       &c), -EINVAL);
	assert_non_null(strstr(err, "duplicate key"));
	assert_null(strstr(err, "secret-value"));
}

static void test_suffix_and_location(void **state)
{
	struct tg_connstr c;

	assert_int_equal(parse("InstrumentationKey=" IKEY ";EndpointSuffix=applicationinsights.azure.cn;"
			       "Location=chinaeast2", &c), 0);
	assert_string_equal(c.track_url, "https://chinaeast2.dc.applicationinsights.azure.cn/v2.1/track");
	connstr_free(&c);

	assert_int_equal(parse("InstrumentationKey=" IKEY ";EndpointSuffix=.applicationinsights.us/",
			       &c), 0);
	assert_string_equal(c.track_url, "https://dc.applicationinsights.us/v2.1/track");
	connstr_free(&c);

	/* Location alone means nothing: default endpoint. */
	assert_int_equal(parse("InstrumentationKey=" IKEY ";Location=westeurope", &c), 0);
	assert_string_equal(c.endpoint, TG_AI_DEFAULT_ENDPOINT);
	connstr_free(&c);

	/* An explicit IngestionEndpoint wins over the suffix. */
	assert_int_equal(parse("EndpointSuffix=applicationinsights.azure.cn;InstrumentationKey=" IKEY
			       ";IngestionEndpoint=https://x.example/", &c), 0);
	assert_string_equal(c.track_url, "https://x.example/v2.1/track");
	connstr_free(&c);

	assert_int_equal(parse("InstrumentationKey=" IKEY ";EndpointSuffix=bad suffix", &c), -EINVAL);
	assert_non_null(strstr(err, "EndpointSuffix"));
	assert_int_equal(parse("InstrumentationKey=" IKEY ";EndpointSuffix=a.b;Location=x/y", &c),
			 -EINVAL);
	assert_non_null(strstr(err, "Location"));
}

static void test_missing_or_bad_ikey(void **state)
{
	struct tg_connstr c;

	assert_int_equal(parse("IngestionEndpoint=https://x.example/", &c), -EINVAL);
	assert_non_null(strstr(err, "no InstrumentationKey"));
	assert_int_equal(parse("", &c), -EINVAL);
	assert_int_equal(parse("InstrumentationKey=not-a-uuid", &c), -EINVAL);
	assert_non_null(strstr(err, "not a UUID"));
	assert_null(strstr(err, "not-a-uuid"));
	assert_int_equal(parse("InstrumentationKey=1a2b3c4d00004e5f8a9b0123456789ab", &c), -EINVAL);
	assert_int_equal(parse("InstrumentationKey=", &c), -EINVAL);
	assert_non_null(strstr(err, "empty value"));
}

static void test_malformed_segments(void **state)
{
	struct tg_connstr c;

	assert_int_equal(parse("InstrumentationKey=" IKEY ";justtext", &c), -EINVAL);
	assert_non_null(strstr(err, "segment 2"));
	assert_null(strstr(err, "justtext"));
	assert_int_equal(parse("=x;InstrumentationKey=" IKEY, &c), -EINVAL);
	assert_non_null(strstr(err, "empty key"));
}

static void test_endpoint_must_be_https(void **state)
{
	struct tg_connstr c;

	assert_int_equal(parse("InstrumentationKey=" IKEY ";IngestionEndpoint=http://x.example/", &c),
			 -EINVAL);
	assert_non_null(strstr(err, "https"));
	assert_int_equal(parse("InstrumentationKey=" IKEY ";IngestionEndpoint=https:///", &c), -EINVAL);
	assert_int_equal(parse("InstrumentationKey=" IKEY ";IngestionEndpoint=https://x/?a=b", &c),
			 -EINVAL);
}

static void test_too_long(void **state)
{
	char buf[TG_CONNSTR_MAX + 2];
	struct tg_connstr c;
	int n;

	n = snprintf(buf, sizeof(buf), "InstrumentationKey=" IKEY ";Padding=");
	memset(buf + n, 'a', TG_CONNSTR_MAX - n);
	buf[TG_CONNSTR_MAX] = '\0';
	assert_int_equal(parse(buf, &c), 0);	/* exactly the maximum */
	connstr_free(&c);
	buf[TG_CONNSTR_MAX] = 'a';
	buf[TG_CONNSTR_MAX + 1] = '\0';
	assert_int_equal(parse(buf, &c), -E2BIG);
	assert_non_null(strstr(err, "4096"));
}

static void test_aad_and_authorization(void **state)
{
	struct tg_connstr c;

	assert_int_equal(parse("InstrumentationKey=" IKEY ";AADAudience=https://monitor.azure.com/;"
			       "Authorization=AAD", &c), 0);
	assert_string_equal(c.aad_audience, "https://monitor.azure.com/");
	assert_string_equal(c.authorization, "aad");
	connstr_free(&c);
	assert_int_equal(parse("InstrumentationKey=" IKEY ";Authorization=ikey", &c), 0);
	assert_string_equal(c.authorization, "ikey");
	connstr_free(&c);
	assert_int_equal(parse("InstrumentationKey=" IKEY ";Authorization=Basic", &c), -EINVAL);
	assert_non_null(strstr(err, "Authorization"));
}

static char tmpdir[64];

static int setup_dir(void **state)
{
	strcpy(tmpdir, "/tmp/tg-connstr-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	fchmod(fd, mode);
	close(fd);
}

static void test_read_file(void **state)
{
	static const char cs[] = "InstrumentationKey=" IKEY ";IngestionEndpoint=https://x.example/\r\n";
	char path[128], big[TG_CONNSTR_MAX + 100];
	struct tg_connstr c;

	snprintf(path, sizeof(path), "%s/cs", tmpdir);
	write_file(path, cs, strlen(cs), 0600);
	assert_int_equal(connstr_read_file(path, &c, err, sizeof(err)), 0);
	assert_string_equal(c.track_url, "https://x.example/v2.1/track");
	connstr_free(&c);

	/* World-readable: warned about, still used. */
	write_file(path, cs, strlen(cs), 0644);
	assert_int_equal(connstr_read_file(path, &c, err, sizeof(err)), 0);
	connstr_free(&c);

	/* Errors name the file and never repeat the content. */
	write_file(path, "InstrumentationKey=zzz\n", 23, 0600);
	assert_int_equal(connstr_read_file(path, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, path));
	assert_null(strstr(err, "zzz"));

	memset(big, 'a', sizeof(big));
	write_file(path, big, sizeof(big), 0600);
	assert_int_equal(connstr_read_file(path, &c, err, sizeof(err)), -E2BIG);

	write_file(path, "Instrumentation\0Key=x", 21, 0600);
	assert_int_equal(connstr_read_file(path, &c, err, sizeof(err)), -EINVAL);

	snprintf(path, sizeof(path), "%s/missing", tmpdir);
	assert_int_equal(connstr_read_file(path, &c, err, sizeof(err)), -ENOENT);
	assert_int_equal(connstr_read_file(tmpdir, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "not a regular file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_default_endpoint),
		cmocka_unit_test(test_keys_case_insensitive_and_trimmed),
		cmocka_unit_test(test_trailing_slashes_stripped),
		cmocka_unit_test(test_duplicate_key_is_error_and_not_leaked),
		cmocka_unit_test(test_suffix_and_location),
		cmocka_unit_test(test_missing_or_bad_ikey),
		cmocka_unit_test(test_malformed_segments),
		cmocka_unit_test(test_endpoint_must_be_https),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_aad_and_authorization),
		cmocka_unit_test_setup_teardown(test_read_file, setup_dir, teardown_dir),
	};

	return cmocka_run_group_tests_name("connstr", tests, NULL, NULL);
}
