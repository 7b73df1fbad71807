/* SPDX-License-Identifier: MIT */
/*
 * The agent's side of event protection and the Application Insights sink:
 * reads the policy, owns the key ring, protects events for the local sinks
 * (file, control socket) and feeds the sink. Agent thread only.
 */
#ifndef TLSGUARD_AGENT_AI_H
#define TLSGUARD_AGENT_AI_H

#include <stddef.h>

#include <json-c/json.h>

struct agent;

/* Reports a loss the sink saw; the agent emits it as an `agent` loss event. */
typedef void (*agent_ai_loss_fn)(struct agent *a, const char *message);

/*
 * Load the key ring (events.key_file[s]), set up field protection and, with
 * events.application_insights.connection_string_file, start the sink. Call
 * once the epoll loop exists. 0, -EINVAL for configuration that cannot work
 * (exit status 2), other -errno (exit status 1); the reason is logged.
 */
int agent_ai_open(struct agent *a, agent_ai_loss_fn on_loss);

/*
 * Hand @ev to the App Insights sink (it takes a copy, flood control
 * applies), then protect @ev in place (events.encrypt_fields/hash_fields) for
 * the local sinks that write it next.
 */
void agent_ai_event(struct agent *a, json_object *ev);

/*
 * A kernel event's event_id: a hash of the host name and the ring buffer record
 * (@raw, @len), so a record read again after a crash gets the same id.
 * Events without one get "<run id><counter>" in agent_ai_event().
 */
void agent_ai_stamp(struct agent *a, json_object *ev, const void *raw, size_t len);

/* After each ring-buffer batch (and agent event): the journal's group commit. */
void agent_ai_commit(struct agent *a);

/*
 * Kernel ring buffer losses already reported in `loss` events, kept in
 * events.spool.dir across crashes: over adopted pins, the losses counted while
 * no agent ran (a crash, a restart under a flood) are reported by the next
 * start, and what an earlier agent reported is not reported twice. Without a
 * spool directory, @now_total (the counter at start) as before.
 */
uint64_t agent_ai_ringbuf_seen(struct agent *a, uint64_t now_total);
void agent_ai_ringbuf_reported(struct agent *a, uint64_t total);

/* About once a second: flood windows, periodic metrics. */
void agent_ai_tick(struct agent *a);

/* Stop the sink (flush within its stop timeout) and free everything. */
void agent_ai_close(struct agent *a);

#endif /* TLSGUARD_AGENT_AI_H */
