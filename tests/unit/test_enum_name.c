// SPDX-License-Identifier: MIT
/* tg_enum_name(): a designated-initializer table's entry, or the fallback past it or in its holes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "enum_name.h"

enum { T_ZERO, T_ONE, T_HOLE, T_THREE };

static const char *const names[] = {
	[T_ZERO] = "zero",
	[T_ONE] = "one",
	[T_THREE] = "three",
};

static void test_in_table(void **state)
{
	assert_string_equal(TG_ENUM_NAME(names, T_ZERO, "?"), "zero");
	assert_string_equal(TG_ENUM_NAME(names, T_ONE, "?"), "one");
	assert_string_equal(TG_ENUM_NAME(names, T_THREE, "?"), "three");
}

/* a value left out of the table, past its end, or negative (an int enum gone wrong) */
static void test_fallback(void **state)
{
	int negative = -1;

	assert_string_equal(TG_ENUM_NAME(names, T_HOLE, "?"), "?");
	assert_string_equal(TG_ENUM_NAME(names, 4, "?"), "?");
	assert_string_equal(TG_ENUM_NAME(names, 1UL << 40, "?"), "?");
	assert_string_equal(TG_ENUM_NAME(names, negative, "?"), "?");
	assert_null(TG_ENUM_NAME(names, T_HOLE, NULL));
	assert_null(tg_enum_name(names, 0, T_ZERO, NULL));	/* an empty table names nothing */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_table),
		cmocka_unit_test(test_fallback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
