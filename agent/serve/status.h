/* SPDX-License-Identifier: MIT */
/*
 * What the agent reports about itself: `tlsguard status -o json` (status.c)
 * and /metrics (prometheus.c), both built from a struct tg_status_view the
 * daemon fills for each request: const pointers to the modules' state and
 * plain numbers, so that neither needs the daemon (and a test can hand-build one).
 */
#ifndef TLSGUARD_AGENT_STATUS_H
#define TLSGUARD_AGENT_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "tlsguard/counters.h"

struct tg_control;
struct tg_dest_table;
struct tg_dnslearn;
struct tg_dnslearn_stats;
struct tg_loader;
struct tg_policy;
struct tg_ai_sink_stats;
struct tg_top;
struct tg_handoff_state;
struct tg_workloads;

/* A sink's delivery figures (the file sink's are kept by the daemon). */
struct tg_sink_stats {
	const char *name;
	bool ok;
	uint64_t sent, failed, queued, spooled;
	uint64_t pending;		/* written to the buffer, not yet flushed */
	int64_t last_success_ns;	/* CLOCK_REALTIME, 0 = never */
	char last_error[256];
};

struct tg_status_view {
	/* the agent */
	int mode;				/* in force: enum tg_mode */
	bool mode_from_cli;			/* --mode, not the policy */
	int64_t started_real_ns;		/* CLOCK_REALTIME */
	double uptime_s;
	const struct tg_loader *loader;		/* pins, hooks (their link fds are read) */
	const char *cg_mount;			/* cgroup paths are shown relative to it */
	/* the policy */
	const struct tg_policy *policy;
	const char *policy_sha256;
	int64_t policy_loaded_ns;		/* CLOCK_REALTIME */
	uint64_t reloads, reload_failures;
	bool reloading;				/* being prepared or applied */
	size_t hosts, resolved_ips, unresolved_hosts;
	const struct tg_dest_table *dests;
	const uint64_t (*class_stats)[TG_CS__MAX];	/* by class id, 0..dests->nclasses */
	const struct tg_dnslearn *dns;		/* NULL: no DNS learning */
	const struct tg_dnslearn_stats *dns_stats;	/* zeros without DNS learning */
	/* the kernel's counters */
	uint64_t counters[TG_CNT__MAX];		/* since the pins were created */
	const uint64_t *counters_at_start;	/* TG_CNT__MAX, when this agent started */
	uint64_t live_flows;			/* the tg_live_flows gauge */
	const struct tg_handoff_state *handoff;
	/* what the agent did with the events */
	uint64_t events_emitted, events_write_failed;
	uint64_t sockets_destroyed, destroy_failed;
	const struct tg_sink_stats *file_sink;
	const char *events_target;		/* events.file or --events-file; NULL, "-": stdout */
	const struct tg_ai_sink_stats *ai;	/* NULL: App Insights not configured */
	struct tg_workloads *workloads;		/* NULL: no workload attribution */
	const struct tg_top *top;		/* tally.h */
	const struct tg_control *control;	/* the socket and its clients */
};

/* The DESIGN status contract (agent, hooks, policy, counters, sinks, top, health). */
json_object *status_build_json(const struct tg_status_view *v);

/*
 * The verdict counters of status "counters" (flows_tracked, tls, plaintext,
 * weak_tls, sni_mismatch, blocked, flagged) from kernel counters @c
 * (TG_CNT__MAX of them); also what upgrade_done reports of an old generation.
 */
json_object *status_verdict_counters_json(const uint64_t *c);

/* ---- what status.c and prometheus.c share ---- */

/* The name status and metrics give kernel counter @i (enum tg_counter), class stat @s. */
const char *status_counter_name(int i);
const char *status_class_stat_name(int s);

/* The figures both report, derived from the view. */
struct tg_status_figures {
	uint64_t since[TG_CNT__MAX];	/* counters since this agent started */
	uint64_t events_lost;		/* ring buffer full + writes failed, since start */
};
void status_figures(const struct tg_status_view *v, struct tg_status_figures *f);

/* One program's link read back from the kernel. */
struct tg_hook_state {
	bool attached;
	uint32_t prog_id;
	uint64_t run_cnt, run_time_ns;
};
void status_read_hook(int link_fd, struct tg_hook_state *h);

/* @abs relative to the cgroup2 mount ("/" for the mount itself). */
const char *status_rel_cgroup(const struct tg_status_view *v, const char *abs);

/* Stats of class @id (zeros when the view has none). */
const uint64_t *status_class_stats(const struct tg_status_view *v, uint32_t id);

#endif /* TLSGUARD_AGENT_STATUS_H */
