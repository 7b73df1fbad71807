// SPDX-License-Identifier: MIT
/* Batches, gzip, ingestion responses, Retry-After and backoff. */
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
#include <zlib.h>

#include "ai_batch.h"
#include "ai_sink.h"

static void test_batch_limits(void **state)
{
	struct tg_ai_batch_limits lim = { .max_items = 3, .max_bytes = 20, .max_age_ms = 1000 };
	struct tg_ai_batch *b = ai_batch_new(&lim);
	const char *line;
	size_t len;

	assert_non_null(b);
	assert_false(ai_batch_due(b, 0));
	assert_int_equal(ai_batch_deadline(b), UINT64_MAX);
	assert_int_equal(ai_batch_add(b, "", 0, 0), -EINVAL);
	assert_int_equal(ai_batch_add(b, "a\nb", 3, 0), -EINVAL);
	assert_int_equal(ai_batch_add(b, "123456789012345678901", 21, 0), -E2BIG);
	assert_int_equal(ai_batch_add(b, "{\"a\":1}", 7, 100), 0);
	assert_int_equal(ai_batch_deadline(b), 1100);
	assert_false(ai_batch_due(b, 1099));
	assert_true(ai_batch_due(b, 1100));			/* by age */
	assert_int_equal(ai_batch_add(b, "{\"b\":2}", 7, 200), 0);
	assert_int_equal(ai_batch_add(b, "{\"c\":3}", 7, 300), -ENOSPC);	/* 7+1+7+1+7 > 20 */
	assert_int_equal(ai_batch_add(b, "{}", 2, 300), 0);
	assert_int_equal(ai_batch_add(b, "{}", 2, 300), -ENOSPC);	/* items */
	assert_true(ai_batch_due(b, 101));			/* full */
	assert_int_equal(ai_batch_count(b), 3);
	assert_string_equal(ai_batch_body(b, &len), "{\"a\":1}\n{\"b\":2}\n{}");
	assert_int_equal(len, 18);
	assert_int_equal(ai_batch_item(b, 1, &line, &len), 0);
	assert_int_equal(len, 7);
	assert_memory_equal(line, "{\"b\":2}", 7);
	assert_int_equal(ai_batch_item(b, 2, &line, &len), 0);
	assert_memory_equal(line, "{}", 2);
	assert_int_equal(len, 2);
	assert_int_equal(ai_batch_item(b, 3, &line, &len), -ERANGE);

	ai_batch_reset(b);
	assert_int_equal(ai_batch_count(b), 0);
	assert_int_equal(ai_batch_add(b, "{\"d\":4}", 7, 5000), 0);
	assert_int_equal(ai_batch_deadline(b), 6000);
	ai_batch_free(b);

	lim.max_items = 1000000;	/* clamped to the service limit */
	b = ai_batch_new(&lim);
	ai_batch_free(b);
	b = ai_batch_new(NULL);	/* defaults */
	assert_non_null(b);
	ai_batch_free(b);
}

static void test_batch_load(void **state)
{
	struct tg_ai_batch *b = ai_batch_new(NULL);
	const char *line;
	size_t len;

	assert_int_equal(ai_batch_load(b, "{\"x\":1}\n\n{\"y\":2}\n", 17, 0), 0);
	assert_int_equal(ai_batch_count(b), 2);
	assert_int_equal(ai_batch_item(b, 1, &line, &len), 0);
	assert_memory_equal(line, "{\"y\":2}", len);
	ai_batch_free(b);
}

/* Inflate with plain zlib, independently of ai_gunzip(). */
static size_t zlib_inflate(const uint8_t *in, size_t len, char *out, size_t cap)
{
	z_stream zs = { 0 };

	assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
	zs.next_in = (Bytef *)in;
	zs.avail_in = len;
	zs.next_out = (Bytef *)out;
	zs.avail_out = cap;
	assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
	inflateEnd(&zs);
	return zs.total_out;
}

static void test_gzip_roundtrip(void **state)
{
	struct tg_ai_batch *b = ai_batch_new(NULL);
	char line[256], *plain = malloc(1 << 20);
	const uint8_t *body_gz;
	uint8_t *gz, *back;
	size_t gzlen, blen, len;
	const char *body;

	for (int i = 0; i < 1000; i++) {
		int n = snprintf(line, sizeof(line),
				 "{\"ver\":1,\"name\":\"Microsoft.ApplicationInsights.x.Event\","
				 "\"data\":{\"baseData\":{\"name\":\"plaintext\",\"n\":%d}}}", i);
		assert_int_equal(ai_batch_add(b, line, n, 0), 0);
	}
	body = ai_batch_body(b, &len);
	assert_int_equal(ai_batch_finish(b, &body_gz, &gzlen), 0);
	gz = malloc(gzlen);	/* a copy to corrupt below: the batch's buffer is its own */
	assert_non_null(gz);
	memcpy(gz, body_gz, gzlen);
	assert_int_equal(gz[0], 0x1f);	/* gzip magic, not a zlib header */
	assert_int_equal(gz[1], 0x8b);
	assert_true(gzlen < len / 5);
	assert_int_equal(zlib_inflate(gz, gzlen, plain, 1 << 20), len);
	assert_memory_equal(plain, body, len);
	assert_int_equal(ai_gunzip(gz, gzlen, 1 << 20, &back, &blen), 0);
	assert_int_equal(blen, len);
	assert_memory_equal(back, body, len);
	free(back);

	/* Bounded output, truncated and corrupted input. */
	assert_int_equal(ai_gunzip(gz, gzlen, len - 1, &back, &blen), -EFBIG);
	assert_null(back);
	assert_int_equal(ai_gunzip(gz, gzlen / 2, 1 << 20, &back, &blen), -EBADMSG);
	gz[gzlen - 5] ^= 0xff;	/* CRC/length trailer */
	assert_int_equal(ai_gunzip(gz, gzlen, 1 << 20, &back, &blen), -EBADMSG);
	free(gz);

	/* The batch's deflate stream is reused: a second request is a whole gzip stream of its own. */
	ai_batch_reset(b);
	assert_int_equal(ai_batch_add(b, "{\"second\":1}", 12, 0), 0);
	assert_int_equal(ai_batch_finish(b, &body_gz, &gzlen), 0);
	assert_int_equal(zlib_inflate(body_gz, gzlen, plain, 1 << 20), 12);
	assert_memory_equal(plain, "{\"second\":1}", 12);

	assert_int_equal(ai_gzip("", 0, 6, &gz, &gzlen), 0);
	assert_int_equal(ai_gunzip(gz, gzlen, 16, &back, &blen), 0);
	assert_int_equal(blen, 0);
	free(back);
	free(gz);
	free(plain);
	ai_batch_free(b);
}

static void test_status_classes(void **state)
{
	assert_int_equal(ai_status_class(200), TG_AI_OK);
	assert_int_equal(ai_status_class(204), TG_AI_OK);
	assert_int_equal(ai_status_class(206), TG_AI_PARTIAL);
	assert_int_equal(ai_status_class(0), TG_AI_RETRY);
	for (int s = 500; s <= 504; s++)
		assert_int_equal(ai_status_class(s), TG_AI_RETRY);
	assert_int_equal(ai_status_class(408), TG_AI_RETRY);
	assert_int_equal(ai_status_class(429), TG_AI_RETRY);
	assert_int_equal(ai_status_class(439), TG_AI_QUOTA);	/* daily cap: not retried */
	assert_int_equal(ai_status_class(401), TG_AI_AUTH);
	assert_int_equal(ai_status_class(403), TG_AI_AUTH);
	assert_int_equal(ai_status_class(400), TG_AI_DROP);
	assert_int_equal(ai_status_class(402), TG_AI_QUOTA);
	assert_int_equal(ai_status_class(404), TG_AI_DROP);
	assert_int_equal(ai_status_class(413), TG_AI_DROP);
	assert_int_equal(ai_status_class(307), TG_AI_REDIRECT);
	assert_int_equal(ai_status_class(308), TG_AI_REDIRECT);
	assert_int_equal(ai_status_class(302), TG_AI_DROP);
	assert_true(ai_item_retryable(500));
	assert_false(ai_item_retryable(502));	/* per item, only the five of the reference */
	assert_false(ai_item_retryable(400));
	assert_false(ai_item_retryable(439));
	assert_true(ai_item_retryable(308));	/* moved: sent again, to the new host */
	assert_true(ai_item_quota(402));
	assert_true(ai_item_quota(439));
	assert_false(ai_item_quota(429));
}

static void test_response_mixed_items(void **state)
{
	static const char body[] =
		"{\"itemsReceived\":10,\"itemsAccepted\":3,\"errors\":["
		"{\"index\":1,\"statusCode\":429,\"message\":\"Too many\"},"
		"{\"index\":2,\"statusCode\":400,\"message\":\"109: Field 'time' on type 'Envelope' is required but missing or empty.\"},"
		"{\"index\":3,\"statusCode\":500,\"message\":\"x\"},"
		"{\"index\":4,\"statusCode\":503},{\"index\":5,\"statusCode\":408},"
		"{\"index\":6,\"statusCode\":439},{\"index\":7,\"statusCode\":413},"
		"{\"index\":99,\"statusCode\":500},{\"statusCode\":500},\"junk\","
		"{\"index\":1,\"statusCode\":400}]}";
	const size_t retry[] = { 1, 3, 4, 5 }, lost[] = { 2, 7 };
	struct tg_ai_response r;

	assert_int_equal(ai_response_parse(body, strlen(body), 10, &r), 0);
	assert_int_equal(r.items_received, 10);
	assert_int_equal(r.items_accepted, 3);
	assert_int_equal(r.nretry, 4);
	assert_memory_equal(r.retry, retry, sizeof(retry));
	assert_int_equal(r.nquota, 1);	/* index 6: 439, the quota */
	assert_int_equal(r.nlost, 2);
	assert_memory_equal(r.lost, lost, sizeof(lost));
	assert_int_equal(r.bad_errors, 3);
	assert_int_equal(r.unaccounted, 0);
	assert_int_equal(r.first_lost_status, 400);
	assert_non_null(strstr(r.first_lost_message, "109: Field 'time'"));
	ai_response_free(&r);
}

static void test_response_edge_cases(void **state)
{
	static const char partial[] = "{\"itemsReceived\":4,\"itemsAccepted\":1,"
				      "\"errors\":[{\"index\":0,\"statusCode\":429}]}";
	static const char ok[] = "{\"itemsReceived\":2,\"itemsAccepted\":2,\"errors\":[]}";
	struct tg_ai_response r;

	/* Counts say 4 sent, 1 accepted, 1 to retry: 2 are unaccounted for. */
	assert_int_equal(ai_response_parse(partial, strlen(partial), 4, &r), 0);
	assert_int_equal(r.unaccounted, 2);
	ai_response_free(&r);

	assert_int_equal(ai_response_parse(ok, strlen(ok), 2, &r), 0);
	assert_int_equal(r.nretry + r.nlost + r.unaccounted, 0);
	assert_int_equal(r.first_lost_status, 0);
	ai_response_free(&r);

	assert_int_equal(ai_response_parse("{}", 2, 5, &r), 0);
	assert_int_equal(r.items_accepted, -1);
	assert_int_equal(r.unaccounted, 0);
	ai_response_free(&r);

	assert_int_equal(ai_response_parse("<html>", 6, 5, &r), -EBADMSG);
	assert_int_equal(ai_response_parse("[1]", 3, 5, &r), -EBADMSG);
	assert_int_equal(ai_response_parse("{\"errors\":{}}", 13, 5, &r), -EBADMSG);
	assert_int_equal(ai_response_parse("", 0, 5, &r), -EBADMSG);
}

static void test_retry_after(void **state)
{
	const time_t date = 784111777;	/* Sun, 06 Nov 1994 08:49:37 GMT */
	uint64_t d;

	assert_int_equal(ai_retry_after_parse("120", 0, &d), 0);
	assert_int_equal(d, 120);
	assert_int_equal(ai_retry_after_parse(" 0 ", 0, &d), 0);
	assert_int_equal(d, 0);
	assert_int_equal(ai_retry_after_parse("99999999999999999999", 0, &d), 0);
	assert_int_equal(d, UINT32_MAX);

	assert_int_equal(ai_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", date - 30, &d), 0);
	assert_int_equal(d, 30);
	assert_int_equal(ai_retry_after_parse("Sunday, 06-Nov-94 08:49:37 GMT", date - 5, &d), 0);
	assert_int_equal(d, 5);
	assert_int_equal(ai_retry_after_parse("Sun Nov  6 08:49:37 1994", date - 7, &d), 0);
	assert_int_equal(d, 7);
	assert_int_equal(ai_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", date + 100, &d), 0);
	assert_int_equal(d, 0);	/* in the past: now */

	assert_int_equal(ai_retry_after_parse("", 0, &d), -EINVAL);
	assert_int_equal(ai_retry_after_parse("-1", 0, &d), -EINVAL);
	assert_int_equal(ai_retry_after_parse("1.5", 0, &d), -EINVAL);
	assert_int_equal(ai_retry_after_parse("soon", 0, &d), -EINVAL);
	assert_int_equal(ai_retry_after_parse("Sun, 31 Feb 1994 08:49:37 GMT", 0, &d), -EINVAL);
	assert_int_equal(ai_retry_after_parse("Sun, 06 Foo 1994 08:49:37 GMT", 0, &d), -EINVAL);
	assert_int_equal(ai_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT x", 0, &d), -EINVAL);
	assert_int_equal(ai_retry_after_parse(NULL, 0, &d), -EINVAL);
}

static void test_backoff(void **state)
{
	struct tg_backoff b, b2;
	uint64_t d, prev_hi = 0;

	backoff_init(&b, 0, 0, 42);	/* defaults: 10 s, capped at 3600 s */
	d = backoff_next(&b);
	assert_true(d >= 7500 && d <= 12500);
	for (int i = 1; i < 40; i++) {
		uint64_t nominal = 10000ULL << (i < 20 ? i : 20);

		if (nominal > TG_AI_BACKOFF_CAP_MS)
			nominal = TG_AI_BACKOFF_CAP_MS;
		d = backoff_next(&b);
		assert_true(d <= TG_AI_BACKOFF_CAP_MS);
		assert_true(d >= nominal - nominal / 4);
		prev_hi = d > prev_hi ? d : prev_hi;
	}
	assert_true(prev_hi > TG_AI_BACKOFF_CAP_MS / 2);
	backoff_reset(&b);
	d = backoff_next(&b);
	assert_true(d >= 7500 && d <= 12500);

	/* Tests shorten it; the same seed gives the same sequence, others differ. */
	backoff_init(&b, 10, 80, 7);
	backoff_init(&b2, 10, 80, 7);
	for (int i = 0; i < 10; i++) {
		d = backoff_next(&b);
		assert_int_equal(d, backoff_next(&b2));
		assert_true(d >= 7 && d <= 80);
	}
	backoff_init(&b, 1000, 1000000, 1);
	backoff_init(&b2, 1000, 1000000, 2);
	{
		int same = 0;

		for (int i = 0; i < 10; i++)
			same += backoff_next(&b) == backoff_next(&b2);
		assert_true(same < 10);	/* jitter */
	}
	backoff_init(&b, 5000, 100, 0);	/* cap below base: the base wins, random seed */
	assert_true(backoff_next(&b) <= 5000);
}

/* Where a 307/308 may lead: Azure Monitor's ingestion hosts, on label boundaries only. */
static void test_redirect_allow_list(void **state)
{
	char *extra[] = { "example.test" };

	assert_true(ai_sink_redirect_allowed("westeurope-5.in.applicationinsights.azure.com", NULL, 0));
	assert_true(ai_sink_redirect_allowed("WestEurope-5.IN.ApplicationInsights.Azure.com", NULL, 0));
	assert_true(ai_sink_redirect_allowed("dc.services.visualstudio.com", NULL, 0));
	assert_true(ai_sink_redirect_allowed("chinaeast2-0.in.applicationinsights.azure.cn", NULL, 0));
	assert_true(ai_sink_redirect_allowed("usgovvirginia-1.in.applicationinsights.us", NULL, 0));
	assert_true(ai_sink_redirect_allowed("dce-1.westeurope-1.ingest.monitor.azure.com", NULL, 0));
	assert_true(ai_sink_redirect_allowed("x.ingest.monitor.azure.us", NULL, 0));
	assert_true(ai_sink_redirect_allowed("x.ingest.monitor.azure.cn", NULL, 0));
	/* look-alikes, the bare suffix, a trailing dot, other hosts */
	assert_false(ai_sink_redirect_allowed("evilapplicationinsights.azure.com", NULL, 0));
	assert_false(ai_sink_redirect_allowed("applicationinsights.azure.com", NULL, 0));
	assert_false(ai_sink_redirect_allowed("in.applicationinsights.azure.com.evil.net", NULL, 0));
	assert_false(ai_sink_redirect_allowed("x.in.applicationinsights.azure.com.", NULL, 0));
	assert_false(ai_sink_redirect_allowed("ingest.example.net", NULL, 0));
	assert_false(ai_sink_redirect_allowed("127.0.0.2", NULL, 0));
	assert_false(ai_sink_redirect_allowed("", NULL, 0));
	assert_false(ai_sink_redirect_allowed(NULL, NULL, 0));
	/* the test-only extra suffix: the name itself and its subdomains, nothing else */
	assert_true(ai_sink_redirect_allowed("example.test", extra, 1));
	assert_true(ai_sink_redirect_allowed("a.example.test", extra, 1));
	assert_false(ai_sink_redirect_allowed("aexample.test", extra, 1));
	assert_false(ai_sink_redirect_allowed("a.example.test", NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_limits),
		cmocka_unit_test(test_redirect_allow_list),
		cmocka_unit_test(test_batch_load),
		cmocka_unit_test(test_gzip_roundtrip),
		cmocka_unit_test(test_status_classes),
		cmocka_unit_test(test_response_mixed_items),
		cmocka_unit_test(test_response_edge_cases),
		cmocka_unit_test(test_retry_after),
		cmocka_unit_test(test_backoff),
	};

	return cmocka_run_group_tests_name("ai_batch", tests, NULL, NULL);
}
