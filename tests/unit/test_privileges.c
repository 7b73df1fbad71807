// SPDX-License-Identifier: MIT
/* Which capabilities the agent refuses to start without, and how it says so. */
#include <errno.h>
#include <linux/capability.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "privileges.h"

#define BIT(c)		((uint64_t)1 << (c))
#define TG_CAP_PERFMON	38
#define TG_CAP_BPF	39
#define NEEDED		(BIT(CAP_NET_ADMIN) | BIT(CAP_SYS_ADMIN) | BIT(CAP_SYS_PTRACE))

static void expect_missing(uint64_t eff, const char *name)
{
	char msg[320] = "";
	char want[64];

	assert_int_equal(privileges_missing(eff, msg, sizeof(msg)), -EPERM);
	snprintf(want, sizeof(want), "the agent lacks %s: ", name);
	assert_non_null(strstr(msg, want));
	assert_non_null(strstr(msg, "docs/install-aks.md"));
	assert_null(strchr(msg, '\n'));
}

static void test_the_three_needed_are_enough(void **state)
{
	char msg[320] = "";

	assert_int_equal(privileges_missing(NEEDED, msg, sizeof(msg)), 0);
	assert_int_equal(privileges_missing(NEEDED | BIT(TG_CAP_BPF) | BIT(TG_CAP_PERFMON), msg, sizeof(msg)), 0);
	assert_int_equal(privileges_missing(~(uint64_t)0, msg, sizeof(msg)), 0);
}

static void test_each_needed_one_is_named_when_missing(void **state)
{
	uint64_t with_bpf = NEEDED | BIT(TG_CAP_BPF) | BIT(TG_CAP_PERFMON);

	expect_missing(with_bpf & ~BIT(CAP_SYS_ADMIN), "CAP_SYS_ADMIN");
	expect_missing(with_bpf & ~BIT(CAP_NET_ADMIN), "CAP_NET_ADMIN");
	expect_missing(with_bpf & ~BIT(CAP_SYS_PTRACE), "CAP_SYS_PTRACE");
	expect_missing(0, "CAP_SYS_ADMIN");	/* the first one, in one line */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_the_three_needed_are_enough),
		cmocka_unit_test(test_each_needed_one_is_named_when_missing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
