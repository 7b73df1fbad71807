/* SPDX-License-Identifier: MIT */
/*
 * The control server: the socket of control_proto.h (the protocol, shared with
 * the CLI), every socket non-blocking and each client's pending output capped,
 * so one slow or hostile client cannot stall the agent.
 */
#ifndef TLSGUARD_AGENT_CONTROL_H
#define TLSGUARD_AGENT_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "control_proto.h"
#include "loop.h"

#define TG_CONTROL_OUT_MAX		(8u << 20)	/* pending bytes per client */
#define TG_CONTROL_MAX_CLIENTS		64

struct tg_control_client;

/* The status object of a "status" request (the caller owns it), NULL: out of memory. */
typedef json_object *tg_control_status_fn(void *arg);

struct tg_control {
	struct tg_loop *loop;
	tg_control_status_fn *status_fn;
	void *status_arg;
	char path[108];
	int listen_fd;
	gid_t group;			/* (gid_t)-1: root only */
	struct tg_control_client **clients;
	size_t nclients;
	char **recent;			/* ring of event JSON lines */
	size_t recent_head, recent_n;
	uint64_t refused_peers, bad_requests, follower_drops;
	struct tg_watch listen_watch;
};

/*
 * Create the socket (and its directory, 0755) and watch it in @loop; a
 * "status" request is answered with status_fn(arg). 0 or -errno, logged.
 */
int control_open(struct tg_control *c, struct tg_loop *loop, const char *path, const char *group,
		 tg_control_status_fn *status_fn, void *arg);
void control_close(struct tg_control *c);

/* Keep the event for `events` and stream it to matching followers. */
void control_publish_event(struct tg_control *c, json_object *ev);
/* The same with the event already serialised (the agent writes it once). */
void control_publish_line(struct tg_control *c, json_object *ev, const char *line);

/* Close clients whose request did not arrive in time. Call about once a second. */
void control_sweep(struct tg_control *c);

#endif /* TLSGUARD_AGENT_CONTROL_H */
