/* SPDX-License-Identifier: MIT */
/*
 * The daemon's state, shared by the files that make up the agent (agent.c:
 * lifecycle and event loop; status.c: what `tlsguard status` and metrics
 * report; control.c: the socket that serves them). Not for the CLI side.
 */
#ifndef TLSGUARD_AGENT_STATE_H
#define TLSGUARD_AGENT_STATE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "control.h"
#include "dests.h"
#include "enforcer.h"
#include "events.h"
#include "handoff.h"
#include "dnslearn.h"
#include "hosts.h"
#include "loader.h"
#include "loop.h"
#include "metrics.h"
#include "policy.h"
#include "reload.h"
#include "status.h"
#include "tally.h"
#include "tlsguard/counters.h"

struct tg_agent_opts;	/* agent.h: the command line, which agent.c owns */

struct tg_ai_sink;
struct tg_keyring;
struct tg_fieldcrypt;

struct tg_ringread;

struct agent {
	const struct tg_agent_opts *opts;
	struct tg_policy *policy;
	char policy_sha256[65];
	int64_t policy_loaded_ns;	/* CLOCK_REALTIME */
	char cg_mount[PATH_MAX];
	char **cg_paths;		/* absolute cgroup directories watched */
	size_t ncg;
	struct tg_hosts *hosts;		/* the policy's host and proxy names (prepare.h) */
	struct tg_hosts *retired_hosts[4];	/* replaced by a reload, refresh thread stopping */
	struct tg_reload reload;	/* reload.h */
	struct tg_dnslearn *dns;		/* names learned from DNS answers */
	struct tg_watch w_dns;
	struct tg_loader loader;
	struct tg_upgrade handoff;	/* upgrade from another pin layout (handoff.h) */
	struct ring_buffer *old_rb;	/* the draining generation's events, NULL: none */
	struct tg_watch w_old_ring;
	struct tg_dest_table dests;
	struct tg_enforcer enforcer;
	struct tg_event_ctx ev_ctx;
	struct tg_event_file ev_file;
	struct tg_ringread *rb;		/* ringread.h: advanced only after the journal commit */
	struct tg_control control;
	struct tg_metrics metrics;
	struct tg_loop loop;		/* loop.h: epoll, the signalfd, the once-a-second tick */
	struct tg_tick housekeeping_tick;
	struct tg_watch w_ring, w_hosts, w_config, w_reload;
	int inotify_fd;			/* watches the policy file's directory, -1: none */
	uint64_t ringbuf_lost_seen;	/* kernel ring buffer losses already reported */
	uint64_t fail_open_seen;	/* fail-open passes already reported */
	uint64_t untracked_seen[2];	/* untracked connects (flow cap, storage) already reported */
	struct timespec last_housekeeping;	/* CLOCK_MONOTONIC of the last tick */
	struct tg_watch w_workloads;	/* workload.c: pod table changes, rescans */
	bool stop;
	struct timespec started_mono;
	int64_t started_real_ns;
	uint64_t counters_at_start[TG_CNT__MAX];	/* kernel totals when we started */
	uint64_t events_emitted, events_write_failed;
	uint64_t sockets_destroyed, destroy_failed;
	uint64_t reloads, reload_failures;
	struct tg_sink_stats file_sink;
	struct tg_ai_sink *ai;		/* App Insights sink (agent_ai.c), NULL when not configured */
	struct tg_keyring *keys;	/* events.key_file(s), NULL without */
	struct tg_fieldcrypt *fc;	/* encrypt/hash_fields for the file sink and control socket */
	struct tg_watch w_ai;		/* the sink's loss notifications */
	void (*ai_on_loss)(struct agent *a, const char *message);
	bool ai_protect_logged;
	bool ai_reporting_loss;		/* the event being emitted reports App Insights losses */
	uint64_t event_id_run, event_id_next;	/* agent events' event_id (agent_ai.c) */
	struct tg_top top;		/* tally.h: status "top" */
};

/*
 * The status JSON and the /metrics text of agent @arg (agent_status.c: a
 * struct tg_status_view filled from it), for control_open and metrics_open.
 */
json_object *agent_status_json(void *arg);
int agent_metrics_text(void *arg, char **out, size_t *len);

/* Kernel counters summed over CPUs. */
int agent_read_counters(struct agent *a, uint64_t out[TG_CNT__MAX]);
int agent_read_class_stats(struct agent *a, uint32_t class_id, uint64_t out[TG_CS__MAX]);
/* Tracked flows whose sockets are open (the kernel's tg_live_flows gauge). */
int agent_read_live_flows(struct agent *a, uint64_t *out);

#endif /* TLSGUARD_AGENT_STATE_H */
