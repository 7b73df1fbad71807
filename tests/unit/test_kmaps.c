// SPDX-License-Identifier: MIT
/*
 * kmaps.h against small real BPF maps (root only): the per-CPU sum, the
 * adopted u64 keys, the names and proxies writes that remove what the new
 * set lacks, and the no-op writes of a map the kmaps do not have.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "kmaps.h"

static bool can_make_maps(void)
{
	int fd;

	if (geteuid() != 0)
		return false;
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_probe", 4, 4, 1, NULL);
	if (fd < 0)
		return false;	/* qemu-user (cross-test) implements no bpf(2) */
	close(fd);
	return true;
}

static void test_percpu_sum_over_cpus_and_keys(void **state)
{
	int ncpu = libbpf_num_possible_cpus(), fd;
	uint64_t *vals, out[3] = { 99, 99, 99 };

	if (!can_make_maps())
		skip();
	fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "t_pcpu", 4, 8, 8, NULL);
	assert_true(fd >= 0 && ncpu > 0);
	vals = calloc(ncpu, sizeof(*vals));
	assert_non_null(vals);
	for (uint32_t k = 0; k < 8; k++) {
		for (int c = 0; c < ncpu; c++)
			vals[c] = k * 10 + 1;
		assert_int_equal(bpf_map_update_elem(fd, &k, vals, BPF_ANY), 0);
	}
	/* keys 5, 6, 7: each CPU holds k * 10 + 1 */
	assert_int_equal(kmaps_percpu_sum(fd, 5, 3, out), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(out[i], (uint64_t)ncpu * ((5 + i) * 10 + 1));
	/* past the end: zero, not the old contents */
	assert_int_equal(kmaps_percpu_sum(fd, 7, 3, out), 0);
	assert_int_equal(out[0], (uint64_t)ncpu * 71);
	assert_int_equal(out[1], 0);
	assert_int_equal(out[2], 0);
	free(vals);
	close(fd);
}

static void test_u64_keys(void **state)
{
	uint64_t *keys, ids[] = { 7, 3, 1000 };
	uint8_t one = 1;
	size_t n;
	int fd;

	if (!can_make_maps())
		skip();
	fd = bpf_map_create(BPF_MAP_TYPE_HASH, "t_ids", 8, 1, 16, NULL);
	assert_true(fd >= 0);
	assert_int_equal(kmaps_u64_keys(fd, &keys), 0);
	assert_null(keys);
	for (int i = 0; i < 3; i++)
		assert_int_equal(bpf_map_update_elem(fd, &ids[i], &one, BPF_ANY), 0);
	n = kmaps_u64_keys(fd, &keys);
	assert_int_equal(n, 3);
	for (int i = 0; i < 3; i++) {
		bool found = false;

		for (size_t j = 0; j < n; j++)
			found |= keys[j] == ids[i];
		assert_true(found);
	}
	free(keys);
	close(fd);
}

static void test_proxies_apply_removes_the_rest(void **state)
{
	struct tg_proxy_key a = { .addr = { [15] = 1 }, .port = 3128 }, b = a, k, next;
	struct tg_kmaps km;
	uint32_t v;
	int n = 0;

	if (!can_make_maps())
		skip();
	kmaps_none(&km);
	assert_int_equal(kmaps_apply_proxies(&km, &a, 1), 0);	/* no map: nothing to do */
	km.proxies = bpf_map_create(BPF_MAP_TYPE_HASH, "t_proxies", sizeof(struct tg_proxy_key), 4,
				    TG_MAX_PROXIES, NULL);
	assert_true(km.proxies >= 0);
	b.port = 8080;
	assert_int_equal(kmaps_apply_proxies(&km, (struct tg_proxy_key[]){ a, b }, 2), 0);
	assert_int_equal(bpf_map_lookup_elem(km.proxies, &a, &v), 0);
	assert_int_equal(bpf_map_lookup_elem(km.proxies, &b, &v), 0);
	assert_int_equal(kmaps_apply_proxies(&km, &b, 1), 0);
	assert_int_not_equal(bpf_map_lookup_elem(km.proxies, &a, &v), 0);
	for (void *prev = NULL; !bpf_map_get_next_key(km.proxies, prev, &next); prev = &k, n++)
		k = next;
	assert_int_equal(n, 1);
	close(km.proxies);
}

static void test_sipkey_is_made_once_and_kept(void **state)
{
	struct tg_sipkey k1, k2;
	struct tg_kmaps km;

	if (!can_make_maps())
		skip();
	kmaps_none(&km);
	km.sipkey = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_sipkey", 4, sizeof(struct tg_sipkey), 1, NULL);
	assert_true(km.sipkey >= 0);
	assert_int_equal(kmaps_sipkey(&km, &k1), 0);
	assert_true(k1.k0 || k1.k1);
	assert_int_equal(kmaps_sipkey(&km, &k2), 0);	/* what the pins hold: the same key */
	assert_memory_equal(&k1, &k2, sizeof(k1));
	close(km.sipkey);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_percpu_sum_over_cpus_and_keys),
		cmocka_unit_test(test_u64_keys),
		cmocka_unit_test(test_proxies_apply_removes_the_rest),
		cmocka_unit_test(test_sipkey_is_made_once_and_kept),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
