/* SPDX-License-Identifier: MIT */
/*
 * Application Insights envelopes (one JSON line per telemetry item) from
 * tlsguard events and counters. See reference/application-insights.md.
 *
 * Every limit of the service is enforced here so that an item is never
 * rejected for its shape: names, property keys and values and tags are cut on
 * a UTF-8 character boundary and end with TG_AI_TRUNC_MARKER; bytes that are
 * not valid UTF-8 (an SNI from the wire) become U+FFFD; an item still too big
 * has its longest property values shortened, then properties dropped, and
 * says so in "tlsguard.truncated" / "tlsguard.dropped_properties". Limits are
 * counted in bytes, which is never less than the service's UTF-16 count.
 * Encrypted ("enc:v1:") and hashed values are never cut (a cut one would be
 * useless): they are replaced by TG_AI_REMOVED_MARKER instead.
 */
#ifndef TLSGUARD_AI_ENVELOPE_H
#define TLSGUARD_AI_ENVELOPE_H

#include <stddef.h>
#include <time.h>

#include <json-c/json.h>

#define TG_AI_MAX_NAME		512
#define TG_AI_MAX_PROP_KEY	150
#define TG_AI_MAX_PROP_VALUE	8192
#define TG_AI_MAX_ITEM		64000	/* serialized bytes; the service's 64 KB, with room */
#define TG_AI_MAX_ROLE		256
#define TG_AI_MAX_ROLE_INSTANCE	256
#define TG_AI_MAX_SDK_VERSION	64
#define TG_AI_TRUNC_MARKER	"\xe2\x80\xa6[truncated]"	/* "…[truncated]" */
#define TG_AI_REMOVED_MARKER	"[removed: too long for Application Insights]"
#define TG_AI_ROLE		"tlsguard"

struct tg_ai_envelope;

/*
 * Envelope settings shared by every item. @ikey is the connection string's
 * InstrumentationKey; @role_instance the node name (NULL: gethostname());
 * @version goes into ai.internal.sdkVersion as "tlsguard:<version>".
 * NULL + errno on failure. Immutable afterwards: safe to share between threads.
 */
struct tg_ai_envelope *ai_envelope_new(const char *ikey, const char *role_instance,
				       const char *version);
void ai_envelope_free(struct tg_ai_envelope *e);

/*
 * An item's text (no newline, NUL-terminated, @len bytes) in a buffer the
 * caller keeps from item to item, so that rendering allocates nothing once the
 * buffer has grown to an item's size. Start zeroed; ai_line_free() at the end.
 */
struct tg_ai_line {
	char *p;
	size_t len, cap;
};

void ai_line_free(struct tg_ai_line *line);

/*
 * One EventData item for @event (DESIGN event schema) into @line: name =
 * "type", properties = every non-null leaf as "dotted.key": "string" (arrays
 * as their JSON text), measurements {"count": N} from a numeric top-level
 * "count" (else 1), time = the event's "time" cut to milliseconds (else now).
 * -EINVAL when the event has no string "type"; -ENOMEM. On error line->len is 0.
 */
int ai_envelope_event(const struct tg_ai_envelope *e, json_object *event, struct tg_ai_line *line);

struct tg_ai_metric {
	const char *name;		/* e.g. "tlsguard.events_lost" */
	double value;			/* must be finite: JSON has no NaN */
	int count;			/* samples behind @value; 0 means 1 */
	json_object *properties;	/* optional, flattened like event properties */
	const struct timespec *time;	/* NULL: now */
};

/* One MetricData item with a single data point. Errors as ai_envelope_event(). */
int ai_envelope_metric(const struct tg_ai_envelope *e, const struct tg_ai_metric *m,
		       struct tg_ai_line *line);

/* "2026-11-22T19:00:00.123Z" into @buf (at least 32 bytes). 0 or -EINVAL. */
int ai_format_time(const struct timespec *ts, char *buf, size_t buflen);

#endif /* TLSGUARD_AI_ENVELOPE_H */
