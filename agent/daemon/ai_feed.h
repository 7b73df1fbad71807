/* SPDX-License-Identifier: MIT */
/*
 * The daemon's feed into the Application Insights sink (sinks/ai_sink.h):
 * reads the policy, owns the key ring and the field protection the pipeline
 * applies (events.key_file[s], encrypt_fields, hash_fields), starts the sink,
 * hands it events and turns the losses it counts into `agent` loss events.
 * Agent thread only; knows the loop, never the agent.
 */
#ifndef TLSGUARD_DAEMON_AI_FEED_H
#define TLSGUARD_DAEMON_AI_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "loop.h"
#include "tlsguard/counters.h"

struct tg_ai_sink;
struct tg_fieldcrypt;
struct tg_keyring;
struct tg_policy;

/* The sink lost items: @message to report as an `agent` loss event (through ai_feed_submit). */
typedef void (*ai_feed_loss_fn)(void *ctx, const char *message);

struct ai_feed {
	struct tg_ai_sink *sink;	/* NULL when App Insights is not configured */
	struct tg_keyring *keys;	/* events.key_file(s), NULL without */
	struct tg_fieldcrypt *fc;	/* encrypt/hash_fields, NULL without: the pipeline applies it */
	struct tg_loop *loop;
	struct tg_watch w_notify;	/* the sender thread's loss notifications */
	ai_feed_loss_fn on_loss;
	void *loss_ctx;
	bool reporting_loss;		/* the event being submitted reports the sink's loss */
	uint64_t event_id_run, event_id_next;	/* agent events' event_id */
};

/*
 * Load the key ring and field protection of @p and, with
 * events.application_insights.connection_string_file, start the sink on
 * @loop; @host is the role instance. 0, -EINVAL for configuration that cannot
 * work (exit status 2), other -errno (exit status 1); the reason is logged.
 */
int ai_feed_open(struct ai_feed *f, const struct tg_policy *p, const char *host,
		 struct tg_loop *loop, ai_feed_loss_fn on_loss, void *loss_ctx);

/*
 * Give @ev an event_id if it has none (agent events: "<run id><counter>"),
 * then hand the sink a copy (flood control applies). @ev is not changed
 * otherwise: protection is the pipeline's next step.
 */
void ai_feed_submit(struct ai_feed *f, json_object *ev);

/* After each ring-buffer batch (and agent event): the journal's group commit. */
void ai_feed_commit(struct ai_feed *f);

/*
 * About once a second: flood windows. True when periodic metrics are due;
 * then the caller sends them with ai_feed_send_metrics().
 */
bool ai_feed_tick(struct ai_feed *f);
/* @since: kernel counters since the agent started; the agent's own event totals. */
void ai_feed_send_metrics(struct ai_feed *f, const uint64_t since[TG_CNT__MAX],
			  uint64_t events_emitted, uint64_t events_write_failed);

/*
 * Kernel ring buffer losses already reported in `loss` events, kept in
 * @spool_dir across crashes: over @adopted pins, the losses counted while no
 * agent ran (a crash, a restart under a flood) are reported by the next start,
 * and what an earlier agent reported is not reported twice. Without a spool
 * directory, @now_total (the counter at start) as before.
 */
uint64_t ai_feed_ringbuf_seen(const char *spool_dir, bool adopted, uint64_t now_total);
void ai_feed_ringbuf_reported(const char *spool_dir, uint64_t total);

/* Stop the sink (flush within its stop timeout) and free everything. */
void ai_feed_close(struct ai_feed *f);

#endif /* TLSGUARD_DAEMON_AI_FEED_H */
