// SPDX-License-Identifier: MIT
/* The durable journal of the App Insights sink: format and guarantees in journal.h. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "journal.h"
#include "bytes.h"
#include "log.h"

#define SUFFIX		".jnl"
#define NAME_LEN	(16 + sizeof(SUFFIX) - 1)
#define ACK_FILE	"ack"
#define BOOT_FILE	"boot"
#define PREFIX_LEN	4
#define BLOB_MIN	(TG_SPOOL_HEADER_LEN + TG_SPOOL_TAG_LEN)
#define BLOB_MAX	(TG_SPOOL_HEADER_LEN + TG_SPOOL_MAX_BATCH + TG_SPOOL_TAG_LEN)
#define ROTATE_ACKED	(64u << 10)	/* a settled segment this big is closed, to be deleted */
#define BOOT_LEN	64

struct seg {
	uint64_t first;		/* sequence of its first item */
	uint64_t end;		/* one past its last item (first when empty) */
	uint64_t size;
	time_t created;
};

struct tg_journal {
	pthread_mutex_t mu;
	int dirfd, fd, ackfd;	/* fd: the open (last) segment, -1 before the first append */
	const struct tg_keyring *kr;
	bool require;
	uint64_t max_bytes;
	uint32_t max_age_s;
	struct seg *v;		/* ascending; v[n - 1] is the open one when fd >= 0 */
	size_t n, alloc;
	uint64_t bytes, next_seq, acked;
	struct tg_journal_stats st;
	time_t (*now)(void *arg);
	void *now_arg;
};

static void seg_name(uint64_t first, char *buf, size_t len)
{
	spool_seq_name(first, SUFFIX, buf, len);
}

/* ---- the segment index ------------------------------------------------------------ */

static int seg_push(struct tg_journal *j, const struct seg *s)
{
	if (tg_reserve((void **)&j->v, &j->alloc, j->n + 1, sizeof(*j->v), 16))
		return -ENOMEM;
	j->v[j->n++] = *s;
	j->bytes += s->size;
	return 0;
}

static int cmp_seg(const void *a, const void *b)
{
	const struct seg *x = a, *y = b;

	return x->first < y->first ? -1 : x->first > y->first;
}

/* Items of segment @i not acknowledged yet. */
static uint64_t unacked(const struct tg_journal *j, size_t i)
{
	const struct seg *s = &j->v[i];
	uint64_t from = s->first > j->acked + 1 ? s->first : j->acked + 1;

	return s->end > from ? s->end - from : 0;
}

static void seg_drop(struct tg_journal *j, size_t i, struct tg_spool_loss *why,
		     struct tg_spool_loss *lost)
{
	char name[NAME_LEN + 1];
	uint64_t items = unacked(j, i);

	seg_name(j->v[i].first, name, sizeof(name));
	unlinkat(j->dirfd, name, 0);
	if (items) {
		struct tg_spool_loss *l[2] = { why, lost };

		for (int k = 0; k < 2; k++) {
			if (!l[k])
				continue;
			l[k]->files++;
			l[k]->items += items;
			l[k]->bytes += j->v[i].size;
		}
	}
	j->bytes -= j->v[i].size;
	memmove(&j->v[i], &j->v[i + 1], (j->n - i - 1) * sizeof(*j->v));
	j->n--;
}

/* Closed segments: settled ones go; the bounds push out the oldest (counted). */
static void enforce_bounds(struct tg_journal *j, uint64_t incoming, struct tg_spool_loss *lost)
{
	size_t closed = j->fd >= 0 ? j->n - 1 : j->n;
	time_t now = j->now(j->now_arg);

	for (size_t i = 0; i < closed;) {
		if (!unacked(j, i)) {
			seg_drop(j, i, NULL, NULL);
			closed--;
		} else if (j->max_age_s && j->v[i].created + (time_t)j->max_age_s <= now) {
			seg_drop(j, i, &j->st.expired, lost);
			closed--;
		} else {
			i++;
		}
	}
	while (closed && j->bytes + incoming > j->max_bytes) {
		seg_drop(j, 0, &j->st.evicted, lost);
		closed--;
	}
}

/* ---- the ack file ------------------------------------------------------------------ */

static uint64_t read_ack(int fd)
{
	uint8_t b[16];

	if (pread(fd, b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return 0;
	if (tg_get_be(b, 8) != ~tg_get_be(b + 8, 8))
		return 0;	/* torn or damaged: replay everything (duplicates, never a loss) */
	return tg_get_be(b, 8);
}

static int write_ack(int fd, uint64_t seq)
{
	uint8_t b[16];

	tg_put_be(b, seq, 8);
	tg_put_be(b + 8, ~seq, 8);
	return pwrite(fd, b, sizeof(b), 0) == (ssize_t)sizeof(b) ? 0 : -EIO;
}

/* ---- boot id: were the uncommitted records still in the kernel's ring buffer? ------- */

static void read_boot_id(const char *given, char out[BOOT_LEN])
{
	FILE *f;

	out[0] = '\0';
	if (given) {
		snprintf(out, BOOT_LEN, "%s", given);
		return;
	}
	f = fopen("/proc/sys/kernel/random/boot_id", "re");
	if (!f)
		return;
	if (!fgets(out, BOOT_LEN, f))
		out[0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	fclose(f);
}

/* Whether the segments were written in this boot; records this boot's id for the next start. */
static bool same_boot(struct tg_journal *j, const char *now_id)
{
	char old[BOOT_LEN] = "";
	ssize_t n;
	int fd = openat(j->dirfd, BOOT_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	bool same;

	if (fd < 0)
		return false;
	n = pread(fd, old, sizeof(old) - 1, 0);
	old[n > 0 ? n : 0] = '\0';
	same = now_id[0] && !strcmp(old, now_id);
	if (!same && (ftruncate(fd, 0) || pwrite(fd, now_id, strlen(now_id), 0) < 0))
		tg_warn("journal: cannot record the boot id: %s", strerror(errno));
	close(fd);
	return same;
}

/* ---- replay ----------------------------------------------------------------------------- */

/* Hand each unacknowledged line of an opened record to @fn. */
static int replay_lines(struct tg_journal *j, const struct tg_spool_item *it, uint64_t first,
			journal_item_fn fn, void *arg, struct tg_journal_replay *res)
{
	char *p = (char *)it->data, *end = p + it->len;
	uint64_t seq = first;

	for (uint32_t k = 0; k < it->items && p <= end; k++, seq++) {
		char *nl = memchr(p, '\n', end - p);
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

		p[len] = '\0';
		if (seq > j->acked) {
			res->items++;
			if (fn && fn(arg, seq, p, len))
				return -ECANCELED;
		} else {
			res->skipped++;
		}
		p += len + 1;
	}
	return 0;
}

/*
 * Read segment @i record by record. A record that ends past the end of the
 * file is the write a crash cut short: counted as torn and cut off, so that
 * the next start does not count it again.
 */
static int replay_segment(struct tg_journal *j, size_t i, journal_item_fn fn, void *arg,
			  struct tg_journal_replay *res)
{
	struct seg *s = &j->v[i];
	char name[NAME_LEN + 1];
	uint8_t pre[PREFIX_LEN], *blob = NULL;
	off_t off = 0;
	size_t got;
	int fd, ret = 0;

	seg_name(s->first, name, sizeof(name));
	fd = openat(j->dirfd, name, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	s->end = s->first;
	for (;;) {
		struct tg_spool_item it = { 0 };
		uint64_t len, first, items;

		ret = tg_read_full(fd, pre, sizeof(pre), off, &got);
		if (ret || !got)
			break;
		len = got == sizeof(pre) ? tg_get_be(pre, 4) : 0;
		if (len < BLOB_MIN || len > BLOB_MAX) {
			if (got == sizeof(pre)) {
				/* not a length we write: the rest of the file cannot be framed */
				res->torn_bytes += s->size - off;
				break;
			}
		}
		free(blob);
		blob = got == sizeof(pre) && len >= BLOB_MIN && len <= BLOB_MAX ? malloc(len) : NULL;
		if (blob)
			ret = tg_read_full(fd, blob, len, off + PREFIX_LEN, &got);
		if (ret)
			break;
		if (!blob || got < len) {
			/* torn: the header may still say how many items it held */
			if (blob && got >= TG_SPOOL_HEADER_LEN && !memcmp(blob, "TGSPOOL", 7))
				res->torn_items += tg_get_be(blob + 12, 4);
			res->torn_bytes += s->size - off;
			break;
		}
		first = tg_get_be(blob + 16, 8);
		items = tg_get_be(blob + 12, 4);
		if (first < s->end || first < s->first) {
			res->corrupt_items += items;	/* out of order: not ours */
		} else if (first + items - 1 <= j->acked) {
			res->skipped += items;		/* settled: no need to open it */
			s->end = first + items;
		} else if (j->max_age_s && (time_t)tg_get_be(blob + 24, 8) + (time_t)j->max_age_s <=
						   j->now(j->now_arg)) {
			res->expired_items += items;
			s->end = first + items;
		} else if (spool_unseal(j->kr, j->require, first, blob, len, &it)) {
			res->corrupt_items += items;
			s->end = first + items;
		} else {
			res->records++;
			s->end = first + items;
			ret = replay_lines(j, &it, first, fn, arg, res);
			spool_item_free(&it);
			if (ret)
				break;
		}
		off += PREFIX_LEN + len;
	}
	free(blob);
	if (!ret && off < (off_t)s->size) {
		if (ftruncate(fd, off) == 0) {
			j->bytes -= s->size - off;
			s->size = off;
		}
	}
	close(fd);
	return ret;
}

static int scan(struct tg_journal *j)
{
	struct dirent *de;
	DIR *d = spool_dir_stream(j->dirfd);
	int ret = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		struct seg s = { 0 };
		struct stat st;

		if (spool_parse_seq_name(de->d_name, SUFFIX, &s.first))
			continue;
		if (fstatat(j->dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) || !S_ISREG(st.st_mode))
			continue;
		s.size = st.st_size;
		s.created = st.st_mtime;
		s.end = s.first;
		ret = seg_push(j, &s);
		if (ret)
			break;
	}
	closedir(d);
	if (j->n)
		qsort(j->v, j->n, sizeof(*j->v), cmp_seg);
	return ret;
}

/* ---- open / close ------------------------------------------------------------------------ */

static int open_dir(struct tg_journal *j, const char *dir, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(dir, 0700) && errno != EEXIST)
		return tg_seterr(err, errlen, -errno, "journal %s: cannot create: %s", dir, strerror(errno));
	j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (j->dirfd < 0 || fstat(j->dirfd, &st))
		return tg_seterr(err, errlen, -errno, "journal %s: %s", dir, strerror(errno));
	if (st.st_uid != geteuid())
		return tg_seterr(err, errlen, -EPERM, "journal %s: owned by uid %u, not by uid %u", dir,
			      (unsigned int)st.st_uid, (unsigned int)geteuid());
	if ((st.st_mode & 077) && fchmod(j->dirfd, 0700))
		return tg_seterr(err, errlen, -errno, "journal %s: chmod 0700: %s", dir, strerror(errno));
	j->ackfd = openat(j->dirfd, ACK_FILE, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (j->ackfd < 0)
		return tg_seterr(err, errlen, -errno, "journal %s/" ACK_FILE ": %s", dir, strerror(errno));
	return 0;
}

struct tg_journal *journal_open(const struct tg_journal_config *cfg, journal_item_fn fn, void *arg,
				struct tg_journal_replay *res, char *err, size_t errlen)
{
	struct tg_journal *j;
	char boot[BOOT_LEN];
	uint64_t max_end;
	int ret;

	memset(res, 0, sizeof(*res));
	if (!cfg->dir || !*cfg->dir || !cfg->max_bytes) {
		errno = -tg_seterr(err, errlen, -EINVAL, "journal: needs a directory and max_bytes > 0");
		return NULL;
	}
	if ((cfg->flags & TG_SPOOL_REQUIRE_ENCRYPTION) && !keyring_count(cfg->kr)) {
		errno = -tg_seterr(err, errlen, -EINVAL, "journal %s: encryption is required but no "
				"event key is configured (events.key_file)", cfg->dir);
		return NULL;
	}
	j = calloc(1, sizeof(*j));
	if (!j) {
		errno = -tg_seterr(err, errlen, -ENOMEM, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&j->mu, NULL);
	j->dirfd = j->fd = j->ackfd = -1;
	j->kr = keyring_count(cfg->kr) ? cfg->kr : NULL;
	j->require = cfg->flags & TG_SPOOL_REQUIRE_ENCRYPTION;
	j->max_bytes = cfg->max_bytes;
	j->max_age_s = cfg->max_age_s;
	j->now = cfg->now ? cfg->now : tg_wall_seconds;
	j->now_arg = cfg->now_arg;
	ret = open_dir(j, cfg->dir, err, errlen);
	if (!ret) {
		j->acked = read_ack(j->ackfd);
		ret = scan(j);
		if (ret)
			tg_seterr(err, errlen, ret, "journal %s: reading: %s", cfg->dir, strerror(-ret));
	}
	max_end = j->acked + 1;
	for (size_t i = 0; !ret && i < j->n; i++) {
		ret = replay_segment(j, i, fn, arg, res);
		if (ret && ret != -ECANCELED)
			tg_seterr(err, errlen, ret, "journal %s: replay: %s", cfg->dir, strerror(-ret));
		if (j->v[i].end > max_end)
			max_end = j->v[i].end;
	}
	if (ret) {
		journal_close(j);
		errno = -ret;
		return NULL;
	}
	read_boot_id(cfg->boot_id, boot);
	res->torn_same_boot = same_boot(j, boot);
	j->next_seq = max_end;
	return j;
}

void journal_close(struct tg_journal *j)
{
	if (!j)
		return;
	if (j->fd >= 0)
		close(j->fd);
	if (j->ackfd >= 0)
		close(j->ackfd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	pthread_mutex_destroy(&j->mu);
	free(j->v);
	free(j);
}

uint64_t journal_next_seq(const struct tg_journal *j)
{
	return j->next_seq;
}

/* ---- append / ack ---------------------------------------------------------------------------- */

static int open_segment(struct tg_journal *j)
{
	struct seg s = { .first = j->next_seq, .end = j->next_seq, .created = j->now(j->now_arg) };
	char name[NAME_LEN + 1];
	int ret;

	seg_name(s.first, name, sizeof(name));
	j->fd = openat(j->dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
		       0600);
	if (j->fd < 0)
		return -errno;
	ret = seg_push(j, &s);
	if (!ret)
		fsync(j->dirfd);	/* the new name; once per segment */
	return ret;
}

/* A quarter of the bound, so that the bound can be kept by closing and dropping segments. */
static uint64_t seg_max(const struct tg_journal *j)
{
	uint64_t m = j->max_bytes / 4;

	return m < (16u << 10) ? (16u << 10) : m > TG_JOURNAL_SEGMENT_MAX ? TG_JOURNAL_SEGMENT_MAX : m;
}

static void close_segment(struct tg_journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
}

int journal_append(struct tg_journal *j, const char *lines, size_t len, uint32_t n,
		   struct tg_spool_loss *lost)
{
	uint64_t blob = TG_SPOOL_HEADER_LEN + (uint64_t)len + TG_SPOOL_TAG_LEN;
	uint8_t *buf;
	struct seg *cur;
	int ret;

	if (!n)
		return 0;
	if (len > TG_SPOOL_MAX_BATCH)
		return -E2BIG;
	buf = malloc(PREFIX_LEN + blob);
	if (!buf)
		return -ENOMEM;
	pthread_mutex_lock(&j->mu);
	cur = j->fd >= 0 ? &j->v[j->n - 1] : NULL;
	if (cur && (cur->size + PREFIX_LEN + blob > seg_max(j) ||
		    (cur->end - 1 <= j->acked && cur->size >= ROTATE_ACKED)))
		close_segment(j);
	enforce_bounds(j, PREFIX_LEN + blob, lost);
	ret = j->fd >= 0 ? 0 : open_segment(j);
	if (!ret) {
		tg_put_be(buf, blob, 4);
		ret = spool_seal(j->kr, buf + PREFIX_LEN, lines, len, n, j->next_seq,
				 j->now(j->now_arg));
	}
	/* one write and one fdatasync for the whole batch: the group commit */
	if (!ret)
		ret = tg_write_all(j->fd, buf, PREFIX_LEN + blob);
	if (!ret && fdatasync(j->fd))
		ret = -errno;
	cur = &j->v[j->n - 1];
	if (!ret) {
		cur->size += PREFIX_LEN + blob;
		cur->end = j->next_seq + n;
		j->bytes += PREFIX_LEN + blob;
		j->st.records_written++;
		j->st.items_written += n;
		j->st.syncs++;
	} else {
		/* a partial record would make everything after it unreadable: start afresh */
		j->st.write_errors++;
		close_segment(j);
	}
	j->next_seq += n;	/* used either way: sequences never repeat */
	pthread_mutex_unlock(&j->mu);
	if (!j->kr)
		OPENSSL_cleanse(buf, PREFIX_LEN + blob);
	free(buf);
	return ret;
}

int journal_ack(struct tg_journal *j, uint64_t seq)
{
	int ret = 0;

	pthread_mutex_lock(&j->mu);
	if (seq > j->acked) {
		j->acked = seq;
		ret = write_ack(j->ackfd, seq);
		enforce_bounds(j, 0, NULL);
	}
	pthread_mutex_unlock(&j->mu);
	return ret;
}

void journal_stats(struct tg_journal *j, struct tg_journal_stats *st)
{
	pthread_mutex_lock(&j->mu);
	*st = j->st;
	st->segments = j->n;
	st->bytes = j->bytes;
	st->next_seq = j->next_seq;
	st->acked = j->acked;
	pthread_mutex_unlock(&j->mu);
}
