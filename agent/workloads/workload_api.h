/* SPDX-License-Identifier: MIT */
/*
 * The Kubernetes API client: a thread that lists and watches the pods of
 * this node into a pod store (pod_store.h). It sees the store and its own
 * settings, nothing else of the workload module.
 */
#ifndef TLSGUARD_AGENT_WORKLOAD_API_H
#define TLSGUARD_AGENT_WORKLOAD_API_H

#include <pthread.h>
#include <stdbool.h>

#include "pod_store.h"

enum wl_api_state {
	WL_API_OFF = 0,			/* no API configured */
	WL_API_LISTING,
	WL_API_WATCHING,
	WL_API_BACKOFF,			/* after an error, waiting to retry */
};

struct wl_api_config {
	const char *server;		/* https://host:port */
	const char *token_file;
	const char *ca_file;
	const char *node_name;
	const char *log_dir;		/* for messages: where pods come from meanwhile */
};

struct wl_api {
	struct wl_api_config cfg;	/* borrowed strings, for the thread's life */
	struct wl_pod_store *store;	/* borrowed */
	pthread_t thread;
	bool started;
};

/* Start the thread on @api->store with @api->cfg. 0 or -errno (logged). */
int wl_api_start(struct wl_api *api);
/* Ask it to stop and wait for it; nothing when not started. */
void wl_api_stop(struct wl_api *api);
const char *wl_api_state_name(int state);

#endif /* TLSGUARD_AGENT_WORKLOAD_API_H */
