/* SPDX-License-Identifier: MIT */
/*
 * Request bodies and response handling for Application Insights ingestion
 * (reference/application-insights.md). Pure data and computation: no clocks
 * (callers pass monotonic milliseconds), no network, no globals, so the
 * sender thread owns its batches and tests drive time by hand.
 */
#ifndef TLSGUARD_AI_BATCH_H
#define TLSGUARD_AI_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TG_AI_MAX_ITEMS_PER_REQUEST	64000
#define TG_AI_BACKOFF_BASE_MS		10000ULL	/* first retry after ~10 s */
#define TG_AI_BACKOFF_CAP_MS		3600000ULL	/* as the .NET SDK */

/* ---- batch ----------------------------------------------------------------- */

struct tg_ai_batch_limits {
	size_t max_items;	/* clamped to TG_AI_MAX_ITEMS_PER_REQUEST; 0 means 1024 */
	size_t max_bytes;	/* uncompressed body; 0 means 4 MiB */
	uint64_t max_age_ms;	/* since the first item; 0 means 15 s */
};

struct tg_ai_batch;

/* NULL + errno. */
struct tg_ai_batch *ai_batch_new(const struct tg_ai_batch_limits *lim);
void ai_batch_free(struct tg_ai_batch *b);

/*
 * Append one envelope line (no newline inside). @now_ms (monotonic) starts the
 * age clock on the first item. -ENOSPC: the batch is full (send it, reset it,
 * add again); -E2BIG: the line alone is larger than max_bytes; -EINVAL: empty
 * or contains '\n'; -ENOMEM.
 */
int ai_batch_add(struct tg_ai_batch *b, const char *line, size_t len, uint64_t now_ms);

/*
 * Replace the content with the lines of @body ("line\nline...", e.g. a batch
 * read back from the spool). Lines that do not fit are an error (-ENOSPC).
 */
int ai_batch_load(struct tg_ai_batch *b, const char *body, size_t len, uint64_t now_ms);

/* True when the batch has items and is full or at least max_age_ms old. */
bool ai_batch_due(const struct tg_ai_batch *b, uint64_t now_ms);

/* When the batch becomes due by age (UINT64_MAX when empty): for poll timeouts. */
uint64_t ai_batch_deadline(const struct tg_ai_batch *b);

size_t ai_batch_count(const struct tg_ai_batch *b);

/* The uncompressed body: lines joined by '\n', no trailing newline. */
const char *ai_batch_body(const struct tg_ai_batch *b, size_t *len);

/* Line @i of the batch, for resending the retryable items of a 206. 0 or -ERANGE. */
int ai_batch_item(const struct tg_ai_batch *b, size_t i, const char **line, size_t *len);

/*
 * The request body: ai_batch_body() gzip-compressed (Content-Encoding: gzip).
 * *out is the batch's own buffer, valid until the next ai_batch_finish() or
 * ai_batch_free(). The batch keeps its lines until ai_batch_reset().
 */
int ai_batch_finish(struct tg_ai_batch *b, const uint8_t **out, size_t *outlen);

void ai_batch_reset(struct tg_ai_batch *b);

/* ---- gzip ------------------------------------------------------------------ */

/* gzip (RFC 1952) of @in at compression @level (libdeflate: 0..12; -1: 6). *out malloc'd. */
int ai_gzip(const void *in, size_t len, int level, uint8_t **out, size_t *outlen);

/* Inverse of ai_gzip(); -EFBIG when the result would exceed @max_out. -EBADMSG on bad data. */
int ai_gunzip(const void *in, size_t len, size_t max_out, uint8_t **out, size_t *outlen);

/* ---- responses -------------------------------------------------------------- */

enum tg_ai_class {
	TG_AI_OK,		/* 200 (and other 2xx): all accepted */
	TG_AI_PARTIAL,		/* 206: parse the body, resend the retryable indexes */
	TG_AI_RETRY,		/* 408 429 500 502 503 504 (other 5xx), 0 = network error */
	TG_AI_AUTH,		/* 401 403: refresh the Entra ID token, retry a bounded number of times */
	TG_AI_DROP,		/* 400 404 and anything else: count as lost, log once */
	TG_AI_REDIRECT,		/* 307 308: follow to an allow-listed host (ai_redirect_allowed()) */
	TG_AI_QUOTA,		/* 402 439: daily cap / quota; retrying only burns more: lost as `quota` */
};

enum tg_ai_class ai_status_class(int http_status);

/* Whether an item with this per-item statusCode (206 errors[]) is worth resending. */
bool ai_item_retryable(int status);

/* A per-item statusCode meaning the daily cap or quota was reached (402, 439). */
bool ai_item_quota(int status);

struct tg_ai_response {
	long items_received;	/* -1 when absent */
	long items_accepted;	/* -1 when absent */
	size_t *retry;		/* request indexes to resend, ascending, unique */
	size_t nretry;
	size_t *lost;		/* request indexes rejected for good, ascending, unique */
	size_t nlost;
	size_t nquota;		/* items refused for the daily cap / quota (402, 439): not in lost */
	size_t nredirect;	/* items answered 307/308: in retry (resent, to the Location if allowed) */
	size_t unaccounted;	/* items neither accepted nor in errors[] per the counts */
	size_t bad_errors;	/* errors[] entries with no valid index (ignored) */
	int first_lost_status;	/* for the one log line: 0 when nothing was lost */
	char first_lost_message[256];
};

/*
 * Parse an ingestion response body for a request of @nsent items. Items not
 * named in errors[] count as accepted. Returns 0, -EBADMSG when the body is
 * not the expected JSON object, -ENOMEM. Release with ai_response_free().
 */
int ai_response_parse(const char *body, size_t len, size_t nsent, struct tg_ai_response *r);
void ai_response_free(struct tg_ai_response *r);

/*
 * Retry-After: delta-seconds or an HTTP-date (IMF-fixdate, RFC 850 or asctime
 * form) relative to @now. A date in the past gives 0. 0 or -EINVAL.
 */
int ai_retry_after_parse(const char *value, time_t now, uint64_t *delay_s);

/* ---- backoff ---------------------------------------------------------------- */

struct tg_backoff {
	uint64_t base_ms;
	uint64_t cap_ms;
	unsigned int attempt;
	uint64_t rng;		/* private xorshift state: no global RNG, reproducible in tests */
};

/* @seed 0 picks a random one. */
void backoff_init(struct tg_backoff *b, uint64_t base_ms, uint64_t cap_ms, uint64_t seed);

/*
 * The next delay: base * 2^attempt, capped, with jitter in [0.75, 1.25] of it
 * (still never above the cap) so that many nodes do not retry in step.
 */
uint64_t backoff_next(struct tg_backoff *b);

/* After a success. */
void backoff_reset(struct tg_backoff *b);

#endif /* TLSGUARD_AI_BATCH_H */
