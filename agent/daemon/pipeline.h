/* SPDX-License-Identifier: MIT */
/* The daemon's event pipeline (pipeline.c): kernel records and agent events to every sink. */
#ifndef TLSGUARD_DAEMON_PIPELINE_H
#define TLSGUARD_DAEMON_PIPELINE_H

#include <stddef.h>

#include <json-c/json.h>

struct agent;

/* One ring buffer record (ring_buffer_sample_fn; @ctx the agent). Always 0: a bad record is skipped. */
int pipeline_record(void *ctx, void *data, size_t size);

/* The end of a ring buffer batch: the App Insights journal, then one write of the file sink. */
void pipeline_flush(struct agent *a);

/*
 * An `agent` event (start, stop, reload, reload_failed, loss, fail_open,
 * untracked, upgrade, upgrade_done) on the kernel events' path, flushed at
 * once. @extra (taken, may be NULL) is added under @key.
 */
void pipeline_agent_event_with(struct agent *a, const char *action, const char *message,
			       const char *key, json_object *extra);
void pipeline_agent_event(struct agent *a, const char *action, const char *message);

/* The App Insights sink lost items: a `loss` agent event (agent_ai_open()'s callback). */
void pipeline_loss_event(struct agent *a, const char *message);

#endif /* TLSGUARD_DAEMON_PIPELINE_H */
