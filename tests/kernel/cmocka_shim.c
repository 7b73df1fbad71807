// SPDX-License-Identifier: MIT
/* The cmocka subset of cmocka.h beside this file; see there why. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmocka.h"

struct kshim_result kshim_last;

static jmp_buf case_env;
static int in_case;

static void __attribute__((noreturn)) case_failed(void)
{
	if (!in_case) {
		/* an assertion in a group fixture: nothing to return to */
		fprintf(stderr, "[  ERROR   ] assertion outside a test case\n");
		exit(1);
	}
	longjmp(case_env, 1);
}

void kshim_int_equal(uintmax_t a, uintmax_t b, int want_equal, const char *ea, const char *eb,
		     const char *file, int line)
{
	if ((a == b) == want_equal)
		return;
	fprintf(stderr, "%s:%d: error: %s %s %s: %#" PRIxMAX " %s %#" PRIxMAX "\n", file, line, ea,
		want_equal ? "==" : "!=", eb, a, want_equal ? "!=" : "==", b);
	case_failed();
}

void kshim_string_equal(const char *a, const char *b, const char *ea, const char *eb,
			const char *file, int line)
{
	if (a && b && !strcmp(a, b))
		return;
	fprintf(stderr, "%s:%d: error: %s == %s: \"%s\" != \"%s\"\n", file, line, ea, eb,
		a ? a : "(null)", b ? b : "(null)");
	case_failed();
}

void kshim_memory_equal(const void *a, const void *b, size_t len, const char *ea, const char *eb,
			const char *file, int line)
{
	const unsigned char *pa = a, *pb = b;

	if (!memcmp(a, b, len))
		return;
	for (size_t i = 0; i < len; i++) {
		if (pa[i] != pb[i]) {
			fprintf(stderr, "%s:%d: error: %s == %s (%zu bytes): differ at %zu: "
				"%#x != %#x\n", file, line, ea, eb, len, i, pa[i], pb[i]);
			break;
		}
	}
	case_failed();
}

void kshim_true(uintmax_t v, const char *expr, const char *file, int line)
{
	if (v)
		return;
	fprintf(stderr, "%s:%d: error: %s is false\n", file, line, expr);
	case_failed();
}

void kshim_fail(const char *file, int line)
{
	fprintf(stderr, "%s:%d: error: fail()\n", file, line);
	case_failed();
}

int kshim_run_group(const char *name, const struct CMUnitTest *tests, size_t n,
		    CMFixtureFunction setup, CMFixtureFunction teardown)
{
	void *group_state = NULL;
	volatile unsigned int failed = 0;

	memset(&kshim_last, 0, sizeof(kshim_last));
	kshim_last.total = n;
	printf("[==========] %s: Running %zu test(s).\n", name, n);
	fflush(stdout);
	if (setup && setup(&group_state)) {
		printf("[  ERROR   ] %s: GROUP SETUP\n", name);
		printf("[  FAILED  ] %zu test(s)\n", n);
		kshim_last.failed = n;
		return (int)n;
	}
	for (size_t i = 0; i < n; i++) {
		void *state = tests[i].initial_state ? tests[i].initial_state : group_state;
		volatile int ok = 0;

		printf("[ RUN      ] %s\n", tests[i].name);
		fflush(stdout);
		in_case = 1;
		if (!setjmp(case_env)) {
			if (!tests[i].setup_func || !tests[i].setup_func(&state)) {
				tests[i].test_func(&state);
				ok = 1;
			}
			if (tests[i].teardown_func && tests[i].teardown_func(&state))
				ok = 0;
		}
		in_case = 0;
		fflush(stderr);
		if (ok) {
			printf("[       OK ] %s\n", tests[i].name);
		} else {
			printf("[  FAILED  ] %s\n", tests[i].name);
			failed++;
		}
		fflush(stdout);
	}
	if (teardown)
		teardown(&group_state);
	kshim_last.failed = failed;
	kshim_last.passed = n - failed;
	printf("[==========] %s: %zu test(s) run.\n", name, n);
	printf("[  PASSED  ] %u test(s).\n", kshim_last.passed);
	if (failed)
		printf("[  FAILED  ] %u test(s)\n", failed);
	fflush(stdout);
	return (int)failed;
}
