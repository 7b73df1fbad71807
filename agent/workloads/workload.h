/* SPDX-License-Identifier: MIT */
/*
 * Workload attribution: cgroup id → pod, namespace, container (Kubernetes) or
 * systemd unit (VMs), and the workloads.kubernetes selector.
 *
 * Three layers, each usable on its own:
 *  - a pure parser of cgroup v2 paths (systemd and cgroupfs drivers,
 *    containerd / CRI-O / Docker naming, systemd units);
 *  - a pod table filled from the Kubernetes API (list + watch pods of this
 *    node, on a thread of its own: workload_api.h, into a pod store:
 *    pod_store.h) or, without the API, from the kubelet's log directory
 *    names (/var/log/pods, /var/log/containers);
 *  - the selector (namespaces, labels) and the set of cgroup ids of pods
 *    outside it, written to a kernel map when the BPF object has one.
 *
 * The event loop only ever takes the pod store's mutex, held for table
 * updates; all network I/O happens on the API thread.
 */
#ifndef TLSGUARD_AGENT_WORKLOAD_H
#define TLSGUARD_AGENT_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "pod_store.h"
#include "policy.h"
#include "tlsguard/dest.h"

#define WL_DEFAULT_SA_DIR	"/var/run/secrets/kubernetes.io/serviceaccount"
#define WL_DEFAULT_LOG_DIR	"/var/log"

enum wl_runtime {
	WL_RT_NONE = 0,
	WL_RT_CONTAINERD,
	WL_RT_CRIO,
	WL_RT_DOCKER,
};

enum wl_qos {
	WL_QOS_NONE = 0,
	WL_QOS_GUARANTEED,
	WL_QOS_BURSTABLE,
	WL_QOS_BESTEFFORT,
};

/* What a cgroup path says by itself. */
struct wl_cgroup_info {
	char pod_uid[WL_UID_MAX];	/* "" when not a pod's cgroup; dashes restored */
	char container_id[WL_CID_MAX];	/* "" for the pod level itself */
	char unit[WL_NAME_MAX];		/* systemd unit outside Kubernetes, else "" */
	int runtime;			/* enum wl_runtime */
	int qos;			/* enum wl_qos */
	size_t pod_path_len;		/* bytes of the path up to the end of the pod component */
};

/*
 * Parse a cgroup v2 path (relative to the mount, or absolute). Recognises a
 * pod anywhere in the path (nested hierarchies such as kind's). Returns 0
 * when a pod or a unit was found, -ENOENT otherwise (@out is zeroed then).
 */
int workload_parse_cgroup(const char *path, struct wl_cgroup_info *out);

const char *workload_runtime_name(int runtime);
const char *workload_qos_name(int qos);

/*
 * /var/log/pods/<namespace>_<name>_<uid>/<container>/ and
 * /var/log/containers/<pod>_<namespace>_<container>-<id>.log: pods without
 * labels. @log_dir holds both directories. Replaces @t. 0 or -errno.
 */
int workload_scan_log_dir(struct wl_pod_table *t, const char *log_dir);

/* ---- selector -------------------------------------------------------------- */

struct wl_selector {
	char **namespaces;		/* empty: any namespace */
	size_t nnamespaces;
	struct tg_label *labels;	/* every one must match; value "*" = key present */
	size_t nlabels;
};

/* true when the selector selects every pod (no workloads.kubernetes selection). */
bool workload_selector_empty(const struct wl_selector *s);

enum wl_selected {
	WL_SEL_YES = 0,
	WL_SEL_NO,
	WL_SEL_UNKNOWN,			/* labels needed but not known yet: treated as selected */
};

/* Does @pod match? Pods whose labels are unknown match while namespaces allow. */
int workload_selected(const struct wl_selector *s, const struct wl_pod *pod);

/* ---- the agent's workload state ------------------------------------------- */

struct wl_config {
	char *server;			/* https://host:port; NULL: no API */
	char *token_file;
	char *ca_file;
	char *node_name;
	char *log_dir;			/* NULL: no fallback */
	struct wl_selector sel;
};

/*
 * From the policy, NODE_NAME / KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT
 * and the host name. The API is on when workloads.kubernetes.api.server is set
 * or the service variables are (in-cluster). 0 or -ENOMEM.
 */
int workload_config_from_policy(const struct tg_policy *p, struct wl_config *out);
void workload_config_free(struct wl_config *c);

struct cgroup_names;
struct tg_workloads;

/* What the event builder needs for one event. Strings live until the next lookup. */
struct wl_attribution {
	const char *pod, *namespace, *container, *unit;
	bool selected;			/* false: the pod is outside workloads.kubernetes */
};

/*
 * @cgroups (borrowed) resolves ids to paths; @cg_mount and @roots (borrowed)
 * are where pod cgroups are looked for. Takes ownership of @cfg's contents.
 * Returns NULL with errno set.
 */
struct tg_workloads *workloads_new(struct wl_config *cfg, struct cgroup_names *cgroups,
				   const char *cg_mount, char *const *roots, size_t nroots);

/* Start the API thread (when configured). 0 or -errno. */
int workloads_start(struct tg_workloads *w);

/* Readable (eventfd) when the pod table changed; -1 when nothing can change it. */
int workloads_event_fd(const struct tg_workloads *w);

/*
 * Drain the eventfd, rescan pod cgroups and bring the kernel's set of
 * unwatched cgroups up to date. Call from the event loop on the fd and once
 * a second (new cgroups are found by that rescan).
 */
void workloads_refresh(struct tg_workloads *w);

/*
 * The kernel map of cgroup ids whose connects the programs ignore
 * (BPF_MAP_TYPE_HASH, __u64 cgroup id → __u8). -1: the BPF object has none;
 * then pods outside the selector are only left out of events.
 */
void workloads_set_skip_map(struct tg_workloads *w, int map_fd);

/* A policy reload: new selector (the API and log settings stay). */
int workloads_set_selector(struct tg_workloads *w, const struct tg_policy *p);

/*
 * Mode overrides (policy `overrides:`): @vals[i] is what the kernel gets for
 * the cgroups p->overrides[i] selects (its rule number, mode and class
 * bits, made by the agent from the class table); @p NULL or without
 * overrides clears them. The cgroups are found by the same rescan as the
 * unwatched ones: pods by namespace and labels (only pods known to match),
 * cgroups by path, with everything below them. 0 or -ENOMEM.
 */
struct tg_override;
int workloads_set_overrides(struct tg_workloads *w, const struct tg_policy *p,
			    const struct tg_override *vals);

/* The kernel map of overrides by cgroup id (tg_overrides), or -1: none. */
void workloads_set_override_map(struct tg_workloads *w, int map_fd);

/* Attribution for one event. Never blocks on I/O other than a bounded cgroup/log rescan. */
void workloads_lookup(struct tg_workloads *w, uint64_t cgroup_id, struct wl_attribution *out);

/* workloads_lookup().selected, counting the events it turns away. */
bool workloads_event_selected(struct tg_workloads *w, uint64_t cgroup_id);

/* For status: API state and table sizes. A new object. */
json_object *workloads_status_json(struct tg_workloads *w);

void workloads_free(struct tg_workloads *w);

#endif /* TLSGUARD_AGENT_WORKLOAD_H */
