// SPDX-License-Identifier: MIT
/*
 * Workload attribution and selection. See workload.h for the layers; the
 * pods the Kubernetes API client (workload_api.c) keeps are in a pod store
 * (pod_store.c), which is all that client shares with this file.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "cgroup.h"
#include "clock.h"
#include "dir.h"
#include "escape.h"
#include "kmaps.h"
#include "log.h"
#include "enum_name.h"
#include "pod_store.h"
#include "workload.h"
#include "workload_api.h"

#define NS_PER_S		1000000000ULL
#define LOG_RESCAN_MIN_NS	(2 * NS_PER_S)	/* fallback directory, at most every 2 s */
#define CACHE_SLOTS		256		/* attribution cache, direct-mapped by cgroup id */

struct cache_slot;
struct wl_override_rule;
struct wl_ov_entry;

struct tg_workloads {
	struct wl_config cfg;		/* cfg.sel changes on reload, under store.lock */
	struct cgroup_names *cgroups;	/* borrowed; event-loop thread only */
	const char *cg_mount;		/* borrowed */
	char *const *roots;		/* borrowed: absolute watched cgroup dirs */
	size_t nroots;

	/*
	 * The API's pods, with the lock, generation and eventfd that go with
	 * them. Under its lock too: the log-directory table, the cache and the
	 * rules below (one generation for all that attribution reads).
	 */
	struct wl_pod_store store;
	struct wl_api k8s;		/* the API thread, on the store (workload_api.h) */
	struct wl_pod_table logs;	/* pods from the log directory */
	uint64_t logs_scanned_ns;
	int logs_err;
	struct cache_slot *cache;

	int poll_fd;			/* epoll over store.event_fd + timer_fd, for the agent loop */
	int timer_fd;			/* once a second: find new pod cgroups */

	int skip_fd;			/* kernel map of unwatched cgroup ids, or -1 */
	uint64_t *skip;			/* sorted: what the map holds (or would) */
	size_t nskip;
	bool skip_map_warned, scan_warned;
	uint64_t events_unselected;	/* event-loop thread only */

	/* mode overrides (policy `overrides:`): rules, and what the kernel map holds */
	struct wl_override_rule *ov;	/* under store.lock (the selector part is read by scans) */
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
#define SKIP_MAX		65536		/* cgroup ids of unselected pods we track */

/* ---- cgroup path parsing --------------------------------------------------- */

static const char *const runtime_names[] = {
	[WL_RT_CONTAINERD] = "containerd",
	[WL_RT_CRIO] = "cri-o",
	[WL_RT_DOCKER] = "docker",
};

static const char *const qos_names[] = {
	[WL_QOS_GUARANTEED] = "guaranteed",
	[WL_QOS_BURSTABLE] = "burstable",
	[WL_QOS_BESTEFFORT] = "besteffort",
};

const char *workload_runtime_name(int runtime)
{
	return TG_ENUM_NAME(runtime_names, runtime, "");
}

const char *workload_qos_name(int qos)
{
	return TG_ENUM_NAME(qos_names, qos, "");
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

static bool ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);

	return n >= k && !memcmp(s + n - k, suffix, k);
}

static bool starts_with(const char *s, size_t n, const char *prefix)
{
	size_t k = strlen(prefix);

	return n >= k && !memcmp(s, prefix, k);
}

/*
 * A pod UID as it appears in a cgroup name: a UUID (36 characters; the systemd
 * driver writes '_' for '-' because '-' means nesting in slice names) or, for
 * static pods, the kubelet's 32-hex config hash. Writes it with dashes.
 */
static bool parse_uid(const char *s, size_t n, char out[WL_UID_MAX])
{
	char uid[WL_UID_MAX];

	if (n == 32 && is_hex(s, n)) {
		memcpy(out, s, n);
		out[n] = '\0';
		return true;
	}
	if (n != 36)
		return false;
	for (size_t i = 0; i < n; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? (s[i] != '-' && s[i] != '_') : !is_hex(s + i, 1))
			return false;
		uid[i] = dash ? '-' : s[i];
	}
	uid[n] = '\0';
	memcpy(out, uid, n + 1);
	return true;
}

/* A container id: the runtimes use 64 hex; accept shorter (but not tiny) ones. */
static bool parse_cid(const char *s, size_t n, char out[WL_CID_MAX])
{
	if (n < 12 || n >= WL_CID_MAX || !is_hex(s, n))
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

static bool contains(const char *s, size_t n, const char *needle)
{
	return memmem(s, n, needle, strlen(needle)) != NULL;
}

/*
 * systemd driver: "<prefix>-pod<uid>.slice" where the prefix names kubepods,
 * e.g. kubepods-burstable-pod..., kubepods-pod... (Guaranteed), or kind's
 * kubelet-kubepods-besteffort-pod....
 */
static bool systemd_pod(const char *c, size_t n, struct wl_cgroup_info *out)
{
	const char *p;
	size_t plen;

	if (!ends_with(c, n, ".slice"))
		return false;
	n -= strlen(".slice");
	for (p = c + n; p > c; p--)	/* the last "-pod" */
		if (p - c >= 4 && !memcmp(p - 4, "-pod", 4))
			break;
	if (p == c)
		return false;
	plen = (size_t)(p - 4 - c);
	if (!contains(c, plen, "kubepods") || !parse_uid(p, c + n - p, out->pod_uid))
		return false;
	if (ends_with(c, plen, "-burstable"))
		out->qos = WL_QOS_BURSTABLE;
	else if (ends_with(c, plen, "-besteffort"))
		out->qos = WL_QOS_BESTEFFORT;
	else
		out->qos = WL_QOS_GUARANTEED;
	return true;
}

/* cgroupfs driver: .../kubepods[/burstable|/besteffort]/pod<uid>. */
static bool cgroupfs_pod(const char *c, size_t n, const char *parent, size_t pn,
			 const char *grand, size_t gn, struct wl_cgroup_info *out)
{
	if (!starts_with(c, n, "pod") || !parse_uid(c + 3, n - 3, out->pod_uid))
		return false;
	if (pn == 8 && !memcmp(parent, "kubepods", 8)) {
		out->qos = WL_QOS_GUARANTEED;
		return true;
	}
	if (gn == 8 && !memcmp(grand, "kubepods", 8) && pn == 9 && !memcmp(parent, "burstable", 9)) {
		out->qos = WL_QOS_BURSTABLE;
		return true;
	}
	if (gn == 8 && !memcmp(grand, "kubepods", 8) && pn == 10 && !memcmp(parent, "besteffort", 10)) {
		out->qos = WL_QOS_BESTEFFORT;
		return true;
	}
	out->pod_uid[0] = '\0';
	return false;
}

/*
 * The component under a pod: containerd "cri-containerd-<id>.scope" (systemd)
 * or "<id>" (cgroupfs); CRI-O "crio-<id>.scope" / "crio-<id>"; Docker
 * (dockershim, cri-dockerd) "docker-<id>.scope". CRI-O's monitor
 * "crio-conmon-<id>.scope" is not the container.
 */
static void container_of(const char *c, size_t n, struct wl_cgroup_info *out)
{
	static const struct {
		const char *prefix, *suffix;
		int runtime;
	} forms[] = {
		{ "cri-containerd-", ".scope", WL_RT_CONTAINERD },
		{ "crio-", ".scope", WL_RT_CRIO },
		{ "docker-", ".scope", WL_RT_DOCKER },
		{ "crio-", "", WL_RT_CRIO },
		{ "", "", WL_RT_CONTAINERD },	/* cgroupfs + containerd: the bare id */
	};

	if (starts_with(c, n, "crio-conmon-"))
		return;
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		size_t pl = strlen(forms[i].prefix), sl = strlen(forms[i].suffix);

		if (!starts_with(c, n, forms[i].prefix) || !ends_with(c, n, forms[i].suffix) ||
		    n < pl + sl)
			continue;
		if (parse_cid(c + pl, n - pl - sl, out->container_id)) {
			out->runtime = forms[i].runtime;
			return;
		}
	}
}

int workload_parse_cgroup(const char *path, struct wl_cgroup_info *out)
{
	const char *comp[64];
	size_t len[64], ncomp = 0;
	const char *s = path;

	memset(out, 0, sizeof(*out));
	while (*s && ncomp < 64) {
		const char *e;

		while (*s == '/')
			s++;
		if (!*s)
			break;
		e = strchrnul(s, '/');
		comp[ncomp] = s;
		len[ncomp++] = (size_t)(e - s);
		s = e;
	}
	for (size_t i = 0; i < ncomp; i++) {
		const char *parent = i ? comp[i - 1] : "", *grand = i > 1 ? comp[i - 2] : "";
		size_t pn = i ? len[i - 1] : 0, gn = i > 1 ? len[i - 2] : 0;

		if (!systemd_pod(comp[i], len[i], out) &&
		    !cgroupfs_pod(comp[i], len[i], parent, pn, grand, gn, out))
			continue;
		out->pod_path_len = (size_t)(comp[i] + len[i] - path);
		if (i + 1 < ncomp)
			container_of(comp[i + 1], len[i + 1], out);
		return 0;
	}
	/* not a pod: the deepest systemd unit that is not a slice */
	for (size_t i = ncomp; i-- > 0;) {
		if (!ends_with(comp[i], len[i], ".service") && !ends_with(comp[i], len[i], ".scope"))
			continue;
		if (len[i] >= sizeof(out->unit))
			break;
		memcpy(out->unit, comp[i], len[i]);
		out->unit[len[i]] = '\0';
		if (starts_with(comp[i], len[i], "docker-"))
			container_of(comp[i], len[i], out);
		return 0;
	}
	memset(out, 0, sizeof(*out));
	return -ENOENT;
}

static const char *pod_container_name(const struct wl_pod *p, const char *cid)
{
	for (size_t i = 0; i < p->ncontainers; i++)
		if (!strcmp(p->containers[i].id, cid))
			return p->containers[i].name;
	return NULL;
}

/* ---- /var/log/pods fallback ----------------------------------------------------- */

static int add_container(struct wl_pod *p, const char *id, const char *name)
{
	/* a restarted container has a new id under the same name: one entry per id */
	for (size_t i = 0; i < p->ncontainers; i++) {
		struct wl_container *have = &p->containers[i];

		if (strcmp(have->name, name) || (id[0] && have->id[0] && strcmp(have->id, id)))
			continue;
		if (id[0] && !have->id[0])
			snprintf(have->id, sizeof(have->id), "%s", id);
		return 0;
	}
	return wl_pod_append_container(p, id, name);
}

/* <namespace>_<name>_<uid>: namespaces and names cannot contain '_'. */
static int pod_from_dirname(const char *d, struct wl_pod *out)
{
	const char *u1 = strchr(d, '_'), *u2 = u1 ? strchr(u1 + 1, '_') : NULL;

	memset(out, 0, sizeof(*out));
	if (!u1 || !u2 || u1 == d || u2 == u1 + 1 || strchr(u2 + 1, '_') ||
	    strlen(u2 + 1) >= WL_UID_MAX || !u2[1])
		return -EINVAL;
	snprintf(out->uid, sizeof(out->uid), "%s", u2 + 1);
	out->namespace = strndup(d, u1 - d);
	out->name = strndup(u1 + 1, u2 - u1 - 1);
	if (!out->namespace || !out->name) {
		wl_pod_free(out);
		return -ENOMEM;
	}
	return 0;
}

/*
 * The walks below fail only for memory: a pod's directory or containers/
 * that cannot be read (gone since, no permission) adds no names, as an
 * empty one.
 */
static int memory_only(int err)
{
	return err == -ENOMEM ? err : 0;
}

/* /var/log/pods/<pod>/<container>/: one directory per container name */
static int pod_container_dir(const char *name, unsigned char type, void *pod)
{
	if (tg_dir_hidden(name) || (type != DT_DIR && type != DT_UNKNOWN))
		return 0;
	return add_container(pod, "", name);
}

/*
 * /var/log/containers/<pod>_<namespace>_<container>-<64 hex>.log → the
 * container's id, into the pod of that name and namespace in the table.
 */
static int container_link(const char *link, unsigned char type, void *table)
{
	struct wl_pod_table *t = table;
	char name[NAME_MAX + 1], *u1, *u2, *dash;
	size_t n = strlen(link);
	int err = 0;

	(void)type;
	if (n < 4 + 65 || strcmp(link + n - 4, ".log"))
		return 0;
	memcpy(name, link, n - 4);
	name[n - 4] = '\0';
	dash = strrchr(name, '-');
	u1 = strchr(name, '_');
	u2 = u1 ? strchr(u1 + 1, '_') : NULL;
	if (!dash || !u2 || dash < u2 || strlen(dash + 1) != 64 || !is_hex(dash + 1, 64))
		return 0;
	*u1 = *u2 = *dash = '\0';
	for (size_t i = 0; i < t->n && !err; i++)
		if (!strcmp(t->v[i].name, name) && !strcmp(t->v[i].namespace, u1 + 1))
			err = add_container(&t->v[i], dash + 1, u2 + 1);
	return err;
}

struct pod_scan {
	struct wl_pod_table *table;
	const char *log_dir;
};

/* /var/log/pods/<namespace>_<name>_<uid>/: a pod, with its containers' names */
static int pod_dir(const char *name, unsigned char type, void *arg)
{
	const struct pod_scan *scan = arg;
	char path[PATH_MAX];
	struct wl_pod p;
	int err;

	(void)type;
	if (tg_dir_hidden(name) || pod_from_dirname(name, &p))
		return 0;
	snprintf(path, sizeof(path), "%s/pods/%s", scan->log_dir, name);
	err = memory_only(tg_dir_each(path, pod_container_dir, &p));
	if (!err)
		err = wl_pod_table_put(scan->table, &p);
	wl_pod_free(&p);
	return err;
}

int workload_scan_log_dir(struct wl_pod_table *t, const char *log_dir)
{
	struct pod_scan scan = { .table = t, .log_dir = log_dir };
	char path[PATH_MAX];
	int err;

	wl_pod_table_clear(t);
	snprintf(path, sizeof(path), "%s/pods", log_dir);
	err = tg_dir_each(path, pod_dir, &scan);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/containers", log_dir);
	return memory_only(tg_dir_each(path, container_link, t));
}

/* ---- selector ------------------------------------------------------------------- */

bool workload_selector_empty(const struct wl_selector *s)
{
	return !s->nnamespaces && !s->nlabels;
}

int workload_selected(const struct wl_selector *s, const struct wl_pod *pod)
{
	bool ns_ok = !s->nnamespaces;

	for (size_t i = 0; i < s->nnamespaces && !ns_ok; i++)
		ns_ok = !strcmp(s->namespaces[i], pod->namespace);
	if (!ns_ok)
		return WL_SEL_NO;
	if (!s->nlabels)
		return WL_SEL_YES;
	if (!pod->labels_known)
		return WL_SEL_UNKNOWN;
	for (size_t i = 0; i < s->nlabels; i++) {
		const struct tg_label *want = &s->labels[i];
		size_t j;

		for (j = 0; j < pod->nlabels; j++)
			if (!strcmp(pod->labels[j].key, want->key))
				break;
		if (j == pod->nlabels)
			return WL_SEL_NO;
		if (strcmp(want->value, "*") && strcmp(want->value, pod->labels[j].value))
			return WL_SEL_NO;
	}
	return WL_SEL_YES;
}

static void selector_free(struct wl_selector *s)
{
	for (size_t i = 0; i < s->nnamespaces; i++)
		free(s->namespaces[i]);
	free(s->namespaces);
	for (size_t i = 0; i < s->nlabels; i++) {
		free(s->labels[i].key);
		free(s->labels[i].value);
	}
	free(s->labels);
	memset(s, 0, sizeof(*s));
}

static int selector_from(const struct tg_strlist *ns, const struct tg_label *labels,
			 size_t nlabels, struct wl_selector *s)
{
	memset(s, 0, sizeof(*s));
	s->namespaces = calloc(ns->n + 1, sizeof(char *));
	s->labels = calloc(nlabels + 1, sizeof(*s->labels));
	if (!s->namespaces || !s->labels)
		goto nomem;
	for (size_t i = 0; i < ns->n; i++) {
		s->namespaces[i] = strdup(ns->v[i]);
		if (!s->namespaces[i])
			goto nomem;
		s->nnamespaces++;
	}
	for (size_t i = 0; i < nlabels; i++) {
		s->labels[i].key = strdup(labels[i].key);
		s->labels[i].value = strdup(labels[i].value);
		s->nlabels++;
		if (!s->labels[i].key || !s->labels[i].value)
			goto nomem;
	}
	return 0;
nomem:
	selector_free(s);
	return -ENOMEM;
}

static int selector_from_policy(const struct tg_policy *p, struct wl_selector *s)
{
	return selector_from(&p->k8s_namespaces, p->k8s_labels, p->nk8s_labels, s);
}

/* ---- configuration --------------------------------------------------------------- */

static int dup_or(char **out, const char *v, const char *def)
{
	*out = NULL;
	if (!v)
		v = def;
	if (!v)
		return 0;
	*out = strdup(v);
	return *out ? 0 : -ENOMEM;
}

int workload_config_from_policy(const struct tg_policy *p, struct wl_config *out)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");
	char server[300] = "", node[256] = "";

	memset(out, 0, sizeof(*out));
	if (p->k8s_api_server)
		snprintf(server, sizeof(server), "%s", p->k8s_api_server);
	else if (host && *host)
		/* in-cluster: the service variables, IPv6 literal in brackets */
		snprintf(server, sizeof(server), strchr(host, ':') ? "https://[%s]:%s" :
			 "https://%s:%s", host, port && *port ? port : "443");
	if (p->k8s_node_name)
		snprintf(node, sizeof(node), "%s", p->k8s_node_name);
	else if (getenv("NODE_NAME") && *getenv("NODE_NAME"))
		snprintf(node, sizeof(node), "%s", getenv("NODE_NAME"));
	else if (gethostname(node, sizeof(node) - 1) < 0)
		node[0] = '\0';
	if (dup_or(&out->server, server[0] ? server : NULL, NULL) ||
	    dup_or(&out->token_file, p->k8s_token_file, WL_DEFAULT_SA_DIR "/token") ||
	    dup_or(&out->ca_file, p->k8s_ca_file, WL_DEFAULT_SA_DIR "/ca.crt") ||
	    dup_or(&out->node_name, node, NULL) ||
	    dup_or(&out->log_dir, p->k8s_log_dir, WL_DEFAULT_LOG_DIR) ||
	    selector_from_policy(p, &out->sel)) {
		workload_config_free(out);
		return -ENOMEM;
	}
	return 0;
}

void workload_config_free(struct wl_config *c)
{
	free(c->server);
	free(c->token_file);
	free(c->ca_file);
	free(c->node_name);
	free(c->log_dir);
	selector_free(&c->sel);
	memset(c, 0, sizeof(*c));
}

/* ---- the agent's state --------------------------------------------------------- */

struct cache_slot {
	uint64_t cgroup_id;
	uint64_t gen;			/* 0: empty */
	char pod[WL_NAME_MAX], ns[WL_NAME_MAX], container[WL_NAME_MAX], unit[WL_NAME_MAX];
	bool has_pod, has_container, has_unit, selected;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

struct tg_workloads *workloads_new(struct wl_config *cfg, struct cgroup_names *cgroups,
				   const char *cg_mount, char *const *roots, size_t nroots)
{
	struct tg_workloads *w = calloc(1, sizeof(*w));
	struct epoll_event ev = { .events = EPOLLIN };
	struct itimerspec its = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };
	int err;

	if (!w)
		return NULL;
	w->cfg = *cfg;
	memset(cfg, 0, sizeof(*cfg));
	w->cgroups = cgroups;
	w->cg_mount = cg_mount;
	w->roots = roots;
	w->nroots = nroots;
	w->skip_fd = -1;
	w->ov_fd = -1;
	w->poll_fd = w->timer_fd = w->store.event_fd = -1;
	err = pod_store_init(&w->store);
	if (err) {
		errno = -err;
		goto fail;
	}
	w->k8s = (struct wl_api){
		.cfg = { .server = w->cfg.server, .token_file = w->cfg.token_file,
			 .ca_file = w->cfg.ca_file, .node_name = w->cfg.node_name,
			 .log_dir = w->cfg.log_dir },
		.store = &w->store,
	};
	w->cache = calloc(CACHE_SLOTS, sizeof(*w->cache));
	w->poll_fd = epoll_create1(EPOLL_CLOEXEC);
	w->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (!w->cache || w->poll_fd < 0 || w->timer_fd < 0)
		goto fail;
	ev.data.fd = w->store.event_fd;
	if (epoll_ctl(w->poll_fd, EPOLL_CTL_ADD, w->store.event_fd, &ev) < 0)
		goto fail;
	ev.data.fd = w->timer_fd;
	if (epoll_ctl(w->poll_fd, EPOLL_CTL_ADD, w->timer_fd, &ev) < 0 ||
	    timerfd_settime(w->timer_fd, 0, &its, NULL) < 0)
		goto fail;
	return w;
fail:
	err = errno ? errno : ENOMEM;
	workloads_free(w);
	errno = err;
	return NULL;
}

int workloads_event_fd(const struct tg_workloads *w)
{
	return w->poll_fd;
}

int workloads_start(struct tg_workloads *w)
{
	if (!w->cfg.server) {
		tg_debug("workloads: no Kubernetes API (not in a cluster and "
			 "workloads.kubernetes.api.server not set); attribution from cgroup "
			 "paths and %s/pods", w->cfg.log_dir ? w->cfg.log_dir : "-");
		return 0;
	}
	return wl_api_start(&w->k8s);
}

static void rescan_logs_locked(struct tg_workloads *w)
{
	uint64_t now = tg_mono_ns();
	int err;

	if (!w->cfg.log_dir || now - w->logs_scanned_ns < LOG_RESCAN_MIN_NS)
		return;
	w->logs_scanned_ns = now;
	err = workload_scan_log_dir(&w->logs, w->cfg.log_dir);
	if (err && err != w->logs_err && err != -ENOENT)
		tg_warn("workloads: cannot read %s/pods: %s", w->cfg.log_dir, strerror(-err));
	w->logs_err = err;
	w->store.gen++;
}

/* The pod for @uid: the API's when it knows it, else the log directory's. */
static const struct wl_pod *find_pod_locked(struct tg_workloads *w, const char *uid, bool rescan)
{
	const struct wl_pod *p = wl_pod_table_find(&w->store.api, uid);

	if (p)
		return p;
	p = wl_pod_table_find(&w->logs, uid);
	if (!p && rescan) {
		rescan_logs_locked(w);
		p = wl_pod_table_find(&w->logs, uid);
	}
	return p;
}

static bool pod_selected_locked(struct tg_workloads *w, const struct wl_pod *p)
{
	/* unknown pods and unknown labels count as selected: never a hole */
	return !p || workload_selector_empty(&w->cfg.sel) ||
	       workload_selected(&w->cfg.sel, p) != WL_SEL_NO;
}

void workloads_lookup(struct tg_workloads *w, uint64_t cgroup_id, struct wl_attribution *out)
{
	struct cache_slot *s = &w->cache[cgroup_id % CACHE_SLOTS];
	const char *path;
	struct wl_cgroup_info info;
	const struct wl_pod *p;
	const char *cname;

	memset(out, 0, sizeof(*out));
	out->selected = true;
	pthread_mutex_lock(&w->store.lock);
	if (s->gen == w->store.gen && s->cgroup_id == cgroup_id)
		goto hit;
	pthread_mutex_unlock(&w->store.lock);
	/* cgroup_names is the event loop's: no lock needed, and a rescan is bounded */
	path = w->cgroups ? cgroup_names_lookup(w->cgroups, cgroup_id) : NULL;
	if (!path || workload_parse_cgroup(path, &info))
		return;
	pthread_mutex_lock(&w->store.lock);
	memset(s, 0, sizeof(*s));
	s->cgroup_id = cgroup_id;
	s->selected = true;
	if (info.unit[0]) {
		s->has_unit = true;
		snprintf(s->unit, sizeof(s->unit), "%s", info.unit);
	}
	if (info.pod_uid[0]) {
		p = find_pod_locked(w, info.pod_uid, true);
		s->selected = pod_selected_locked(w, p);
		if (p) {
			s->has_pod = true;
			snprintf(s->pod, sizeof(s->pod), "%s", p->name);
			snprintf(s->ns, sizeof(s->ns), "%s", p->namespace);
			cname = info.container_id[0] ? pod_container_name(p, info.container_id) : NULL;
			/* the log directory knows names, not always ids: one container is enough */
			if (!cname && info.container_id[0] && !p->labels_known && p->ncontainers == 1)
				cname = p->containers[0].name;
			if (cname) {
				s->has_container = true;
				snprintf(s->container, sizeof(s->container), "%s", cname);
			}
		}
	}
	s->gen = w->store.gen;	/* after the lookups: a rescan above bumped it */
hit:
	out->pod = s->has_pod ? s->pod : NULL;
	out->namespace = s->has_pod ? s->ns : NULL;
	out->container = s->has_container ? s->container : NULL;
	out->unit = s->has_unit ? s->unit : NULL;
	out->selected = s->selected;
	pthread_mutex_unlock(&w->store.lock);
}

bool workloads_event_selected(struct tg_workloads *w, uint64_t cgroup_id)
{
	struct wl_attribution wa;

	workloads_lookup(w, cgroup_id, &wa);
	if (!wa.selected)
		w->events_unselected++;
	return wa.selected;
}

/* ---- unwatched cgroups ------------------------------------------------------------ */

struct scan_item {
	uint64_t id;
	char uid[WL_UID_MAX];
	uint64_t cg_rules;		/* bit per override whose cgroups hold this one */
};

struct scan {
	const char *mount;
	size_t mlen;
	struct scan_item *v;
	size_t n, cap;
	bool nomem;
	const struct wl_override_rule *ov;	/* rules with cgroups (a copy's pointer, under lock) */
	size_t nov;
};

/* @path (relative to the mount) is the cgroup @pattern names, or below it. */
static bool cgroup_under(const char *pattern, const char *path)
{
	char buf[PATH_MAX];
	char *cut;

	if (!strcmp(pattern, "/"))
		return true;
	snprintf(buf, sizeof(buf), "%s", *path ? path : "/");
	for (;;) {
		if (!fnmatch(pattern, buf, FNM_PATHNAME))
			return true;
		cut = strrchr(buf, '/');
		if (!cut || cut == buf)
			return false;
		*cut = '\0';
	}
}

static uint64_t cgroup_rules(const struct scan *sc, const char *rel)
{
	uint64_t bits = 0;

	for (size_t r = 0; r < sc->nov && r < 64; r++)
		for (size_t k = 0; k < sc->ov[r].ncgroups; k++)
			if (cgroup_under(sc->ov[r].cgroups[k], rel))
				bits |= 1ULL << r;
	return bits;
}

static int scan_one(const char *path, const struct stat *st, void *arg)
{
	struct scan *sc = arg;
	struct wl_cgroup_info info;
	uint64_t cg_rules;

	cg_rules = sc->nov ? cgroup_rules(sc, path + sc->mlen) : 0;
	if ((workload_parse_cgroup(path + sc->mlen, &info) || !info.pod_uid[0]) && !cg_rules)
		return 0;
	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 256;
		struct scan_item *v = cap <= SKIP_MAX ? realloc(sc->v, cap * sizeof(*v)) : NULL;

		if (!v) {
			sc->nomem = true;
			return 1;
		}
		sc->v = v;
		sc->cap = cap;
	}
	sc->v[sc->n].id = st->st_ino;
	snprintf(sc->v[sc->n].uid, sizeof(sc->v[sc->n].uid), "%s", info.pod_uid);
	sc->v[sc->n].cg_rules = cg_rules;
	sc->n++;
	return 0;
}

/* Write the difference between the kernel's set and @want (sorted) to the map. */
static void sync_skip_map(struct tg_workloads *w, uint64_t *want, size_t n)
{
	size_t i = 0, j = 0;
	uint8_t one = 1;

	while (i < w->nskip || j < n) {
		if (j == n || (i < w->nskip && w->skip[i] < want[j])) {
			if (w->skip_fd >= 0)
				bpf_map_delete_elem(w->skip_fd, &w->skip[i]);
			i++;
		} else if (i == w->nskip || want[j] < w->skip[i]) {
			if (w->skip_fd >= 0 && bpf_map_update_elem(w->skip_fd, &want[j], &one, BPF_ANY) &&
			    !w->skip_map_warned) {
				tg_warn("workloads: cannot add cgroup %llu to the unwatched set: %s",
					(unsigned long long)want[j], strerror(errno));
				w->skip_map_warned = true;
			}
			j++;
		} else {
			i++;
			j++;
		}
	}
	free(w->skip);
	w->skip = want;
	w->nskip = n;
}

/* The first override that selects this cgroup: its index, or -1. Caller holds the lock. */
static int override_for_locked(struct tg_workloads *w, const struct scan_item *it,
			       const struct wl_pod *p)
{
	for (size_t r = 0; r < w->nov && r < 64; r++) {
		const struct wl_override_rule *o = &w->ov[r];

		if (o->ncgroups && !(it->cg_rules & (1ULL << r)))
			continue;
		/* by pod: only a pod known to match (labels unknown: not yet) */
		if (o->by_pod && (!p || workload_selected(&o->sel, p) != WL_SEL_YES))
			continue;
		return (int)r;
	}
	return -1;
}

static int cmp_ov(const void *a, const void *b)
{
	const struct wl_ov_entry *x = a, *y = b;

	return (x->id > y->id) - (x->id < y->id);
}

static void ov_write(struct tg_workloads *w, const struct wl_ov_entry *e)
{
	if (w->ov_fd < 0 || e->rule >= w->nov)
		return;
	if (bpf_map_update_elem(w->ov_fd, &e->id, &w->ov[e->rule].val, BPF_ANY) && !w->ov_map_warned) {
		tg_warn("workloads: cannot write the override of cgroup %llu: %s",
			(unsigned long long)e->id, strerror(errno));
		w->ov_map_warned = true;
	}
}

/* Bring the kernel's overrides from w->ovs to @want (sorted by id; taken over). */
static void sync_override_map(struct tg_workloads *w, struct wl_ov_entry *want, size_t n)
{
	size_t i = 0, j = 0;

	while (i < w->novs || j < n) {
		if (j == n || (i < w->novs && w->ovs[i].id < want[j].id)) {
			if (w->ov_fd >= 0)
				bpf_map_delete_elem(w->ov_fd, &w->ovs[i].id);
			i++;
		} else if (i == w->novs || want[j].id < w->ovs[i].id) {
			ov_write(w, &want[j++]);
		} else {
			if (w->ov_rewrite || w->ovs[i].rule != want[j].rule)
				ov_write(w, &want[j]);
			i++;
			j++;
		}
	}
	free(w->ovs);
	w->ovs = want;
	w->novs = n;
	w->ov_rewrite = false;
}

static void refresh_skip(struct tg_workloads *w)
{
	struct scan sc = { .mount = w->cg_mount, .mlen = strlen(w->cg_mount) };
	bool selecting = !workload_selector_empty(&w->cfg.sel);
	struct wl_ov_entry *ov_want;
	uint64_t *want;
	size_t n = 0, nov = 0;
	bool missing = false;

	if (!selecting && !w->nskip && !w->nov && !w->novs)
		return;
	if (selecting || w->nov) {
		pthread_mutex_lock(&w->store.lock);
		sc.ov = w->ov;	/* rules change only on this thread (reload): safe to read unlocked */
		sc.nov = w->nov;
		pthread_mutex_unlock(&w->store.lock);
		for (size_t i = 0; i < w->nroots && !sc.nomem; i++)
			cgroup_walk(w->roots[i], scan_one, &sc);
		if (sc.nomem) {
			if (!w->scan_warned)
				tg_warn("workloads: more than %d pod cgroups, or out of memory; the set "
					"of unwatched cgroups is not updated", SKIP_MAX);
			w->scan_warned = true;
			free(sc.v);
			return;	/* keep the previous set */
		}
	}
	want = calloc(sc.n + 1, sizeof(*want));
	ov_want = calloc(sc.n + 1, sizeof(*ov_want));
	if (!want || !ov_want) {
		free(want);
		free(ov_want);
		free(sc.v);
		return;
	}
	pthread_mutex_lock(&w->store.lock);
	for (size_t i = 0; i < sc.n; i++)
		if (sc.v[i].uid[0] && !find_pod_locked(w, sc.v[i].uid, false))
			missing = true;
	if (missing)
		rescan_logs_locked(w);
	for (size_t r = 0; r < w->nov; r++)
		w->ov[r].matched = 0;
	for (size_t i = 0; i < sc.n; i++) {
		const struct wl_pod *p = sc.v[i].uid[0] ? find_pod_locked(w, sc.v[i].uid, false) : NULL;
		int r;

		if (sc.v[i].uid[0] && selecting && !pod_selected_locked(w, p))
			want[n++] = sc.v[i].id;
		r = override_for_locked(w, &sc.v[i], p);
		if (r >= 0) {
			ov_want[nov].id = sc.v[i].id;
			ov_want[nov++].rule = (uint32_t)r;
			w->ov[r].matched++;
		}
	}
	pthread_mutex_unlock(&w->store.lock);
	free(sc.v);
	if (n)
		qsort(want, n, sizeof(*want), cmp_u64);
	if (nov)
		qsort(ov_want, nov, sizeof(*ov_want), cmp_ov);
	sync_skip_map(w, want, n);
	sync_override_map(w, ov_want, nov);
}

void workloads_refresh(struct tg_workloads *w)
{
	uint64_t v;

	while (read(w->store.event_fd, &v, sizeof(v)) == sizeof(v))
		;
	while (read(w->timer_fd, &v, sizeof(v)) == sizeof(v))
		;
	refresh_skip(w);
}

/*
 * A kernel map handed to the workloads: its fd goes to @slot, and *ids gets
 * the sorted ids of the entries already in it (pins a previous agent left).
 * false when there is no map (@map_fd < 0).
 */
static bool adopt_map(int *slot, int map_fd, uint64_t **ids, size_t *n)
{
	*slot = map_fd;
	*ids = NULL;
	*n = 0;
	if (map_fd < 0)
		return false;
	*n = kmaps_u64_keys(map_fd, ids);
	if (*n)
		qsort(*ids, *n, sizeof(**ids), cmp_u64);
	return true;
}

void workloads_set_skip_map(struct tg_workloads *w, int map_fd)
{
	uint64_t *have;
	size_t n;

	/* adopted pins: what a previous agent left is the current state */
	if (!adopt_map(&w->skip_fd, map_fd, &have, &n))
		return;
	free(w->skip);
	w->skip = have;
	w->nskip = n;
	refresh_skip(w);
}

int workloads_set_selector(struct tg_workloads *w, const struct tg_policy *p)
{
	struct wl_selector next;

	if (selector_from_policy(p, &next))
		return -ENOMEM;
	pthread_mutex_lock(&w->store.lock);
	selector_free(&w->cfg.sel);
	w->cfg.sel = next;
	w->store.gen++;
	pthread_mutex_unlock(&w->store.lock);
	refresh_skip(w);
	return 0;
}

/* Per rule: its number, name, mode and the cgroups it selects now. */
static json_object *overrides_json_locked(struct tg_workloads *w)
{
	json_object *a = json_object_new_array();

	for (size_t r = 0; r < w->nov; r++) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "rule", json_object_new_int64((int64_t)r));
		json_object_object_add(o, "name", w->ov[r].name ? json_object_new_string(w->ov[r].name) : NULL);
		json_object_object_add(o, "mode", json_object_new_string(
			w->ov[r].val.mode == TG_MODE_ENFORCE ? "enforce" : "audit"));
		json_object_object_add(o, "cgroups", json_object_new_int64((int64_t)w->ov[r].matched));
		json_object_array_add(a, o);
	}
	return a;
}

static void override_rules_free(struct wl_override_rule *ov, size_t n)
{
	for (size_t r = 0; r < n; r++) {
		free(ov[r].name);
		selector_free(&ov[r].sel);
		for (size_t k = 0; k < ov[r].ncgroups; k++)
			free(ov[r].cgroups[k]);
		free(ov[r].cgroups);
	}
	free(ov);
}

/* "/kubepods.slice/x/" and "kubepods.slice/x" are "/kubepods.slice/x". */
static char *cgroup_pattern(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n + 2);

	if (!out)
		return NULL;
	snprintf(out, n + 2, "%s%s", s[0] == '/' ? "" : "/", s);
	n = strlen(out);
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
	return out;
}

int workloads_set_overrides(struct tg_workloads *w, const struct tg_policy *p,
			    const struct tg_override *vals)
{
	size_t n = p && vals ? p->noverrides : 0;
	struct wl_override_rule *ov = calloc(n + 1, sizeof(*ov)), *old;
	size_t nold;

	if (!ov)
		return -ENOMEM;
	for (size_t r = 0; r < n; r++) {
		const struct tg_policy_override *o = &p->overrides[r];

		ov[r].val = vals[r];
		ov[r].by_pod = o->namespaces.n || o->nlabels;
		if ((o->name && !(ov[r].name = strdup(o->name))) ||
		    selector_from(&o->namespaces, o->labels, o->nlabels, &ov[r].sel))
			goto nomem;
		ov[r].cgroups = calloc(o->cgroups.n + 1, sizeof(char *));
		if (!ov[r].cgroups)
			goto nomem;
		for (size_t k = 0; k < o->cgroups.n; k++) {
			ov[r].cgroups[k] = cgroup_pattern(o->cgroups.v[k]);
			if (!ov[r].cgroups[k])
				goto nomem;
			ov[r].ncgroups++;
		}
	}
	pthread_mutex_lock(&w->store.lock);
	old = w->ov;
	nold = w->nov;
	w->ov = ov;
	w->nov = n;
	w->ov_rewrite = true;
	pthread_mutex_unlock(&w->store.lock);
	override_rules_free(old, nold);
	refresh_skip(w);
	return 0;
nomem:
	override_rules_free(ov, n);
	return -ENOMEM;
}

void workloads_set_override_map(struct tg_workloads *w, int map_fd)
{
	struct wl_ov_entry *have;
	uint64_t *ids;
	size_t n;

	/* adopted pins: every entry is rewritten (or deleted) by the next scan */
	if (!adopt_map(&w->ov_fd, map_fd, &ids, &n))
		return;
	have = n ? calloc(n, sizeof(*have)) : NULL;
	if (!have)
		n = 0;
	for (size_t i = 0; i < n; i++)	/* in the ids' order: sorted as cmp_ov() sorts */
		have[i] = (struct wl_ov_entry){ .id = ids[i], .rule = UINT32_MAX };
	free(ids);
	free(w->ovs);
	w->ovs = have;
	w->novs = n;
	w->ov_rewrite = true;
	refresh_skip(w);
}

json_object *workloads_status_json(struct tg_workloads *w)
{
	json_object *o = json_object_new_object(), *api = json_object_new_object();

	pthread_mutex_lock(&w->store.lock);
	json_object_object_add(api, "server", tg_json_string(w->cfg.server));
	json_object_object_add(api, "node", tg_json_string(w->cfg.node_name ? w->cfg.node_name : ""));
	json_object_object_add(api, "state", json_object_new_string(wl_api_state_name(w->store.api_state)));
	json_object_object_add(api, "pods", json_object_new_int64((int64_t)w->store.api.n));
	json_object_object_add(api, "lists", json_object_new_uint64(w->store.api_lists));
	json_object_object_add(api, "watch_events", json_object_new_uint64(w->store.api_watch_events));
	json_object_object_add(api, "errors", json_object_new_uint64(w->store.api_errors));
	json_object_object_add(api, "last_error", w->store.api_last_error[0] ?
			       tg_json_string(w->store.api_last_error) : NULL);
	json_object_object_add(o, "kubernetes_api", api);
	json_object_object_add(o, "log_dir_pods", json_object_new_int64((int64_t)w->logs.n));
	json_object_object_add(o, "selector", json_object_new_boolean(!workload_selector_empty(&w->cfg.sel)));
	json_object_object_add(o, "overrides", overrides_json_locked(w));
	pthread_mutex_unlock(&w->store.lock);
	json_object_object_add(o, "unwatched_cgroups", json_object_new_int64((int64_t)w->nskip));
	json_object_object_add(o, "kernel_filter", json_object_new_boolean(w->skip_fd >= 0));
	json_object_object_add(o, "events_not_reported", json_object_new_uint64(w->events_unselected));
	return o;
}

void workloads_free(struct tg_workloads *w)
{
	if (!w)
		return;
	wl_api_stop(&w->k8s);
	if (w->poll_fd >= 0)
		close(w->poll_fd);
	if (w->timer_fd >= 0)
		close(w->timer_fd);
	pod_store_destroy(&w->store);
	wl_pod_table_clear(&w->logs);
	workload_config_free(&w->cfg);
	free(w->skip);
	override_rules_free(w->ov, w->nov);
	free(w->ovs);
	free(w->cache);
	free(w);
}
