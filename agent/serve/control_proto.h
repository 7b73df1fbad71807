/* SPDX-License-Identifier: MIT */
/*
 * The control protocol: what `tlsguard status`/`tlsguard events` (agent/cli/)
 * and the agent's control server (control.c) share, and all the CLI includes
 * of the server. A unix stream socket (default TG_DEFAULT_SOCKET, 0600 root;
 * `control.group` grants a group read access) answers one JSON request per
 * connection:
 *
 *   {"v":1,"cmd":"status"}                 → {"v":1,"ok":true,"status":{...}}
 *   {"v":1,"cmd":"events","follow":false,  → the recent events, one JSON line each,
 *    "type":"plaintext","workload":"x"}      then (follow) live ones until the client leaves
 *   anything else                          → {"v":1,"ok":false,"error":"..."}
 *
 * Requests are bounded (TG_CONTROL_REQ_MAX bytes, TG_CONTROL_REQ_TIMEOUT_S to
 * arrive).
 */
#ifndef TLSGUARD_CONTROL_PROTO_H
#define TLSGUARD_CONTROL_PROTO_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#define TG_DEFAULT_SOCKET		"/run/tlsguard/tlsguard.sock"
#define TG_CONTROL_VERSION		1
#define TG_CONTROL_REQ_MAX		4096
#define TG_CONTROL_REQ_TIMEOUT_S	5
#define TG_RECENT_EVENTS		1024	/* events the agent keeps for `events` */

/* The requests ("cmd") and the fields of the events filter. */
#define TG_CONTROL_REQ_STATUS		"status"
#define TG_CONTROL_REQ_EVENTS		"events"
#define TG_CONTROL_FIELD_FOLLOW		"follow"
#define TG_CONTROL_FIELD_TYPE		"type"
#define TG_CONTROL_FIELD_WORKLOAD	"workload"

enum tg_control_cmd {
	TG_CMD_STATUS = 1,
	TG_CMD_EVENTS,
};

struct tg_control_request {
	int cmd;			/* enum tg_control_cmd */
	bool follow;
	char *type, *workload;		/* events filters, NULL = any */
};

/* {"v": TG_CONTROL_VERSION, "cmd": @cmd}: the caller adds the command's fields. */
json_object *control_request_new(const char *cmd);

/*
 * Parse one request line (without its newline). 0, or -EINVAL with *err
 * naming what is wrong (a static string). Free with control_request_free().
 */
int control_parse_request(const char *line, size_t len, struct tg_control_request *out,
			  const char **err);
void control_request_free(struct tg_control_request *r);

/*
 * Does event @ev match the filters (NULL = any)? @type: the event type, whole;
 * @workload: the pod or comm, whole, or a part of the cgroup path.
 */
bool control_event_matches(json_object *ev, const char *type, const char *workload);

#endif /* TLSGUARD_CONTROL_PROTO_H */
