// SPDX-License-Identifier: MIT
/* tg_cmdline_parse(): an option table into an argument struct, as getopt_long reads argv. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cmdline.h"
#include "commands.h"

struct args {
	const char *socket, *fmt;
	bool follow, check;
	int modes, verbose;
};

static int usage_calls;
static FILE *usage_out;

static void usage(FILE *out)
{
	usage_calls++;
	usage_out = out;
}

static int count_mode(void *p, char *arg)
{
	struct args *a = p;

	if (strcmp(arg, "ok"))
		return 42;	/* an exit code of the option's own */
	a->modes++;
	return 0;
}

static int count_verbose(void *p, char *arg)
{
	assert_null(arg);
	((struct args *)p)->verbose++;
	return 0;
}

static const struct tg_cmdline_opt opts[] = {
	TG_OPT_STR("socket", 's', struct args, socket),
	TG_OPT_STR("output", 'o', struct args, fmt),
	TG_OPT_FLAG("follow", 'f', struct args, follow),
	TG_OPT_FLAG("check", 0, struct args, check),	/* long only */
	TG_OPT_FN("mode", 'm', count_mode),
	TG_OPT_ACTION("verbose", 'v', count_verbose),
	{ 0 },
};

/* argv from a NULL-ended list: getopt_long permutes it, so each call gets its own */
#define PARSE(a, operands, ...) ({ \
	char *argv_[] = { "cmd", __VA_ARGS__, NULL }; \
	usage_calls = 0; \
	tg_cmdline_parse(sizeof(argv_) / sizeof(argv_[0]) - 1, argv_, opts, usage, (operands), (a)); \
})

static void test_short_and_long(void **state)
{
	struct args a = { .fmt = "text" };

	assert_int_equal(PARSE(&a, false, "-s", "/run/x", "--follow", "-mok", "--mode=ok", "--check",
			       "-v", "--verbose"), TG_CMDLINE_GO);
	assert_string_equal(a.socket, "/run/x");
	assert_string_equal(a.fmt, "text");	/* not given: the default stays */
	assert_true(a.follow);
	assert_true(a.check);
	assert_int_equal(a.modes, 2);
	assert_int_equal(a.verbose, 2);	/* no argument taken */
	assert_int_equal(usage_calls, 0);

	memset(&a, 0, sizeof(a));
	assert_int_equal(PARSE(&a, false, "-vf"), TG_CMDLINE_GO);
	assert_int_equal(a.verbose, 1);
	assert_true(a.follow);

	memset(&a, 0, sizeof(a));
	assert_int_equal(PARSE(&a, false, "--output", "json", "-f"), TG_CMDLINE_GO);
	assert_string_equal(a.fmt, "json");
	assert_true(a.follow);
	assert_false(a.check);
}

static void test_help_and_errors(void **state)
{
	struct args a = { 0 };

	assert_int_equal(PARSE(&a, false, "-h"), TG_EXIT_OK);
	assert_int_equal(usage_calls, 1);
	assert_ptr_equal(usage_out, stdout);
	assert_int_equal(PARSE(&a, false, "--help"), TG_EXIT_OK);
	assert_ptr_equal(usage_out, stdout);

	assert_int_equal(PARSE(&a, false, "--nope"), TG_EXIT_USAGE);
	assert_ptr_equal(usage_out, stderr);
	assert_int_equal(PARSE(&a, false, "-c"), TG_EXIT_USAGE);	/* --check has no short form */
	assert_int_equal(PARSE(&a, false, "-s"), TG_EXIT_USAGE);	/* its argument missing */
	assert_int_equal(usage_calls, 1);
	assert_int_equal(PARSE(&a, false, "--follow=yes"), TG_EXIT_USAGE);

	/* an option's own exit code, without the usage */
	assert_int_equal(PARSE(&a, false, "-m", "bad"), 42);
	assert_int_equal(usage_calls, 0);
}

static void test_operands(void **state)
{
	struct args a = { 0 };

	assert_int_equal(PARSE(&a, false, "-f", "extra"), TG_EXIT_USAGE);
	assert_ptr_equal(usage_out, stderr);
	assert_int_equal(PARSE(&a, true, "-f", "extra"), TG_CMDLINE_GO);
	assert_int_equal(usage_calls, 0);
	assert_int_equal(optind, 2);
}

static void test_pin_path(void **state)
{
	char *with[] = { "mount", "--pin-path", "/sys/fs/bpf/x", NULL };
	char *without[] = { "mount", NULL };
	char *other[] = { "mount", "-s", "y", NULL };
	const char *pin = "default";

	assert_int_equal(tg_cmdline_pin_path(1, without, usage, &pin), TG_CMDLINE_GO);
	assert_string_equal(pin, "default");
	assert_int_equal(tg_cmdline_pin_path(3, with, usage, &pin), TG_CMDLINE_GO);
	assert_string_equal(pin, "/sys/fs/bpf/x");
	assert_int_equal(tg_cmdline_pin_path(3, other, usage, &pin), TG_EXIT_USAGE);
}

/* more options than TG_CMDLINE_MAX: refused, not written past getopt's tables */
static void test_table_too_long(void **state)
{
	struct tg_cmdline_opt many[TG_CMDLINE_MAX + 2] = { 0 };
	char *argv[] = { "cmd", NULL };
	struct args a = { 0 };

	for (int i = 0; i < TG_CMDLINE_MAX + 1; i++)
		many[i] = (struct tg_cmdline_opt)TG_OPT_FLAG("x", 0, struct args, follow);
	assert_int_equal(tg_cmdline_parse(1, argv, many, usage, false, &a), TG_EXIT_FAIL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_short_and_long),
		cmocka_unit_test(test_help_and_errors),
		cmocka_unit_test(test_operands),
		cmocka_unit_test(test_pin_path),
		cmocka_unit_test(test_table_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
