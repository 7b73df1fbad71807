// SPDX-License-Identifier: MIT
/* The minimum-kernel check: one line naming the first missing feature. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "kernel_features.h"

static struct tg_features all_present(void)
{
	struct tg_features f = {
		.kernel_version = TG_KERNEL_VERSION(6, 1),
		.prog_cgroup_sock_addr = 1, .prog_cgroup_skb = 1, .map_sk_storage = 1,
		.map_ringbuf = 1, .map_lpm_trie = 1, .sock_storage = 1, .vmlinux_btf = 0, .current_task = 0,
		.current_cgroup = 0, .sock_destroy_kfunc = 0,
	};
	return f;
}

static void test_optional_features_are_not_required(void **state)
{
	struct tg_features f = all_present();
	char msg[320] = "";

	assert_int_equal(features_check_required(&f, msg, sizeof(msg)), 0);
}

static void test_kernel_without_ringbuf_is_refused_in_one_line(void **state)
{
	struct tg_features f = all_present();
	char msg[320];

	f.map_ringbuf = 0;	/* a 5.4 kernel, or one built without it */
	assert_int_equal(features_check_required(&f, msg, sizeof(msg)), -ENOTSUP);
	assert_non_null(strstr(msg, "BPF ring buffer maps (Linux 5.8+)"));
	assert_non_null(strstr(msg, "needs Linux 5.15 or newer"));
	assert_null(strchr(msg, '\n'));
}

static void test_kernel_without_sock_storage_is_refused(void **state)
{
	struct tg_features f = all_present();
	char msg[320];

	f.sock_storage = 0;	/* a 5.10 kernel: the flow cap's release hook cannot load */
	f.kernel_version = -1;	/* an unknown release: the feature probes decide */
	assert_int_equal(features_check_required(&f, msg, sizeof(msg)), -ENOTSUP);
	assert_non_null(strstr(msg, "sk_storage in cgroup/sock programs (Linux 5.11+)"));
}

static void test_kernel_older_than_minimum_is_refused_in_one_line(void **state)
{
	struct tg_features f = all_present();
	char msg[320];

	f.kernel_version = features_parse_release("5.10.0-28-cloud-amd64");
	assert_int_equal(f.kernel_version, TG_KERNEL_VERSION(5, 10));
	assert_int_equal(features_check_required(&f, msg, sizeof(msg)), -ENOTSUP);
	assert_non_null(strstr(msg, "this kernel is Linux 5.10; tlsguard needs Linux 5.15 or newer"));
	assert_null(strchr(msg, '\n'));

	f.kernel_version = features_parse_release("5.15.0-1064-azure");
	assert_int_equal(features_check_required(&f, msg, sizeof(msg)), 0);
	f.kernel_version = features_parse_release("6.18.44-fc-v782");
	assert_int_equal(features_check_required(&f, msg, sizeof(msg)), 0);
}

static void test_release_strings(void **state)
{
	assert_int_equal(features_parse_release("6.1.0-56-cloud-amd64"), TG_KERNEL_VERSION(6, 1));
	assert_int_equal(features_parse_release("5.15"), TG_KERNEL_VERSION(5, 15));
	assert_int_equal(features_parse_release("6.12.57+deb12-cloud-amd64"),
			 TG_KERNEL_VERSION(6, 12));
	/* unknown: the feature probes decide */
	assert_int_equal(features_parse_release("linux"), -1);
	assert_int_equal(features_parse_release(""), -1);
	assert_int_equal(features_parse_release(NULL), -1);
	assert_int_equal(features_parse_release("6.999.1"), -1);
}

static void test_first_missing_feature_is_named(void **state)
{
	struct tg_features f = all_present();
	char msg[320];

	f.prog_cgroup_sock_addr = 0;
	f.map_ringbuf = 0;
	assert_int_equal(features_check_required(&f, msg, sizeof(msg)), -ENOTSUP);
	assert_non_null(strstr(msg, "cgroup/connect BPF programs"));
	assert_null(strstr(msg, "ring buffer"));
}

static void test_probe_that_could_not_run_says_why(void **state)
{
	struct tg_features f = all_present();
	char msg[320];

	f.map_sk_storage = -EPERM;
	assert_int_equal(features_check_required(&f, msg, sizeof(msg)), -ENOTSUP);
	assert_non_null(strstr(msg, "cannot probe the kernel for socket local storage"));
	assert_non_null(strstr(msg, "Operation not permitted"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_optional_features_are_not_required),
		cmocka_unit_test(test_kernel_without_sock_storage_is_refused),
		cmocka_unit_test(test_kernel_without_ringbuf_is_refused_in_one_line),
		cmocka_unit_test(test_kernel_older_than_minimum_is_refused_in_one_line),
		cmocka_unit_test(test_release_strings),
		cmocka_unit_test(test_first_missing_feature_is_named),
		cmocka_unit_test(test_probe_that_could_not_run_says_why),
	};

	return cmocka_run_group_tests_name("kernel_features", tests, NULL, NULL);
}
