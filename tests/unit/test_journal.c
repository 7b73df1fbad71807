// SPDX-License-Identifier: MIT
/* The App Insights journal: group commit, replay of what was not acknowledged, torn writes, bounds. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#include "journal.h"

static char base[64], jdir[128], k1[128];
static char err[512];
static time_t fake_now = 1795374000;

static time_t clock_fn(void *arg)
{
	return fake_now;
}

struct seen {
	uint64_t seq[256];
	char line[256][64];
	size_t n;
};

static int collect(void *arg, uint64_t seq, char *line, size_t len)
{
	struct seen *s = arg;

	assert_int_equal(strlen(line), len);
	if (s->n < 256) {
		s->seq[s->n] = seq;
		snprintf(s->line[s->n], sizeof(s->line[0]), "%s", line);
	}
	s->n++;
	return 0;
}

static int setup(void **state)
{
	uint8_t key[32];
	int fd;

	strcpy(base, "/tmp/tg-journal-XXXXXX");
	if (!mkdtemp(base))
		return -1;
	snprintf(k1, sizeof(k1), "%s/k1", base);
	for (int i = 0; i < 32; i++)
		key[i] = 0x90 + i;
	fd = open(k1, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, key, 32) != 32)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	return system(cmd) == 0 ? 0 : -1;
}

static int fresh(void **state)
{
	static int n;

	snprintf(jdir, sizeof(jdir), "%s/j%d", base, n++);
	fake_now = 1795374000;
	return 0;
}

static struct tg_keyring *ring(void)
{
	char *paths[1] = { k1 };
	struct tg_keyring *kr = keyring_load(paths, 1, err, sizeof(err));

	if (!kr)
		fail_msg("%s", err);
	return kr;
}

static struct tg_journal *open_j(const struct tg_keyring *kr, uint64_t max_bytes, uint32_t age,
				 const char *boot, struct seen *seen, struct tg_journal_replay *res)
{
	struct tg_journal_config c = { .dir = jdir, .kr = kr, .max_bytes = max_bytes,
				       .max_age_s = age, .now = clock_fn, .boot_id = boot };
	struct tg_journal_replay dummy;
	struct tg_journal *j;

	if (seen)
		memset(seen, 0, sizeof(*seen));
	j = journal_open(&c, collect, seen, res ? res : &dummy, err, sizeof(err));
	assert_non_null(j);
	return j;
}

/* The only segment file of the journal, for damaging it. */
static void segment_path(char *out, size_t len)
{
	DIR *d = opendir(jdir);
	struct dirent *de;

	assert_non_null(d);
	out[0] = '\0';
	while ((de = readdir(d)))
		if (strstr(de->d_name, ".jnl"))
			assert_true(snprintf(out, len, "%s/%s", jdir, de->d_name) < (int)len);
	closedir(d);
	assert_true(out[0]);
}

static off_t file_size(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static void test_replay_what_was_not_acknowledged(void **state)
{
	struct tg_keyring *kr = ring();
	struct tg_journal_replay res;
	struct tg_journal_stats st;
	struct seen seen;
	struct tg_journal *j = open_j(kr, 1 << 20, 0, "b1", &seen, &res);

	assert_int_equal(seen.n, 0);
	assert_int_equal(journal_next_seq(j), 1);
	assert_int_equal(journal_append(j, "{\"a\":1}\n{\"a\":2}", 15, 2, NULL), 0);
	assert_int_equal(journal_append(j, "{\"a\":3}", 7, 1, NULL), 0);
	assert_int_equal(journal_append(j, "{\"a\":4}\n{\"a\":5}\n{\"a\":6}", 23, 3, NULL), 0);
	assert_int_equal(journal_next_seq(j), 7);
	/* group commit: one record and one fdatasync per append, however many items */
	journal_stats(j, &st);
	assert_int_equal(st.records_written, 3);
	assert_int_equal(st.syncs, 3);
	assert_int_equal(st.items_written, 6);
	journal_close(j);	/* as if killed: nothing acknowledged */

	j = open_j(kr, 1 << 20, 0, "b1", &seen, &res);
	assert_int_equal(res.items, 6);
	assert_int_equal(res.records, 3);
	assert_int_equal(seen.n, 6);
	for (size_t i = 0; i < 6; i++) {
		char want[16];

		snprintf(want, sizeof(want), "{\"a\":%zu}", i + 1);
		assert_int_equal(seen.seq[i], i + 1);
		assert_string_equal(seen.line[i], want);
	}
	assert_int_equal(journal_next_seq(j), 7);	/* sequences continue, never repeat */
	assert_int_equal(journal_ack(j, 3), 0);
	journal_close(j);

	j = open_j(kr, 1 << 20, 0, "b1", &seen, &res);
	assert_int_equal(res.items, 3);
	assert_int_equal(res.skipped, 3);
	assert_int_equal(seen.seq[0], 4);
	assert_string_equal(seen.line[2], "{\"a\":6}");
	assert_int_equal(journal_ack(j, 6), 0);
	journal_close(j);

	j = open_j(kr, 1 << 20, 0, "b1", &seen, &res);
	assert_int_equal(seen.n, 0);
	assert_int_equal(res.torn_items + res.corrupt_items + res.expired_items, 0);
	journal_close(j);
	keyring_free(kr);
}

static void test_no_plaintext_and_encryption_required(void **state)
{
	struct tg_journal_config c = { .dir = jdir, .max_bytes = 1 << 20,
				       .flags = TG_SPOOL_REQUIRE_ENCRYPTION };
	struct tg_keyring *kr = ring();
	struct tg_journal_replay res;
	struct tg_journal *j;
	char path[256], buf[4096];
	ssize_t n;
	int fd;

	/* encryption required and no key: refused, as the spool does */
	assert_null(journal_open(&c, collect, NULL, &res, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	j = open_j(kr, 1 << 20, 0, "b1", NULL, NULL);
	assert_int_equal(journal_append(j, "{\"pod\":\"secret-pod-name\"}", 25, 1, NULL), 0);
	journal_close(j);
	segment_path(path, sizeof(path));
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_true(n > 0);
	assert_null(memmem(buf, n, "secret-pod-name", 15));
	keyring_free(kr);
}

static void test_torn_tail_counted_once(void **state)
{
	struct tg_keyring *kr = ring();
	struct tg_journal_replay res;
	struct seen seen;
	struct tg_journal *j = open_j(kr, 1 << 20, 0, "boot-a", &seen, &res);
	char path[256];
	off_t size;

	assert_int_equal(journal_append(j, "{\"a\":1}", 7, 1, NULL), 0);
	assert_int_equal(journal_append(j, "{\"b\":1}\n{\"b\":2}\n{\"b\":3}", 23, 3, NULL), 0);
	journal_close(j);
	segment_path(path, sizeof(path));
	size = file_size(path);
	/* the second write was cut short by the crash: its header survives */
	assert_int_equal(truncate(path, size - 10), 0);

	j = open_j(kr, 1 << 20, 0, "boot-b", &seen, &res);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.line[0], "{\"a\":1}");
	assert_int_equal(res.torn_items, 3);
	assert_true(res.torn_bytes > 0);
	assert_false(res.torn_same_boot);	/* another boot: the ring buffer is gone */
	journal_close(j);

	/* cut off: the next start does not count it again */
	j = open_j(kr, 1 << 20, 0, "boot-b", &seen, &res);
	assert_int_equal(res.torn_items, 0);
	assert_int_equal(res.torn_bytes, 0);
	assert_int_equal(seen.n, 1);
	assert_int_equal(journal_append(j, "{\"c\":1}", 7, 1, NULL), 0);
	journal_close(j);
	keyring_free(kr);
}

static void test_torn_prefix_and_same_boot(void **state)
{
	struct tg_keyring *kr = ring();
	struct tg_journal_replay res;
	struct seen seen;
	struct tg_journal *j = open_j(kr, 1 << 20, 0, "boot-a", &seen, &res);
	char path[256];
	int fd;

	assert_int_equal(journal_append(j, "{\"a\":1}", 7, 1, NULL), 0);
	journal_close(j);
	segment_path(path, sizeof(path));
	fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "\0\0", 2), 2);	/* half a length prefix */
	close(fd);
	j = open_j(kr, 1 << 20, 0, "boot-a", &seen, &res);
	assert_int_equal(seen.n, 1);
	assert_int_equal(res.torn_items, 0);
	assert_int_equal(res.torn_bytes, 2);	/* how many it held cannot be read: bytes say it */
	assert_true(res.torn_same_boot);	/* the same boot: the kernel ring still held them */
	journal_close(j);
	keyring_free(kr);
}

static void test_tampered_record_skipped_and_counted(void **state)
{
	struct tg_keyring *kr = ring();
	struct tg_journal_replay res;
	struct seen seen;
	struct tg_journal *j = open_j(kr, 1 << 20, 0, "b", &seen, &res);
	char path[256], c;
	int fd;

	assert_int_equal(journal_append(j, "{\"a\":1}\n{\"a\":2}", 15, 2, NULL), 0);
	assert_int_equal(journal_append(j, "{\"b\":1}", 7, 1, NULL), 0);
	journal_close(j);
	segment_path(path, sizeof(path));
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	/* flip a ciphertext byte of the first record */
	assert_int_equal(pread(fd, &c, 1, 4 + TG_SPOOL_HEADER_LEN + 2), 1);
	c ^= 1;
	assert_int_equal(pwrite(fd, &c, 1, 4 + TG_SPOOL_HEADER_LEN + 2), 1);
	close(fd);
	j = open_j(kr, 1 << 20, 0, "b", &seen, &res);
	assert_int_equal(res.corrupt_items, 2);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.line[0], "{\"b\":1}");
	assert_int_equal(seen.seq[0], 3);
	journal_close(j);
	keyring_free(kr);
}

static void test_bounds_evict_and_ack_deletes(void **state)
{
	struct tg_keyring *kr = ring();
	struct tg_spool_loss lost = { 0 };
	struct tg_journal_stats st;
	struct tg_journal_replay res;
	char line[1024];
	struct tg_journal *j = open_j(kr, 64 << 10, 0, "b", NULL, NULL);

	memset(line, 'x', sizeof(line));
	memcpy(line, "{\"x\":\"", 6);
	memcpy(line + sizeof(line) - 2, "\"}", 2);
	/* 200 KiB of unacknowledged items through a 64 KiB journal */
	for (int i = 0; i < 200; i++)
		assert_int_equal(journal_append(j, line, sizeof(line), 1, &lost), 0);
	journal_stats(j, &st);
	assert_true(lost.items > 0);
	assert_int_equal(st.evicted.items, lost.items);
	assert_true(st.bytes <= (64 << 10) + (16 << 10));	/* the bound, plus the open segment */
	assert_true(st.segments >= 2);
	/* everything settled: the closed segments go */
	assert_int_equal(journal_ack(j, journal_next_seq(j) - 1), 0);
	journal_stats(j, &st);
	assert_int_equal(st.segments, 1);
	journal_close(j);
	j = open_j(kr, 64 << 10, 0, "b", NULL, &res);
	assert_int_equal(res.items, 0);
	journal_close(j);
	keyring_free(kr);
}

static void test_expired_not_replayed(void **state)
{
	struct tg_keyring *kr = ring();
	struct tg_journal_replay res;
	struct seen seen;
	struct tg_journal *j = open_j(kr, 1 << 20, 3600, "b", &seen, &res);

	assert_int_equal(journal_append(j, "{\"old\":1}", 9, 1, NULL), 0);
	fake_now += 1800;
	assert_int_equal(journal_append(j, "{\"new\":1}", 9, 1, NULL), 0);
	journal_close(j);
	fake_now += 1900;	/* the first is past max_age, the second is not */
	j = open_j(kr, 1 << 20, 3600, "b", &seen, &res);
	assert_int_equal(res.expired_items, 1);
	assert_int_equal(seen.n, 1);
	assert_string_equal(seen.line[0], "{\"new\":1}");
	journal_close(j);
	keyring_free(kr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_replay_what_was_not_acknowledged, fresh),
		cmocka_unit_test_setup(test_no_plaintext_and_encryption_required, fresh),
		cmocka_unit_test_setup(test_torn_tail_counted_once, fresh),
		cmocka_unit_test_setup(test_torn_prefix_and_same_boot, fresh),
		cmocka_unit_test_setup(test_tampered_record_skipped_and_counted, fresh),
		cmocka_unit_test_setup(test_bounds_evict_and_ack_deletes, fresh),
		cmocka_unit_test_setup(test_expired_not_replayed, fresh),
	};

	return cmocka_run_group_tests_name("journal", tests, setup, teardown);
}
