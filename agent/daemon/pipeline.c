// SPDX-License-Identifier: MIT
/*
 * The event pipeline, in the order an event takes: a ring buffer record →
 * its blocked socket destroyed → workload selection → the JSON line (written
 * straight from the record, or through a json-c object when fields are
 * protected) → App Insights (a copy, before protection) → control followers →
 * the file sink, flushed once per ring buffer batch. Agent events take the
 * same path.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "agent_ai.h"
#include "agent_state.h"
#include "clock.h"
#include "enforcer.h"
#include "events.h"
#include "log.h"
#include "pipeline.h"
#include "tally.h"
#include "workload.h"

static void file_sink_failed(struct agent *a, uint64_t n, int err)
{
	a->file_sink.failed += n;
	a->events_write_failed += n;
	if (a->file_sink.ok)
		tg_err("cannot write events: %s", strerror(-err));
	a->file_sink.ok = false;
	snprintf(a->file_sink.last_error, sizeof(a->file_sink.last_error), "write: %s", strerror(-err));
}

/* One write(2) per ring buffer batch instead of one per event. */
void pipeline_flush(struct agent *a)
{
	uint64_t n = a->file_sink.pending;
	int err;

	agent_ai_commit(a);	/* the journal first: durable before the ring buffer moves on */
	if (!n)
		return;
	a->file_sink.pending = 0;
	err = event_file_flush(&a->ev_file);
	if (err) {
		file_sink_failed(a, n, err);
		return;
	}
	a->file_sink.ok = true;
	a->file_sink.sent += n;
	a->file_sink.last_success_ns = tg_real_ns();
	a->events_emitted += n;
}

/* Buffered write; counted as sent when the batch is flushed (pipeline_flush). */
static const char *write_to_file_sink(struct agent *a, json_object *obj)
{
	const char *line = event_line(obj);
	int err = event_file_write_line(&a->ev_file, line);

	if (err)
		file_sink_failed(a, 1, err);
	else
		a->file_sink.pending++;
	return line;
}
static void destroy_blocked_socket(struct agent *a, const struct tg_event *ev)
{
	int err = enforcer_destroy(&a->enforcer, ev);

	if (!err) {
		a->sockets_destroyed++;
	} else if (err != -ENOENT) {
		a->destroy_failed++;
		tg_warn("cannot destroy blocked socket (cookie %llu): %s; its segments stay dropped",
			(unsigned long long)ev->cookie, strerror(-err));
	}
}

/*
 * No field protection: the line is written straight from the record
 * (events_line), the same bytes a json-c object would print; an object is
 * made only for those that take one (App Insights, `tlsguard events -f`).
 */
static int write_event_line(struct agent *a, const struct tg_event *ev, const void *raw, size_t size)
{
	char id[TG_EVENT_ID_LEN + 1];
	struct tg_event_keys keys;
	json_object *obj = NULL;
	const char *line;
	int err;

	events_event_id(a->ev_ctx.host, raw, size, id);	/* the same when the record is read again */
	line = events_line(&a->ev_ctx, ev, id, &a->ev_file.line, &keys);
	if (!line) {
		a->events_write_failed++;
		return 0;
	}
	tally_event_keys(&a->top, &keys);
	if (a->ai || a->control.nclients) {
		obj = events_to_json(&a->ev_ctx, ev);
		if (obj) {
			json_object_object_add(obj, "event_id", json_object_new_string(id));
			agent_ai_event(a, obj);	/* App Insights takes a copy */
		}
	}
	/* followers match on obj: without clients control_publish_line() only keeps the line */
	if (obj || !a->control.nclients)
		control_publish_line(&a->control, obj, line);
	err = event_file_write_len(&a->ev_file, line, a->ev_file.line.len);
	if (err)
		file_sink_failed(a, 1, err);
	else
		a->file_sink.pending++;
	json_object_put(obj);
	return 0;
}

int pipeline_record(void *ctx, void *data, size_t size)
{
	struct agent *a = ctx;
	const struct tg_event *ev = data;
	json_object *obj;

	if (size < sizeof(*ev))
		return 0;	/* a record from an incompatible build; ignored */
	/* the application is waiting on a dropped segment: unblock it first
	 * (plaintext, weak TLS, SNI mismatch: every blocked flow but connect()) */
	if (ev->type != TG_EV_BLOCKED_CONNECT && ev->action == TG_ACT_BLOCKED)
		destroy_blocked_socket(a, ev);
	/* pods outside workloads.kubernetes are not reported (a block never goes silent) */
	if (a->ev_ctx.workloads && ev->action != TG_ACT_BLOCKED &&
	    !workloads_event_selected(a->ev_ctx.workloads, ev->cgroup_id))
		return 0;
	if (!a->fc)
		return write_event_line(a, ev, data, size);
	obj = events_to_json(&a->ev_ctx, ev);
	if (!obj) {
		a->events_write_failed++;
		return 0;
	}
	agent_ai_stamp(a, obj, data, size);	/* event_id: the same when the record is read again */
	tally_event(&a->top, obj);	/* before protection: tallies group by clear names */
	agent_ai_event(a, obj);		/* App Insights takes a copy; obj is protected after */
	control_publish_line(&a->control, obj, write_to_file_sink(a, obj));
	json_object_put(obj);
	return 0;
}

/*
 * `agent` events: start, stop, reload, reload_failed and loss, on the same
 * paths as kernel events (file sink, `tlsguard events`), so an auditor sees
 * when enforcement changed and when findings were lost.
 */
void pipeline_agent_event_with(struct agent *a, const char *action, const char *message,
				  const char *key, json_object *extra)
{
	json_object *o = json_object_new_object(), *ag = json_object_new_object();
	json_object *pol = json_object_new_object();
	char when[64];

	if (!o || !ag || !pol) {
		json_object_put(o);
		json_object_put(ag);
		json_object_put(pol);
		json_object_put(extra);
		return;
	}
	events_format_time(tg_real_ns(), when, sizeof(when));
	json_object_object_add(o, "schema", json_object_new_string(TG_EVENT_SCHEMA));
	json_object_object_add(o, "time", json_object_new_string(when));
	json_object_object_add(o, "host", json_object_new_string(a->ev_ctx.host));
	json_object_object_add(o, "type", json_object_new_string("agent"));
	json_object_object_add(o, "action", json_object_new_string(action));
	json_object_object_add(ag, "version", json_object_new_string(TLSGUARD_VERSION));
	json_object_object_add(ag, "pid", json_object_new_int(getpid()));
	json_object_object_add(ag, "pin_path", json_object_new_string(a->loader.pin_dir));
	json_object_object_add(o, "agent", ag);
	json_object_object_add(pol, "source", json_object_new_string(a->policy->source));
	json_object_object_add(pol, "sha256", json_object_new_string(a->policy_sha256));
	json_object_object_add(o, "policy", pol);
	json_object_object_add(o, "message", message ? json_object_new_string(message) : NULL);
	if (key && extra)
		json_object_object_add(o, key, extra);
	agent_ai_event(a, o);
	control_publish_line(&a->control, o, write_to_file_sink(a, o));
	pipeline_flush(a);
	json_object_put(o);
}

void pipeline_agent_event(struct agent *a, const char *action, const char *message)
{
	pipeline_agent_event_with(a, action, message, NULL, NULL);
}

/* The App Insights sink lost items (spool full, queue full): an `agent` loss event. */
void pipeline_loss_event(struct agent *a, const char *message)
{
	pipeline_agent_event(a, "loss", message);
}
