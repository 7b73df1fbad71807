// SPDX-License-Identifier: MIT
/* tg_log(): each level's prefix on the one line, debug only with tg_verbose. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"

/* What the calls between start and end wrote to stderr. */
static int saved = -1;
static char path[] = "/tmp/tg-log-out-XXXXXX";

static void stderr_start(void)
{
	int tmp = mkstemp(path);

	assert_true(tmp >= 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(tmp, STDERR_FILENO);
	close(tmp);
}

static char *stderr_end(void)
{
	char *buf = NULL;
	size_t cap = 0;
	FILE *f;

	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	f = fopen(path, "r");
	assert_non_null(f);
	if (getdelim(&buf, &cap, '\0', f) < 0) {
		free(buf);
		buf = strdup("");
	}
	fclose(f);
	unlink(path);
	strcpy(path, "/tmp/tg-log-out-XXXXXX");
	return buf;
}

static void test_levels(void **state)
{
	char *out;

	tg_verbose = false;
	stderr_start();
	tg_err("e %d", 1);
	tg_warn("w %s", "two");
	tg_info("i");
	tg_debug("not shown");
	out = stderr_end();
	assert_string_equal(out, "tlsguard: e 1\n"
			    "tlsguard: warning: w two\n"
			    "tlsguard: i\n");
	free(out);
}

static void test_debug_when_verbose(void **state)
{
	char *out;

	tg_verbose = true;
	stderr_start();
	tg_debug("d %u", 3u);
	tg_log(TG_LOG_ERR, "e");
	out = stderr_end();
	tg_verbose = false;
	assert_string_equal(out, "tlsguard: debug: d 3\ntlsguard: e\n");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels),
		cmocka_unit_test(test_debug_when_verbose),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
