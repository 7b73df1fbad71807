// SPDX-License-Identifier: MIT
/*
 * The pod store (pod_store.h): what the API thread hands the event loop.
 * Every change bumps the generation and makes the eventfd readable; an
 * unchanged watch line does neither; errors are remembered once each.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "pod_store.h"
#include "workload_api.h"

#define POD(type, uid, name) "{\"type\":\"" type "\",\"object\":{\"metadata\":{\"name\":\"" name \
	"\",\"namespace\":\"ml\",\"uid\":\"" uid "\",\"resourceVersion\":\"7\"}}}"
#define UID1 "11111111-2222-4333-8444-555555555555"
#define UID2 "66666666-7777-4888-8999-aaaaaaaaaaaa"

/* Readable now, and drained. */
static bool woken(struct wl_pod_store *s)
{
	struct pollfd p = { .fd = s->event_fd, .events = POLLIN };
	uint64_t v;

	if (poll(&p, 1, 0) != 1)
		return false;
	assert_int_equal(read(s->event_fd, &v, sizeof(v)), sizeof(v));
	return true;
}

static void test_changes_bump_the_generation_and_wake(void **state)
{
	struct wl_pod_store s;
	struct wl_pod_table next = { 0 };
	struct wl_pod p = { 0 };
	char rv[WL_RV_MAX] = "";
	uint64_t gen, lists = 0;

	assert_int_equal(pod_store_init(&s), 0);
	assert_int_equal(s.gen, 1);
	assert_false(woken(&s));

	/* a list replaces the table and takes the pods */
	snprintf(p.uid, sizeof(p.uid), "%s", UID1);
	p.name = strdup("train-0");
	p.namespace = strdup("ml");
	assert_int_equal(wl_pod_table_put(&next, &p), 0);
	assert_int_equal(pod_store_replace(&s, &next, &lists), 1);
	assert_int_equal(lists, 1);
	assert_int_equal(next.n, 0);
	assert_non_null(wl_pod_table_find(&s.api, UID1));
	assert_int_equal(s.gen, 2);
	assert_true(woken(&s));

	/* a watch line that adds a pod changes it; one about nothing known does not */
	gen = s.gen;
	assert_int_equal(pod_store_apply_watch_event(&s, POD("ADDED", UID2, "train-1"),
						     strlen(POD("ADDED", UID2, "train-1")), rv),
			 WL_WATCH_CHANGED);
	assert_string_equal(rv, "7");
	assert_int_equal(s.gen, gen + 1);
	assert_true(woken(&s));
	assert_int_equal(pod_store_apply_watch_event(&s, POD("DELETED", "nope", "x"),
						     strlen(POD("DELETED", "nope", "x")), rv),
			 WL_WATCH_UNCHANGED);
	assert_int_equal(s.gen, gen + 1);
	assert_false(woken(&s));
	assert_int_equal(s.api_watch_events, 2);
	assert_int_equal(s.api.n, 2);
	pod_store_destroy(&s);
}

static void test_errors_state_and_stop(void **state)
{
	struct wl_pod_store s;

	assert_int_equal(pod_store_init(&s), 0);
	assert_false(pod_store_api_error(&s, "HTTP 500"));
	assert_true(pod_store_api_error(&s, "HTTP 500"));	/* the same again: logged once */
	assert_false(pod_store_api_error(&s, "timeout"));
	assert_int_equal(s.api_errors, 3);
	assert_string_equal(s.api_last_error, "timeout");
	assert_true(pod_store_api_ok(&s));
	assert_false(pod_store_api_ok(&s));
	pod_store_set_state(&s, WL_API_WATCHING);
	assert_string_equal(wl_api_state_name(s.api_state), "watching");
	assert_false(pod_store_stopping(&s));
	pod_store_request_stop(&s);
	assert_true(pod_store_stopping(&s));
	pod_store_nap(&s, 30);	/* returns at once once stopping */
	pod_store_destroy(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_changes_bump_the_generation_and_wake),
		cmocka_unit_test(test_errors_state_and_stop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
