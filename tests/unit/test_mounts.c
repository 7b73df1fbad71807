// SPDX-License-Identifier: MIT
/* Where the agent mounts bpffs for a pin path, and how it tells bpffs apart. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mounts.h"

static void expect_point(const char *pin_path, const char *want)
{
	char out[256];

	assert_int_equal(mounts_bpffs_point(pin_path, out, sizeof(out)), 0);
	assert_string_equal(out, want);
}

static void test_pin_paths_under_sys_fs_bpf_mount_it_there(void **state)
{
	expect_point("/sys/fs/bpf/tlsguard", "/sys/fs/bpf");
	expect_point("/sys/fs/bpf/a/b/c", "/sys/fs/bpf");
	expect_point("/sys/fs/bpf", "/sys/fs/bpf");
	expect_point("/sys/fs/bpf/", "/sys/fs/bpf");
}

static void test_other_pin_paths_mount_at_their_parent(void **state)
{
	expect_point("/run/tlsguard/pins", "/run/tlsguard");
	expect_point("/run/tlsguard/pins/", "/run/tlsguard");
	expect_point("/pins", "/");
	expect_point("/sys/fs/bpfx/pins", "/sys/fs/bpfx");	/* a look-alike is not /sys/fs/bpf */
	expect_point("pins", ".");
}

static void test_bad_pin_paths_are_refused(void **state)
{
	char out[8];

	assert_int_equal(mounts_bpffs_point("", out, sizeof(out)), -EINVAL);
	assert_int_equal(mounts_bpffs_point("/a/very/long/path", out, sizeof(out)), -ENAMETOOLONG);
}

static void test_a_directory_elsewhere_is_not_bpffs(void **state)
{
	char dir[] = "/tmp/tg-mounts-XXXXXX";

	assert_non_null(mkdtemp(dir));
	assert_int_equal(mounts_on_bpffs(dir), 0);
	/* a directory still to be made: its closest existing ancestor decides */
	assert_int_equal(mounts_on_bpffs("/tmp/tg-mounts-no-such/dir/below"), 0);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pin_paths_under_sys_fs_bpf_mount_it_there),
		cmocka_unit_test(test_other_pin_paths_mount_at_their_parent),
		cmocka_unit_test(test_bad_pin_paths_are_refused),
		cmocka_unit_test(test_a_directory_elsewhere_is_not_bpffs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
