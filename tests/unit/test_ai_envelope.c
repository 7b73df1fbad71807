// SPDX-License-Identifier: MIT
/* Application Insights envelopes: shape and every service limit. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "ai_envelope.h"

#define IKEY "1a2b3c4d-0000-4e5f-8a9b-0123456789ab"
#define MARKER TG_AI_TRUNC_MARKER

static const char event_text[] =
	"{\"schema\":\"tlsguard.event/v1\",\"time\":\"2026-11-22T19:00:00.123456Z\","
	"\"host\":\"aks-node-1\",\"type\":\"weak_tls\",\"action\":\"flagged\","
	"\"destination\":{\"class\":\"storage\",\"ip\":\"20.60.1.2\",\"port\":443},"
	"\"workload\":{\"pid\":4242,\"pod\":\"train-0\",\"ok\":true,\"ratio\":0.5},"
	"\"tls\":{\"version\":\"1.0\",\"sni\":\"a/b\",\"alpn\":[\"h2\",\"http/1.1\"]},"
	"\"protocol\":null,\"flow\":{}}";

struct env_fixture {
	struct tg_ai_envelope *e;
};

static int setup(void **state)
{
	static struct env_fixture f;

	f.e = ai_envelope_new(IKEY, "aks-node-1", "0.1.0");
	*state = &f;
	return f.e ? 0 : -1;
}

static int teardown(void **state)
{
	ai_envelope_free(((struct env_fixture *)*state)->e);
	return 0;
}

static bool utf8_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		int k = p[i] < 0x80 ? 1 : (p[i] & 0xe0) == 0xc0 ? 2 : (p[i] & 0xf0) == 0xe0 ? 3 :
			(p[i] & 0xf8) == 0xf0 ? 4 : 0;

		if (!k || i + k > n)
			return false;
		for (int j = 1; j < k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
		}
		i += k;
	}
	return true;
}

static const char *sget(json_object *o, const char *path)
{
	char buf[256], *save = NULL, *part;
	json_object *cur = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (part = strtok_r(buf, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
		if (!json_object_object_get_ex(cur, part, &cur))
			return NULL;
	}
	return json_object_get_string(cur);
}

static json_object *props_of(json_object *env)
{
	json_object *d, *bd, *p;

	assert_true(json_object_object_get_ex(env, "data", &d));
	assert_true(json_object_object_get_ex(d, "baseData", &bd));
	assert_true(json_object_object_get_ex(bd, "properties", &p));
	return p;
}

/*
 * Parse @line strictly (UTF-8 validated) and check every limit the service
 * enforces. Returns the parsed envelope.
 */
static json_object *check_valid(const char *line, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *env, *tags;

	assert_int_equal(strlen(line), len);
	assert_true(len <= TG_AI_MAX_ITEM);
	assert_null(strchr(line, '\n'));
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	env = json_tokener_parse_ex(tok, line, (int)len + 1);
	assert_non_null(env);
	assert_int_equal(json_tokener_get_parse_end(tok), len);
	json_tokener_free(tok);

	assert_string_equal(sget(env, "ver"), "1");
	assert_string_equal(sget(env, "iKey"), IKEY);
	assert_string_equal(sget(env, "sampleRate"), "100.0");
	assert_int_equal(strlen(sget(env, "time")), 24);
	assert_int_equal(sget(env, "time")[23], 'Z');
	assert_string_equal(sget(env, "data/baseData/ver"), "2");
	assert_true(json_object_object_get_ex(env, "tags", &tags));
	assert_string_equal(sget(tags, "ai.cloud.role"), "tlsguard");
	assert_true(strlen(sget(tags, "ai.cloud.roleInstance")) <= TG_AI_MAX_ROLE_INSTANCE);
	assert_true(strlen(sget(tags, "ai.internal.sdkVersion")) <= TG_AI_MAX_SDK_VERSION);
	if (sget(env, "data/baseData/name"))
		assert_true(strlen(sget(env, "data/baseData/name")) <= TG_AI_MAX_NAME);
	json_object_object_foreach(props_of(env), k, v) {
		assert_true(strlen(k) <= TG_AI_MAX_PROP_KEY);
		assert_true(utf8_ok(k, strlen(k)));
		assert_true(json_object_is_type(v, json_type_string));
		assert_true(json_object_get_string_len(v) <= TG_AI_MAX_PROP_VALUE);
		assert_true(utf8_ok(json_object_get_string(v), json_object_get_string_len(v)));
	}
	return env;
}

static json_object *event_line(void **state, json_object *ev)
{
	struct env_fixture *f = *state;
	struct tg_ai_line line = { 0 };
	json_object *env;

	assert_int_equal(ai_envelope_event(f->e, ev, &line), 0);
	env = check_valid(line.p, line.len);
	ai_line_free(&line);
	return env;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !memcmp(s + a - b, suffix, b);
}

static void test_event_shape(void **state)
{
	json_object *ev = json_tokener_parse(event_text), *env, *p;

	env = event_line(state, ev);
	assert_string_equal(sget(env, "name"),
			    "Microsoft.ApplicationInsights.1a2b3c4d00004e5f8a9b0123456789ab.Event");
	assert_string_equal(sget(env, "time"), "2026-11-22T19:00:00.123Z");
	assert_string_equal(sget(env, "tags/ai.cloud.roleInstance"), "aks-node-1");
	assert_string_equal(sget(env, "tags/ai.internal.sdkVersion"), "tlsguard:0.1.0");
	assert_string_equal(sget(env, "data/baseType"), "EventData");
	assert_string_equal(sget(env, "data/baseData/name"), "weak_tls");
	assert_string_equal(sget(env, "data/baseData/measurements/count"), "1.0");
	p = props_of(env);
	assert_string_equal(sget(p, "destination.class"), "storage");
	assert_string_equal(sget(p, "destination.port"), "443");
	assert_string_equal(sget(p, "workload.pid"), "4242");
	assert_string_equal(sget(p, "workload.ok"), "true");
	assert_string_equal(sget(p, "workload.ratio"), "0.5");
	assert_string_equal(sget(p, "tls.sni"), "a/b");
	assert_string_equal(sget(p, "tls.alpn"), "[\"h2\",\"http/1.1\"]");
	assert_string_equal(sget(p, "action"), "flagged");
	assert_null(sget(p, "protocol"));	/* null omitted */
	assert_null(sget(p, "flow"));		/* empty object: no leaf */
	assert_null(sget(p, "tlsguard.truncated"));
	json_object_put(env);
	json_object_put(ev);
}

/* event_id: a custom property and the operation id, so a replayed duplicate groups with its original */
static void test_event_id(void **state)
{
	json_object *ev = json_tokener_parse("{\"type\":\"plaintext\",\"event_id\":"
					     "\"00112233445566778899aabbccddeeff\"}"), *env;
	json_object *plain = json_tokener_parse("{\"type\":\"plaintext\"}");

	env = event_line(state, ev);
	assert_string_equal(sget(env, "tags/ai.operation.id"), "00112233445566778899aabbccddeeff");
	assert_string_equal(sget(props_of(env), "event_id"), "00112233445566778899aabbccddeeff");
	assert_string_equal(sget(env, "tags/ai.cloud.roleInstance"), "aks-node-1");
	json_object_put(env);
	env = event_line(state, plain);
	assert_null(sget(env, "tags/ai.operation.id"));
	json_object_put(env);
	json_object_put(plain);
	json_object_put(ev);
}

static void test_count_measurement(void **state)
{
	json_object *ev = json_tokener_parse("{\"type\":\"plaintext\",\"count\":17}"), *env;

	env = event_line(state, ev);
	assert_string_equal(sget(env, "data/baseData/measurements/count"), "17.0");
	assert_null(sget(props_of(env), "count"));
	json_object_put(env);
	json_object_put(ev);
}

static void test_time_fallback_and_format(void **state)
{
	const char *bad[] = { "2026-02-30T00:00:00Z", "yesterday", "2026-11-22T19:00:00.Z",
			      "2026-11-22T19:00:00+01:00", "2026-11-22 19:00:00Z" };
	struct timespec ts = { .tv_sec = 1795374000, .tv_nsec = 999999999 };
	char buf[32], text[128];
	json_object *ev, *env;

	assert_int_equal(ai_format_time(&ts, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "2026-11-22T19:00:00.999Z");

	ev = json_tokener_parse("{\"type\":\"agent\",\"time\":\"2026-11-22T19:00:00Z\"}");
	env = event_line(state, ev);
	assert_string_equal(sget(env, "time"), "2026-11-22T19:00:00.000Z");
	json_object_put(env);
	json_object_put(ev);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "{\"type\":\"agent\",\"time\":\"%s\"}", bad[i]);
		ev = json_tokener_parse(text);
		env = event_line(state, ev);	/* now, well formed */
		assert_memory_not_equal(sget(env, "time"), "2026-02-30", 10);
		json_object_put(env);
		json_object_put(ev);
	}
}

static void test_requires_type(void **state)
{
	struct env_fixture *f = *state;
	json_object *ev = json_tokener_parse("{\"action\":\"x\"}");
	struct tg_ai_line line = { 0 };

	assert_int_equal(ai_envelope_event(f->e, ev, &line), -EINVAL);
	assert_int_equal(line.len, 0);
	json_object_put(ev);
	ev = json_tokener_parse("{\"type\":\"\"}");
	assert_int_equal(ai_envelope_event(f->e, ev, &line), -EINVAL);
	json_object_put(ev);
	ev = json_tokener_parse("{\"type\":7}");
	assert_int_equal(ai_envelope_event(f->e, ev, &line), -EINVAL);
	json_object_put(ev);
}

static char *repeat(const char *unit, size_t n)
{
	size_t ulen = strlen(unit);
	char *s = malloc(ulen * n + 1);

	for (size_t i = 0; i < n; i++)
		memcpy(s + i * ulen, unit, ulen);
	s[ulen * n] = '\0';
	return s;
}

static void test_name_limit(void **state)
{
	char *name = repeat("n", 600);
	json_object *ev = json_object_new_object(), *env;

	json_object_object_add(ev, "type", json_object_new_string(name));
	env = event_line(state, ev);
	assert_true(ends_with(sget(env, "data/baseData/name"), MARKER));
	assert_true(strlen(sget(env, "data/baseData/name")) <= TG_AI_MAX_NAME);
	assert_string_equal(sget(props_of(env), "tlsguard.truncated"), "true");
	json_object_put(env);
	json_object_put(ev);
	free(name);
}

static void test_property_key_limit_and_uniqueness(void **state)
{
	char *a = repeat("k", 200), *b = repeat("k", 201);
	json_object *ev = json_object_new_object(), *env, *p;
	int n = 0;

	json_object_object_add(ev, "type", json_object_new_string("t"));
	json_object_object_add(ev, a, json_object_new_string("A"));
	json_object_object_add(ev, b, json_object_new_string("B"));
	env = event_line(state, ev);
	p = props_of(env);
	json_object_object_foreach(p, k, v) {
		if (k[0] != 'k')
			continue;
		n++;
		assert_true(strlen(k) <= TG_AI_MAX_PROP_KEY);
		(void)v;
	}
	assert_int_equal(n, 2);	/* both kept, under distinct keys */
	json_object_put(env);

	/* Short keys that flatten alike: the second is renamed (its key no longer in the item's own space). */
	json_object_put(ev);
	ev = json_tokener_parse("{\"type\":\"t\",\"a.b\":\"flat\",\"a\":{\"b\":\"nested\"}}");
	env = event_line(state, ev);
	p = props_of(env);
	assert_string_equal(sget(p, "a.b"), "flat");
	assert_string_equal(sget(p, "a.b~2"), "nested");
	json_object_put(env);
	json_object_put(ev);
	free(a);
	free(b);
}

static void test_property_value_limit_utf8(void **state)
{
	char *ascii = repeat("v", 10000), *euro = repeat("\xe2\x82\xac", 3000);
	json_object *ev = json_object_new_object(), *env, *p;

	json_object_object_add(ev, "type", json_object_new_string("t"));
	json_object_object_add(ev, "ascii", json_object_new_string(ascii));
	json_object_object_add(ev, "euro", json_object_new_string(euro));	/* 9000 bytes */
	json_object_object_add(ev, "bad", json_object_new_string("a\xff\xfe" "b\xc3"));
	json_object_object_add(ev, "exact", json_object_new_string_len(ascii, 8192));
	env = event_line(state, ev);
	p = props_of(env);
	assert_true(ends_with(sget(p, "ascii"), MARKER));
	assert_int_equal(strlen(sget(p, "ascii")), TG_AI_MAX_PROP_VALUE);
	assert_true(ends_with(sget(p, "euro"), MARKER));
	assert_true(strlen(sget(p, "euro")) <= TG_AI_MAX_PROP_VALUE);
	assert_string_equal(sget(p, "bad"), "a\xef\xbf\xbd\xef\xbf\xbd" "b\xef\xbf\xbd");
	assert_int_equal(strlen(sget(p, "exact")), 8192);	/* at the limit: untouched */
	assert_false(ends_with(sget(p, "exact"), MARKER));
	json_object_put(env);
	json_object_put(ev);
	free(ascii);
	free(euro);
}

static void test_encrypted_values_never_cut(void **state)
{
	char *big = repeat("A", 9000), *val;
	json_object *ev = json_object_new_object(), *env;

	assert_true(asprintf(&val, "enc:v1:0011aabb:%s", big) > 0);
	json_object_object_add(ev, "type", json_object_new_string("t"));
	json_object_object_add(ev, "workload.pod", json_object_new_string(val));
	env = event_line(state, ev);
	assert_string_equal(sget(props_of(env), "workload.pod"), TG_AI_REMOVED_MARKER);
	json_object_put(env);
	json_object_put(ev);
	free(val);
	free(big);
}

static void test_item_limit_by_shortening(void **state)
{
	char *big = repeat("x", 8000), key[16];
	json_object *ev = json_object_new_object(), *env, *p;
	int shortened = 0;

	json_object_object_add(ev, "type", json_object_new_string("t"));
	json_object_object_add(ev, "small", json_object_new_string("kept"));
	for (int i = 0; i < 20; i++) {	/* 160 KB of values */
		snprintf(key, sizeof(key), "f%02d", i);
		json_object_object_add(ev, key, json_object_new_string(big));
	}
	env = event_line(state, ev);
	p = props_of(env);
	assert_string_equal(sget(p, "small"), "kept");
	assert_string_equal(sget(p, "tlsguard.truncated"), "true");
	assert_null(sget(p, "tlsguard.dropped_properties"));
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof(key), "f%02d", i);
		assert_non_null(sget(p, key));
		shortened += ends_with(sget(p, key), MARKER);
	}
	assert_int_equal(shortened, 20);	/* shared fairly, not one wiped out */
	json_object_put(env);
	json_object_put(ev);
	free(big);
}

static void test_item_limit_by_dropping(void **state)
{
	char *val = repeat("y", 100), key[16];
	json_object *ev = json_object_new_object(), *env;

	json_object_object_add(ev, "type", json_object_new_string("t"));
	for (int i = 0; i < 5000; i++) {	/* ~550 KB in small properties */
		snprintf(key, sizeof(key), "p%05d", i);
		json_object_object_add(ev, key, json_object_new_string(val));
	}
	env = event_line(state, ev);
	assert_non_null(sget(props_of(env), "tlsguard.dropped_properties"));
	assert_true(atoi(sget(props_of(env), "tlsguard.dropped_properties")) > 1000);
	assert_non_null(sget(props_of(env), "p00000"));	/* the first ones are kept */
	json_object_put(env);
	json_object_put(ev);
	free(val);
}

static void test_escaping_counts_toward_item_limit(void **state)
{
	char *ctl = repeat("\x01", 8000), key[16];
	json_object *ev = json_object_new_object(), *env;

	json_object_object_add(ev, "type", json_object_new_string("t"));
	for (int i = 0; i < 4; i++) {	/* 32 KB raw, ~192 KB once escaped as \u0001 */
		snprintf(key, sizeof(key), "c%d", i);
		json_object_object_add(ev, key, json_object_new_string(ctl));
	}
	env = event_line(state, ev);
	json_object_put(env);
	json_object_put(ev);
	free(ctl);
}

static void test_escaping_roundtrip(void **state)
{
	static const char tricky[] = "q\"b\\s/\n\t\r\b\f\x01\x1f\x7f \xc3\xa9 \xe2\x80\xa8 \xf0\x9f\x94\x92";
	json_object *ev = json_object_new_object(), *env, *p;

	json_object_object_add(ev, "type", json_object_new_string("t\"q"));
	json_object_object_add(ev, "v", json_object_new_string(tricky));
	json_object_object_add(ev, "k\"\\\x02", json_object_new_string("x"));
	json_object_object_add(ev, "big", json_object_new_uint64(18446744073709551615ULL));
	json_object_object_add(ev, "neg", json_object_new_int64(-9223372036854775807LL - 1));
	json_object_object_add(ev, "dbl", json_object_new_double(-1.5e300));
	env = event_line(state, ev);
	p = props_of(env);
	assert_string_equal(sget(env, "data/baseData/name"), "t\"q");
	assert_string_equal(sget(p, "v"), tricky);
	assert_string_equal(sget(p, "k\"\\\x02"), "x");
	assert_string_equal(sget(p, "big"), "18446744073709551615");
	assert_string_equal(sget(p, "neg"), "-9223372036854775808");
	assert_non_null(sget(p, "dbl"));
	json_object_put(env);
	json_object_put(ev);
}

static void test_tag_limits(void **state)
{
	char *host = repeat("h", 300), *ver = repeat("9", 100);
	struct tg_ai_envelope *e = ai_envelope_new(IKEY, host, ver);
	json_object *ev = json_tokener_parse("{\"type\":\"t\"}"), *env;
	struct tg_ai_line line = { 0 };

	assert_non_null(e);
	assert_int_equal(ai_envelope_event(e, ev, &line), 0);
	env = check_valid(line.p, line.len);
	assert_true(ends_with(sget(env, "tags/ai.cloud.roleInstance"), MARKER));
	assert_memory_equal(sget(env, "tags/ai.internal.sdkVersion"), "tlsguard:999", 12);
	json_object_put(env);
	json_object_put(ev);
	ai_line_free(&line);
	ai_envelope_free(e);
	free(host);
	free(ver);

	e = ai_envelope_new(IKEY, NULL, "1");	/* gethostname() */
	assert_non_null(e);
	ai_envelope_free(e);
	assert_null(ai_envelope_new(NULL, "h", "1"));
	assert_int_equal(errno, EINVAL);
}

static void test_metric(void **state)
{
	struct env_fixture *f = *state;
	struct timespec ts = { .tv_sec = 1795374000, .tv_nsec = 5000000 };
	json_object *props = json_tokener_parse("{\"sink\":{\"name\":\"appinsights\"}}"), *env;
	struct tg_ai_metric m = { .name = "tlsguard.events_lost", .value = 3, .properties = props,
				  .time = &ts };
	json_object *pt;
	struct tg_ai_line line = { 0 };

	assert_int_equal(ai_envelope_metric(f->e, &m, &line), 0);
	env = check_valid(line.p, line.len);
	ai_line_free(&line);
	assert_string_equal(sget(env, "name"),
			    "Microsoft.ApplicationInsights.1a2b3c4d00004e5f8a9b0123456789ab.Metric");
	assert_string_equal(sget(env, "time"), "2026-11-22T19:00:00.005Z");
	assert_string_equal(sget(env, "data/baseType"), "MetricData");
	pt = json_object_array_get_idx(json_object_object_get(json_object_object_get(
			json_object_object_get(env, "data"), "baseData"), "metrics"), 0);
	assert_string_equal(sget(pt, "name"), "tlsguard.events_lost");
	assert_string_equal(sget(pt, "value"), "3.0");
	assert_string_equal(sget(pt, "count"), "1");
	assert_string_equal(sget(props_of(env), "sink.name"), "appinsights");
	json_object_put(env);

	m.value = NAN;
	assert_int_equal(ai_envelope_metric(f->e, &m, &line), -EINVAL);
	m.value = 1;
	m.name = "";
	assert_int_equal(ai_envelope_metric(f->e, &m, &line), -EINVAL);
	m.name = "n";
	m.properties = NULL;
	m.time = NULL;
	assert_int_equal(ai_envelope_metric(f->e, &m, &line), 0);
	json_object_put(check_valid(line.p, line.len));
	ai_line_free(&line);
	json_object_put(props);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_shape),
		cmocka_unit_test(test_count_measurement),
		cmocka_unit_test(test_event_id),
		cmocka_unit_test(test_time_fallback_and_format),
		cmocka_unit_test(test_requires_type),
		cmocka_unit_test(test_name_limit),
		cmocka_unit_test(test_property_key_limit_and_uniqueness),
		cmocka_unit_test(test_property_value_limit_utf8),
		cmocka_unit_test(test_encrypted_values_never_cut),
		cmocka_unit_test(test_item_limit_by_shortening),
		cmocka_unit_test(test_item_limit_by_dropping),
		cmocka_unit_test(test_escaping_counts_toward_item_limit),
		cmocka_unit_test(test_escaping_roundtrip),
		cmocka_unit_test(test_tag_limits),
		cmocka_unit_test(test_metric),
	};

	return cmocka_run_group_tests_name("ai_envelope", tests, setup, teardown);
}
