/* SPDX-License-Identifier: MIT */
/*
 * Pods, the table they are kept in, what the Kubernetes API says about them
 * (a PodList, a watch event), and the pod store: the API thread's table with
 * its own lock, generation and eventfd, shared with the event loop's
 * attribution (workload.c) and nothing else of it.
 */
#ifndef TLSGUARD_AGENT_POD_STORE_H
#define TLSGUARD_AGENT_POD_STORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "policy.h"

#define WL_UID_MAX	40		/* 36-character UUID + NUL, rounded */
#define WL_CID_MAX	72		/* 64 hex + NUL, rounded */
#define WL_NAME_MAX	256		/* pod, container, unit names (DNS-1123: 253) */

struct wl_container {
	char id[WL_CID_MAX];		/* runtime's id, without the "containerd://" scheme */
	char *name;
};

struct wl_pod {
	char uid[WL_UID_MAX];
	char *name;
	char *namespace;
	struct tg_label *labels;	/* key/value; NULL when not known (log-dir fallback) */
	size_t nlabels;
	bool labels_known;		/* from the API (an empty set is still known) */
	struct wl_container *containers;
	size_t ncontainers;
};

struct wl_pod_table {
	struct wl_pod *v;
	size_t n, cap;
};

void wl_pod_free(struct wl_pod *p);
void wl_pod_table_clear(struct wl_pod_table *t);
struct wl_pod *wl_pod_table_find(const struct wl_pod_table *t, const char *uid);
/* Insert or replace by uid; takes ownership of *p (moved, then zeroed). */
int wl_pod_table_put(struct wl_pod_table *t, struct wl_pod *p);
/* Add a container (@id may be ""). 0 or -ENOMEM. */
int wl_pod_append_container(struct wl_pod *p, const char *id, const char *name);
/* 1 when removed, 0 when absent. */
int wl_pod_table_del(struct wl_pod_table *t, const char *uid);

/* A v1 Pod object → wl_pod. 0, -EINVAL (no metadata.uid/name/namespace), -ENOMEM. */
int workload_pod_from_json(json_object *pod, struct wl_pod *out);

/*
 * A PodList body: replaces @t with its items. @rv (size WL_RV_MAX) receives
 * metadata.resourceVersion, @cont metadata.continue ("" on the last page).
 * With @append, items are added to @t (pages after the first).
 */
#define WL_RV_MAX 128
int workload_apply_podlist(struct wl_pod_table *t, const char *body, size_t len, bool append,
			   char rv[WL_RV_MAX], char *cont, size_t contlen);

enum wl_watch_result {
	WL_WATCH_CHANGED = 0,		/* table changed */
	WL_WATCH_UNCHANGED,		/* BOOKMARK, or an object not for us */
	WL_WATCH_GONE,			/* ERROR 410: resourceVersion too old, re-list */
	WL_WATCH_ERROR,			/* ERROR with another status, or garbage: re-list */
};

/*
 * One line of a watch stream ({"type":..., "object":...}); updates @t and
 * @rv. Returns enum wl_watch_result, or -ENOMEM.
 */
int workload_apply_watch_event(struct wl_pod_table *t, const char *line, size_t len,
			       char rv[WL_RV_MAX]);

/* ---- the store ------------------------------------------------------------- */

#define WL_API_ERROR_MAX 256

struct wl_pod_store {
	/*
	 * Guards everything below. workload.c keeps its attribution cache and
	 * log-directory table under it too, so that one generation says when
	 * a cached attribution is stale.
	 */
	pthread_mutex_t lock;
	pthread_cond_t wake;		/* the API thread's sleeps, woken to stop */
	bool stop;			/* also read without the lock (atomically) */
	struct wl_pod_table api;	/* pods from the API */
	uint64_t gen;			/* bumped on every change attribution reads */
	int event_fd;			/* readable after a change from the API thread */
	int api_state;			/* enum wl_api_state (workload_api.h) */
	uint64_t api_lists, api_watch_events, api_errors;
	char api_last_error[WL_API_ERROR_MAX];
};

/* Empty, generation 1. 0 or -errno. */
int pod_store_init(struct wl_pod_store *s);
void pod_store_destroy(struct wl_pod_store *s);

/* Bump the generation and wake the loop. Caller holds the lock. */
void pod_store_changed_locked(struct wl_pod_store *s);

/* A full list: replaces the table (takes @next's pods). The pods now held; *lists: lists so far. */
size_t pod_store_replace(struct wl_pod_store *s, struct wl_pod_table *next, uint64_t *lists);

/* One watch line into the table: workload_apply_watch_event()'s result. */
int pod_store_apply_watch_event(struct wl_pod_store *s, const char *line, size_t len,
				char rv[WL_RV_MAX]);

void pod_store_set_state(struct wl_pod_store *s, int api_state);
/* Record an API error; true when it is the same as the last one. */
bool pod_store_api_error(struct wl_pod_store *s, const char *msg);
/* The API answered: true when it had been failing. */
bool pod_store_api_ok(struct wl_pod_store *s);

/* Sleep up to @secs (CLOCK_MONOTONIC), or until asked to stop. */
void pod_store_nap(struct wl_pod_store *s, int secs);
bool pod_store_stopping(struct wl_pod_store *s);
void pod_store_request_stop(struct wl_pod_store *s);

#endif /* TLSGUARD_AGENT_POD_STORE_H */
