/* SPDX-License-Identifier: MIT */
/*
 * The per-event tally behind status "top": which workloads and destinations
 * violate most. A bounded table each (TG_TOP_MAX keys); when it is full the
 * least seen key gives way, so it is a top-N, not an exact count.
 */
#ifndef TLSGUARD_TALLY_H
#define TLSGUARD_TALLY_H

#include <stdint.h>

#include <json-c/json.h>

#define TG_TOP_MAX 64			/* distinct workloads/destinations tallied */
#define TG_TOP_SHOWN 5			/* entries status shows of each */

struct tg_event_keys;

struct tg_tally {
	char key[320];
	uint64_t count;
};

struct tg_top {
	struct tg_tally workloads[TG_TOP_MAX], destinations[TG_TOP_MAX];
};

/* Count a violation (any event type but "tls"; NULL: not an event) by @ev's fields. */
void tally_event(struct tg_top *t, json_object *ev);
/* The same from the event's fields (UTF-8 already; NULL: absent), without an object. */
void tally_fields(struct tg_top *t, const char *type, const char *cg, const char *comm,
		  const char *cls, const char *name, const char *ip, const char *port);

/* The same from an event line's keys (events.h), made valid UTF-8 as json-c would. */
void tally_event_keys(struct tg_top *t, const struct tg_event_keys *k);

/*
 * The TG_TOP_SHOWN most counted keys of @t (TG_TOP_MAX entries), most first
 * (ties by key), as [{@label: key, "violations": n}, ...].
 */
json_object *tally_top_json(const struct tg_tally *t, const char *label);

#endif /* TLSGUARD_TALLY_H */
