// SPDX-License-Identifier: MIT
/* lib/bytes.h: whole reads (from the current offset or at one) and bounded text. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bytes.h"

/* A pipe hands over what was written in pieces: the read goes on to @len or the end. */
static void test_read_full_pipe(void **state)
{
	char buf[16] = "";
	size_t got = 99;
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "abc", 3), 3);
	assert_int_equal(write(p[1], "defgh", 5), 5);
	assert_int_equal(tg_read_full(p[0], buf, 4, -1, &got), 0);
	assert_int_equal(got, 4);
	assert_memory_equal(buf, "abcd", 4);
	close(p[1]);
	assert_int_equal(tg_read_full(p[0], buf, sizeof(buf), -1, &got), 0);
	assert_int_equal(got, 4);		/* the end came first */
	assert_memory_equal(buf, "efgh", 4);
	assert_int_equal(tg_read_full(p[0], buf, sizeof(buf), -1, &got), 0);
	assert_int_equal(got, 0);
	close(p[0]);
	assert_int_equal(tg_read_full(p[0], buf, sizeof(buf), -1, &got), -EBADF);
	assert_int_equal(got, 0);
}

/* At an offset: pread, the file offset stays where it was. */
static void test_read_full_at(void **state)
{
	char path[] = "/tmp/tg-test-bytes-XXXXXX", buf[8];
	size_t got;
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(tg_write_all(fd, "0123456789", 10), 0);
	assert_int_equal(tg_read_full(fd, buf, 4, 3, &got), 0);
	assert_int_equal(got, 4);
	assert_memory_equal(buf, "3456", 4);
	assert_int_equal(tg_read_full(fd, buf, sizeof(buf), 7, &got), 0);
	assert_int_equal(got, 3);
	assert_memory_equal(buf, "789", 3);
	assert_int_equal(lseek(fd, 0, SEEK_CUR), 10);
	assert_int_equal(tg_read_full(fd, buf, sizeof(buf), -1, &got), 0);
	assert_int_equal(got, 0);		/* the current offset is the end */
	close(fd);
}

/* Text grows up to its bound, stays NUL-terminated, and is left as it was past it. */
static void test_text_append(void **state)
{
	char *p = NULL;
	size_t len = 0;

	assert_int_equal(tg_text_append(&p, &len, 8, "abc", 3), 0);
	assert_string_equal(p, "abc");
	assert_int_equal(tg_text_append(&p, &len, 8, "", 0), 0);
	assert_int_equal(tg_text_append(&p, &len, 8, "defgh", 5), 0);	/* exactly the bound */
	assert_string_equal(p, "abcdefgh");
	assert_int_equal(len, 8);
	assert_int_equal(tg_text_append(&p, &len, 8, "i", 1), -E2BIG);
	assert_string_equal(p, "abcdefgh");
	assert_int_equal(len, 8);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_full_pipe),
		cmocka_unit_test(test_read_full_at),
		cmocka_unit_test(test_text_append),
	};

	return cmocka_run_group_tests_name("bytes", tests, NULL, NULL);
}
