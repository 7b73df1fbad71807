/* SPDX-License-Identifier: MIT */
/*
 * The part of cmocka's API that tests/bpf/ uses, for the kernel-matrix guest
 * binary: Debian ships cmocka only as a shared library and the guest binary
 * is linked statically. Same semantics: assertions compare as the largest
 * unsigned integer type, a failed assertion ends the test case (longjmp) and
 * the group runs setup once, every case, teardown once. Output has cmocka's
 * "[  PASSED  ]" / "[  FAILED  ]" lines so tests/run-suite.sh can read it.
 * Found before the real <cmocka.h> because tests/kernel is first on -I.
 */
#ifndef TLSGUARD_KERNEL_CMOCKA_SHIM_H
#define TLSGUARD_KERNEL_CMOCKA_SHIM_H

#include <stddef.h>
#include <stdint.h>

typedef void (*CMUnitTestFunction)(void **state);
typedef int (*CMFixtureFunction)(void **state);

struct CMUnitTest {
	const char *name;
	CMUnitTestFunction test_func;
	CMFixtureFunction setup_func;
	CMFixtureFunction teardown_func;
	void *initial_state;
};

/* What the last group run counted, for callers that summarise. */
struct kshim_result {
	unsigned int total;
	unsigned int passed;
	unsigned int failed;
};
extern struct kshim_result kshim_last;

#define cmocka_unit_test(f) { #f, f, NULL, NULL, NULL }
#define cmocka_unit_test_teardown(f, t) { #f, f, NULL, t, NULL }

#define cmocka_run_group_tests_name(name, tests, setup, teardown) \
	kshim_run_group(name, tests, sizeof(tests) / sizeof((tests)[0]), setup, teardown)
#define cmocka_run_group_tests(tests, setup, teardown) \
	cmocka_run_group_tests_name(#tests, tests, setup, teardown)

int kshim_run_group(const char *name, const struct CMUnitTest *tests, size_t n,
		    CMFixtureFunction setup, CMFixtureFunction teardown);

void kshim_int_equal(uintmax_t a, uintmax_t b, int want_equal, const char *ea, const char *eb,
		     const char *file, int line);
void kshim_string_equal(const char *a, const char *b, const char *ea, const char *eb,
			const char *file, int line);
void kshim_memory_equal(const void *a, const void *b, size_t len, const char *ea, const char *eb,
			const char *file, int line);
void kshim_true(uintmax_t v, const char *expr, const char *file, int line);
void kshim_fail(const char *file, int line);

#define assert_int_equal(a, b) \
	kshim_int_equal((uintmax_t)(a), (uintmax_t)(b), 1, #a, #b, __FILE__, __LINE__)
#define assert_int_not_equal(a, b) \
	kshim_int_equal((uintmax_t)(a), (uintmax_t)(b), 0, #a, #b, __FILE__, __LINE__)
#define assert_string_equal(a, b) kshim_string_equal((a), (b), #a, #b, __FILE__, __LINE__)
#define assert_memory_equal(a, b, len) \
	kshim_memory_equal((a), (b), (len), #a, #b, __FILE__, __LINE__)
#define assert_true(c) kshim_true((uintmax_t)!!(c), #c, __FILE__, __LINE__)
#define assert_false(c) kshim_true((uintmax_t)!(c), "!(" #c ")", __FILE__, __LINE__)
#define assert_non_null(p) kshim_true((uintmax_t)((p) != NULL), #p " != NULL", __FILE__, __LINE__)
#define assert_null(p) kshim_true((uintmax_t)((p) == NULL), #p " == NULL", __FILE__, __LINE__)
#define fail() kshim_fail(__FILE__, __LINE__)
#define fail_msg(...) \
	do { fprintf(stderr, __VA_ARGS__); fprintf(stderr, "\n"); kshim_fail(__FILE__, __LINE__); } while (0)
/* kmatrix runs everything it can: a case that would skip fails instead */
#define skip() kshim_fail(__FILE__, __LINE__)

#endif /* TLSGUARD_KERNEL_CMOCKA_SHIM_H */
