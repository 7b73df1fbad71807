/* SPDX-License-Identifier: MIT */
/*
 * The daemon's event pipeline (pipeline.c): kernel records and agent events
 * to every sink, in one visible order. It owns the events' context, the file
 * sink and the event totals; it borrows the enforcer, the control socket and
 * the App Insights feed, which the agent sets before the first record.
 */
#ifndef TLSGUARD_DAEMON_PIPELINE_H
#define TLSGUARD_DAEMON_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "events.h"
#include "status.h"
#include "tally.h"

struct ai_feed;
struct tg_control;
struct tg_enforcer;
struct tg_policy;

struct tg_pipeline {
	struct tg_event_ctx ev_ctx;	/* host, dests, cgroup names, workloads */
	struct tg_event_file ev_file;
	struct tg_sink_stats file_sink;
	struct tg_top top;		/* status "top", tallied before protection */
	uint64_t events_emitted, events_write_failed;
	uint64_t sockets_destroyed, destroy_failed;
	bool protect_failed_logged;
	/* borrowed */
	struct tg_enforcer *enforcer;	/* destroys the sockets of blocked flows */
	struct tg_control *control;	/* `tlsguard events` followers and history */
	struct ai_feed *ai;		/* App Insights and the field protection (fc) */
	const char *pin_dir;		/* agent events name them */
	const struct tg_policy *policy;	/* in force: agent events name its source and sha256 */
	const char *policy_sha256;
};

/* Zeroes @p, the file sink named "file" and ok; the borrowed pointers are the caller's to set. */
void pipeline_init(struct tg_pipeline *p);
/* A reload: agent events name the policy now in force. */
void pipeline_set_policy(struct tg_pipeline *p, const struct tg_policy *policy, const char *sha256);

/* One ring buffer record (ring_buffer_sample_fn; @ctx the pipeline). Always 0: a bad record is skipped. */
int pipeline_record(void *ctx, void *data, size_t size);

/* The end of a ring buffer batch: the App Insights journal, then one write of the file sink. */
void pipeline_flush(struct tg_pipeline *p);

/*
 * An `agent` event (start, stop, reload, reload_failed, loss, fail_open,
 * untracked, upgrade, upgrade_done) on the kernel events' path, flushed at
 * once. @extra (taken, may be NULL) is added under @key.
 */
void pipeline_agent_event_with(struct tg_pipeline *p, const char *action, const char *message,
			       const char *key, json_object *extra);
void pipeline_agent_event(struct tg_pipeline *p, const char *action, const char *message);

/* The App Insights sink lost items: a `loss` agent event (ai_feed_open()'s callback, @ctx the pipeline). */
void pipeline_loss_event(void *ctx, const char *message);

#endif /* TLSGUARD_DAEMON_PIPELINE_H */
