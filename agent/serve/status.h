/* SPDX-License-Identifier: MIT */
/* What the agent reports about itself: `tlsguard status -o json` and /metrics. */
#ifndef TLSGUARD_AGENT_STATUS_H
#define TLSGUARD_AGENT_STATUS_H

#include <stdio.h>

#include <json-c/json.h>

struct agent;

/* The DESIGN status contract (agent, hooks, policy, counters, sinks, top, health). */
json_object *status_build_json(struct agent *a);

/*
 * The verdict counters of status "counters" (flows_tracked, tls, plaintext,
 * weak_tls, sni_mismatch, blocked, flagged) from kernel counters @c
 * (TG_CNT__MAX of them); also what upgrade_done reports of an old generation.
 */
json_object *status_verdict_counters_json(const uint64_t *c);

/* Prometheus text format into a malloc'd buffer (*out, *len). 0 or -ENOMEM. */
int status_build_metrics(struct agent *a, char **out, size_t *len);

/* Remember a violation for the "top workloads/destinations" tables. */
void status_tally_event(struct agent *a, json_object *ev);
/* The same from the event's fields (UTF-8 already; NULL: absent), without an object. */
void status_tally_fields(struct agent *a, const char *type, const char *cg, const char *comm,
			 const char *cls, const char *name, const char *ip, const char *port);

#endif /* TLSGUARD_AGENT_STATUS_H */
