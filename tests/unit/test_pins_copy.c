// SPDX-License-Identifier: MIT
/*
 * pins_copy_map(): a map's entries carried into one of a new layout (the dns
 * pins, agent/policy/dnslearn.c). Real BPF maps (needs root): every entry
 * copied, a destination of another form refused, a full one keeps what fit.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <cmocka.h>

#include "pins.h"

struct value {
	uint64_t expires;
	char name[24];
};

static int hash_map(uint32_t value_size, uint32_t entries)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "tg_test_copy", sizeof(uint32_t), value_size,
				entries, NULL);

	if (fd < 0 && errno == ENOSYS) {
		/* qemu-user (make ARCH=arm64 cross-test) implements no bpf(2); make test runs this */
		print_message("no bpf(2) here (qemu-user)\n");
		skip();
	}
	assert_true(fd >= 0);
	return fd;
}

static void fill(int fd, uint32_t n)
{
	for (uint32_t k = 1; k <= n; k++) {
		struct value v = { .expires = 1000 + k };

		snprintf(v.name, sizeof(v.name), "name-%u", k);
		assert_int_equal(bpf_map_update_elem(fd, &k, &v, BPF_NOEXIST), 0);
	}
}

static void test_every_entry_copied(void **state)
{
	int from = hash_map(sizeof(struct value), 64), to = hash_map(sizeof(struct value), 64);
	struct value v;
	size_t copied = 99;

	(void)state;
	fill(from, 40);
	assert_int_equal(pins_copy_map(from, to, &copied), 0);
	assert_int_equal(copied, 40);
	for (uint32_t k = 1; k <= 40; k++) {
		char want[24];

		assert_int_equal(bpf_map_lookup_elem(to, &k, &v), 0);
		assert_int_equal(v.expires, 1000 + k);
		snprintf(want, sizeof(want), "name-%u", k);
		assert_string_equal(v.name, want);
	}
	close(from);
	close(to);
}

static void test_other_form_refused(void **state)
{
	int from = hash_map(sizeof(struct value), 8), to = hash_map(sizeof(struct value) + 8, 8);
	size_t copied = 99;
	uint32_t next;

	(void)state;
	fill(from, 3);
	assert_int_equal(pins_copy_map(from, to, &copied), -EINVAL);
	assert_int_equal(copied, 0);
	assert_int_not_equal(bpf_map_get_next_key(to, NULL, &next), 0);	/* nothing written */
	assert_true(pins_copy_map(-1, to, &copied) < 0);
	close(from);
	close(to);
}

static void test_full_destination_keeps_what_fit(void **state)
{
	int from = hash_map(sizeof(struct value), 16), to = hash_map(sizeof(struct value), 4);
	size_t copied = 0;

	(void)state;
	fill(from, 10);
	assert_int_equal(pins_copy_map(from, to, &copied), -E2BIG);
	assert_int_equal(copied, 4);
	close(from);
	close(to);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_entry_copied),
		cmocka_unit_test(test_other_form_refused),
		cmocka_unit_test(test_full_destination_keeps_what_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
