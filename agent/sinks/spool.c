// SPDX-License-Identifier: MIT
/*
 * Encrypted on-disk spool of undeliverable batches. Format and guarantees in
 * spool.h. The in-memory index (sequence, time, items, size per file) is
 * rebuilt from the directory at open, so a restart replays in the same order.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "bytes.h"
#include "log.h"
#include "spool.h"

#define MAGIC		"TGSPOOL"
#define VERSION		1
#define ALG_NONE	0
#define ALG_AES_GCM	1
#define SUFFIX		".spool"
#define TMP_PREFIX	".tmp."
#define NAME_LEN	(16 + sizeof(SUFFIX) - 1)

struct entry {
	uint64_t seq;
	time_t created;
	uint32_t items;
	uint64_t size;		/* bytes on disk */
};

struct tg_spool {
	int dirfd;
	char *dir;
	const struct tg_keyring *kr;
	bool encrypt;
	bool require;		/* TG_SPOOL_REQUIRE_ENCRYPTION: unencrypted files are refused */
	uint64_t max_bytes;
	uint32_t max_age_s;
	struct entry *v;	/* ascending sequence */
	size_t n, alloc;
	uint64_t bytes, items;
	uint64_t next_seq;
	uint64_t written;
	struct tg_spool_loss evicted, expired;
	time_t (*now)(void *arg);
	void *now_arg;
};

void spool_seq_name(uint64_t seq, const char *suffix, char *buf, size_t len)
{
	snprintf(buf, len, "%016" PRIx64 "%s", seq, suffix);
}

int spool_parse_seq_name(const char *name, const char *suffix, uint64_t *seq)
{
	uint64_t v = 0;

	if (strlen(name) != 16 + strlen(suffix) || strcmp(name + 16, suffix))
		return -EINVAL;
	for (int i = 0; i < 16; i++) {
		char c = name[i];

		if (c >= '0' && c <= '9')
			v = v << 4 | (c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v << 4 | (c - 'a' + 10);
		else
			return -EINVAL;
	}
	*seq = v;
	return 0;
}

DIR *spool_dir_stream(int dirfd)
{
	int fd = dup(dirfd);
	DIR *d;

	if (fd < 0)
		return NULL;
	d = fdopendir(fd);
	if (!d) {
		int err = errno;

		close(fd);
		errno = err;
	}
	return d;
}

static void file_name(uint64_t seq, char *buf, size_t len)
{
	spool_seq_name(seq, SUFFIX, buf, len);
}

static void header_build(uint8_t *h, uint8_t alg, uint32_t items, uint64_t seq, uint64_t created,
			 const char *key_id, const uint8_t *nonce)
{
	memset(h, 0, TG_SPOOL_HEADER_LEN);
	memcpy(h, MAGIC, 7);
	h[7] = VERSION;
	h[8] = alg;
	tg_put_be(h + 12, items, 4);
	tg_put_be(h + 16, seq, 8);
	tg_put_be(h + 24, created, 8);
	if (key_id)
		memcpy(h + 32, key_id, TG_KEY_ID_LEN);
	if (nonce)
		memcpy(h + 40, nonce, TG_GCM_NONCE_LEN);
}

/* ---- index ------------------------------------------------------------------- */

static int index_append(struct tg_spool *sp, const struct entry *e)
{
	if (tg_reserve((void **)&sp->v, &sp->alloc, sp->n + 1, sizeof(*sp->v), 64))
		return -ENOMEM;
	sp->v[sp->n++] = *e;
	sp->bytes += e->size;
	sp->items += e->items;
	return 0;
}

static void account(struct tg_spool_loss *l, const struct entry *e)
{
	if (!l)
		return;
	l->files++;
	l->items += e->items;
	l->bytes += e->size;
}

/* Forget entry @i and delete its file; count it in @why and @lost when given. */
static int index_drop(struct tg_spool *sp, size_t i, struct tg_spool_loss *why,
		      struct tg_spool_loss *lost)
{
	struct entry e = sp->v[i];
	char name[NAME_LEN + 1];
	int ret = 0;

	file_name(e.seq, name, sizeof(name));
	if (unlinkat(sp->dirfd, name, 0) && errno != ENOENT)
		ret = -errno;
	account(why, &e);
	account(lost, &e);
	sp->bytes -= e.size;
	sp->items -= e.items;
	memmove(&sp->v[i], &sp->v[i + 1], (sp->n - i - 1) * sizeof(*sp->v));
	sp->n--;
	return ret;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Header fields for the index; unauthenticated here, verified when the file is read. */
static void scan_one(struct tg_spool *sp, const char *name, struct entry *e)
{
	uint8_t h[TG_SPOOL_HEADER_LEN];
	struct stat st;
	int fd;

	e->created = 0;
	e->items = 0;
	e->size = 0;
	fd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return;
	if (!fstat(fd, &st)) {
		e->size = st.st_size;
		e->created = st.st_mtime;
	}
	if (pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h) && !memcmp(h, MAGIC, 7)) {
		e->items = tg_get_be(h + 12, 4);
		e->created = tg_get_be(h + 24, 8);
	}
	close(fd);
}

static int scan(struct tg_spool *sp)
{
	struct dirent *de;
	struct entry e;
	DIR *d = spool_dir_stream(sp->dirfd);
	int ret = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!strncmp(de->d_name, TMP_PREFIX, strlen(TMP_PREFIX))) {
			unlinkat(sp->dirfd, de->d_name, 0);	/* a write cut short by a crash */
			continue;
		}
		if (spool_parse_seq_name(de->d_name, SUFFIX, &e.seq))
			continue;
		scan_one(sp, de->d_name, &e);
		ret = index_append(sp, &e);
		if (ret)
			break;
	}
	closedir(d);
	if (sp->n)
		qsort(sp->v, sp->n, sizeof(*sp->v), cmp_entry);
	sp->next_seq = sp->n ? sp->v[sp->n - 1].seq + 1 : 0;
	return ret;
}

/* ---- open / close -------------------------------------------------------------- */

static int mkdir_p(const char *path)
{
	char *p = strdup(path), *s;
	int ret = 0;

	if (!p)
		return -ENOMEM;
	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) && errno != EEXIST)
			ret = -errno;
		*s = '/';
		if (ret)
			break;
	}
	if (!ret && mkdir(p, 0700) && errno != EEXIST)
		ret = -errno;
	free(p);
	return ret;
}

static int open_dir(struct tg_spool *sp, char *err, size_t errlen)
{
	struct stat st;
	int ret;

	ret = mkdir_p(sp->dir);
	if (ret)
		return tg_seterr(err, errlen, ret, "spool %s: cannot create: %s", sp->dir, strerror(-ret));
	sp->dirfd = open(sp->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->dirfd < 0)
		return tg_seterr(err, errlen, -errno, "spool %s: %s", sp->dir, strerror(errno));
	if (fstat(sp->dirfd, &st))
		return tg_seterr(err, errlen, -errno, "spool %s: %s", sp->dir, strerror(errno));
	/* Another user's directory could be read or filled by that user. */
	if (st.st_uid != geteuid())
		return tg_seterr(err, errlen, -EPERM, "spool %s: owned by uid %u, not by uid %u",
			      sp->dir, (unsigned int)st.st_uid, (unsigned int)geteuid());
	if (st.st_mode & 077) {
		tg_warn("spool %s: mode %04o, setting 0700", sp->dir, (unsigned int)st.st_mode & 07777);
		if (fchmod(sp->dirfd, 0700))
			return tg_seterr(err, errlen, -errno, "spool %s: chmod 0700: %s", sp->dir,
				      strerror(errno));
	}
	return 0;
}

struct tg_spool *spool_open(const char *dir, const struct tg_keyring *kr, uint64_t max_bytes,
			    uint32_t max_age_s, unsigned int flags, char *err, size_t errlen)
{
	struct tg_spool *sp;
	int ret;

	if (!dir || !*dir || !max_bytes) {
		errno = -tg_seterr(err, errlen, -EINVAL, "spool: needs a directory and max_bytes > 0");
		return NULL;
	}
	if ((flags & TG_SPOOL_REQUIRE_ENCRYPTION) && !keyring_count(kr)) {
		errno = -tg_seterr(err, errlen, -EINVAL,
				"spool %s: encryption is required but no event key is configured "
				"(events.key_file)", dir);
		return NULL;
	}
	sp = calloc(1, sizeof(*sp));
	if (!sp || !(sp->dir = strdup(dir))) {
		free(sp);
		errno = -tg_seterr(err, errlen, -ENOMEM, "out of memory");
		return NULL;
	}
	sp->dirfd = -1;
	sp->kr = kr;
	sp->encrypt = keyring_count(kr) > 0;
	sp->require = flags & TG_SPOOL_REQUIRE_ENCRYPTION;
	sp->max_bytes = max_bytes;
	sp->max_age_s = max_age_s;
	sp->now = tg_wall_seconds;
	ret = open_dir(sp, err, errlen);
	if (!ret) {
		ret = scan(sp);
		if (ret)
			tg_seterr(err, errlen, ret, "spool %s: reading: %s", dir, strerror(-ret));
	}
	if (ret) {
		spool_close(sp);
		errno = -ret;
		return NULL;
	}
	return sp;
}

void spool_close(struct tg_spool *sp)
{
	if (!sp)
		return;
	if (sp->dirfd >= 0)
		close(sp->dirfd);
	free(sp->v);
	free(sp->dir);
	free(sp);
}

void spool_set_clock(struct tg_spool *sp, time_t (*now)(void *arg), void *arg)
{
	sp->now = now ? now : tg_wall_seconds;
	sp->now_arg = arg;
}

/* ---- write ----------------------------------------------------------------------- */

/* Whole file or nothing under the final name: write a temporary, fsync, rename. */
static int write_file(struct tg_spool *sp, uint64_t seq, const uint8_t *buf, size_t len)
{
	char tmp[64], name[NAME_LEN + 1];
	int fd, ret;

	snprintf(tmp, sizeof(tmp), TMP_PREFIX "%016" PRIx64, seq);
	file_name(seq, name, sizeof(name));
	fd = openat(sp->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	ret = tg_write_all(fd, buf, len);
	if (!ret && fsync(fd))
		ret = -errno;
	if (close(fd) && !ret)
		ret = -errno;
	if (!ret && renameat(sp->dirfd, tmp, sp->dirfd, name))
		ret = -errno;
	if (ret) {
		unlinkat(sp->dirfd, tmp, 0);
		return ret;
	}
	fsync(sp->dirfd);	/* the rename itself; failure here loses nothing already counted */
	return 0;
}

int spool_seal(const struct tg_keyring *kr, uint8_t *buf, const void *data, size_t len,
	       uint32_t items, uint64_t seq, time_t created)
{
	uint8_t nonce[TG_GCM_NONCE_LEN], md[EVP_MAX_MD_SIZE];
	int ret;

	if (!keyring_count(kr)) {
		header_build(buf, ALG_NONE, items, seq, created, NULL, NULL);
		memcpy(buf + TG_SPOOL_HEADER_LEN, data, len);
		if (EVP_Digest(buf, TG_SPOOL_HEADER_LEN + len, md, NULL, EVP_sha256(), NULL) != 1)
			return -EIO;
		memcpy(buf + TG_SPOOL_HEADER_LEN + len, md, TG_SPOOL_TAG_LEN);
		return 0;
	}
	ret = keyring_nonce(nonce);
	if (ret)
		return ret;
	header_build(buf, ALG_AES_GCM, items, seq, created, keyring_key_id(kr, 0), nonce);
	return keyring_encrypt(kr, nonce, buf, TG_SPOOL_HEADER_LEN, data, len,
			       buf + TG_SPOOL_HEADER_LEN, buf + TG_SPOOL_HEADER_LEN + len);
}

static int seal(const struct tg_spool *sp, uint8_t *buf, const void *data, size_t len,
		uint32_t items, uint64_t seq, time_t created)
{
	return spool_seal(sp->encrypt ? sp->kr : NULL, buf, data, len, items, seq, created);
}

int spool_put(struct tg_spool *sp, const void *data, size_t len, uint32_t items,
	      struct tg_spool_loss *lost)
{
	uint64_t size = TG_SPOOL_HEADER_LEN + (uint64_t)len + TG_SPOOL_TAG_LEN;
	struct entry e;
	uint8_t *buf;
	int ret;

	if (len > TG_SPOOL_MAX_BATCH || size > sp->max_bytes)
		return -E2BIG;
	spool_expire(sp, lost);
	while (sp->n && sp->bytes + size > sp->max_bytes)
		index_drop(sp, 0, &sp->evicted, lost);
	buf = malloc(size);
	if (!buf)
		return -ENOMEM;
	e = (struct entry){ .seq = sp->next_seq++, .created = sp->now(sp->now_arg),
			    .items = items, .size = size };
	ret = seal(sp, buf, data, len, items, e.seq, e.created);
	if (!ret)
		ret = write_file(sp, e.seq, buf, size);
	if (!sp->encrypt)
		OPENSSL_cleanse(buf, size);
	free(buf);
	if (ret)
		return ret;
	sp->written++;
	ret = index_append(sp, &e);
	if (ret) {
		/* Not indexed means never replayed: better gone and counted by the caller. */
		char name[NAME_LEN + 1];

		file_name(e.seq, name, sizeof(name));
		unlinkat(sp->dirfd, name, 0);
	}
	return ret;
}

/* ---- read ------------------------------------------------------------------------- */

static int read_file(const struct tg_spool *sp, uint64_t seq, uint8_t **out, size_t *len)
{
	char name[NAME_LEN + 1];
	struct stat st;
	uint8_t *buf;
	size_t got;
	int fd, ret = 0;

	file_name(seq, name, sizeof(name));
	fd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < TG_SPOOL_HEADER_LEN + TG_SPOOL_TAG_LEN ||
	    st.st_size > TG_SPOOL_HEADER_LEN + TG_SPOOL_MAX_BATCH + TG_SPOOL_TAG_LEN) {
		ret = -EBADMSG;
		goto out;
	}
	buf = malloc(st.st_size);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	ret = tg_read_full(fd, buf, st.st_size, -1, &got);
	if (!ret && got < (size_t)st.st_size)
		ret = -EBADMSG;		/* shorter than fstat said a moment ago */
	if (ret) {
		free(buf);
		goto out;
	}
	*out = buf;
	*len = got;
out:
	close(fd);
	return ret;
}

int spool_unseal(const struct tg_keyring *kr, bool require, uint64_t seq, const uint8_t *buf,
		 size_t size, struct tg_spool_item *it)
{
	size_t len = size - TG_SPOOL_HEADER_LEN - TG_SPOOL_TAG_LEN;
	const uint8_t *h = buf, *tag = buf + TG_SPOOL_HEADER_LEN + len;
	uint8_t md[EVP_MAX_MD_SIZE], *data;
	char key_id[TG_KEY_ID_LEN + 1];
	int ret = 0;

	if (size < TG_SPOOL_HEADER_LEN + TG_SPOOL_TAG_LEN)
		return -EBADMSG;

	/* The sequence is authenticated: renaming files cannot reorder the replay. */
	if (memcmp(h, MAGIC, 7) || h[7] != VERSION || tg_get_be(h + 16, 8) != seq ||
	    (h[8] != ALG_NONE && h[8] != ALG_AES_GCM))
		return -EBADMSG;
	/* Anyone who can write the directory could forge an unencrypted batch. */
	if (h[8] == ALG_NONE && require)
		return -EBADMSG;
	data = malloc(len + 1);
	if (!data)
		return -ENOMEM;
	if (h[8] == ALG_AES_GCM) {
		memcpy(key_id, h + 32, TG_KEY_ID_LEN);
		key_id[TG_KEY_ID_LEN] = '\0';
		ret = keyring_decrypt(kr, key_id, h + 40, h, TG_SPOOL_HEADER_LEN,
				      buf + TG_SPOOL_HEADER_LEN, len, tag, data);
	} else if (EVP_Digest(buf, TG_SPOOL_HEADER_LEN + len, md, NULL, EVP_sha256(), NULL) != 1 ||
		   CRYPTO_memcmp(md, tag, TG_SPOOL_TAG_LEN)) {
		ret = -EBADMSG;
	} else {
		memcpy(data, buf + TG_SPOOL_HEADER_LEN, len);
	}
	if (ret) {
		free(data);
		return ret;
	}
	data[len] = '\0';
	it->items = tg_get_be(h + 12, 4);
	it->created = tg_get_be(h + 24, 8);
	it->data = data;
	it->len = len;
	return 0;
}

static int unseal(const struct tg_spool *sp, uint64_t seq, const uint8_t *buf, size_t size,
		  struct tg_spool_item *it)
{
	return spool_unseal(sp->kr, sp->require, seq, buf, size, it);
}

int spool_peek_oldest(struct tg_spool *sp, struct tg_spool_item *it, struct tg_spool_loss *lost)
{
	uint8_t *buf = NULL;
	size_t size = 0;
	int ret;

	memset(it, 0, sizeof(*it));
	spool_expire(sp, lost);
	while (sp->n) {
		it->seq = sp->v[0].seq;
		it->items = sp->v[0].items;
		it->created = sp->v[0].created;
		ret = read_file(sp, it->seq, &buf, &size);
		if (ret == -ENOENT) {
			/* Deleted behind our back: gone, so count it. */
			index_drop(sp, 0, NULL, lost);
			continue;
		}
		if (ret)
			return ret;
		ret = unseal(sp, it->seq, buf, size, it);
		free(buf);
		return ret;
	}
	memset(it, 0, sizeof(*it));
	return -ENOENT;
}

void spool_item_free(struct tg_spool_item *it)
{
	if (!it)
		return;
	if (it->data)
		OPENSSL_cleanse(it->data, it->len);
	free(it->data);
	it->data = NULL;
	it->len = 0;
}

int spool_remove(struct tg_spool *sp, uint64_t seq)
{
	for (size_t i = 0; i < sp->n; i++) {
		if (sp->v[i].seq == seq)
			return index_drop(sp, i, NULL, NULL);
	}
	return -ENOENT;
}

int spool_expire(struct tg_spool *sp, struct tg_spool_loss *lost)
{
	time_t now = sp->now(sp->now_arg);
	int count = 0;

	if (!sp->max_age_s)
		return 0;
	for (size_t i = sp->n; i-- > 0;) {
		if (sp->v[i].created + (time_t)sp->max_age_s <= now) {
			index_drop(sp, i, &sp->expired, lost);
			count++;
		}
	}
	return count;
}

void spool_stats(const struct tg_spool *sp, struct tg_spool_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->files = sp->n;
	st->bytes = sp->bytes;
	st->items = sp->items;
	st->oldest = sp->n ? sp->v[0].created : 0;
	st->encrypted = sp->encrypt;
	st->written = sp->written;
	st->evicted = sp->evicted;
	st->expired = sp->expired;
}
