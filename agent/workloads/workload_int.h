/* SPDX-License-Identifier: MIT */
/*
 * Inside the workload module: the state shared by workload.c (tables,
 * attribution, selection; event-loop side) and workload_api.c (the
 * Kubernetes API thread). Not for other files.
 */
#ifndef TLSGUARD_AGENT_WORKLOAD_INT_H
#define TLSGUARD_AGENT_WORKLOAD_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "clock.h"
#include "workload.h"

enum wl_api_state {
	WL_API_OFF = 0,			/* no API configured */
	WL_API_LISTING,
	WL_API_WATCHING,
	WL_API_BACKOFF,			/* after an error, waiting to retry */
};

struct cache_slot;

struct tg_workloads {
	struct wl_config cfg;		/* cfg.sel changes on reload, under @lock */
	struct cgroup_names *cgroups;	/* borrowed; event-loop thread only */
	const char *cg_mount;		/* borrowed */
	char *const *roots;		/* borrowed: absolute watched cgroup dirs */
	size_t nroots;

	pthread_mutex_t lock;		/* guards everything below up to the fds */
	pthread_cond_t wake;		/* stop requests for the API thread's sleeps */
	bool stop;
	struct wl_pod_table api;	/* pods from the API */
	struct wl_pod_table logs;	/* pods from the log directory */
	uint64_t logs_scanned_ns;
	int logs_err;
	uint64_t gen;			/* bumped on every table or selector change */
	struct cache_slot *cache;
	int api_state;			/* enum wl_api_state */
	uint64_t api_lists, api_watch_events, api_errors;
	char api_last_error[256];

	pthread_t thread;
	bool thread_started;
	int poll_fd;			/* epoll over event_fd + timer_fd, for the agent loop */
	int event_fd;			/* API thread → loop */
	int timer_fd;			/* once a second: find new pod cgroups */

	int skip_fd;			/* kernel map of unwatched cgroup ids, or -1 */
	uint64_t *skip;			/* sorted: what the map holds (or would) */
	size_t nskip;
	bool skip_map_warned, scan_warned;
	uint64_t events_unselected;	/* event-loop thread only */

	/* mode overrides (policy `overrides:`): rules, and what the kernel map holds */
	struct wl_override_rule *ov;	/* under @lock (the selector part is read by scans) */
	size_t nov;
	int ov_fd;			/* kernel map cgroup id → struct tg_override, or -1 */
	struct wl_ov_entry *ovs;	/* sorted by id: what the map holds */
	size_t novs;
	bool ov_rewrite;		/* the rules changed: write every entry again */
	bool ov_map_warned;
};

struct wl_override_rule {
	char *name;
	struct wl_selector sel;		/* pods: namespaces, labels; empty: not by pod */
	bool by_pod;
	char **cgroups;			/* patterns relative to the mount, "/..." */
	size_t ncgroups;
	struct tg_override val;		/* what its cgroups map to in the kernel */
	size_t matched;			/* cgroups it selects now */
};

struct wl_ov_entry {
	uint64_t id;
	uint32_t rule;			/* index into ->ov */
};

void wl_changed_locked(struct tg_workloads *w);
int wl_api_start(struct tg_workloads *w);
void wl_api_stop(struct tg_workloads *w);
const char *wl_api_state_name(int state);

#endif /* TLSGUARD_AGENT_WORKLOAD_INT_H */
