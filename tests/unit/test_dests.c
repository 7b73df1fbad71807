// SPDX-License-Identifier: MIT
/* Policy → destination table (LPM entries and classes), without a kernel. */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dests.h"
#include "policy.h"

static struct tg_policy *load(const char *yaml)
{
	struct tg_diag diag = { 0 };
	struct tg_policy *p = NULL;

	assert_int_equal(policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, &diag), 0);
	diag_free(&diag);
	return p;
}

static const struct tg_dest_entry *find(const struct tg_dest_table *t, const char *addr, unsigned plen)
{
	uint8_t a[16] = { 0 };

	if (strchr(addr, ':')) {
		inet_pton(AF_INET6, addr, a);
	} else {
		a[10] = a[11] = 0xff;
		inet_pton(AF_INET, addr, a + 12);
	}
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].key.prefixlen == plen && !memcmp(t->v[i].key.addr, a, 16))
			return &t->v[i];
	return NULL;
}

static void test_classes_and_prefixes(void **state)
{
	struct tg_policy *p = load("mode: audit\n"
				   "destinations:\n"
				   "  - name: storage\n"
				   "    cidrs: [\"198.51.100.0/24\"]\n"
				   "    ports: [443, \"8000-8100\"]\n"
				   "    mode: enforce\n"
				   "  - name: db\n"
				   "    cidrs: [\"2001:db8::/32\"]\n");
	struct tg_dest_table t;
	const struct tg_dest_entry *e;

	assert_int_equal(dests_build(p, -1, NULL, NULL, &t), 0);
	assert_int_equal(t.nclasses, 2);
	assert_string_equal(dests_class_name(&t, 1), "storage");
	assert_string_equal(dests_class_name(&t, 2), "db");
	assert_null(dests_class_name(&t, 3));
	assert_int_equal(t.classes[1].mode, TG_MODE_ENFORCE);
	assert_int_equal(t.classes[2].mode, TG_MODE_AUDIT);
	assert_int_equal(t.classes[1].nranges, 2);
	assert_int_equal(t.classes[1].ports[1].lo, 8000);
	assert_int_equal(t.classes[1].ports[1].hi, 8100);
	assert_int_equal(t.classes[2].nranges, 0);
	e = find(&t, "198.51.100.0", 96 + 24);
	assert_non_null(e);
	assert_int_equal(e->val.class_id, 1);
	e = find(&t, "2001:db8::", 32);
	assert_non_null(e);
	assert_int_equal(e->val.class_id, 2);
	dests_free(&t);
	policy_free(p);
}

static void test_mode_override_wins(void **state)
{
	struct tg_policy *p = load("destinations:\n"
				   "  - name: a\n    cidrs: [\"10.0.0.0/8\"]\n    mode: audit\n");
	struct tg_dest_table t;

	assert_int_equal(dests_build(p, TG_MODE_ENFORCE, NULL, NULL, &t), 0);
	assert_int_equal(t.classes[1].mode, TG_MODE_ENFORCE);
	dests_free(&t);
	policy_free(p);
}

static void test_exception_wins_over_same_prefix(void **state)
{
	struct tg_policy *p = load("destinations:\n"
				   "  - name: a\n    cidrs: [\"169.254.169.254/32\", \"10.0.0.0/8\"]\n"
				   "exceptions:\n  - cidrs: [\"169.254.169.254/32\"]\n");
	struct tg_dest_table t;
	const struct tg_dest_entry *e;

	assert_int_equal(dests_build(p, -1, NULL, NULL, &t), 0);
	assert_int_equal(t.n, 2);
	e = find(&t, "169.254.169.254", 128);
	assert_non_null(e);
	assert_true(e->val.flags & TG_DEST_EXCEPTION);
	assert_int_equal(e->val.class_id, 0);
	dests_free(&t);
	policy_free(p);
}

static void test_resolved_hosts_become_entries_with_names(void **state)
{
	struct tg_policy *p = load("destinations:\n"
				   "  - name: storage\n    hosts: [\"acct.blob.core.windows.net\"]\n");
	struct tg_hosts h;
	struct tg_dest_table t;
	uint8_t addr[16] = { [10] = 0xff, [11] = 0xff, [12] = 198, [13] = 51, [14] = 100, [15] = 9 };

	/* a host table filled by hand: resolution itself is exercised in integration */
	memset(&h, 0, sizeof(h));
	pthread_mutex_init(&h.lock, NULL);
	h.n = 1;
	h.v = calloc(1, sizeof(*h.v));
	h.v[0].name = "acct.blob.core.windows.net";
	memcpy(h.v[0].addrs.addrs[0], addr, 16);
	h.v[0].addrs.naddrs = 1;
	assert_int_equal(dests_build(p, -1, &h, NULL, &t), 0);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.v[0].key.prefixlen, 128);
	assert_string_equal(dests_name_for(&t, addr), "acct.blob.core.windows.net");
	addr[15] = 10;
	assert_null(dests_name_for(&t, addr));
	dests_free(&t);
	free(h.v);
	pthread_mutex_destroy(&h.lock);
	policy_free(p);
}

/* Two classes whose names resolve to one address: the first class named keeps it. */
static void test_shared_address_goes_to_first_class(void **state)
{
	struct tg_policy *p = load("destinations:\n"
				   "  - name: a\n    hosts: [\"one.example\"]\n"
				   "  - name: b\n    hosts: [\"two.example\"]\n");
	uint8_t addr[16] = { [10] = 0xff, [11] = 0xff, [12] = 198, [13] = 51, [14] = 100, [15] = 9 };
	struct tg_dest_table t;
	struct tg_hosts h;

	memset(&h, 0, sizeof(h));
	pthread_mutex_init(&h.lock, NULL);
	h.n = 2;
	h.v = calloc(2, sizeof(*h.v));
	h.v[0].name = "one.example";
	h.v[1].name = "two.example";
	for (int i = 0; i < 2; i++) {
		memcpy(h.v[i].addrs.addrs[0], addr, 16);
		h.v[i].addrs.naddrs = 1;
	}
	assert_int_equal(dests_build(p, -1, &h, NULL, &t), 0);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.v[0].val.class_id, 1);
	dests_free(&t);
	free(h.v);
	pthread_mutex_destroy(&h.lock);
	policy_free(p);
}

#define DATA_DIR TG_TEST_DATA "/servicetags/"

static void test_service_tags_become_prefixes(void **state)
{
	struct tg_policy *p = load("destinations:\n"
				   "  - name: storage\n"
				   "    service_tags:\n"
				   "      file: \"" DATA_DIR "ServiceTags_Public_small.json\"\n"
				   "      tags: [Storage.WestEurope]\n");
	struct tg_dest_table t;

	assert_int_equal(dests_build(p, -1, NULL, NULL, &t), 0);
	assert_int_equal(t.n, 3);
	assert_non_null(find(&t, "20.60.0.0", 96 + 16));
	assert_non_null(find(&t, "20.38.108.0", 96 + 23));
	assert_non_null(find(&t, "2603:1020:206::", 48));
	assert_null(find(&t, "20.50.201.0", 96 + 26));	/* another tag */
	dests_free(&t);
	policy_free(p);
}

static void test_service_tag_missing_is_an_error(void **state)
{
	struct tg_policy *p = load("destinations:\n"
				   "  - name: storage\n"
				   "    service_tags:\n"
				   "      file: \"" DATA_DIR "ServiceTags_Public_small.json\"\n"
				   "      tags: [Storage.MarsNorth]\n");
	struct tg_policy *q = load("destinations:\n"
				   "  - name: storage\n"
				   "    service_tags:\n"
				   "      file: \"" DATA_DIR "no-such-file.json\"\n"
				   "      tags: [Storage.WestEurope]\n");
	struct tg_dest_table t;

	assert_int_equal(dests_build(p, -1, NULL, NULL, &t), -ENOENT);
	assert_int_not_equal(dests_build(q, -1, NULL, NULL, &t), 0);
	policy_free(p);
	policy_free(q);
}

/* A reload keeps each class's id (per-class counters keep their meaning). */
static void test_class_ids_survive_reload(void **state)
{
	struct tg_policy *p1 = load("destinations:\n"
				    "  - name: a\n    cidrs: [\"10.1.0.0/16\"]\n"
				    "  - name: b\n    cidrs: [\"10.2.0.0/16\"]\n"
				    "  - name: c\n    cidrs: [\"10.3.0.0/16\"]\n");
	struct tg_policy *p2 = load("destinations:\n"
				    "  - name: new\n    cidrs: [\"10.4.0.0/16\"]\n"
				    "  - name: c\n    cidrs: [\"10.3.0.0/16\"]\n"
				    "  - name: a\n    cidrs: [\"10.1.0.0/16\"]\n");
	struct tg_dest_table t1, t2;

	assert_int_equal(dests_build(p1, -1, NULL, NULL, &t1), 0);
	assert_int_equal(dests_build(p2, -1, NULL, &t1, &t2), 0);
	assert_string_equal(dests_class_name(&t2, 1), "a");
	assert_string_equal(dests_class_name(&t2, 3), "c");
	assert_null(dests_class_name(&t2, 2));		/* b's id is not handed to "new" */
	assert_string_equal(dests_class_name(&t2, 4), "new");
	assert_int_equal(find(&t2, "10.3.0.0", 112)->val.class_id, 3);
	dests_free(&t1);
	dests_free(&t2);
	policy_free(p1);
	policy_free(p2);
}

/*
 * A policy of @n /32 prefixes in 10.0.0.0/8 (one class), plus @dup copies of
 * the first prefix and, when @exception, one exception prefix of its own.
 */
static struct tg_policy *load_many(size_t n, size_t dup, bool exception)
{
	size_t len = 200 + (n + dup + 1) * 40, off = 0;
	char *y = malloc(len);
	struct tg_policy *p;

	assert_non_null(y);
	off += snprintf(y + off, len - off, "destinations:\n  - name: big\n    cidrs:\n");
	for (size_t i = 0; i < n + dup; i++) {
		size_t k = i < n ? i : 0;

		off += snprintf(y + off, len - off, "      - \"10.%zu.%zu.%zu/32\"\n",
				(k >> 16) & 0xff, (k >> 8) & 0xff, k & 0xff);
	}
	if (exception)
		off += snprintf(y + off, len - off, "exceptions:\n  - cidrs: [\"192.0.2.99/32\"]\n");
	assert_true(off < len);
	p = load(y);
	free(y);
	return p;
}

/* The destination map's bound (TG_MAX_DESTS): exactly full fits, one more is refused. */
static void test_bound_exactly_full_fits(void **state)
{
	struct tg_policy *p = load_many(TG_MAX_DESTS, 3, false);	/* duplicates are no entries */
	struct tg_dest_table t;

	assert_int_equal(dests_build(p, -1, NULL, NULL, &t), 0);
	assert_int_equal(t.n, TG_MAX_DESTS);
	assert_non_null(find(&t, "10.0.0.0", 128));
	assert_non_null(find(&t, "10.0.255.255", 128));
	dests_free(&t);
	policy_free(p);
}

static void test_bound_one_more_is_refused(void **state)
{
	struct tg_policy *p = load_many(TG_MAX_DESTS + 1, 0, false);
	struct tg_policy *q = load_many(TG_MAX_DESTS, 0, true);	/* exceptions are entries too */
	struct tg_dest_table t;

	assert_int_equal(dests_build(p, -1, NULL, NULL, &t), -E2BIG);
	assert_int_equal(t.n, 0);
	assert_null(t.v);
	assert_int_equal(dests_build(q, -1, NULL, NULL, &t), -E2BIG);
	policy_free(p);
	policy_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classes_and_prefixes),
		cmocka_unit_test(test_mode_override_wins),
		cmocka_unit_test(test_exception_wins_over_same_prefix),
		cmocka_unit_test(test_resolved_hosts_become_entries_with_names),
		cmocka_unit_test(test_shared_address_goes_to_first_class),
		cmocka_unit_test(test_service_tags_become_prefixes),
		cmocka_unit_test(test_service_tag_missing_is_an_error),
		cmocka_unit_test(test_class_ids_survive_reload),
		cmocka_unit_test(test_bound_exactly_full_fits),
		cmocka_unit_test(test_bound_one_more_is_refused),
	};

	return cmocka_run_group_tests_name("dests", tests, NULL, NULL);
}
