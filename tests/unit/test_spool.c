// SPDX-License-Identifier: MIT
/* Encrypted on-disk spool: order, bounds, modes, tampering, restart. */
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

#include "spool.h"

static char base[64], sdir[128], k1[128], k2[128];
static char err[512];
static time_t fake_now = 1795374000;

static time_t clock_fn(void *arg)
{
	return fake_now;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static int setup(void **state)
{
	uint8_t key[32];

	strcpy(base, "/tmp/tg-spool-XXXXXX");
	if (!mkdtemp(base))
		return -1;
	snprintf(k1, sizeof(k1), "%s/k1", base);
	snprintf(k2, sizeof(k2), "%s/k2", base);
	for (int i = 0; i < 32; i++)
		key[i] = 0x80 + i;
	write_file(k1, key, 32);
	for (int i = 0; i < 32; i++)
		key[i] = 0xc0 ^ i;
	write_file(k2, key, 32);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	return system(cmd) == 0 ? 0 : -1;
}

/* A fresh spool directory (two levels deep, to exercise mkdir -p) per test. */
static int fresh(void **state)
{
	static int n;

	snprintf(sdir, sizeof(sdir), "%s/t%d/spool", base, n++);
	fake_now = 1795374000;
	return 0;
}

static struct tg_keyring *ring(const char *a, const char *b)
{
	char *paths[2] = { (char *)a, (char *)b };
	struct tg_keyring *kr = keyring_load(paths, b ? 2 : 1, err, sizeof(err));

	assert_non_null(kr);
	return kr;
}

static struct tg_spool *open_spool(const struct tg_keyring *kr, uint64_t max_bytes, uint32_t age)
{
	struct tg_spool *sp = spool_open(sdir, kr, max_bytes, age, TG_SPOOL_REQUIRE_ENCRYPTION,
					 err, sizeof(err));

	assert_non_null(sp);
	spool_set_clock(sp, clock_fn, NULL);
	return sp;
}

static void put(struct tg_spool *sp, const char *s, uint32_t items, struct tg_spool_loss *lost)
{
	assert_int_equal(spool_put(sp, s, strlen(s), items, lost), 0);
}

static void expect_oldest(struct tg_spool *sp, const char *s, uint32_t items)
{
	struct tg_spool_item it;

	assert_int_equal(spool_peek_oldest(sp, &it, NULL), 0);
	assert_int_equal(it.len, strlen(s));
	assert_memory_equal(it.data, s, it.len);
	assert_int_equal(it.items, items);
	assert_int_equal(spool_remove(sp, it.seq), 0);
	spool_item_free(&it);
}

static void file_path(uint64_t seq, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%016llx.spool", sdir, (unsigned long long)seq);
}

static void test_order_and_modes(void **state)
{
	struct tg_keyring *kr = ring(k1, NULL);
	struct tg_spool *sp = open_spool(kr, 1 << 20, 0);
	struct tg_spool_item it;
	struct tg_spool_stats st;
	struct stat sb;
	char path[256];

	assert_int_equal(stat(sdir, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);
	put(sp, "batch-1", 1, NULL);
	put(sp, "batch-2", 2, NULL);
	put(sp, "batch-3", 3, NULL);
	for (uint64_t seq = 0; seq < 3; seq++) {
		file_path(seq, path, sizeof(path));
		assert_int_equal(stat(path, &sb), 0);
		assert_int_equal(sb.st_mode & 07777, 0600);
	}
	spool_stats(sp, &st);
	assert_int_equal(st.files, 3);
	assert_int_equal(st.items, 6);
	assert_int_equal(st.bytes, 3 * (TG_SPOOL_HEADER_LEN + 7 + TG_SPOOL_TAG_LEN));
	assert_true(st.encrypted);
	assert_int_equal(st.oldest, fake_now);

	/* Peek does not consume. */
	assert_int_equal(spool_peek_oldest(sp, &it, NULL), 0);
	assert_memory_equal(it.data, "batch-1", 7);
	spool_item_free(&it);
	expect_oldest(sp, "batch-1", 1);
	expect_oldest(sp, "batch-2", 2);
	expect_oldest(sp, "batch-3", 3);
	assert_int_equal(spool_peek_oldest(sp, &it, NULL), -ENOENT);
	assert_int_equal(spool_remove(sp, 12345), -ENOENT);
	spool_stats(sp, &st);
	assert_int_equal(st.files + st.bytes + st.items, 0);
	spool_close(sp);
	keyring_free(kr);
}

static void test_no_plaintext_on_disk(void **state)
{
	static const char secret[] = "{\"workload.pod\":\"SECRET-POD-NAME-train-0\"}";
	struct tg_keyring *kr = ring(k1, NULL);
	struct tg_spool *sp = open_spool(kr, 1 << 20, 0);
	char path[256], buf[4096];
	ssize_t n;
	int fd;

	put(sp, secret, 1, NULL);
	file_path(0, path, sizeof(path));
	fd = open(path, O_RDONLY);
	n = read(fd, buf, sizeof(buf));
	close(fd);
	assert_int_equal(n, TG_SPOOL_HEADER_LEN + strlen(secret) + TG_SPOOL_TAG_LEN);
	assert_null(memmem(buf, n, "SECRET", 6));
	assert_null(memmem(buf, n, "workload", 8));
	assert_memory_equal(buf, "TGSPOOL\x01\x01", 9);
	assert_memory_equal(buf + 32, keyring_key_id(kr, 0), 8);
	expect_oldest(sp, secret, 1);
	spool_close(sp);
	keyring_free(kr);
}

static void test_restart_keeps_order(void **state)
{
	struct tg_keyring *kr = ring(k1, NULL);
	struct tg_spool *sp = open_spool(kr, 1 << 20, 0);
	struct tg_spool_stats st;
	char tmp[256];

	put(sp, "a", 1, NULL);
	put(sp, "b", 1, NULL);
	put(sp, "c", 1, NULL);
	spool_close(sp);

	/* A write cut short by a crash leaves a temporary file: removed at open. */
	snprintf(tmp, sizeof(tmp), "%s/.tmp.0000000000000009", sdir);
	write_file(tmp, "partial", 7);

	sp = open_spool(kr, 1 << 20, 0);
	assert_int_equal(access(tmp, F_OK), -1);
	spool_stats(sp, &st);
	assert_int_equal(st.files, 3);
	assert_int_equal(st.items, 3);
	expect_oldest(sp, "a", 1);
	put(sp, "d", 1, NULL);	/* after the restart: still after "c" */
	spool_close(sp);

	sp = open_spool(kr, 1 << 20, 0);
	expect_oldest(sp, "b", 1);
	expect_oldest(sp, "c", 1);
	expect_oldest(sp, "d", 1);
	spool_close(sp);
	keyring_free(kr);
}

static void test_eviction_counts(void **state)
{
	const uint64_t file = TG_SPOOL_HEADER_LEN + 100 + TG_SPOOL_TAG_LEN;
	struct tg_keyring *kr = ring(k1, NULL);
	struct tg_spool *sp = open_spool(kr, 3 * file, 0);
	struct tg_spool_loss lost = { 0 };
	struct tg_spool_stats st;
	char data[101], big[600];

	for (int i = 0; i < 5; i++) {
		memset(data, 'a' + i, 100);
		data[100] = '\0';
		put(sp, data, 10 + i, &lost);
	}
	/* Room for three: the two oldest (10 + 11 items) were evicted. */
	assert_int_equal(lost.files, 2);
	assert_int_equal(lost.items, 21);
	assert_int_equal(lost.bytes, 2 * file);
	spool_stats(sp, &st);
	assert_int_equal(st.files, 3);
	assert_int_equal(st.bytes, 3 * file);
	assert_int_equal(st.evicted.files, 2);
	assert_int_equal(st.evicted.items, 21);
	assert_int_equal(st.written, 5);

	/* A batch bigger than the whole spool is refused, nothing evicted. */
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(spool_put(sp, big, strlen(big), 1, &lost), -E2BIG);
	assert_int_equal(lost.files, 2);

	memset(data, 'c', 100);
	expect_oldest(sp, data, 12);
	spool_close(sp);
	keyring_free(kr);
}

static void test_expiry(void **state)
{
	struct tg_keyring *kr = ring(k1, NULL);
	struct tg_spool *sp = open_spool(kr, 1 << 20, 3600);
	struct tg_spool_loss lost = { 0 };
	struct tg_spool_item it;
	struct tg_spool_stats st;

	put(sp, "old", 4, &lost);
	fake_now += 1800;
	put(sp, "newer", 5, &lost);
	fake_now += 1800;	/* "old" is now exactly max_age old */
	assert_int_equal(spool_peek_oldest(sp, &it, &lost), 0);
	assert_memory_equal(it.data, "newer", 5);
	spool_item_free(&it);
	assert_int_equal(lost.files, 1);
	assert_int_equal(lost.items, 4);
	spool_stats(sp, &st);
	assert_int_equal(st.expired.files, 1);
	fake_now += 7200;
	assert_int_equal(spool_expire(sp, &lost), 1);
	assert_int_equal(lost.items, 9);
	spool_close(sp);

	/* Age is kept across restarts (from the authenticated header). */
	sp = open_spool(kr, 1 << 20, 3600);
	put(sp, "x", 1, NULL);
	spool_close(sp);
	fake_now += 4000;
	sp = open_spool(kr, 1 << 20, 3600);
	assert_int_equal(spool_peek_oldest(sp, &it, NULL), -ENOENT);
	spool_close(sp);
	keyring_free(kr);
}

static void flip_byte(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t b;

	if (off < 0)
		off += lseek(fd, 0, SEEK_END);
	assert_int_equal(pread(fd, &b, 1, off), 1);
	b ^= 0x40;
	assert_int_equal(pwrite(fd, &b, 1, off), 1);
	close(fd);
}

static void test_tamper_detected(void **state)
{
	const off_t offsets[] = { 12, 24, 45, TG_SPOOL_HEADER_LEN + 1, -1 };
	struct tg_keyring *kr = ring(k1, NULL);
	struct tg_spool *sp = open_spool(kr, 1 << 20, 0);
	struct tg_spool_item it;
	char path[256], other[256];

	for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
		put(sp, "payload", 1, NULL);
		file_path(i, path, sizeof(path));
		flip_byte(path, offsets[i]);	/* items, time, nonce, ciphertext, tag */
		assert_int_equal(spool_peek_oldest(sp, &it, NULL), -EBADMSG);
		assert_int_equal(it.seq, i);
		assert_null(it.data);
		assert_int_equal(spool_remove(sp, it.seq), 0);
	}

	/* Renaming a file to another sequence number (reordering) is detected too. */
	put(sp, "first", 1, NULL);
	put(sp, "second", 1, NULL);
	spool_close(sp);
	file_path(5, path, sizeof(path));
	file_path(4, other, sizeof(other));
	assert_int_equal(rename(path, other), 0);
	sp = open_spool(kr, 1 << 20, 0);
	assert_int_equal(spool_peek_oldest(sp, &it, NULL), -EBADMSG);
	spool_close(sp);
	keyring_free(kr);
}

static void test_keys(void **state)
{
	struct tg_keyring *old = ring(k1, NULL), *rotated = ring(k2, k1), *other = ring(k2, NULL);
	struct tg_keyring *none = keyring_new();
	struct tg_spool *sp;
	struct tg_spool_item it;

	/* Refused without a key when encryption is required. */
	assert_null(spool_open(sdir, none, 1 << 20, 0, TG_SPOOL_REQUIRE_ENCRYPTION, err,
			       sizeof(err)));
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(err, "encryption is required"));
	assert_null(spool_open(sdir, NULL, 1 << 20, 0, TG_SPOOL_REQUIRE_ENCRYPTION, err,
			       sizeof(err)));

	sp = open_spool(old, 1 << 20, 0);
	put(sp, "under k1", 1, NULL);
	spool_close(sp);

	/* Rotation: readable with [k2, k1]; new files use k2; [k2] alone cannot read k1's. */
	sp = open_spool(rotated, 1 << 20, 0);
	put(sp, "under k2", 1, NULL);
	spool_close(sp);
	sp = open_spool(other, 1 << 20, 0);
	assert_int_equal(spool_peek_oldest(sp, &it, NULL), -ENOKEY);
	assert_int_equal(it.seq, 0);
	spool_close(sp);
	sp = open_spool(rotated, 1 << 20, 0);
	expect_oldest(sp, "under k1", 1);
	expect_oldest(sp, "under k2", 1);
	spool_close(sp);

	/* Without a key and without the requirement: integrity-checked plaintext. */
	sp = spool_open(sdir, none, 1 << 20, 0, 0, err, sizeof(err));
	assert_non_null(sp);
	put(sp, "clear", 2, NULL);
	expect_oldest(sp, "clear", 2);
	put(sp, "clear again", 3, NULL);
	spool_close(sp);

	/* Readable by a keyed spool, unless encryption is required (could be forged). */
	sp = spool_open(sdir, old, 1 << 20, 0, 0, err, sizeof(err));
	assert_non_null(sp);
	assert_int_equal(spool_peek_oldest(sp, &it, NULL), 0);
	assert_memory_equal(it.data, "clear again", 11);
	spool_item_free(&it);
	spool_close(sp);
	sp = open_spool(old, 1 << 20, 0);
	assert_int_equal(spool_peek_oldest(sp, &it, NULL), -EBADMSG);
	assert_int_equal(spool_remove(sp, it.seq), 0);
	spool_close(sp);

	keyring_free(old);
	keyring_free(rotated);
	keyring_free(other);
	keyring_free(none);
}

static void test_open_checks(void **state)
{
	struct tg_keyring *kr = ring(k1, NULL);
	struct tg_spool *sp;
	struct stat sb;
	char file[256];

	/* An existing directory with loose permissions is tightened. */
	assert_int_equal(mkdir(base, 0700) == 0 || errno == EEXIST, 1);
	snprintf(file, sizeof(file), "%s/loose", base);
	mkdir(file, 0755);
	chmod(file, 0755);
	sp = spool_open(file, kr, 1 << 20, 0, 0, err, sizeof(err));
	assert_non_null(sp);
	assert_int_equal(stat(file, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);
	spool_close(sp);

	/* A file where the directory should be. */
	snprintf(file, sizeof(file), "%s/afile", base);
	write_file(file, "x", 1);
	assert_null(spool_open(file, kr, 1 << 20, 0, 0, err, sizeof(err)));
	assert_non_null(strstr(err, file));
	assert_null(spool_open(sdir, kr, 0, 0, 0, err, sizeof(err)));
	assert_int_equal(errno, EINVAL);
	keyring_free(kr);
}

/* The names of spool files and journal segments: what is written is what is read back, only that. */
static void test_seq_names(void **state)
{
	static const char *const bad[] = {
		"000000000000002a.jnl",		/* another suffix */
		"000000000000002A.spool",	/* upper case: never written */
		"0x0000000000002a.spool",	/* strtoull would take it */
		"+000000000000002a.spool", "00000000000002a.spool", "0000000000000002a.spool",
		".tmp.000000000000002a", "000000000000002a.spool.new", "",
	};
	char name[64];
	uint64_t seq = 7;

	spool_seq_name(42, ".spool", name, sizeof(name));
	assert_string_equal(name, "000000000000002a.spool");
	assert_int_equal(spool_parse_seq_name(name, ".spool", &seq), 0);
	assert_int_equal(seq, 42);
	spool_seq_name(UINT64_MAX, ".jnl", name, sizeof(name));
	assert_string_equal(name, "ffffffffffffffff.jnl");
	assert_int_equal(spool_parse_seq_name(name, ".jnl", &seq), 0);
	assert_true(seq == UINT64_MAX);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		seq = 7;
		assert_int_equal(spool_parse_seq_name(bad[i], ".spool", &seq), -EINVAL);
		assert_int_equal(seq, 7);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_order_and_modes, fresh),
		cmocka_unit_test_setup(test_no_plaintext_on_disk, fresh),
		cmocka_unit_test_setup(test_restart_keeps_order, fresh),
		cmocka_unit_test_setup(test_eviction_counts, fresh),
		cmocka_unit_test_setup(test_expiry, fresh),
		cmocka_unit_test_setup(test_tamper_detected, fresh),
		cmocka_unit_test_setup(test_keys, fresh),
		cmocka_unit_test_setup(test_open_checks, fresh),
		cmocka_unit_test(test_seq_names),
	};

	return cmocka_run_group_tests_name("spool", tests, setup, teardown);
}
