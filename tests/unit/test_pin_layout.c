// SPDX-License-Identifier: MIT
/*
 * The pinned maps are the pin layout: an agent adopts the pins of a previous
 * agent of the same TG_PIN_LAYOUT_VERSION (and the dns object's of the same
 * TG_DNS_PIN_LAYOUT_VERSION), and the kernel refuses a pinned map whose type,
 * key, value, size or flags differ from the new object's, so such a change
 * without a new layout version leaves the upgraded agent unable to start.
 * This test describes every pinned map of both objects (and the members of
 * a struct value, so a field added at the same size shows too) and compares
 * the description with the one recorded for the layout version in
 * tests/unit/data/pin_layout/. A change there means: bump the version
 * (include/tlsguard/config.h, include/tlsguard/dns.h) and record the new
 * description with TG_PIN_LAYOUT_WRITE=1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <cmocka.h>

#include "dnslearn.h"
#include "loader.h"
#include "tlsguard/config.h"
#include "tlsguard/dns.h"
#include "dns.skel.h"
#include "tlsguard.skel.h"

#define LAYOUT_DIR TG_TEST_DATA "/pin_layout/"

/* The members of a struct or union value: name, bit offset, size. */
static void describe_members(const struct btf *btf, __u32 type_id, FILE *out)
{
	const struct btf_type *t = btf__type_by_id(btf, btf__resolve_type(btf, type_id));
	const struct btf_member *m;

	if (!t || !(btf_is_struct(t) || btf_is_union(t)))
		return;
	m = btf_members(t);
	for (__u16 i = 0; i < btf_vlen(t); i++, m++)
		fprintf(out, "  %s @%u size %lld\n", btf__name_by_offset(btf, m->name_off),
			btf_member_bit_offset(t, i), (long long)btf__resolve_size(btf, m->type));
}

static void describe_map(struct bpf_object *obj, const char *name, FILE *out)
{
	const struct bpf_map *m = bpf_object__find_map_by_name(obj, name);

	if (!m)
		fail_msg("pinned map %s is not in the object", name);
	fprintf(out, "%s type %d key %u value %u max_entries %u flags %u\n", name, bpf_map__type(m),
		bpf_map__key_size(m), bpf_map__value_size(m), bpf_map__max_entries(m),
		bpf_map__map_flags(m));
	if (bpf_map__btf_value_type_id(m))
		describe_members(bpf_object__btf(obj), bpf_map__btf_value_type_id(m), out);
}

static char *describe(struct bpf_object *obj, const char *const *names, size_t n)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	assert_non_null(out);
	for (size_t i = 0; i < n; i++)
		describe_map(obj, names[i], out);
	fclose(out);
	return text;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text;
	long len;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)len + 1);
	assert_non_null(text);
	assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	return text;
}

/* @have against the file recorded for @object's layout @version (written with TG_PIN_LAYOUT_WRITE=1). */
static void check_recorded(const char *object, unsigned int version, const char *have)
{
	const char *write = getenv("TG_PIN_LAYOUT_WRITE");
	char path[512], *want;

	snprintf(path, sizeof(path), LAYOUT_DIR "%s-v%u.txt", object, version);
	if (write && !strcmp(write, "1")) {
		FILE *f = fopen(path, "w");

		assert_non_null(f);
		fputs(have, f);
		fclose(f);
		return;
	}
	want = read_text(path);
	if (!want)
		fail_msg("no recorded pin layout %s: a new layout version? record it with "
			 "TG_PIN_LAYOUT_WRITE=1 build/san/unit/test_pin_layout", path);
	if (strcmp(want, have)) {
		fprintf(stderr, "--- recorded (%s)\n%s--- this build\n%s", path, want, have);
		fail_msg("the %s object's pinned maps changed without a new layout version: bump "
			 "it and record the new description (TG_PIN_LAYOUT_WRITE=1)", object);
	}
	free(want);
}

/*
 * @obj's pinned maps (@names) against the description recorded for @object's
 * layout @version; @must_have (NULL-terminated): maps the description has to
 * show, so that an empty one cannot pass.
 */
static void check_object(struct bpf_object *obj, const char *const *names, size_t n,
			 const char *object, unsigned int version, const char *const *must_have)
{
	char *have = describe(obj, names, n);

	for (; *must_have; must_have++)
		assert_non_null(strstr(have, *must_have));
	check_recorded(object, version, have);
	free(have);
}

static void test_verdict_object_layout(void **state)
{
	struct tlsguard_bpf *skel = tlsguard_bpf__open();
	size_t n;
	const char *const *names = loader_pinned_maps(&n);
	const char *const must_have[] = { "tg_flows type ", "tg_counters type ", NULL };

	assert_non_null(skel);
	check_object(skel->obj, names, n, "tlsguard", TG_PIN_LAYOUT_VERSION, must_have);
	tlsguard_bpf__destroy(skel);
}

static void test_dns_object_layout(void **state)
{
	struct dns_bpf *skel = dns_bpf__open();
	size_t n;
	const char *const *names = dnslearn_pinned_maps(&n);
	const char *const must_have[] = { "tg_dns_learned type ", NULL };

	assert_non_null(skel);
	check_object(skel->obj, names, n, "dns", TG_DNS_PIN_LAYOUT_VERSION, must_have);
	dns_bpf__destroy(skel);
}

/* A changed map is seen: the same description with one size changed differs. */
static void test_change_is_seen(void **state)
{
	struct tlsguard_bpf *skel = tlsguard_bpf__open();
	const char *name = "tg_counters";
	char *before, *after;

	assert_non_null(skel);
	before = describe(skel->obj, &name, 1);
	bpf_map__set_max_entries(skel->maps.tg_counters, bpf_map__max_entries(skel->maps.tg_counters) + 3);
	after = describe(skel->obj, &name, 1);
	assert_string_not_equal(before, after);
	free(before);
	free(after);
	tlsguard_bpf__destroy(skel);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verdict_object_layout),
		cmocka_unit_test(test_dns_object_layout),
		cmocka_unit_test(test_change_is_seen),
	};

	libbpf_set_print(NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
