// SPDX-License-Identifier: MIT
/* cgroup_walk(): what it visits, in which order, with the caller's pointer. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup.h"

struct seen {
	char root[PATH_MAX];
	char paths[16][PATH_MAX];
	size_t n;
	size_t stop_after;		/* 0: never stop */
};

static int record(const char *path, const struct stat *st, void *arg)
{
	struct seen *s = arg;

	assert_true(S_ISDIR(st->st_mode));
	assert_true(s->n < 16);
	snprintf(s->paths[s->n++], PATH_MAX, "%s", path + strlen(s->root));
	return s->stop_after && s->n == s->stop_after ? 7 : 0;
}

static ssize_t index_of(const struct seen *s, const char *rel)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->paths[i], rel))
			return (ssize_t)i;
	return -1;
}

/* root/{a/{b}, c, file, link -> a}: a tree of plain directories stands in for cgroupfs. */
static void make_tree(struct seen *s)
{
	char p[PATH_MAX + 32];
	FILE *f;

	snprintf(s->root, sizeof(s->root), "/tmp/tg-unit-cgwalk.XXXXXX");
	assert_non_null(mkdtemp(s->root));
	snprintf(p, sizeof(p), "%s/a", s->root);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/a/b", s->root);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/c", s->root);
	assert_int_equal(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s/file", s->root);
	f = fopen(p, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(p, sizeof(p), "%s/link", s->root);
	assert_int_equal(symlink("a", p), 0);
}

static void remove_tree(struct seen *s)
{
	const char *names[] = { "link", "file", "c", "a/b", "a" };
	char p[PATH_MAX + 32];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", s->root, names[i]);
		assert_int_equal(remove(p), 0);
	}
	assert_int_equal(rmdir(s->root), 0);
}

static void test_walk_visits_directories_parents_first(void **state)
{
	struct seen s = { 0 };

	make_tree(&s);
	assert_int_equal(cgroup_walk(s.root, record, &s), 0);
	assert_int_equal(s.n, 4);	/* the root, a, a/b, c: no file, no symbolic link */
	assert_int_equal(index_of(&s, ""), 0);
	assert_true(index_of(&s, "/a") >= 0);
	assert_true(index_of(&s, "/a/b") > index_of(&s, "/a"));
	assert_true(index_of(&s, "/c") > 0);
	assert_int_equal(index_of(&s, "/link"), -1);
	assert_int_equal(index_of(&s, "/file"), -1);
	remove_tree(&s);
}

static void test_walk_stops_when_told(void **state)
{
	struct seen s = { .stop_after = 2 };

	make_tree(&s);
	assert_int_equal(cgroup_walk(s.root, record, &s), 7);
	assert_int_equal(s.n, 2);
	remove_tree(&s);
}

static void test_walk_of_a_missing_root(void **state)
{
	struct seen s = { 0 };

	assert_int_equal(cgroup_walk("/tmp/tg-unit-cgwalk-no-such", record, &s), -ENOENT);
	assert_int_equal(s.n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk_visits_directories_parents_first),
		cmocka_unit_test(test_walk_stops_when_told),
		cmocka_unit_test(test_walk_of_a_missing_root),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
