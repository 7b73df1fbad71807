// SPDX-License-Identifier: MIT
/*
 * The daemon's side of status and metrics: a struct tg_status_view (status.h)
 * filled from struct agent for each request, so serve/ never sees the agent.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "agent_state.h"
#include "prometheus.h"
#include "ai_sink.h"
#include "status.h"

/* What a view points to besides the agent: read once per request. */
struct view_data {
	struct tg_ai_sink_stats ai;
	struct tg_dnslearn_stats dns;
	uint64_t (*class_stats)[TG_CS__MAX];
};

static void fill_view(struct agent *a, struct tg_status_view *v, struct view_data *d)
{
	struct timespec now;

	memset(v, 0, sizeof(*v));
	memset(d, 0, sizeof(*d));
	v->mode = a->opts->mode_override >= 0 ? a->opts->mode_override : a->policy->mode;
	v->mode_from_cli = a->opts->mode_override >= 0;
	v->started_real_ns = a->started_real_ns;
	clock_gettime(CLOCK_MONOTONIC, &now);
	v->uptime_s = (now.tv_sec - a->started_mono.tv_sec) +
		      (now.tv_nsec - a->started_mono.tv_nsec) / 1e9;
	v->loader = &a->loader;
	v->cg_mount = a->cg_mount;
	v->policy = a->policy;
	v->policy_sha256 = a->policy_sha256;
	v->policy_loaded_ns = a->policy_loaded_ns;
	v->reloads = a->reloads;
	v->reload_failures = a->reload_failures;
	v->reloading = a->reload.running || a->reload.applying;
	pthread_mutex_lock(&a->hosts->lock);
	v->hosts = a->hosts->n;
	for (size_t i = 0; i < a->hosts->n; i++) {
		v->resolved_ips += a->hosts->v[i].addrs.naddrs;
		v->unresolved_hosts += !a->hosts->v[i].addrs.naddrs;
	}
	pthread_mutex_unlock(&a->hosts->lock);
	v->dests = &a->dests;
	d->class_stats = calloc(a->dests.nclasses + 1, sizeof(*d->class_stats));
	for (uint32_t id = 1; d->class_stats && id <= a->dests.nclasses; id++)
		if (dests_class_name(&a->dests, id))
			agent_read_class_stats(a, id, d->class_stats[id]);
	v->class_stats = (const uint64_t (*)[TG_CS__MAX])d->class_stats;	/* NULL: zeros */
	v->dns = a->dns;
	dnslearn_get_stats(a->dns, &d->dns);
	v->dns_stats = &d->dns;
	agent_read_counters(a, v->counters);
	v->counters_at_start = a->counters_at_start;
	agent_read_live_flows(a, &v->live_flows);
	v->handoff = &a->handoff;
	v->events_emitted = a->events_emitted;
	v->events_write_failed = a->events_write_failed;
	v->sockets_destroyed = a->sockets_destroyed;
	v->destroy_failed = a->destroy_failed;
	v->file_sink = &a->file_sink;
	v->events_target = a->opts->events_file ? a->opts->events_file : a->policy->events_file;
	if (a->ai) {
		ai_sink_stats(a->ai, &d->ai);
		v->ai = &d->ai;
	}
	v->workloads = a->ev_ctx.workloads;
	v->top = &a->top;
	v->control = &a->control;
}

json_object *agent_status_json(void *arg)
{
	struct tg_status_view v;
	struct view_data d;
	json_object *o;

	fill_view(arg, &v, &d);
	o = status_build_json(&v);
	free(d.class_stats);
	return o;
}

int agent_metrics_text(void *arg, char **out, size_t *len)
{
	struct tg_status_view v;
	struct view_data d;
	int err;

	fill_view(arg, &v, &d);
	err = prometheus_build(&v, out, len);
	free(d.class_stats);
	return err;
}
