/* SPDX-License-Identifier: MIT */
/*
 * The Application Insights sink's durable journal: every event is written
 * down (encrypted with the event key, in the spool's blob format, spool.h)
 * before the agent takes it from the kernel ring buffer (ringread.h), one
 * write + fdatasync per ring-buffer batch (group commit). The sender
 * acknowledges what it settled (accepted, counted as lost, or moved to the
 * spool, which is durable itself); a start replays what was not acknowledged,
 * before new events. Nothing here is silent: a write cut short at the end of
 * the last segment, a record that fails authentication, what the bounds push
 * out, are counted and handed to the caller.
 *
 * Directory 0700 (created), files 0600:
 *	<16 hex first sequence>.jnl	segments, appended to, named in order
 *	ack				16 bytes: BE64 highest settled sequence, BE64
 *					its complement (pwrite, not fsync'ed: a power
 *					loss can only make a start replay too much)
 *	boot				the boot id of the run that wrote the segments
 * A segment is a run of records: BE32 blob length, then one spool blob
 * (seq = first item's sequence, items = n) whose plaintext is n event JSON
 * lines joined by '\n'. Sequences start at 1 and only grow.
 *
 * Append (agent thread) and ack (sender thread) may run concurrently: a mutex
 * inside.
 */
#ifndef TLSGUARD_JOURNAL_H
#define TLSGUARD_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "spool.h"

#define TG_JOURNAL_SEGMENT_MAX	(4u << 20)	/* a segment is closed past this */

struct tg_journal;

/* What journal_open() found. */
struct tg_journal_replay {
	uint64_t records, items;	/* replayed (not yet acknowledged) */
	uint64_t skipped;		/* acknowledged already: not replayed */
	uint64_t torn_items;		/* in a write cut short at the end of a segment */
	uint64_t torn_bytes;		/* its length on disk (the count may be unreadable) */
	bool torn_same_boot;		/* the kernel ring buffer still held them (ringread.h) */
	uint64_t corrupt_items;		/* records failing authentication (header count) */
	uint64_t expired_items;		/* older than max_age: the service would refuse them */
};

struct tg_journal_stats {
	uint64_t segments, bytes;
	uint64_t next_seq, acked;
	uint64_t records_written, items_written, syncs, write_errors;
	struct tg_spool_loss evicted;	/* unacknowledged items pushed out by max_bytes */
	struct tg_spool_loss expired;	/* ... by max_age */
};

/* One replayed event line (NUL-terminated, may be modified). Nonzero stops the replay. */
typedef int (*journal_item_fn)(void *arg, uint64_t seq, char *line, size_t len);

struct tg_journal_config {
	const char *dir;
	const struct tg_keyring *kr;	/* borrowed; as spool_open() */
	uint64_t max_bytes;
	uint32_t max_age_s;		/* 0: no age limit */
	unsigned int flags;		/* TG_SPOOL_REQUIRE_ENCRYPTION */
	time_t (*now)(void *arg);	/* tests; NULL: time(NULL) */
	void *now_arg;
	const char *boot_id;		/* tests; NULL: /proc/sys/kernel/random/boot_id */
};

/*
 * Open (create) cfg->dir, replay every unacknowledged item through @fn in
 * order, truncate a torn tail, and make ready for appends. NULL + errno,
 * message in @err.
 */
struct tg_journal *journal_open(const struct tg_journal_config *cfg, journal_item_fn fn, void *arg,
				struct tg_journal_replay *res, char *err, size_t errlen);
void journal_close(struct tg_journal *j);

/* The sequence the next appended item gets (the first of the next batch). */
uint64_t journal_next_seq(const struct tg_journal *j);

/*
 * Write @n items (@lines: their JSON lines joined by '\n') as one record and
 * fdatasync it: they get sequences journal_next_seq() .. + n - 1. Closes a
 * full segment first, applies the bounds (counted in the stats, added to
 * @lost when given). 0 or -errno (the items are then not durable).
 */
int journal_append(struct tg_journal *j, const char *lines, size_t len, uint32_t n,
		   struct tg_spool_loss *lost);

/* Everything up to @seq is settled: recorded, and segments that hold nothing newer deleted. */
int journal_ack(struct tg_journal *j, uint64_t seq);

void journal_stats(struct tg_journal *j, struct tg_journal_stats *st);

#endif /* TLSGUARD_JOURNAL_H */
