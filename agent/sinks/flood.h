/* SPDX-License-Identifier: MIT */
/*
 * Flood control for the Application Insights sink: a hot loop of violations
 * must not flood ingestion (or the bill).
 *
 * Events are grouped by (type, action, workload, destination). The first
 * event of a group passes at once and opens a window; repeats inside the
 * window are folded: the first repeat is kept as a sample, the others only
 * counted. When the window closes with repeats, one summary goes out (the
 * sample with "count": repeats and "last_time") and a new window opens, so a
 * loop that never stops costs one item per window. A window that closes with
 * no repeat forgets the group: its next event passes at once again.
 *
 * `agent` events are never folded. Groups are bounded (max_keys): when the
 * table is full a new group passes unfolded, never dropped.
 *
 * Pure data: the caller passes monotonic milliseconds; one thread only.
 */
#ifndef TLSGUARD_FLOOD_H
#define TLSGUARD_FLOOD_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define TG_FLOOD_KEY_MAX	512
#define TG_FLOOD_MAX_KEYS	4096	/* default bound of the table */

struct tg_flood;

enum tg_flood_verdict {
	TG_FLOOD_PASS,		/* send it */
	TG_FLOOD_FOLDED,	/* counted into the group's next summary */
};

/* A closed window's summary, handed to the flood_expire() callback. */
struct tg_flood_summary {
	const char *sample;	/* JSON text of the first folded event (not NUL-safe: use len) */
	size_t len;
	uint64_t count;		/* events folded in the window */
	const char *last_time;	/* "time" of the last folded event, "" when it had none */
};

/* @window_ms 0 disables folding (every event passes). NULL + errno. */
struct tg_flood *flood_new(uint64_t window_ms, size_t max_keys);
void flood_free(struct tg_flood *f);

/*
 * The group key of @ev into @buf: 0, or -ENOENT when the event is never
 * folded (`agent` events, no "type"), -ENAMETOOLONG when it does not fit.
 */
int flood_key(json_object *ev, char *buf, size_t len);

/* Decide for @ev at @now_ms. Never fails: out of memory means PASS. */
enum tg_flood_verdict flood_check(struct tg_flood *f, json_object *ev, uint64_t now_ms);

/*
 * Close the windows that ended by @now_ms (every window when @all): call @emit
 * for each with repeats. Returns the number of summaries emitted.
 */
size_t flood_expire(struct tg_flood *f, uint64_t now_ms, int all,
		    void (*emit)(void *ctx, const struct tg_flood_summary *s), void *ctx);

struct tg_flood_stats {
	size_t groups;		/* open windows now */
	uint64_t folded;	/* events folded since start */
	uint64_t summaries;	/* summaries emitted since start */
	uint64_t untracked;	/* events passed unfolded because the table was full */
};

void flood_stats(const struct tg_flood *f, struct tg_flood_stats *st);

#endif /* TLSGUARD_FLOOD_H */
