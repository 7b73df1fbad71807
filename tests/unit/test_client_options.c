// SPDX-License-Identifier: MIT
/* client_parse_options(): status/events options, then -o text or json only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cli/client.h"
#include "commands.h"

struct args {
	const char *fmt;
};

static int usage_calls;

static void usage(FILE *out)
{
	usage_calls++;
}

static const struct tg_cmdline_opt opts[] = {
	TG_OPT_STR("output", 'o', struct args, fmt),
	{ 0 },
};

static int parse(const char *fmt_arg)
{
	char *argv[] = { "status", "-o", (char *)fmt_arg, NULL };
	struct args a = { .fmt = "text" };

	usage_calls = 0;
	return client_parse_options(fmt_arg ? 3 : 1, argv, opts, usage, &a, &a.fmt);
}

static void test_formats(void **state)
{
	assert_int_equal(parse(NULL), TG_CMDLINE_GO);	/* the default */
	assert_int_equal(parse("text"), TG_CMDLINE_GO);
	assert_int_equal(parse("json"), TG_CMDLINE_GO);
	assert_int_equal(usage_calls, 0);
	assert_int_equal(parse("yaml"), TG_EXIT_USAGE);
	assert_int_equal(usage_calls, 1);
	assert_int_equal(parse("JSON"), TG_EXIT_USAGE);
}

/* what the option loop decides comes back as it is, the format unchecked */
static void test_parse_result_first(void **state)
{
	char *help[] = { "events", "-h", NULL };
	char *extra[] = { "events", "x", NULL };
	struct args a = { .fmt = "bad" };

	assert_int_equal(client_parse_options(2, help, opts, usage, &a, &a.fmt), TG_EXIT_OK);
	assert_int_equal(client_parse_options(2, extra, opts, usage, &a, &a.fmt), TG_EXIT_USAGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_formats),
		cmocka_unit_test(test_parse_result_first),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
