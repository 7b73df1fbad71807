// SPDX-License-Identifier: MIT
/*
 * The event pipeline, in the order an event takes: a ring buffer record →
 * its blocked socket destroyed → workload selection → event_id and the
 * tally → App Insights (a copy, in the clear: the sink protects its own) →
 * field protection (events.encrypt_fields/hash_fields) → control followers →
 * the file sink, flushed once per ring buffer batch. Without field
 * protection the JSON line is written straight from the record. Agent events
 * take the same path.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "ai_feed.h"
#include "clock.h"
#include "control.h"
#include "enforcer.h"
#include "events.h"
#include "fieldcrypt.h"
#include "log.h"
#include "pipeline.h"
#include "policy.h"
#include "tally.h"
#include "workload.h"

void pipeline_init(struct tg_pipeline *p)
{
	memset(p, 0, sizeof(*p));
	p->file_sink = (struct tg_sink_stats){ .name = "file", .ok = true };
}

void pipeline_set_policy(struct tg_pipeline *p, const struct tg_policy *policy, const char *sha256)
{
	p->policy = policy;
	p->policy_sha256 = sha256;
}

static struct tg_fieldcrypt *field_protection(const struct tg_pipeline *p)
{
	return p->ai ? p->ai->fc : NULL;
}

static bool sends_to_app_insights(const struct tg_pipeline *p)
{
	return p->ai && p->ai->sink;
}

static void file_sink_failed(struct tg_pipeline *p, uint64_t n, int err)
{
	p->file_sink.failed += n;
	p->events_write_failed += n;
	if (p->file_sink.ok)
		tg_err("cannot write events: %s", strerror(-err));
	p->file_sink.ok = false;
	snprintf(p->file_sink.last_error, sizeof(p->file_sink.last_error), "write: %s", strerror(-err));
}

/* One write(2) per ring buffer batch instead of one per event. */
void pipeline_flush(struct tg_pipeline *p)
{
	uint64_t n = p->file_sink.pending;
	int err;

	if (p->ai)
		ai_feed_commit(p->ai);	/* the journal first: durable before the ring buffer moves on */
	if (!n)
		return;
	p->file_sink.pending = 0;
	err = event_file_flush(&p->ev_file);
	if (err) {
		file_sink_failed(p, n, err);
		return;
	}
	p->file_sink.ok = true;
	p->file_sink.sent += n;
	p->file_sink.last_success_ns = tg_real_ns();
	p->events_emitted += n;
}

static void count_file_write(struct tg_pipeline *p, int err)
{
	if (err)
		file_sink_failed(p, 1, err);
	else
		p->file_sink.pending++;
}

/* Buffered write; counted as sent when the batch is flushed (pipeline_flush). */
static const char *write_to_file_sink(struct tg_pipeline *p, json_object *obj)
{
	const char *line = event_line(obj);

	count_file_write(p, event_file_write_line(&p->ev_file, line));
	return line;
}

static void destroy_blocked_socket(struct tg_pipeline *p, const struct tg_event *ev)
{
	int err = enforcer_destroy(p->enforcer, ev);

	if (!err) {
		p->sockets_destroyed++;
	} else if (err != -ENOENT) {
		p->destroy_failed++;
		tg_warn("cannot destroy blocked socket (cookie %llu): %s; its segments stay dropped",
			(unsigned long long)ev->cookie, strerror(-err));
	}
}

/*
 * events.encrypt_fields/hash_fields, in place, for the local sinks that come
 * next (followers, the file). A value that cannot be protected is redacted.
 */
static void protect_fields(struct tg_pipeline *p, json_object *obj)
{
	struct tg_fieldcrypt *fc = field_protection(p);
	int err;

	if (!fc)
		return;
	err = fieldcrypt_protect(fc, obj);
	if (err && !p->protect_failed_logged) {
		tg_err("field protection failed (%s); the value was redacted in the event",
		       strerror(-err));
		p->protect_failed_logged = true;
	}
}

/* App Insights (a copy), protection, then the local sinks: every event but the plain kernel line. */
static void publish_object(struct tg_pipeline *p, json_object *obj)
{
	if (p->ai)
		ai_feed_submit(p->ai, obj);
	protect_fields(p, obj);
	control_publish_line(p->control, obj, write_to_file_sink(p, obj));
}

/*
 * No field protection: the line is written straight from the record
 * (events_line), the same bytes a json-c object would print; an object is
 * made only for those that take one (App Insights, `tlsguard events -f`).
 */
static int write_event_line(struct tg_pipeline *p, const struct tg_event *ev, const void *raw,
			    size_t size)
{
	char id[TG_EVENT_ID_LEN + 1];
	struct tg_event_keys keys;
	json_object *obj = NULL;
	const char *line;

	events_event_id(p->ev_ctx.host, raw, size, id);	/* the same when the record is read again */
	line = events_line(&p->ev_ctx, ev, id, &p->ev_file.line, &keys);
	if (!line) {
		p->events_write_failed++;
		return 0;
	}
	tally_event_keys(&p->top, &keys);
	if (sends_to_app_insights(p) || p->control->nclients) {
		obj = events_to_json(&p->ev_ctx, ev);
		if (obj) {
			json_object_object_add(obj, "event_id", json_object_new_string(id));
			if (p->ai)
				ai_feed_submit(p->ai, obj);	/* App Insights takes a copy */
		}
	}
	/* followers match on obj: without clients control_publish_line() only keeps the line */
	if (obj || !p->control->nclients)
		control_publish_line(p->control, obj, line);
	count_file_write(p, event_file_write_len(&p->ev_file, line, p->ev_file.line.len));
	json_object_put(obj);
	return 0;
}

/* event_id: two differently seeded hashes of host and record, the same when it is read again. */
static void stamp_kernel_event(const struct tg_pipeline *p, json_object *obj, const void *raw,
			       size_t size)
{
	char id[TG_EVENT_ID_LEN + 1];

	events_event_id(p->ev_ctx.host, raw, size, id);
	json_object_object_add(obj, "event_id", json_object_new_string(id));
}

int pipeline_record(void *ctx, void *data, size_t size)
{
	struct tg_pipeline *p = ctx;
	const struct tg_event *ev = data;
	json_object *obj;

	if (size < sizeof(*ev))
		return 0;	/* a record from an incompatible build; ignored */
	/* the application is waiting on a dropped segment: unblock it first
	 * (plaintext, weak TLS, SNI mismatch: every blocked flow but connect()) */
	if (ev->type != TG_EV_BLOCKED_CONNECT && ev->action == TG_ACT_BLOCKED)
		destroy_blocked_socket(p, ev);
	/* pods outside workloads.kubernetes are not reported (a block never goes silent) */
	if (p->ev_ctx.workloads && ev->action != TG_ACT_BLOCKED &&
	    !workloads_event_selected(p->ev_ctx.workloads, ev->cgroup_id))
		return 0;
	if (!field_protection(p))
		return write_event_line(p, ev, data, size);
	obj = events_to_json(&p->ev_ctx, ev);
	if (!obj) {
		p->events_write_failed++;
		return 0;
	}
	stamp_kernel_event(p, obj, data, size);
	tally_event(&p->top, obj);	/* before protection: tallies group by clear names */
	publish_object(p, obj);
	json_object_put(obj);
	return 0;
}

/*
 * `agent` events: start, stop, reload, reload_failed and loss, on the same
 * paths as kernel events (file sink, `tlsguard events`), so an auditor sees
 * when enforcement changed and when findings were lost.
 */
void pipeline_agent_event_with(struct tg_pipeline *p, const char *action, const char *message,
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
	json_object_object_add(o, "host", json_object_new_string(p->ev_ctx.host));
	json_object_object_add(o, "type", json_object_new_string("agent"));
	json_object_object_add(o, "action", json_object_new_string(action));
	json_object_object_add(ag, "version", json_object_new_string(TLSGUARD_VERSION));
	json_object_object_add(ag, "pid", json_object_new_int(getpid()));
	json_object_object_add(ag, "pin_path", json_object_new_string(p->pin_dir ? p->pin_dir : ""));
	json_object_object_add(o, "agent", ag);
	json_object_object_add(pol, "source", json_object_new_string(p->policy->source));
	json_object_object_add(pol, "sha256", json_object_new_string(p->policy_sha256));
	json_object_object_add(o, "policy", pol);
	json_object_object_add(o, "message", message ? json_object_new_string(message) : NULL);
	if (key && extra)
		json_object_object_add(o, key, extra);
	publish_object(p, o);
	pipeline_flush(p);
	json_object_put(o);
}

void pipeline_agent_event(struct tg_pipeline *p, const char *action, const char *message)
{
	pipeline_agent_event_with(p, action, message, NULL, NULL);
}

/* The App Insights sink lost items (spool full, queue full): an `agent` loss event. */
void pipeline_loss_event(void *ctx, const char *message)
{
	pipeline_agent_event(ctx, "loss", message);
}
