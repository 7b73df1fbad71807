/* SPDX-License-Identifier: MIT */
/* What the agent reports about itself: `tlsguard status -o json` and /metrics. */
#ifndef TLSGUARD_AGENT_STATUS_H
#define TLSGUARD_AGENT_STATUS_H

#include <stdio.h>

#include <json-c/json.h>

struct agent;

/* The DESIGN status contract (agent, hooks, policy, counters, sinks, top, health). */
json_object *status_build_json(struct agent *a);

/* Prometheus text format into a malloc'd buffer (*out, *len). 0 or -ENOMEM. */
int status_build_metrics(struct agent *a, char **out, size_t *len);

/* Remember a violation for the "top workloads/destinations" tables. */
void status_tally_event(struct agent *a, json_object *ev);

#endif /* TLSGUARD_AGENT_STATUS_H */
