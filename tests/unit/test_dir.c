// SPDX-License-Identifier: MIT
/* tg_dir_each(): every entry but "." and "..", a stop at the first nonzero return, -errno for no directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dir.h"

struct seen {
	int n, files, dirs, hidden;
	int stop_at;	/* return 7 at this entry (1-based), 0: never */
};

static int count_entry(const char *name, unsigned char type, void *arg)
{
	struct seen *s = arg;

	assert_true(strcmp(name, ".") && strcmp(name, ".."));
	s->n++;
	s->files += type == DT_REG;
	s->dirs += type == DT_DIR;
	s->hidden += tg_dir_hidden(name);
	return s->n == s->stop_at ? 7 : 0;
}

static int make_tree(void **state)
{
	char *dir = strdup("/tmp/tg-test-dir.XXXXXX"), path[256];
	static const char *const files[] = { "a", "b", ".hidden" };

	if (!dir || !mkdtemp(dir))
		return -1;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		int fd = open(path, O_CREAT | O_WRONLY, 0600);

		if (fd < 0)
			return -1;
		close(fd);
	}
	snprintf(path, sizeof(path), "%s/sub", dir);
	if (mkdir(path, 0700))
		return -1;
	*state = dir;
	return 0;
}

static int remove_tree(void **state)
{
	char cmd[300];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", (char *)*state);
	free(*state);
	return system(cmd) ? -1 : 0;
}

static void test_every_entry(void **state)
{
	struct seen s = { 0 };

	assert_int_equal(tg_dir_each(*state, count_entry, &s), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.hidden, 1);
	/* tmpfs and ext4 fill in d_type; DT_UNKNOWN would leave both at 0 */
	assert_true(s.files + s.dirs == 4 || s.files + s.dirs == 0);
}

static void test_stops_at_nonzero(void **state)
{
	struct seen s = { .stop_at = 2 };

	assert_int_equal(tg_dir_each(*state, count_entry, &s), 7);
	assert_int_equal(s.n, 2);
}

static void test_no_directory(void **state)
{
	struct seen s = { 0 };
	char path[256];

	snprintf(path, sizeof(path), "%s/missing", (char *)*state);
	assert_int_equal(tg_dir_each(path, count_entry, &s), -ENOENT);
	snprintf(path, sizeof(path), "%s/a", (char *)*state);
	assert_int_equal(tg_dir_each(path, count_entry, &s), -ENOTDIR);
	assert_int_equal(s.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_every_entry, make_tree, remove_tree),
		cmocka_unit_test_setup_teardown(test_stops_at_nonzero, make_tree, remove_tree),
		cmocka_unit_test_setup_teardown(test_no_directory, make_tree, remove_tree),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
