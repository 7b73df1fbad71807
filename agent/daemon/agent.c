// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent.h"
#include "ai_feed.h"
#include "ai_sink.h"
#include "cgroup.h"
#include "clock.h"
#include "commands.h"
#include "control.h"
#include "dests.h"
#include "dnslearn.h"
#include "enforcer.h"
#include "events.h"
#include "handoff.h"
#include "handshake_policy.h"
#include "hosts.h"
#include "kernel_features.h"
#include "kmaps.h"
#include "loader.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "mounts.h"
#include "notify.h"
#include "pipeline.h"
#include "policy.h"
#include "prepare.h"
#include "privileges.h"
#include "prometheus.h"
#include "reload.h"
#include "ringread.h"
#include "status.h"
#include "tally.h"
#include "tlsguard/config.h"
#include "tlsguard/counters.h"
#include "upgrade.h"
#include "workload.h"
#include "tlsguard.skel.h"

/*
 * The daemon's state: the policy in force, the kernel side, the loop and the
 * modules' state. Private to this file: the modules it drives (pipeline,
 * upgrade, ai_feed, control, metrics) get their own state and what they
 * borrow, never the agent.
 */
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
	struct tg_handoff_state handoff;	/* upgrade from another pin layout (handoff.h) */
	struct upgrade_drain upgrade;	/* upgrade.h: the old layout while it drains */
	struct tg_dest_table dests;
	struct tg_enforcer enforcer;
	struct tg_pipeline pipe;	/* pipeline.h: events, the file sink, their totals */
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
	uint64_t reloads, reload_failures;
	struct ai_feed ai;		/* ai_feed.h: App Insights, the key ring, field protection */
};

#define TG_RING_BATCH	256	/* records per journal commit: the ring frees their space only after it */

/* The sink's periodic metrics, when due: kernel counters since start, the pipeline's totals. */
static void send_ai_metrics(struct agent *a)
{
	uint64_t c[TG_CNT__MAX], since[TG_CNT__MAX];

	if (!ai_feed_tick(&a->ai) || kmaps_read_counters(&a->loader.maps, c))
		return;
	for (int i = 0; i < TG_CNT__MAX; i++)
		since[i] = c[i] >= a->counters_at_start[i] ? c[i] - a->counters_at_start[i] : c[i];
	ai_feed_send_metrics(&a->ai, since, a->pipe.events_emitted, a->pipe.events_write_failed);
}


static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG && !tg_verbose)
		return 0;
	if (!tg_verbose)
		return 0;	/* errors are reported once, by us, with what to do */
	return vfprintf(stderr, fmt, args);
}

static void print_diag(const struct tg_diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		tg_err("%s", d->msgs[i]);
}

/* --config FILE, else the default file when it exists; NULL: the built-in policy. */
static const char *config_path(const struct tg_agent_opts *opts)
{
	if (opts->config)
		return opts->config;
	return access(TG_DEFAULT_CONFIG, F_OK) == 0 ? TG_DEFAULT_CONFIG : NULL;
}

/*
 * Everything about the configuration, checked before the kernel is touched,
 * by the function reloads and `tlsguard policy check` use too (prepare.h).
 * What the agent keeps of it moves into @a. An exit status: what is wrong
 * with the configuration is 2.
 */
static int prepare_start(struct agent *a)
{
	struct tg_prepare_opts o = {
		.path = config_path(a->opts), .scope = TG_PREP_START,
		.cgroups = a->opts->cgroups, .ncgroups = a->opts->ncgroups,
		.mode_override = a->opts->mode_override,
	};
	struct tg_diag diag = { 0 };
	struct tg_prepared prep;
	int err = prepare_policy(&o, &prep, &diag);

	print_diag(&diag);
	diag_free(&diag);
	if (err)
		return err == -ENOMEM ? TG_EXIT_FAIL : TG_EXIT_USAGE;
	a->policy = prep.policy;
	a->hosts = prep.hosts;	/* its refresh thread starts after drop_privileges() */
	snprintf(a->cg_mount, sizeof(a->cg_mount), "%s", prep.cg_mount);
	a->cg_paths = prep.cg_paths;
	a->ncg = prep.ncg;
	memcpy(a->policy_sha256, prep.sha256, sizeof(a->policy_sha256));
	a->policy_loaded_ns = tg_real_ns();
	prep.policy = NULL;
	prep.hosts = NULL;
	prep.cg_paths = NULL;
	prep.ncg = 0;
	prepared_free(&prep);	/* the table is built again over what the maps hold */
	return TG_EXIT_OK;
}

/*
 * Programs loaded and attached, listeners bound: keep only what enforcing
 * and reloading need (privileges.h). Before any thread starts, since
 * capabilities are per thread and new threads inherit the creator's.
 */
static int drop_privileges(void)
{
	char msg[256];
	int err = privileges_drop(msg, sizeof(msg));

	if (err)
		tg_err("%s", msg);
	else
		tg_info("%s", msg);
	return err;
}

/* The maps hold what DNS taught: connects held for it may go on (tlsguard/dns.h). */
static void dns_caught_up(struct agent *a)
{
	int err = dnslearn_publish(a->dns);

	if (err)
		tg_warn("dns: cannot tell the kernel what is learned: %s (held connects wait "
			"for their bound)", strerror(-err));
}

/* The destination table from the policy, the names' addresses @resolved and what DNS taught. */
static int build_dests(struct agent *a, const struct tg_host_addrs *resolved,
		       struct tg_dest_table *next)
{
	char why[300] = "";
	int err = dests_build(a->policy, a->opts->mode_override, resolved, &a->dests, next, why,
			      sizeof(why));

	if (!err) {
		err = dests_add_learned(next, dnslearn_table(a->dns));
		if (err)
			dests_free(next);
	}
	if (err)
		tg_err("cannot build destination table: %s", err == -E2BIG ? why : strerror(-err));
	return err;
}

/*
 * Rebuild the destination table from the policy in force and the current
 * addresses (resolved, learned) and apply it. While a reload's table goes
 * into the maps, this waits for it (reload_step() calls it after).
 */
static int sync_dests(struct agent *a)
{
	struct tg_host_addrs resolved;
	struct tg_dest_table next;
	int err;

	if (a->reload.applying) {
		a->reload.dests_dirty = true;
		return 0;
	}
	err = hosts_snapshot(a->hosts, &resolved);	/* the refresh thread writes the table */
	if (!err)
		err = build_dests(a, &resolved, &next);
	if (err) {
		host_addrs_free(&resolved);
		return err;
	}
	err = dests_apply(&a->loader.maps, &a->dests, &next);
	if (err) {
		tg_err("cannot write destination maps: %s", strerror(-err));
		dests_free(&next);
		host_addrs_free(&resolved);
		return err;
	}
	dests_free(&a->dests);
	a->dests = next;
	a->pipe.ev_ctx.dests = &a->dests;
	dns_caught_up(a);
	/* the proxies' names may have new addresses */
	err = handshake_sync_proxies(&a->loader.maps, a->policy, &resolved);
	if (err)
		tg_warn("cannot write the proxies for the kernel: %s", strerror(-err));
	host_addrs_free(&resolved);
	return 0;
}

/* `overrides:` apply unless --mode forces one mode on every class. */
static bool overrides_in_force(const struct agent *a)
{
	return a->policy->noverrides && a->opts->mode_override < 0;
}

/* The kernel values of the policy's overrides, to the workload scanner that writes them. */
static void apply_overrides(struct agent *a)
{
	struct tg_override vals[TG_MAX_OVERRIDE_RULES];

	if (!a->pipe.ev_ctx.workloads)
		return;
	if (overrides_in_force(a))
		dests_override_values(a->policy, &a->dests, vals);
	if (workloads_set_overrides(a->pipe.ev_ctx.workloads, overrides_in_force(a) ? a->policy : NULL,
				    vals))
		tg_warn("overrides: out of memory; the previous ones stay");
}

/* The policy's host names for SNI binding, under the class ids just applied. */
static void sync_names(struct agent *a)
{
	int err = handshake_sync_names(&a->loader.maps, a->policy, &a->dests);

	if (err)
		tg_warn("cannot write host names for the kernel: %s; SNI binding uses the previous "
			"policy's", strerror(-err));
}

/* workloads.kubernetes names namespaces or labels: pods outside them go to tg_skip_cgroups. */
static bool selects_k8s_workloads(const struct tg_policy *p)
{
	return p->k8s_namespaces.n + p->nk8s_labels > 0;
}

/*
 * The runtime config map, including the heartbeat the kernel reads under
 * fail_mode open: rewritten at start, on reload and once a second.
 */
static int write_config(struct agent *a)
{
	struct tg_config cfg = {
		.log_tls_flows = a->policy->log_tls_flows,
		.fail_open = a->policy->fail_mode == TG_FAIL_OPEN,
		.fail_open_after_s = a->policy->fail_open_after_s,
		.max_flows = a->policy->max_tracked_flows,
	};

	/* a proxy flow's class is not known at connect(): at the flow cap it is
	 * refused (fail_mode closed) when any class could turn out to enforce */
	for (uint32_t id = 1; id <= a->dests.nclasses && id < TG_MAX_CLASSES; id++)
		if (dests_class_name(&a->dests, id) && a->dests.classes[id].mode == TG_MODE_ENFORCE)
			cfg.any_enforce = 1;
	for (size_t r = 0; overrides_in_force(a) && r < a->policy->noverrides; r++)
		if (a->policy->overrides[r].mode == TG_MODE_ENFORCE)
			cfg.any_enforce = 1;
	cfg.overrides = overrides_in_force(a);
	/* written before start() attaches programs that read it (config.h) */
	cfg.skip_cgroups = selects_k8s_workloads(a->policy);

	cfg.heartbeat_ns = tg_mono_ns();	/* bpf_ktime_get_ns() is CLOCK_MONOTONIC */

	return kmaps_write_config(&a->loader.maps, &cfg);
}

static const char *mode_name(int mode)
{
	return mode == TG_MODE_ENFORCE ? "enforce" : "audit";
}

/* systemd's one-line status (notify.h): what is in force. */
static void notify_ready(struct agent *a, const char *note)
{
	char msg[512];
	int mode = a->opts->mode_override >= 0 ? a->opts->mode_override : a->policy->mode;

	snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d\nSTATUS=%s%s mode, %zu destinations "
		 "(%zu map entries), %zu cgroup(s)", (int)getpid(), note ? note : "", mode_name(mode),
		 a->policy->ndests, a->dests.n, a->ncg);
	notify_send(msg);
}

/* ---- reloads: prepared on their thread (reload.h), applied here in slices ---------- */

static void notify_reloading(void)
{
	char msg[96];

	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)(tg_mono_ns() / 1000));
	notify_send(msg);
}

/*
 * SIGHUP (@forced), or the policy file changed: prepare the file on the
 * reload thread; the loop serves on with the policy in force meanwhile.
 * During a reload a request waits for it (once, however many came).
 */
static void request_reload(struct agent *a, bool forced)
{
	struct tg_reload *r = &a->reload;
	const char *path = config_path(a->opts);
	int err;

	if (!path) {
		if (forced) {
			notify_reloading();
			tg_info("reload: built-in policy, nothing to reload");
			notify_ready(a, NULL);
		}
		return;
	}
	if (r->running || r->applying) {
		r->pending = true;
		r->pending_forced |= forced;
		return;
	}
	if (forced)
		notify_reloading();
	/* unforced: nothing to do when the content is the one in force */
	err = reload_start(r, path, a->opts->mode_override, &a->dests, forced ? NULL : a->policy_sha256);
	if (err) {
		tg_err("reload: cannot start preparing %s: %s; the previous policy stays in force",
		       path, strerror(-err));
		a->reload_failures++;
		if (forced)
			notify_ready(a, "reload failed, previous policy in force: ");
		return;
	}
	r->forced = forced;
}

/* The one request that waited for the reload just finished, if any. */
static void reload_next(struct agent *a)
{
	struct tg_reload *r = &a->reload;
	bool forced = r->pending_forced;

	if (!r->pending || a->stop)
		return;
	r->pending = r->pending_forced = false;
	request_reload(a, forced);
}

/* The reload_failed event's message for what prepare_policy() (or the apply, @applying) said. */
static const char *refusal(int err, bool applying)
{
	if (applying && err != -ENOMEM)
		return "cannot apply the policy to the kernel maps; the previous policy stays in force";
	switch (err) {
	case -EINVAL:
	case -EIO:
		return "policy is invalid; the previous policy stays in force";
	case -E2BIG:
		return "the policy's destinations do not fit the kernel map; "
		       "the previous policy stays in force";
	case -ENOENT:
		return "the policy names something this host does not have or the agent cannot "
		       "use; the previous policy stays in force";
	case -ENOMEM:
		return "out of memory while reloading; the previous policy stays in force";
	default:
		return "cannot apply the policy to the kernel maps; the previous policy stays in force";
	}
}

static void reload_failed(struct agent *a, int err, bool applying)
{
	tg_err("reload: %s %s; the previous policy stays in force", config_path(a->opts),
	       applying ? "could not be applied" :
	       err == -EINVAL || err == -EIO ? "is invalid" : "is refused");
	a->reload_failures++;
	pipeline_agent_event(&a->pipe, "reload_failed", refusal(err, applying));
	reload_release(&a->reload);
	notify_ready(a, "reload failed, previous policy in force: ");
	if (a->reload.dests_dirty) {
		a->reload.dests_dirty = false;
		sync_dests(a);
	}
	reload_next(a);
}

/* A retired host table's refresh thread may be inside a DNS query: it is freed once it returns. */
static void retire_hosts(struct agent *a, struct tg_hosts *h)
{
	hosts_stop_async(h);
	for (size_t i = 0; i < sizeof(a->retired_hosts) / sizeof(a->retired_hosts[0]); i++) {
		if (!a->retired_hosts[i]) {
			a->retired_hosts[i] = h;
			return;
		}
	}
	hosts_free(h);	/* four reloads within one DNS timeout: wait for this one */
	free(h);
}

static void reap_hosts(struct agent *a, bool wait)
{
	for (size_t i = 0; i < sizeof(a->retired_hosts) / sizeof(a->retired_hosts[0]); i++) {
		struct tg_hosts *h = a->retired_hosts[i];

		if (!h || (!wait && !hosts_stopped(h)))
			continue;
		hosts_free(h);
		free(h);
		a->retired_hosts[i] = NULL;
	}
}

/* The new policy's names and their addresses take over from the old ones. */
static void swap_hosts(struct agent *a, struct tg_hosts *next)
{
	struct tg_hosts *old = a->hosts;
	int err;

	tg_loop_remove(&a->loop, &a->w_hosts);
	a->hosts = next;
	a->w_hosts.fd = next->event_fd;
	err = tg_loop_add(&a->loop, &a->w_hosts, EPOLLIN);
	if (!err)
		err = hosts_start(next);
	if (err)
		tg_warn("reload: cannot start refreshing the host names: %s; their addresses stay "
			"as resolved now", strerror(-err));
	retire_hosts(a, old);
}

/* Time spent on the loop for this reload, slice by slice: the log says the longest. */
static void reload_timed(struct tg_reload *r, uint64_t since)
{
	uint64_t ns = tg_mono_ns() - since;

	r->slices++;
	if (ns > r->longest_ns)
		r->longest_ns = ns;
}

/* The new policy's proxies, with the addresses its host table has now. */
static void sync_proxies_after_reload(struct agent *a)
{
	struct tg_host_addrs resolved;
	int err = hosts_snapshot(a->hosts, &resolved);

	if (!err)
		err = handshake_sync_proxies(&a->loader.maps, a->policy, &resolved);
	if (err)
		tg_warn("reload: cannot write the proxies for the kernel: %s", strerror(-err));
	host_addrs_free(&resolved);
}

/* Every entry is in the maps: the prepared policy is the one in force. */
static void commit_reload(struct agent *a, uint64_t t0)
{
	struct tg_reload *r = &a->reload;
	struct tg_policy *old = a->policy;

	dests_free(&a->dests);
	a->dests = r->next;
	memset(&r->next, 0, sizeof(r->next));
	a->pipe.ev_ctx.dests = &a->dests;
	a->policy = r->prep.policy;	/* the table's class names point into it */
	r->prep.policy = NULL;
	if (r->prep.hosts) {	/* prepare_policy() always resolves at TG_PREP_RELOAD */
		swap_hosts(a, r->prep.hosts);
		r->prep.hosts = NULL;
	}
	sync_names(a);
	sync_proxies_after_reload(a);
	memcpy(a->policy_sha256, r->prep.sha256, sizeof(a->policy_sha256));
	a->policy_loaded_ns = tg_real_ns();
	pipeline_set_policy(&a->pipe, a->policy, a->policy_sha256);
	if (a->dns && dnslearn_set_policy(a->dns, a->policy) > 0)
		r->dests_dirty = true;	/* learned names the new policy no longer has */
	if (a->pipe.ev_ctx.workloads)
		workloads_set_selector(a->pipe.ev_ctx.workloads, a->policy);
	apply_overrides(a);
	write_config(a);
	a->reloads++;
	policy_free(old);
	reload_timed(r, t0);
	tg_info("reload: policy %s in force (%zu destinations, %zu map entries; applied in %u "
		"step(s) of the event loop, the longest %.1f ms)", a->policy->source,
		a->policy->ndests, a->dests.n, r->slices, r->longest_ns / 1e6);
	pipeline_agent_event(&a->pipe, "reload", NULL);
	reload_release(r);
	if (r->dests_dirty) {
		r->dests_dirty = false;
		sync_dests(a);
	}
	notify_ready(a, NULL);
	reload_next(a);
}

/* One slice of the apply: at most TG_RELOAD_SLICE map writes, then back to the loop. */
static void reload_step(struct agent *a)
{
	struct tg_reload *r = &a->reload;
	uint64_t t0 = tg_mono_ns();
	int err = dests_apply_step(&r->ap, TG_RELOAD_SLICE);

	reload_timed(r, t0);
	if (err > 0)
		return;
	r->applying = false;
	if (err) {
		tg_err("reload: cannot write destination maps: %s", strerror(-err));
		reload_failed(a, err, true);
		return;
	}
	t0 = tg_mono_ns();
	commit_reload(a, t0);
}

/*
 * The reload thread is done. A refused policy changes nothing; an accepted
 * one goes into the maps as dests_apply() does it (new entries before the
 * removal of leaving ones), in slices between which the loop serves.
 */
static void on_reload(void *ctx, uint32_t events)
{
	struct agent *a = ctx;
	struct tg_reload *r = &a->reload;
	uint64_t t0;
	int err;

	if (!r->running)
		return;
	reload_collect(r);
	t0 = tg_mono_ns();
	if (r->result == -EALREADY) {	/* unchanged, or gone for a moment */
		reload_release(r);
		reload_next(a);
		return;
	}
	if (!r->forced) {
		tg_info("policy file %s changed; reloading", config_path(a->opts));
		notify_reloading();
	}
	print_diag(&r->diag);
	if (r->result) {
		reload_failed(a, r->result, false);
		return;
	}
	r->next = r->prep.dests;
	memset(&r->prep.dests, 0, sizeof(r->prep.dests));
	err = dests_add_learned(&r->next, dnslearn_table(a->dns));
	if (err) {
		reload_failed(a, err, false);
		return;
	}
	dests_apply_begin(&r->ap, &a->loader.maps, &a->dests, &r->next);
	r->applying = true;
	r->dests_dirty = false;
	r->slices = 0;
	r->longest_ns = 0;
	reload_timed(r, t0);	/* collecting and merging the learned addresses */
	reload_step(a);
}

static void on_signal(void *ctx, int signo)
{
	struct agent *a = ctx;

	if (signo == SIGHUP)
		request_reload(a, true);
	else
		a->stop = true;
}

static void dns_read_done(struct agent *a, int n);

static void on_ring_commit(void *ctx)
{
	pipeline_flush(ctx);
}

static void on_ring(void *ctx, uint32_t events)
{
	struct agent *a = ctx;

	/*
	 * DNS answers first: the kernel wakes the agent for few of them
	 * (bpf/dns.bpf.c), and an event names its destination from what was learned
	 */
	dns_read_done(a, dnslearn_read_answers(a->dns));
	ringread_consume(a->rb, TG_RING_BATCH);
}

/*
 * The policy file's directory is watched rather than the file: editors and
 * Kubernetes ConfigMap updates replace the file (rename, or swap the ..data
 * symlink), which a watch on the old inode would never see.
 */
static void on_config_change(void *ctx, uint32_t events)
{
	struct agent *a = ctx;
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const char *path = config_path(a->opts), *base;
	bool relevant = false;
	ssize_t n;

	base = path ? strrchr(path, '/') : NULL;
	base = base ? base + 1 : path;
	while ((n = read(a->inotify_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ie = (struct inotify_event *)p;

			if (ie->len && base && (!strcmp(ie->name, base) || !strncmp(ie->name, "..data", 6)))
				relevant = true;
			p += sizeof(*ie) + ie->len;
		}
	}
	/* the reload thread reads it: unchanged content or a file gone for a moment is no reload */
	if (relevant && path)
		request_reload(a, false);
}

static int watch_config(struct agent *a)
{
	const char *path = config_path(a->opts);
	char dir[PATH_MAX];
	char *slash;

	a->inotify_fd = -1;
	if (!path)
		return 0;
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	a->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (a->inotify_fd < 0 ||
	    inotify_add_watch(a->inotify_fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE) < 0) {
		tg_warn("cannot watch %s for policy changes (%s); reload with SIGHUP", dir, strerror(errno));
		if (a->inotify_fd >= 0)
			close(a->inotify_fd);
		a->inotify_fd = -1;
		return 0;
	}
	a->w_config = (struct tg_watch){ .fd = a->inotify_fd, .handle = on_config_change, .ctx = a };
	return tg_loop_add(&a->loop, &a->w_config, EPOLLIN);
}

/* Enforce verdicts the kernel let through under fail_mode open, reported once. */
static void report_fail_open(struct agent *a, const uint64_t *counters)
{
	char msg[200];

	if (counters[TG_CNT_FAIL_OPEN_PASSED] <= a->fail_open_seen)
		return;
	snprintf(msg, sizeof(msg), "%llu enforce verdict(s) passed and counted: no agent heartbeat "
		 "for more than %us (fail_mode open); blocking is back",
		 (unsigned long long)(counters[TG_CNT_FAIL_OPEN_PASSED] - a->fail_open_seen),
		 a->policy->fail_open_after_s);
	a->fail_open_seen = counters[TG_CNT_FAIL_OPEN_PASSED];
	tg_warn("%s", msg);
	pipeline_agent_event(&a->pipe, "fail_open", msg);
}

/*
 * Connects to protected destinations the kernel could not track (the flow
 * cap, no memory for flow state), reported once a second while they happen:
 * refused ones also came as blocked_connect events, passed ones only here.
 */
static void report_untracked(struct agent *a, const uint64_t *counters)
{
	uint64_t cap = counters[TG_CNT_UNTRACKED_FLOW_CAP] - a->untracked_seen[0];
	uint64_t storage = counters[TG_CNT_ERR_STORAGE] - a->untracked_seen[1];
	char msg[320];

	if (!cap && !storage)
		return;
	snprintf(msg, sizeof(msg), "%llu connect(s) to protected destinations not tracked: "
		 "%llu at the tracked-flow cap (limits.max_tracked_flows %u), %llu without memory "
		 "for flow state; %s (kernel_counters untracked_refused, untracked_passed)",
		 (unsigned long long)(cap + storage), (unsigned long long)cap,
		 a->policy->max_tracked_flows, (unsigned long long)storage,
		 a->policy->fail_mode == TG_FAIL_OPEN ? "passed unjudged (fail_mode open)" :
		 "refused in enforce classes, passed unjudged in audit ones");
	a->untracked_seen[0] = counters[TG_CNT_UNTRACKED_FLOW_CAP];
	a->untracked_seen[1] = counters[TG_CNT_ERR_STORAGE];
	tg_warn("%s", msg);
	pipeline_agent_event(&a->pipe, "untracked", msg);
}

/* Once a second (the loop's tick): report events the kernel could not hand over (ring buffer full). */
static void housekeeping(void *ctx)
{
	struct agent *a = ctx;
	uint64_t counters[TG_CNT__MAX];
	char msg[160];

	clock_gettime(CLOCK_MONOTONIC, &a->last_housekeeping);
	control_sweep(&a->control);
	write_config(a);	/* the heartbeat */
	if (notify_watchdog(NULL))
		notify_send("WATCHDOG=1");	/* the loop turns: once a second */
	upgrade_tick(&a->upgrade, (uint64_t)a->last_housekeeping.tv_sec);
	reap_hosts(a, false);
	send_ai_metrics(a);
	if (kmaps_read_counters(&a->loader.maps, counters))
		return;
	report_fail_open(a, counters);
	report_untracked(a, counters);
	if (counters[TG_CNT_ERR_RINGBUF] <= a->ringbuf_lost_seen)
		return;
	snprintf(msg, sizeof(msg), "%llu event(s) lost: the kernel ring buffer was full",
		 (unsigned long long)(counters[TG_CNT_ERR_RINGBUF] - a->ringbuf_lost_seen));
	a->ringbuf_lost_seen = counters[TG_CNT_ERR_RINGBUF];
	ai_feed_ringbuf_reported(a->policy->spool_dir, a->ringbuf_lost_seen);
	tg_warn("%s", msg);
	pipeline_agent_event(&a->pipe, "loss", msg);
}

static void on_hosts(void *ctx, uint32_t events)
{
	struct agent *a = ctx;
	uint64_t v;

	if (read(a->hosts->event_fd, &v, sizeof(v)) == sizeof(v))
		sync_dests(a);
}

/* After a read of the DNS ring (@n: dnslearn_poll()'s result): the maps, then the kernel told. */
static void dns_read_done(struct agent *a, int n)
{
	if (n > 0)
		sync_dests(a);
	else if (n == 0 && !a->reload.applying && !a->reload.dests_dirty)
		dns_caught_up(a);	/* nothing new for the maps: what was read is in them */
	else if (n < 0)
		tg_warn("dns: cannot process DNS answers: %s", strerror(-n));
}

static void on_dns(void *ctx, uint32_t events)
{
	struct agent *a = ctx;

	dns_read_done(a, dnslearn_poll(a->dns));
}

static int setup_loop(struct agent *a)
{
	sigset_t mask;
	int err;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	err = tg_loop_open(&a->loop);
	if (err)
		return err;
	a->housekeeping_tick = (struct tg_tick){ .period_ms = 1000, .fn = housekeeping, .ctx = a };
	tg_loop_add_tick(&a->loop, &a->housekeeping_tick);
	a->w_ring = (struct tg_watch){ .fd = ringread_fd(a->rb), .handle = on_ring, .ctx = a };
	a->w_hosts = (struct tg_watch){ .fd = a->hosts->event_fd, .handle = on_hosts, .ctx = a };
	a->w_reload = (struct tg_watch){ .fd = a->reload.efd, .handle = on_reload, .ctx = a };
	err = tg_loop_signals(&a->loop, &mask, on_signal, a);
	if (!err)
		err = tg_loop_add(&a->loop, &a->w_ring, EPOLLIN);
	if (!err)
		err = upgrade_open_old_ring(&a->upgrade);
	if (!err)
		err = tg_loop_add(&a->loop, &a->w_hosts, EPOLLIN);
	if (!err)
		err = tg_loop_add(&a->loop, &a->w_reload, EPOLLIN);
	a->w_dns = (struct tg_watch){ .fd = dnslearn_fd(a->dns), .handle = on_dns, .ctx = a };
	if (!err)
		err = tg_loop_add(&a->loop, &a->w_dns, EPOLLIN);
	return err;
}

static int run_loop(struct agent *a)
{
	while (!a->stop) {
		/*
		 * wake at least once a second to time out idle control clients;
		 * between the slices of a reload's apply, take only what is ready
		 */
		int n = tg_loop_dispatch(&a->loop, a->reload.applying ? 0 : 1000);

		if (n == -EINTR)
			continue;
		if (n < 0)
			return n;
		if (a->reload.applying)
			reload_step(a);
		tg_loop_run_ticks(&a->loop);	/* housekeeping() */
	}
	/* a reload half in the maps is finished: stopping leaves one policy behind */
	while (a->reload.applying)
		reload_step(a);
	ringread_consume(a->rb, TG_RING_BATCH);	/* what arrived before the signal */
	upgrade_consume_old_ring(&a->upgrade);
	pipeline_flush(&a->pipe);
	return 0;
}

/* Detach the pinned links (of every BPF object) of cgroups no longer watched. */
static int prune_links(struct agent *a)
{
	int err = loader_prune_links(&a->loader);

	return err ? err : dnslearn_prune_links(a->dns);
}

static int attach_all(struct agent *a)
{
	for (size_t i = 0; i < a->ncg; i++) {
		int err = loader_attach_cgroup(&a->loader, a->cg_paths[i]);

		if (!err)
			err = dnslearn_attach_cgroup(a->dns, a->cg_paths[i]);
		if (err) {
			tg_err("cannot attach to cgroup %s: %s", a->cg_paths[i], strerror(-err));
			return err;
		}
	}
	/* only now that every wanted cgroup is covered may old links go */
	return prune_links(a);
}

static int start(struct agent *a)
{
	struct tg_dest_table current;
	int err;

	err = mounts_ensure_bpffs(a->opts->pin_path, NULL);
	if (err)
		return err;
	/* another layout's pins are moved aside (retiring/) and stay attached */
	err = handoff_prepare(&a->handoff, a->opts->pin_path, TG_PIN_LAYOUT_VERSION);
	if (!err)
		err = loader_load(&a->loader, a->opts->pin_path, a->opts->dns_hooks);
	if (!err)
		err = dnslearn_open(&a->dns, a->opts->pin_path, a->policy);
	if (!err && a->loader.dns_chained)
		err = dnslearn_chain(a->dns, a->loader.maps.dns_chain_ingress,
				     a->loader.maps.dns_chain_egress);
	if (err)
		return err;
	if (a->loader.adopted_maps) {
		/* the previous agent's entries: the first sync must remove stale ones */
		err = dests_read_map(&a->loader.maps, &current);
		if (err)
			return err;
		a->dests = current;
	}
	err = sync_dests(a);
	if (!err) {
		sync_names(a);
		err = write_config(a);
	}
	if (!err)
		err = attach_all(a);
	if (err)
		return err;
	/* attached: only this agent's DNS programs learn now, not a draining
	 * generation's nor those a chained predecessor left in the slots */
	if (a->handoff.retiring_layout)
		dnslearn_unchain_dir(a->handoff.retiring_dir);
	if (!a->loader.dns_chained)
		dnslearn_unchain_dir(a->opts->pin_path);
	/* attached everywhere: only now may this generation take over new connects */
	err = handoff_switch(&a->handoff, a->loader.maps.handoff);
	if (err)
		tg_err("cannot write the handoff map under %s: %s", a->loader.pin_dir, strerror(-err));
	return err;
}

static int open_outputs(struct agent *a)
{
	const char *path = a->opts->events_file ? a->opts->events_file : a->policy->events_file;
	int err = event_file_open(&a->pipe.ev_file, path);

	if (err) {
		tg_err("cannot open events file %s: %s", path, strerror(-err));
		return err;
	}
	events_ctx_init(&a->pipe.ev_ctx);
	a->pipe.ev_ctx.dests = &a->dests;
	a->pipe.ev_ctx.cgroups = cgroup_names_new(a->cg_mount, a->cg_paths, a->ncg);
	a->rb = ringread_new(bpf_map__fd(a->loader.skel->maps.tg_events), pipeline_record, on_ring_commit,
			     &a->pipe);
	if (!a->rb) {
		err = -errno;
		tg_err("cannot open the event ring buffer: %s", strerror(-err));
		return err;
	}
	return 0;
}

static void on_workloads(void *ctx, uint32_t events)
{
	struct agent *a = ctx;

	workloads_refresh(a->pipe.ev_ctx.workloads);
}

/*
 * Pod and unit attribution, and the workloads.kubernetes selection. Programs
 * stay attached where workloads.cgroups says (new pods inherit them at once);
 * pods outside the selector go into the kernel's unwatched-cgroup map when
 * the BPF object has one (see docs/policy.md, "Selecting pods").
 */
static int start_workloads(struct agent *a)
{
	struct tg_workloads *w;
	struct wl_config cfg;
	int err = workload_config_from_policy(a->policy, &cfg);

	if (err)
		return err;
	w = workloads_new(&cfg, a->pipe.ev_ctx.cgroups, a->cg_mount, a->cg_paths, a->ncg);
	workload_config_free(&cfg);
	if (!w) {
		err = -errno;
		tg_err("cannot set up workload attribution: %s", strerror(-err));
		return err;
	}
	a->pipe.ev_ctx.workloads = w;
	workloads_set_skip_map(w, a->loader.maps.skip_cgroups);
	workloads_set_override_map(w, a->loader.maps.overrides);
	apply_overrides(a);
	if (overrides_in_force(a))
		write_config(a);	/* the kernel looks overrides up from now on */
	if (a->loader.maps.skip_cgroups < 0 && selects_k8s_workloads(a->policy))
		tg_warn("workloads.kubernetes: these BPF programs cannot skip pods outside the "
			"selector; their findings are not reported, but in enforce mode their "
			"plaintext is still blocked (and reported)");
	err = workloads_start(w);
	if (err)
		return err;
	a->w_workloads = (struct tg_watch){ .fd = workloads_event_fd(w), .handle = on_workloads, .ctx = a };
	return tg_loop_add(&a->loop, &a->w_workloads, EPOLLIN);
}

/* ---- status and metrics: a struct tg_status_view (status.h) per request ---------- */

/* What a view points to besides the agent: read once per request. */
struct view_data {
	struct tg_ai_sink_stats ai;
	struct tg_dnslearn_stats dns;
	uint64_t (*class_stats)[TG_CS__MAX];
};

static void view_hosts(struct agent *a, struct tg_status_view *v)
{
	struct tg_host_addrs resolved;

	if (hosts_snapshot(a->hosts, &resolved))
		return;	/* no memory: the counts stay 0 for this request */
	v->hosts = resolved.n;
	for (size_t i = 0; i < resolved.n; i++) {
		v->resolved_ips += resolved.v[i].addrs.naddrs;
		v->unresolved_hosts += !resolved.v[i].addrs.naddrs;
	}
	host_addrs_free(&resolved);
}

static void view_kernel(struct agent *a, struct tg_status_view *v, struct view_data *d)
{
	d->class_stats = calloc(a->dests.nclasses + 1, sizeof(*d->class_stats));
	for (uint32_t id = 1; d->class_stats && id <= a->dests.nclasses; id++)
		if (dests_class_name(&a->dests, id))
			kmaps_read_class_stats(&a->loader.maps, id, d->class_stats[id]);
	v->class_stats = (const uint64_t (*)[TG_CS__MAX])d->class_stats;	/* NULL: zeros */
	kmaps_read_counters(&a->loader.maps, v->counters);
	v->counters_at_start = a->counters_at_start;
	kmaps_read_live_flows(&a->loader.maps, &v->live_flows);
}

static void view_pipeline(struct agent *a, struct tg_status_view *v, struct view_data *d)
{
	const struct tg_pipeline *p = &a->pipe;

	v->events_emitted = p->events_emitted;
	v->events_write_failed = p->events_write_failed;
	v->sockets_destroyed = p->sockets_destroyed;
	v->destroy_failed = p->destroy_failed;
	v->file_sink = &p->file_sink;
	v->events_target = a->opts->events_file ? a->opts->events_file : a->policy->events_file;
	if (a->ai.sink) {
		ai_sink_stats(a->ai.sink, &d->ai);
		v->ai = &d->ai;
	}
	v->workloads = p->ev_ctx.workloads;
	v->top = &p->top;
}

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
	view_hosts(a, v);
	v->dests = &a->dests;
	view_kernel(a, v, d);
	v->dns = a->dns;
	dnslearn_get_stats(a->dns, &d->dns);
	v->dns_stats = &d->dns;
	v->handoff = &a->handoff;
	view_pipeline(a, v, d);
	v->control = &a->control;
}

/* control_open()'s status_fn: the status JSON. */
static json_object *agent_status_json(void *arg)
{
	struct tg_status_view v;
	struct view_data d;
	json_object *o;

	fill_view(arg, &v, &d);
	o = status_build_json(&v);
	free(d.class_stats);
	return o;
}

/* metrics_open()'s build_fn: the /metrics text. */
static int agent_metrics_text(void *arg, char **out, size_t *len)
{
	struct tg_status_view v;
	struct view_data d;
	int err;

	fill_view(arg, &v, &d);
	err = prometheus_build(&v, out, len);
	free(d.class_stats);
	return err;
}

static int open_control(struct agent *a)
{
	const char *path = a->opts->socket_path ? a->opts->socket_path :
			   a->policy->control_socket ? a->policy->control_socket : TG_DEFAULT_SOCKET;
	int err = control_open(&a->control, &a->loop, path, a->policy->control_group,
			       agent_status_json, a);

	if (err)
		return err;
	return metrics_open(&a->metrics, &a->loop, a->policy->metrics_listen, agent_metrics_text, a);
}

static void cleanup(struct agent *a)
{
	if (a->inotify_fd >= 0)
		close(a->inotify_fd);
	metrics_close(&a->metrics);
	control_close(&a->control);
	ringread_free(a->rb);
	ring_buffer__free(a->upgrade.old_rb);
	handoff_close(&a->handoff);
	workloads_free(a->pipe.ev_ctx.workloads);	/* before the cgroup names it borrows */
	cgroup_names_free(a->pipe.ev_ctx.cgroups);
	ai_feed_close(&a->ai);	/* flushes: events still in flight are sent or spooled */
	event_file_close(&a->pipe.ev_file);
	reload_close(&a->reload);	/* before what a reload would swap in */
	if (a->hosts) {
		hosts_free(a->hosts);
		free(a->hosts);
	}
	reap_hosts(a, true);
	dests_free(&a->dests);
	dnslearn_close(a->dns);
	loader_close(&a->loader);
	enforcer_free(&a->enforcer);
	for (size_t i = 0; i < a->ncg; i++)
		free(a->cg_paths[i]);
	free(a->cg_paths);
	policy_free(a->policy);
	tg_loop_close(&a->loop);
}

/*
 * SIGINT/SIGTERM/SIGHUP arrive through the signalfd of the event loop only;
 * a helper thread (resolver, sink, Kubernetes watch) must never take them.
 */
static void block_signals(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
}

/* Refuse to start, in one line, without a capability the agent needs. */
static int check_capabilities(void)
{
	char msg[320];
	int err = privileges_check(msg, sizeof(msg));

	if (err)
		tg_err("%s", msg);
	return err;
}

/* Refuse to start, in one line, on a kernel that cannot run the programs. */
static int check_kernel(void)
{
	struct tg_features f;
	char msg[320];

	features_probe(&f);
	if (!features_check_required(&f, msg, sizeof(msg)))
		return 0;
	tg_err("%s", msg);
	return -ENOTSUP;
}


int agent_run(const struct tg_agent_opts *opts)
{
	struct agent a = { .opts = opts, .loop = { .epfd = -1, .sigfd = -1 },
			   .handoff = { .old_events_fd = -1, .old_counters_fd = -1,
					.old_flows_fd = -1, .old_census_fd = -1 } };
	int ret = TG_EXIT_FAIL, err;

	a.enforcer.own_netns_fd = -1;
	a.control.listen_fd = -1;
	a.metrics.listen_fd = -1;
	a.inotify_fd = -1;
	pipeline_init(&a.pipe);
	a.pipe.enforcer = &a.enforcer;
	a.pipe.control = &a.control;
	a.pipe.ai = &a.ai;
	a.pipe.pin_dir = a.loader.pin_dir;
	a.upgrade = (struct upgrade_drain){ .h = &a.handoff, .loader = &a.loader, .loop = &a.loop,
					    .pipe = &a.pipe };
	clock_gettime(CLOCK_MONOTONIC, &a.started_mono);
	a.started_real_ns = tg_real_ns();
	libbpf_set_print(libbpf_log);
	block_signals();	/* before any thread starts: they inherit the mask */
	notify_init();
	if (reload_init(&a.reload))
		goto out;
	if (check_capabilities())
		goto out;
	/* before the cgroups are resolved: a machine without cgroup2 gets a private mount */
	if (mounts_ensure_cgroup2(a.cg_mount, sizeof(a.cg_mount)))
		goto out;
	ret = prepare_start(&a);
	if (ret)
		goto out;
	pipeline_set_policy(&a.pipe, a.policy, a.policy_sha256);
	ret = TG_EXIT_FAIL;
	if (check_kernel() || enforcer_init(&a.enforcer))
		goto out;
	if (start(&a) || open_outputs(&a))
		goto out;
	kmaps_read_counters(&a.loader.maps, a.counters_at_start);
	err = setup_loop(&a);
	if (err) {
		tg_err("cannot set up the event loop: %s", strerror(-err));
		goto out;
	}
	if (open_control(&a) || watch_config(&a) || drop_privileges())
		goto out;
	err = hosts_start(a.hosts);
	if (err) {
		tg_err("cannot start the host name refresh: %s", strerror(-err));
		goto out;
	}
	if (start_workloads(&a))
		goto out;
	err = ai_feed_open(&a.ai, a.policy, a.pipe.ev_ctx.host, &a.loop, pipeline_loss_event, &a.pipe);
	if (err) {
		ret = err == -EINVAL ? TG_EXIT_USAGE : TG_EXIT_FAIL;
		goto out;
	}
	a.ringbuf_lost_seen = ai_feed_ringbuf_seen(a.policy->spool_dir, a.loader.adopted_maps,
						   a.counters_at_start[TG_CNT_ERR_RINGBUF]);
	ai_feed_ringbuf_reported(a.policy->spool_dir, a.ringbuf_lost_seen);	/* a crash from now on knows it */
	a.untracked_seen[0] = a.counters_at_start[TG_CNT_UNTRACKED_FLOW_CAP];
	a.untracked_seen[1] = a.counters_at_start[TG_CNT_ERR_STORAGE];
	/* over adopted pins, what happened while no agent ran is news */
	a.fail_open_seen = a.loader.adopted_maps ? 0 : a.counters_at_start[TG_CNT_FAIL_OPEN_PASSED];
	pipeline_agent_event(&a.pipe, "start", a.loader.adopted_maps ?
			 "adopted the pinned programs and maps of a previous agent" : NULL);
	upgrade_started(&a.upgrade);
	/* answers that came while no agent ran: learned before ready, so nothing waits on them */
	on_dns(&a, EPOLLIN);
	tg_info("ready: policy %s, %zu destinations (%zu map entries), mode %s%s, %zu cgroup(s), "
		"pins %s%s, control %s",
		a.policy->source, a.policy->ndests, a.dests.n,
		mode_name(opts->mode_override >= 0 ? opts->mode_override : a.policy->mode),
		opts->mode_override >= 0 ? " (--mode)" : "", a.ncg, opts->pin_path,
		a.loader.adopted_maps ? " (adopted)" : "", a.control.path);
	notify_ready(&a, NULL);
	err = run_loop(&a);
	if (err) {
		tg_err("event loop failed: %s", strerror(-err));
		goto out;
	}
	notify_send("STOPPING=1\nSTATUS=stopping; the programs stay attached and keep enforcing");
	pipeline_agent_event(&a.pipe, "stop", "programs stay attached and keep enforcing");
	tg_info("stopping: %llu events written, %llu blocked sockets destroyed; programs stay "
		"attached (pinned under %s; 'tlsguard uninstall' removes them)",
		(unsigned long long)a.pipe.events_emitted, (unsigned long long)a.pipe.sockets_destroyed,
		opts->pin_path);
	ret = TG_EXIT_OK;
out:
	cleanup(&a);
	return ret;
}
