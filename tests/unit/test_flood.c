// SPDX-License-Identifier: MIT
/* Flood control: first passes, repeats fold into one summary per window. */
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

#include "flood.h"

static json_object *event(const char *type, const char *action, const char *cgroup,
			  const char *ip, int port, const char *time)
{
	char text[512];

	snprintf(text, sizeof(text),
		 "{\"type\":\"%s\",\"action\":\"%s\",\"time\":\"%s\","
		 "\"destination\":{\"class\":\"storage\",\"ip\":\"%s\",\"port\":%d},"
		 "\"workload\":{\"cgroup\":\"%s\",\"pid\":%d,\"comm\":\"curl\"}}",
		 type, action, time, ip, port, cgroup, rand());
	return json_tokener_parse(text);
}

struct collected {
	int n;
	uint64_t count[8];
	char last_time[8][40];
	char sample_time[8][40];
};

static void collect(void *ctx, const struct tg_flood_summary *s)
{
	struct collected *c = ctx;
	char *text = strndup(s->sample, s->len);
	json_object *o = json_tokener_parse(text), *t;

	assert_non_null(o);
	assert_true(c->n < 8);
	c->count[c->n] = s->count;
	snprintf(c->last_time[c->n], sizeof(c->last_time[0]), "%s", s->last_time);
	assert_true(json_object_object_get_ex(o, "time", &t));
	snprintf(c->sample_time[c->n], sizeof(c->sample_time[0]), "%s", json_object_get_string(t));
	c->n++;
	json_object_put(o);
	free(text);
}

static enum tg_flood_verdict check(struct tg_flood *f, const char *cg, const char *ip,
				   const char *time, uint64_t now)
{
	json_object *ev = event("plaintext", "flagged", cg, ip, 80, time);
	enum tg_flood_verdict v = flood_check(f, ev, now);

	json_object_put(ev);
	return v;
}

static void test_first_passes_repeats_fold(void **state)
{
	struct tg_flood *f = flood_new(60000, 0);
	struct collected c = { 0 };
	struct tg_flood_stats st;

	assert_int_equal(check(f, "/a", "10.0.0.1", "t0", 1000), TG_FLOOD_PASS);
	assert_int_equal(check(f, "/a", "10.0.0.1", "t1", 2000), TG_FLOOD_FOLDED);
	assert_int_equal(check(f, "/a", "10.0.0.1", "t2", 3000), TG_FLOOD_FOLDED);
	assert_int_equal(check(f, "/a", "10.0.0.1", "t3", 4000), TG_FLOOD_FOLDED);
	/* another workload, another destination: their own first */
	assert_int_equal(check(f, "/b", "10.0.0.1", "u0", 4000), TG_FLOOD_PASS);
	assert_int_equal(check(f, "/a", "10.0.0.2", "v0", 4000), TG_FLOOD_PASS);
	/* nothing closes before the window ends */
	assert_int_equal(flood_expire(f, 60999, 0, collect, &c), 0);
	assert_int_equal(flood_expire(f, 61000, 0, collect, &c), 1);
	assert_int_equal(c.count[0], 3);
	assert_string_equal(c.sample_time[0], "t1");	/* the first folded one */
	assert_string_equal(c.last_time[0], "t3");
	flood_stats(f, &st);
	assert_int_equal(st.folded, 3);
	assert_int_equal(st.summaries, 1);
	/* still hot: the group stays and keeps folding into the next window */
	assert_int_equal(check(f, "/a", "10.0.0.1", "t4", 62000), TG_FLOOD_FOLDED);
	assert_int_equal(flood_expire(f, 121000, 0, collect, &c), 1);
	assert_int_equal(c.count[1], 1);
	/* a quiet window forgets the group: the next one passes at once */
	assert_int_equal(flood_expire(f, 181000, 0, collect, &c), 0);
	assert_int_equal(check(f, "/a", "10.0.0.1", "t5", 182000), TG_FLOOD_PASS);
	flood_free(f);
}

static void test_agent_events_and_disabled(void **state)
{
	struct tg_flood *f = flood_new(60000, 0), *off = flood_new(0, 0);
	json_object *ag = json_tokener_parse("{\"type\":\"agent\",\"action\":\"loss\"}");
	char key[TG_FLOOD_KEY_MAX];

	assert_int_equal(flood_key(ag, key, sizeof(key)), -ENOENT);
	for (int i = 0; i < 5; i++)
		assert_int_equal(flood_check(f, ag, 1000 + i), TG_FLOOD_PASS);
	for (int i = 0; i < 5; i++)
		assert_int_equal(check(off, "/a", "10.0.0.1", "t", 1000 + i), TG_FLOOD_PASS);
	json_object_put(ag);
	flood_free(f);
	flood_free(off);
}

static void test_pod_is_the_workload(void **state)
{
	json_object *a = json_tokener_parse(
		"{\"type\":\"plaintext\",\"action\":\"blocked\",\"destination\":{\"class\":\"s\","
		"\"name\":\"acct.blob.core.windows.net\",\"ip\":\"1.2.3.4\",\"port\":80},"
		"\"workload\":{\"cgroup\":\"/x/c1\",\"pod\":\"train-0\",\"namespace\":\"ml\"}}");
	json_object *b = json_tokener_parse(
		"{\"type\":\"plaintext\",\"action\":\"blocked\",\"destination\":{\"class\":\"s\","
		"\"name\":\"acct.blob.core.windows.net\",\"ip\":\"1.2.3.5\",\"port\":80},"
		"\"workload\":{\"cgroup\":\"/x/c2\",\"pod\":\"train-0\",\"namespace\":\"ml\"}}");
	char ka[TG_FLOOD_KEY_MAX], kb[TG_FLOOD_KEY_MAX];

	/* two containers of one pod, two addresses of one name: one group */
	assert_int_equal(flood_key(a, ka, sizeof(ka)), 0);
	assert_int_equal(flood_key(b, kb, sizeof(kb)), 0);
	assert_string_equal(ka, kb);
	assert_non_null(strstr(ka, "pod:ml/train-0"));
	json_object_put(a);
	json_object_put(b);
}

static void test_bounded_and_flush_all(void **state)
{
	struct tg_flood *f = flood_new(60000, 2);
	struct collected c = { 0 };
	struct tg_flood_stats st;

	assert_int_equal(check(f, "/a", "10.0.0.1", "a0", 0), TG_FLOOD_PASS);
	assert_int_equal(check(f, "/b", "10.0.0.1", "b0", 0), TG_FLOOD_PASS);
	/* table full: a new group passes untracked, every time */
	assert_int_equal(check(f, "/c", "10.0.0.1", "c0", 0), TG_FLOOD_PASS);
	assert_int_equal(check(f, "/c", "10.0.0.1", "c1", 0), TG_FLOOD_PASS);
	assert_int_equal(check(f, "/a", "10.0.0.1", "a1", 10), TG_FLOOD_FOLDED);
	flood_stats(f, &st);
	assert_int_equal(st.untracked, 2);
	assert_int_equal(st.groups, 2);
	/* stopping: every open window closes now, counts are not lost */
	assert_int_equal(flood_expire(f, 20, 1, collect, &c), 1);
	assert_int_equal(c.count[0], 1);
	flood_stats(f, &st);
	assert_int_equal(st.groups, 0);
	flood_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_passes_repeats_fold),
		cmocka_unit_test(test_agent_events_and_disabled),
		cmocka_unit_test(test_pod_is_the_workload),
		cmocka_unit_test(test_bounded_and_flush_all),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
