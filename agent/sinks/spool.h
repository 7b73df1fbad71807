/* SPDX-License-Identifier: MIT */
/*
 * On-disk spool for batches that could not be delivered. One file per batch,
 * encrypted with the first key of the event key ring, replayed oldest first,
 * also after a restart. Bounded by bytes and age: what has to go is counted
 * and returned so the caller can report the loss (an `agent` loss event).
 *
 * Directory 0700, files 0600, names "<16 hex digit sequence>.spool": the
 * sequence only grows (the next one is the largest found at open + 1), so
 * name order is creation order. Writes go to ".tmp.<seq>", are fsync'ed and
 * renamed, so a crash leaves either a whole file or a temporary one that the
 * next open removes.
 *
 * File layout (all integers big-endian):
 *	0   7  magic "TGSPOOL"
 *	7   1  version = 1
 *	8   1  algorithm: 1 = AES-256-GCM, 0 = none (spool opened without a key)
 *	9   3  reserved, zero
 *	12  4  number of telemetry items in the batch (for loss accounting)
 *	16  8  sequence number (must match the file name)
 *	24  8  creation time, Unix seconds
 *	32  8  key id, 8 ASCII hex characters (zeros for algorithm 0)
 *	40 12  GCM nonce, random (zeros for algorithm 0)
 *	52  n  ciphertext (plaintext for algorithm 0)
 *	52+n 16 GCM tag over header bytes 0..51 as associated data and the
 *	        ciphertext (algorithm 0: first 16 bytes of SHA-256(header|data))
 *
 * A spool belongs to one thread (the sender): no locking inside.
 */
#ifndef TLSGUARD_SPOOL_H
#define TLSGUARD_SPOOL_H

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "fieldcrypt.h"

#define TG_SPOOL_REQUIRE_ENCRYPTION	(1u << 0)	/* spool_open() flag */
#define TG_SPOOL_HEADER_LEN		52
#define TG_SPOOL_TAG_LEN		16
#define TG_SPOOL_MAX_BATCH		(256u << 20)

struct tg_spool;

/* What was thrown away to respect the bounds; add to it, never reset by the spool. */
struct tg_spool_loss {
	uint64_t files;
	uint64_t items;
	uint64_t bytes;
};

struct tg_spool_stats {
	uint64_t files;			/* in the spool now */
	uint64_t bytes;
	uint64_t items;
	time_t oldest;			/* creation time of the oldest file, 0 when empty */
	bool encrypted;
	uint64_t written;		/* since open */
	struct tg_spool_loss evicted;	/* since open: pushed out by max_bytes */
	struct tg_spool_loss expired;	/* since open: older than max_age */
};

struct tg_spool_item {
	uint64_t seq;
	time_t created;
	uint32_t items;
	uint8_t *data;			/* malloc'd plaintext, NULL on error */
	size_t len;
};

/*
 * Open (creating it 0700 if needed) the spool directory @dir. @kr (borrowed,
 * must outlive the spool) encrypts new files with its first key and decrypts
 * with any. Without a key, files are written unencrypted, unless @flags has
 * TG_SPOOL_REQUIRE_ENCRYPTION: then opening fails with -EINVAL, and files
 * without encryption (left by a keyless run) are refused as -EBADMSG because
 * they could be forged without the key. @max_age_s 0 means no age limit.
 * NULL + errno, message in @err.
 */
struct tg_spool *spool_open(const char *dir, const struct tg_keyring *kr, uint64_t max_bytes,
			    uint32_t max_age_s, unsigned int flags, char *err, size_t errlen);
void spool_close(struct tg_spool *sp);

/*
 * Store one batch of @items telemetry items. Evicts the oldest files when
 * needed to stay within max_bytes (added to @lost, may be NULL). -E2BIG when
 * the batch alone is larger than max_bytes (nothing written or evicted: the
 * caller counts the loss), -errno on I/O failure.
 */
int spool_put(struct tg_spool *sp, const void *data, size_t len, uint32_t items,
	      struct tg_spool_loss *lost);

/*
 * Read and authenticate the oldest batch (expired ones are removed first and
 * added to @lost). 0 and @it filled, -ENOENT when the spool is empty. When the
 * oldest file cannot be used, returns -EBADMSG (corrupt or tampered),
 * -ENOKEY (its key is not in the ring) or -errno, with it->seq and it->items
 * (unauthenticated) set: the caller decides whether to spool_remove() it and
 * count it as lost. Release with spool_item_free().
 */
int spool_peek_oldest(struct tg_spool *sp, struct tg_spool_item *it, struct tg_spool_loss *lost);

/* Delete batch @seq (after it was delivered). 0 or -ENOENT / -errno. */
int spool_remove(struct tg_spool *sp, uint64_t seq);

/* Remove batches older than max_age, adding them to @lost. Returns how many. */
int spool_expire(struct tg_spool *sp, struct tg_spool_loss *lost);

void spool_stats(const struct tg_spool *sp, struct tg_spool_stats *st);
void spool_item_free(struct tg_spool_item *it);

/*
 * The file format as a building block (the journal, journal.h, writes the same
 * blobs): seal @len bytes of @data into @buf (TG_SPOOL_HEADER_LEN + @len +
 * TG_SPOOL_TAG_LEN bytes), encrypted with @kr's first key, or only
 * checksummed when @kr has none. 0 or -errno.
 */
int spool_seal(const struct tg_keyring *kr, uint8_t *buf, const void *data, size_t len,
	       uint32_t items, uint64_t seq, time_t created);

/*
 * Authenticate and open one blob of @size bytes whose header must say @seq;
 * @require refuses blobs without encryption. Fills it->data (NUL-terminated),
 * len, items, created. 0, -EBADMSG, -ENOKEY, -ENOMEM.
 */
int spool_unseal(const struct tg_keyring *kr, bool require, uint64_t seq, const uint8_t *buf,
		 size_t size, struct tg_spool_item *it);

/*
 * File names by sequence, shared with the journal's segments: 16 lowercase hex
 * digits, then @suffix (".spool", ".jnl"), so name order is sequence order.
 * spool_parse_seq_name() takes exactly what spool_seq_name() writes: 0 and
 * @seq set, or -EINVAL for any other name.
 */
void spool_seq_name(uint64_t seq, const char *suffix, char *buf, size_t len);
int spool_parse_seq_name(const char *name, const char *suffix, uint64_t *seq);

/* A readdir stream over the directory @dirfd, which stays open for *at() calls. NULL + errno. */
DIR *spool_dir_stream(int dirfd);

/* Tests: replace time(NULL) as the spool's clock. */
void spool_set_clock(struct tg_spool *sp, time_t (*now)(void *arg), void *arg);

#endif /* TLSGUARD_SPOOL_H */
