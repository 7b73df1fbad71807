/* SPDX-License-Identifier: MIT */
/*
 * The Application Insights sink. Runs on its own thread so that the
 * kernel-event path never waits on the network:
 *
 *   agent thread                         sender thread
 *   ai_sink_submit(ev) ─ flood control ─► queue (bounded: a full queue counts
 *   ai_sink_metrics(points)               the loss, never blocks)
 *                                          │ field protection (own tg_fieldcrypt)
 *                                          │ envelope (ai_envelope), batch (ai_batch)
 *                                          ▼
 *                                   store (spool on disk, or memory) ◄─ failures
 *                                          │ oldest first, one request at a time
 *                                          ▼
 *                           POST track_url (libcurl, TLS 1.2+, gzip)
 *
 * Ordering: while anything waits in the store, new batches are stored behind
 * it, so items leave in the order they arrived, also across restarts (the
 * spool is replayed first). Every item is either accepted by the service
 * once or counted as lost (ai_sink_stats().failed), and losses the agent must
 * report as `agent` loss events are handed over through ai_sink_notify_fd().
 */
#ifndef TLSGUARD_SINK_AI_H
#define TLSGUARD_SINK_AI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "fieldcrypt.h"

/* Defaults for the events.application_insights keys. */
#define TG_AI_DEF_BATCH_ITEMS		500
#define TG_AI_DEF_BATCH_BYTES		(1u << 20)
#define TG_AI_DEF_BATCH_AGE_MS		5000
#define TG_AI_DEF_QUEUE_MAX		10000
#define TG_AI_DEF_TIMEOUT_MS		30000
#define TG_AI_DEF_RETRY_BASE_MS		10000
#define TG_AI_DEF_RETRY_MAX_MS		300000
#define TG_AI_DEF_METRICS_MS		60000
#define TG_AI_DEF_FLOOD_MS		60000
#define TG_AI_DEF_STOP_MS		5000
#define TG_AI_MEMSTORE_MAX		(16u << 20)	/* undelivered batches kept without a spool */
#define TG_AI_SPOOL_MAX_AGE		(47u * 3600)	/* the service rejects items older than 48 h */

struct tg_ai_sink_config {
	const char *connection_string_file;	/* required */
	const char *ca_file;			/* NULL: the system store */
	const char *role_instance;		/* node name; NULL: gethostname() */
	const struct tg_keyring *keys;		/* borrowed, may be NULL */
	char *const *encrypt_fields;
	size_t nencrypt;
	char *const *hash_fields;
	size_t nhash;
	const char *spool_dir;			/* NULL: undelivered batches stay in memory */
	uint64_t spool_max_bytes;
	uint32_t spool_max_age_s;		/* capped at TG_AI_SPOOL_MAX_AGE */
	size_t batch_items, batch_bytes;	/* 0: defaults above (every other 0 too, but the two below) */
	uint64_t batch_age_ms;
	size_t queue_max;
	uint64_t timeout_ms;
	uint64_t retry_base_ms, retry_max_ms;
	uint64_t metrics_interval_ms;		/* 0: no metrics */
	uint64_t flood_window_ms;		/* 0: no folding */
	uint64_t stop_timeout_ms;		/* 0: default */
	int auth_mode;				/* enum tg_ai_auth_mode */
	const char *client_id;
	const char *imds_url;
	bool journal;				/* with spool_dir: the durable journal (journal.h) */
	char *const *redirect_suffixes;		/* tests: more allowed redirect host suffixes */
	size_t nredirect_suffixes;
	char *const *resolve;			/* tests: CURLOPT_RESOLVE "host:port:address" */
	size_t nresolve;
};

/*
 * Azure Monitor ingestion host suffixes a 307/308 may lead to (public cloud,
 * Azure China, Azure US Government); the connection string's own host is
 * always allowed. Anything else is refused: neither the token nor the data go
 * there.
 */
extern const char *const tg_ai_redirect_suffixes[];

/* Whether @host (no port) ends in one of tg_ai_redirect_suffixes or @extra (label boundary). */
bool ai_sink_redirect_allowed(const char *host, char *const *extra, size_t nextra);

enum tg_ai_sink_state {
	TG_AI_SINK_OK,
	TG_AI_SINK_RETRYING,	/* the last request failed; retrying with backoff */
	TG_AI_SINK_DOWN,	/* three or more failures in a row: batches go to the store */
};

struct tg_ai_sink_stats {
	enum tg_ai_sink_state state;
	uint64_t sent;			/* items accepted by the service */
	uint64_t failed;		/* items lost, every reason (the sum below) */
	uint64_t lost_rejected;		/* 400/404 or per-item errors that are not retryable */
	uint64_t lost_quota;		/* 402/439: daily cap or quota reached (not retried) */
	uint64_t lost_queue_full;	/* dropped at submit: the queue was full */
	uint64_t lost_evicted;		/* pushed out of the store by its byte bound */
	uint64_t lost_expired;		/* older than the spool's max_age */
	uint64_t lost_other;		/* unaccounted in a response, unreadable spool file, stop,
					   a journal write torn by a crash */
	uint64_t queued;		/* waiting in memory (queue + open batch) */
	uint64_t spooled;		/* items in the store (spool or memory) */
	uint64_t spool_bytes;
	uint64_t requests, retries, throttled, redirects, token_fetches;
	uint64_t redirects_refused;	/* to a host outside the allow-list: not followed */
	char redirected_to[256];	/* scheme://host:port in use after a redirect, "" when home */
	bool journal;			/* the durable journal is on */
	uint64_t journal_bytes, journal_syncs, journal_write_errors, journal_replayed;
	uint64_t journal_evicted, journal_expired;	/* unacknowledged items no longer durable */
	uint64_t flood_folded, flood_summaries;
	int64_t last_success_ns;	/* CLOCK_REALTIME, 0 = never */
	char last_error[256];
	char endpoint[256];		/* scheme://host[:port] only */
	bool spool_on_disk, spool_encrypted;
};

/* Loss counts the agent has not reported yet (ai_sink_take_losses()). */
struct tg_ai_sink_losses {
	uint64_t queue_full, evicted, expired, other, quota;
	uint64_t torn;		/* part of other: a journal write a crash cut short */
	uint64_t torn_bytes;	/* when its count could not be read */
};

struct tg_ai_sink;

/*
 * Read the connection string, open the spool, set up field protection and
 * Entra ID. Nothing runs yet. NULL + errno, with a message for the user in
 * @err: EINVAL for configuration that cannot work (bad connection string,
 * encryption required but no key), others for I/O.
 */
struct tg_ai_sink *ai_sink_new(const struct tg_ai_sink_config *cfg, char *err, size_t errlen);

/* Start the sender thread. 0 or -errno. */
int ai_sink_start(struct tg_ai_sink *s);

/*
 * Hand an event to the sink (agent thread only). Flood control decides; the
 * event is serialized here, so @ev stays the caller's and may be changed
 * (protected for the file sink) right after. Never blocks on the network.
 */
void ai_sink_submit(struct tg_ai_sink *s, json_object *ev);

/*
 * The same for an `agent` loss event reporting this sink's losses: when it does
 * not fit either, it is counted but does not ask for another report (no report
 * loop while the sender is stalled); its count goes into the next report, at the
 * latest once the sender has emptied the queue.
 */
void ai_sink_submit_loss_report(struct tg_ai_sink *s, json_object *ev);

struct tg_ai_sink_metric {
	const char *name;
	double value;
};

/* Whether the metrics interval has passed (agent thread); then call ai_sink_metrics(). */
bool ai_sink_metrics_due(struct tg_ai_sink *s, uint64_t now_ms);
void ai_sink_metrics(struct tg_ai_sink *s, const struct tg_ai_sink_metric *m, size_t n);

/*
 * Agent thread, after each ring-buffer batch: what was submitted since the last
 * call is written to the journal in one write + fdatasync, then handed to the
 * sender. Without a journal, submit hands events over at once and this does nothing.
 */
void ai_sink_commit(struct tg_ai_sink *s);

/* Agent thread, about once a second: closes flood windows. */
void ai_sink_tick(struct tg_ai_sink *s, uint64_t now_ms);

/* eventfd, readable when losses wait to be reported; ai_sink_take_losses() drains it. */
int ai_sink_notify_fd(const struct tg_ai_sink *s);
bool ai_sink_take_losses(struct tg_ai_sink *s, struct tg_ai_sink_losses *out);

/* A consistent copy of the counters, from any thread. */
void ai_sink_stats(struct tg_ai_sink *s, struct tg_ai_sink_stats *st);

const char *ai_sink_state_name(enum tg_ai_sink_state st);

/* "https://host:port" of the ingestion endpoint (no path: it may carry a key). */
const char *ai_sink_endpoint(const struct tg_ai_sink *s);

/*
 * Flush: close every flood window, send what is queued within the stop
 * timeout, store what could not be sent (spool) and join the thread. What is
 * left without a spool is counted and logged as lost. Agent thread.
 */
void ai_sink_stop(struct tg_ai_sink *s);
void ai_sink_free(struct tg_ai_sink *s);

/* Monotonic milliseconds, the sink's clock. */
uint64_t ai_sink_now_ms(void);

#endif /* TLSGUARD_SINK_AI_H */
