/* SPDX-License-Identifier: MIT */
/*
 * Kernel events → the DESIGN event schema (tlsguard.event/v1), one JSON
 * object per line. Building (events_to_json) is kept apart from writing so
 * every sink sees the same object.
 */
#ifndef TLSGUARD_AGENT_EVENTS_H
#define TLSGUARD_AGENT_EVENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "jout.h"
#include "tlsguard/event.h"

#define TG_EVENT_SCHEMA "tlsguard.event/v1"

struct cgroup_names;
struct tg_dest_table;
struct tg_workloads;

struct tg_event_ctx {
	char host[256];
	int64_t mono_to_real_ns;	/* add to CLOCK_MONOTONIC ns to get UTC ns */
	const struct tg_dest_table *dests;
	struct cgroup_names *cgroups;
	struct tg_workloads *workloads;	/* pod/unit attribution; NULL: cgroup only */
};

void events_ctx_init(struct tg_event_ctx *ctx);

/* A new json object, or NULL (ENOMEM). */
json_object *events_to_json(const struct tg_event_ctx *ctx, const struct tg_event *ev);

/* What status tallies need from an event without a json-c object (agent.c). */
struct tg_event_keys {
	const char *type;
	const char *cgroup;		/* NULL when unknown */
	const char *comm;		/* NULL when empty */
	const char *cls;		/* NULL when unknown */
	const char *name;		/* destination.name, NULL when none */
	char ip[46];			/* destination.ip */
	unsigned int port;
	char comm_buf[17];
	char host_buf[256];		/* a tunnel's host, where ->name points then */
};

/* 32 hex digits: FNV-1a 64 of host + record and of record + host, differently seeded. */
#define TG_EVENT_ID_LEN 32
void events_event_id(const char *host, const void *raw, size_t len, char out[TG_EVENT_ID_LEN + 1]);

/*
 * The event as one JSON line (no newline) in @buf (reused: its old content
 * is replaced), with "event_id": @event_id last when not NULL: exactly
 * event_line() of events_to_json() with that event_id added. @keys (may be
 * NULL) gets the fields status tallies group by, as they appear in the
 * line (before JSON escaping, and before UTF-8 repair). NULL: no memory.
 */
const char *events_line(const struct tg_event_ctx *ctx, const struct tg_event *ev,
			const char *event_id, struct tg_jbuf *buf, struct tg_event_keys *keys);

const char *events_type_name(uint8_t type);
const char *events_action_name(uint8_t action);
const char *events_connect_reason_name(uint8_t reason);
const char *events_plain_reason_name(uint8_t reason);

/* Format an address (16-byte, v4-mapped for IPv4) the way events print it. */
void events_format_addr(const uint8_t addr[16], char *out, size_t len);

/* Format a UTC time with microseconds, "2026-11-22T19:00:00.123456Z". */
void events_format_time(int64_t real_ns, char *out, size_t len);

struct tg_event_file {
	FILE *f;
	int owned;			/* 0 for stdout */
	struct tg_jbuf line;		/* events_line()'s buffer, kept from event to event */
};

/* path NULL or "-": stdout. Appends, creates 0600. */
int event_file_open(struct tg_event_file *out, const char *path);
int event_file_write(struct tg_event_file *ef, json_object *obj);	/* line + flush */

/* The event as one JSON line (no newline); owned by @obj until it changes. */
const char *event_line(json_object *obj);
/* Buffered: the agent writes a ring buffer batch, then flushes once. */
int event_file_write_line(struct tg_event_file *ef, const char *line);
int event_file_write_len(struct tg_event_file *ef, const char *line, size_t len);
int event_file_flush(struct tg_event_file *ef);
void event_file_close(struct tg_event_file *ef);

#endif /* TLSGUARD_AGENT_EVENTS_H */
