// SPDX-License-Identifier: MIT
/* The dotted path a JSON walk is at: push on the way down, cut on the way up, growth. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "keypath.h"

static void test_push_and_cut(void **state)
{
	struct tg_keypath p;
	size_t top, mid;

	assert_int_equal(tg_keypath_init(&p), 0);
	assert_string_equal(p.buf, "");
	top = p.len;
	assert_int_equal(tg_keypath_push(&p, "workload"), 0);
	assert_string_equal(p.buf, "workload");
	mid = p.len;
	assert_int_equal(tg_keypath_push(&p, "pod"), 0);
	assert_string_equal(p.buf, "workload.pod");
	assert_int_equal(p.len, strlen("workload.pod"));
	tg_keypath_cut(&p, mid);
	assert_string_equal(p.buf, "workload");
	assert_int_equal(tg_keypath_push(&p, "namespace"), 0);
	assert_string_equal(p.buf, "workload.namespace");
	tg_keypath_cut(&p, top);
	assert_string_equal(p.buf, "");
	assert_int_equal(tg_keypath_push(&p, ""), 0);	/* an empty key is a key */
	assert_string_equal(p.buf, "");
	tg_keypath_free(&p);
	assert_null(p.buf);
}

/* Past the first 64 bytes the buffer grows; what is there stays. */
static void test_growth(void **state)
{
	char key[200], want[4 * 201];
	struct tg_keypath p;

	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	assert_int_equal(tg_keypath_init(&p), 0);
	want[0] = '\0';
	for (int i = 0; i < 4; i++) {
		assert_int_equal(tg_keypath_push(&p, key), 0);
		if (i)
			strcat(want, ".");
		strcat(want, key);
		assert_string_equal(p.buf, want);
		assert_true(p.cap > p.len);
	}
	tg_keypath_free(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_push_and_cut),
		cmocka_unit_test(test_growth),
	};

	return cmocka_run_group_tests_name("keypath", tests, NULL, NULL);
}
