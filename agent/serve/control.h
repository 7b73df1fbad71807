/* SPDX-License-Identifier: MIT */
/*
 * The control socket: a unix stream socket (default /run/tlsguard/tlsguard.sock,
 * 0600 root; `control.group` grants a group read access) answering one JSON
 * request per connection:
 *
 *   {"v":1,"cmd":"status"}                 → {"v":1,"ok":true,"status":{...}}
 *   {"v":1,"cmd":"events","follow":false,  → the recent events, one JSON line each,
 *    "type":"plaintext","workload":"x"}      then (follow) live ones until the client leaves
 *   anything else                          → {"v":1,"ok":false,"error":"..."}
 *
 * Requests are bounded (TG_CONTROL_REQ_MAX bytes, TG_CONTROL_REQ_TIMEOUT_S to
 * arrive); every socket is non-blocking and each client's pending output is
 * capped, so one slow or hostile client cannot stall the agent.
 */
#ifndef TLSGUARD_AGENT_CONTROL_H
#define TLSGUARD_AGENT_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#define TG_DEFAULT_SOCKET		"/run/tlsguard/tlsguard.sock"
#define TG_CONTROL_VERSION		1
#define TG_CONTROL_REQ_MAX		4096
#define TG_CONTROL_REQ_TIMEOUT_S	5
#define TG_CONTROL_OUT_MAX		(8u << 20)	/* pending bytes per client */
#define TG_CONTROL_MAX_CLIENTS		64
#define TG_RECENT_EVENTS		1024

struct agent;
struct tg_control_client;

struct tg_control {
	struct agent *agent;
	char path[108];
	int listen_fd;
	gid_t group;			/* (gid_t)-1: root only */
	struct tg_control_client **clients;
	size_t nclients;
	char **recent;			/* ring of event JSON lines */
	size_t recent_head, recent_n;
	uint64_t refused_peers, bad_requests, follower_drops;
	void *listen_watch;
};

/* Create the socket (and its directory, 0755). 0 or -errno, logged. */
int control_open(struct tg_control *c, struct agent *a, const char *path, const char *group);
void control_close(struct tg_control *c);

/* Keep the event for `events` and stream it to matching followers. */
void control_publish_event(struct tg_control *c, json_object *ev);
/* The same with the event already serialised (the agent writes it once). */
void control_publish_line(struct tg_control *c, json_object *ev, const char *line);

/* Close clients whose request did not arrive in time. Call about once a second. */
void control_sweep(struct tg_control *c);

enum tg_control_cmd {
	TG_CMD_STATUS = 1,
	TG_CMD_EVENTS,
};

struct tg_control_request {
	int cmd;			/* enum tg_control_cmd */
	bool follow;
	char *type, *workload;		/* events filters, NULL = any */
};

/*
 * Parse one request line (without its newline). 0, or -EINVAL with *err
 * naming what is wrong (a static string). Free with control_request_free().
 */
int control_parse_request(const char *line, size_t len, struct tg_control_request *out,
			  const char **err);
void control_request_free(struct tg_control_request *r);

/* Does event @ev match the filters (NULL = any)? */
bool control_event_matches(json_object *ev, const char *type, const char *workload);

#endif /* TLSGUARD_AGENT_CONTROL_H */
