// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent_state.h"
#include "escape.h"
#include "sink_ai.h"
#include "status.h"
#include "tlsguard.skel.h"
#include "workload.h"

/* Names of the kernel counters, as status and metrics show them. */
static const char *const counter_names[] = {
	[TG_CNT_FLOWS_TRACKED] = "flows_tracked",
	[TG_CNT_EXCEPTION_HIT] = "exception_hit",
	[TG_CNT_CONNECT_FLAGGED] = "connect_flagged",
	[TG_CNT_CONNECT_BLOCKED] = "connect_blocked",
	[TG_CNT_VERDICT_TLS] = "verdict_tls",
	[TG_CNT_PLAINTEXT_FLAGGED] = "plaintext_flagged",
	[TG_CNT_PLAINTEXT_BLOCKED] = "plaintext_blocked",
	[TG_CNT_SEGMENTS_DROPPED] = "segments_dropped",
	[TG_CNT_PARTIAL_PREFIX] = "partial_prefix",
	[TG_CNT_OUT_OF_ORDER] = "out_of_order",
	[TG_CNT_ERR_STORAGE] = "err_storage",
	[TG_CNT_ERR_RINGBUF] = "err_ringbuf",
	[TG_CNT_ERR_HEADER] = "err_header",
	[TG_CNT_ERR_NO_SOCK] = "err_no_sock",
	[TG_CNT_WEAK_TLS_FLAGGED] = "weak_tls_flagged",
	[TG_CNT_WEAK_TLS_BLOCKED] = "weak_tls_blocked",
	[TG_CNT_SNI_MISMATCH_FLAGGED] = "sni_mismatch_flagged",
	[TG_CNT_SNI_MISMATCH_BLOCKED] = "sni_mismatch_blocked",
	[TG_CNT_HELLO_SPLIT] = "hello_split",
	[TG_CNT_HELLO_TRUNCATED] = "hello_truncated",
	[TG_CNT_SERVER_HELLO] = "server_hello",
	[TG_CNT_SERVER_UNJUDGED] = "server_unjudged",
	[TG_CNT_PROXY_UNTRACKED] = "proxy_untracked",
	[TG_CNT_ERR_HS_STORAGE] = "err_hs_storage",
	[TG_CNT_QUIC_INITIAL] = "quic_initial",
	[TG_CNT_FAIL_OPEN_PASSED] = "fail_open_passed",
	[TG_CNT_SKIPPED_CGROUP] = "skipped_cgroup",
	[TG_CNT_UNTRACKED_FLOW_CAP] = "untracked_flow_cap",
	[TG_CNT_UNTRACKED_REFUSED] = "untracked_refused",
	[TG_CNT_UNTRACKED_PASSED] = "untracked_passed",
	[TG_CNT_SMB_ENCRYPTED] = "smb_encrypted",
	[TG_CNT_OVERRIDE_HIT] = "override_hit",
	[TG_CNT_RECORDS_WALKED] = "records_walked",
	[TG_CNT_HELLO_RETRY] = "hello_retry",
	[TG_CNT_SERVER_ALERT] = "server_alert",
	[TG_CNT_SERVER_FIRST] = "server_first",
	[TG_CNT_UNDECIDED_BOUND] = "undecided_bound",
	[TG_CNT_IPV6_EXTHDR] = "ipv6_exthdr",
	[TG_CNT_IPV6_UNPARSEABLE] = "ipv6_unparseable",
	[TG_CNT_RAW_SOCKETS] = "raw_sockets",
	[TG_CNT_RAW_CHECKED] = "raw_checked",
	[TG_CNT_SENDMSG_TRACKED] = "sendmsg_tracked",
	[TG_CNT_SENDMSG_SECOND_DEST] = "sendmsg_second_dest",
	[TG_CNT_QUIC_LATER] = "quic_later",
	[TG_CNT_PROXY_REQUESTS] = "proxy_requests",
	[TG_CNT_PROXY_UNFRAMED] = "proxy_unframed",
	[TG_CNT_DNS_HELD] = "dns_held",
	[TG_CNT_DNS_HELD_SEGMENTS] = "dns_held_segments",
	[TG_CNT_DNS_HELD_PROTECTED] = "dns_held_protected",
	[TG_CNT_DNS_HELD_UNLISTED] = "dns_held_unlisted",
	[TG_CNT_DNS_HOLD_TIMEOUT] = "dns_hold_timeout",
	[TG_CNT_DNS_KLEARNED_HIT] = "dns_learned_in_kernel_hit",
	[TG_CNT_HS_KEPT] = "hs_kept",
	[TG_CNT_HS_SCRATCH_BUSY] = "hs_scratch_busy",
	[TG_CNT_HELLO_SUMMARY_LOST] = "hello_summary_lost",
};
_Static_assert(sizeof(counter_names) / sizeof(counter_names[0]) == TG_CNT__MAX,
	       "every kernel counter has a name");

static const char *const class_stat_names[] = {
	[TG_CS_TRACKED] = "tracked",
	[TG_CS_TLS] = "tls",
	[TG_CS_PLAINTEXT_FLAGGED] = "plaintext_flagged",
	[TG_CS_PLAINTEXT_BLOCKED] = "plaintext_blocked",
	[TG_CS_CONNECT_FLAGGED] = "connect_flagged",
	[TG_CS_CONNECT_BLOCKED] = "connect_blocked",
	[TG_CS_WEAK_TLS] = "weak_tls",
	[TG_CS_SNI_MISMATCH] = "sni_mismatch",
};
_Static_assert(sizeof(class_stat_names) / sizeof(class_stat_names[0]) == TG_CS__MAX,
	       "every class stat has a name");

/* The figures both status and metrics report, read once per request. */
struct snapshot {
	uint64_t total[TG_CNT__MAX];	/* since the pins were created */
	uint64_t since[TG_CNT__MAX];	/* since this agent started */
	uint64_t events_lost;
	uint64_t live_flows;		/* the kernel's tg_live_flows gauge */
	double uptime_s;
};

static void take_snapshot(struct agent *a, struct snapshot *s)
{
	struct timespec now;

	memset(s, 0, sizeof(*s));
	agent_read_counters(a, s->total);
	agent_read_live_flows(a, &s->live_flows);
	for (int i = 0; i < TG_CNT__MAX; i++)
		s->since[i] = s->total[i] >= a->counters_at_start[i] ?
			      s->total[i] - a->counters_at_start[i] : s->total[i];
	s->events_lost = s->since[TG_CNT_ERR_RINGBUF] + a->events_write_failed;
	clock_gettime(CLOCK_MONOTONIC, &now);
	s->uptime_s = (now.tv_sec - a->started_mono.tv_sec) +
		      (now.tv_nsec - a->started_mono.tv_nsec) / 1e9;
}

static const char *mode_name(int mode)
{
	return mode == TG_MODE_ENFORCE ? "enforce" : "audit";
}

static void add_time(json_object *o, const char *key, int64_t real_ns)
{
	char buf[64];

	if (!real_ns) {
		json_object_object_add(o, key, NULL);
		return;
	}
	events_format_time(real_ns, buf, sizeof(buf));
	json_object_object_add(o, key, json_object_new_string(buf));
}

static json_object *agent_json(struct agent *a, const struct snapshot *s)
{
	json_object *o = json_object_new_object();
	int mode = a->opts->mode_override >= 0 ? a->opts->mode_override : a->policy->mode;

	json_object_object_add(o, "version", json_object_new_string(TLSGUARD_VERSION));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "uptime_s", json_object_new_int64((int64_t)s->uptime_s));
	add_time(o, "started_at", a->started_real_ns);
	json_object_object_add(o, "mode", json_object_new_string(mode_name(mode)));
	json_object_object_add(o, "mode_source",
			       json_object_new_string(a->opts->mode_override >= 0 ? "--mode" : "policy"));
	json_object_object_add(o, "fail_mode", json_object_new_string(
				       a->policy->fail_mode == TG_FAIL_OPEN ? "open" : "closed"));
	json_object_object_add(o, "fail_open_after_s", json_object_new_int64(a->policy->fail_open_after_s));
	json_object_object_add(o, "pin_path", tg_json_string(a->loader.pin_dir));
	json_object_object_add(o, "adopted_pins", json_object_new_boolean(a->loader.adopted_maps));
	return o;
}

struct hook_state {
	bool attached;
	uint32_t prog_id;
	uint64_t run_cnt, run_time_ns;
};

static void read_hook(int link_fd, struct hook_state *h)
{
	struct bpf_link_info link = { 0 };
	struct bpf_prog_info prog = { 0 };
	__u32 len = sizeof(link);
	int fd;

	memset(h, 0, sizeof(*h));
	if (link_fd < 0 || bpf_obj_get_info_by_fd(link_fd, &link, &len))
		return;
	/* a cgroup link whose cgroup went away reads back with cgroup id 0 */
	h->attached = link.cgroup.cgroup_id != 0;
	h->prog_id = link.prog_id;
	fd = bpf_prog_get_fd_by_id(link.prog_id);
	if (fd < 0)
		return;
	len = sizeof(prog);
	if (!bpf_obj_get_info_by_fd(fd, &prog, &len)) {
		h->run_cnt = prog.run_cnt;
		h->run_time_ns = prog.run_time_ns;
	}
	close(fd);
}

static const char *rel_cgroup(struct agent *a, const char *abs)
{
	size_t n = strlen(a->cg_mount);

	return !strncmp(abs, a->cg_mount, n) && abs[n] ? abs + n : "/";
}

/* DNS answer learning's programs on the same cgroup (dnslearn.h). */
static void dns_hook_json(struct agent *a, const struct tg_attachment *att, int hook,
			  json_object *arr, int *missing)
{
	json_object *o;
	struct hook_state st;
	char pin[4400] = "";
	bool adopted = false;
	int fd;

	if (!a->dns)
		return;
	fd = dnslearn_link(a->dns, att->cgroup_id, hook, pin, sizeof(pin), &adopted);
	read_hook(fd, &st);
	if (!st.attached)
		(*missing)++;
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(dnslearn_hook_name(hook)));
	json_object_object_add(o, "attached", json_object_new_boolean(st.attached));
	json_object_object_add(o, "cgroup", tg_json_string(rel_cgroup(a, att->path)));
	json_object_object_add(o, "pinned", tg_json_string(pin));
	json_object_object_add(o, "prog_id", json_object_new_int64(st.prog_id));
	json_object_object_add(o, "adopted", json_object_new_boolean(adopted));
	json_object_object_add(o, "run_cnt", json_object_new_uint64(st.run_cnt));
	json_object_object_add(o, "run_time_ns", json_object_new_uint64(st.run_time_ns));
	json_object_array_add(arr, o);
}

static json_object *hooks_json(struct agent *a, int *missing)
{
	json_object *arr = json_object_new_array();

	*missing = 0;
	for (size_t i = 0; i < a->loader.natts; i++) {
		const struct tg_attachment *att = &a->loader.atts[i];

		for (int h = 0; h < TG_HOOK__MAX; h++) {
			json_object *o = json_object_new_object();
			struct hook_state st;
			char pin[4400];

			read_hook(att->link_fd[h], &st);
			if (!st.attached)
				(*missing)++;
			snprintf(pin, sizeof(pin), "%s/links/%llu_%s", a->loader.pin_dir,
				 (unsigned long long)att->cgroup_id, loader_hook_name(h));
			json_object_object_add(o, "name", json_object_new_string(loader_hook_name(h)));
			json_object_object_add(o, "attached", json_object_new_boolean(st.attached));
			json_object_object_add(o, "cgroup", tg_json_string(rel_cgroup(a, att->path)));
			json_object_object_add(o, "pinned", tg_json_string(pin));
			json_object_object_add(o, "prog_id", json_object_new_int64(st.prog_id));
			json_object_object_add(o, "adopted", json_object_new_boolean(att->adopted[h]));
			json_object_object_add(o, "run_cnt", json_object_new_uint64(st.run_cnt));
			json_object_object_add(o, "run_time_ns", json_object_new_uint64(st.run_time_ns));
			json_object_array_add(arr, o);
		}
		for (int h = 0; dnslearn_hook_name(h); h++)
			dns_hook_json(a, att, h, arr, missing);
	}
	return arr;
}

static char *ports_text(const struct tg_class *c, char *buf, size_t len)
{
	size_t off = 0;

	if (!c->nranges) {
		snprintf(buf, len, "any");
		return buf;
	}
	buf[0] = '\0';
	for (int i = 0; i < c->nranges && i < TG_MAX_PORT_RANGES && off < len; i++) {
		if (c->ports[i].lo == c->ports[i].hi)
			off += snprintf(buf + off, len - off, "%s%u", i ? "," : "", c->ports[i].lo);
		else
			off += snprintf(buf + off, len - off, "%s%u-%u", i ? "," : "", c->ports[i].lo,
					c->ports[i].hi);
	}
	return buf;
}

static json_object *classes_json(struct agent *a)
{
	json_object *arr = json_object_new_array();

	for (uint32_t id = 1; id <= a->dests.nclasses; id++) {
		json_object *o, *flows;
		uint64_t stats[TG_CS__MAX] = { 0 };
		char ports[160];
		size_t entries = 0;

		if (!dests_class_name(&a->dests, id))
			continue;	/* an id left free by a reload */
		o = json_object_new_object();
		flows = json_object_new_object();
		for (size_t i = 0; i < a->dests.n; i++)
			entries += a->dests.v[i].val.class_id == id;
		agent_read_class_stats(a, id, stats);
		json_object_object_add(o, "name", tg_json_string(dests_class_name(&a->dests, id)));
		json_object_object_add(o, "mode", json_object_new_string(mode_name(a->dests.classes[id].mode)));
		json_object_object_add(o, "ports",
				       json_object_new_string(ports_text(&a->dests.classes[id], ports, sizeof(ports))));
		json_object_object_add(o, "map_entries", json_object_new_int64(entries));
		for (int s = 0; s < TG_CS__MAX; s++)
			json_object_object_add(flows, class_stat_names[s], json_object_new_uint64(stats[s]));
		json_object_object_add(o, "flows", flows);
		json_object_array_add(arr, o);
	}
	return arr;
}

static json_object *counts_json(const char *const *names, const uint64_t *v, size_t n)
{
	json_object *o = json_object_new_object();

	for (size_t i = 0; i < n; i++)
		json_object_object_add(o, names[i], json_object_new_uint64(v[i]));
	return o;
}

static size_t learned_count_or_0(struct agent *a)
{
	const struct tg_learned *t = dnslearn_table(a->dns);

	return t ? learned_count(t) : 0;
}

/* Learned addresses dropped before they expired (only a smaller dns.max_learned does that). */
static uint64_t learned_evicted_or_0(struct agent *a)
{
	const struct tg_learned *t = dnslearn_table(a->dns);
	struct tg_learned_stats st = { 0 };

	if (t)
		learned_get_stats(t, &st);
	return st.evicted;
}

/* Learning from DNS answers: the table, the parser, the kernel copy. */
static json_object *dns_json(struct agent *a)
{
	static const char *const parse_names[TG_DNSP__MAX] = {
		"ok", "malformed", "not_answer", "truncated", "rcode", "no_question",
	};
	static const char *const tcp_names[] = { "messages", "gaps", "evicted", "oversized" };
	json_object *o = json_object_new_object();
	struct tg_dnslearn_stats st;
	uint64_t tcp[4];

	dnslearn_get_stats(a->dns, &st);
	tcp[0] = st.tcp.messages;
	tcp[1] = st.tcp.gaps;
	tcp[2] = st.tcp.evicted;
	tcp[3] = st.tcp.oversized;
	json_object_object_add(o, "learned_ips", json_object_new_int64(st.learned_ips));
	json_object_object_add(o, "max_learned", json_object_new_int64(st.max_learned));
	json_object_object_add(o, "map_entries", json_object_new_int64(a->dests.learned));
	json_object_object_add(o, "left_out", json_object_new_int64(a->dests.learned_left_out));
	json_object_object_add(o, "evicted", json_object_new_uint64(st.table.evicted));
	json_object_object_add(o, "refused_full", json_object_new_uint64(st.table.refused_full));
	json_object_object_add(o, "refused_quota", json_object_new_uint64(st.table.refused_quota));
	json_object_object_add(o, "hold_publishes", json_object_new_uint64(st.hold_publishes));
	json_object_object_add(o, "kernel_learned_handed_over", json_object_new_uint64(st.klearned_dropped));
	json_object_object_add(o, "unsolicited", json_object_new_uint64(st.unsolicited));
	json_object_object_add(o, "queries_swept", json_object_new_uint64(st.queries_swept));
	json_object_object_add(o, "expired", json_object_new_uint64(st.table.expired));
	json_object_object_add(o, "learned", json_object_new_uint64(st.table.learned));
	json_object_object_add(o, "refreshed", json_object_new_uint64(st.table.refreshed));
	json_object_object_add(o, "class_conflicts", json_object_new_uint64(st.table.class_conflicts));
	json_object_object_add(o, "answers", json_object_new_uint64(st.table.answers));
	json_object_object_add(o, "answers_matched", json_object_new_uint64(st.table.answers_matched));
	json_object_object_add(o, "records", json_object_new_uint64(st.records));
	json_object_object_add(o, "udp_truncated", json_object_new_uint64(st.udp_truncated));
	json_object_object_add(o, "parsed", counts_json(parse_names, st.parsed, TG_DNSP__MAX));
	json_object_object_add(o, "tcp", counts_json(tcp_names, tcp, 4));
	if (st.kernel_names)
		json_object_object_add(o, "kernel", counts_json(st.kernel_names, st.kernel, st.nkernel));
	return o;
}

/* The policy-wide service tags file: loaded or not, and how old (they change weekly). */
static json_object *service_tags_json(const struct tg_policy *p)
{
	json_object *o = json_object_new_object();
	time_t now = time(NULL);

	json_object_object_add(o, "file", p->service_tags_file ? tg_json_string(p->service_tags_file) :
				       NULL);
	json_object_object_add(o, "loaded", json_object_new_boolean(p->service_tags_loaded));
	json_object_object_add(o, "prefixes", json_object_new_int64(p->service_tags_prefixes));
	json_object_object_add(o, "age_s", p->service_tags_loaded && now >= p->service_tags_mtime ?
				       json_object_new_int64(now - p->service_tags_mtime) : NULL);
	json_object_object_add(o, "reason", p->service_tags_loaded ? NULL :
				       tg_json_string(p->service_tags_why));
	return o;
}

static json_object *policy_json(struct agent *a)
{
	json_object *o = json_object_new_object();
	size_t resolved = 0, unresolved = 0;

	pthread_mutex_lock(&a->hosts->lock);
	for (size_t i = 0; i < a->hosts->n; i++) {
		resolved += a->hosts->v[i].addrs.naddrs;
		unresolved += !a->hosts->v[i].addrs.naddrs;
	}
	pthread_mutex_unlock(&a->hosts->lock);
	json_object_object_add(o, "source", tg_json_string(a->policy->source));
	json_object_object_add(o, "sha256", json_object_new_string(a->policy_sha256));
	add_time(o, "loaded_at", a->policy_loaded_ns);
	json_object_object_add(o, "destinations", json_object_new_int64(a->policy->ndests));
	json_object_object_add(o, "exceptions", json_object_new_int64(a->policy->nexceptions));
	json_object_object_add(o, "hosts", json_object_new_int64(a->hosts->n));
	json_object_object_add(o, "resolved_ips", json_object_new_int64(resolved));
	json_object_object_add(o, "unresolved_hosts", json_object_new_int64(unresolved));
	json_object_object_add(o, "learned_ips", json_object_new_int64(learned_count_or_0(a)));
	json_object_object_add(o, "learned_evicted", json_object_new_uint64(learned_evicted_or_0(a)));
	json_object_object_add(o, "dns", dns_json(a));
	json_object_object_add(o, "service_tags", service_tags_json(a->policy));
	json_object_object_add(o, "map_entries", json_object_new_int64(a->dests.n));
	json_object_object_add(o, "reloads", json_object_new_uint64(a->reloads));
	json_object_object_add(o, "reload_failures", json_object_new_uint64(a->reload_failures));
	/* a reload being prepared (on its thread) or applied (in slices): the policy above is in force */
	json_object_object_add(o, "reloading", json_object_new_boolean(a->reload.running ||
								       a->reload.applying));
	json_object_object_add(o, "classes", classes_json(a));
	return o;
}

json_object *status_verdict_counters_json(const uint64_t *c)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "flows_tracked", json_object_new_uint64(c[TG_CNT_FLOWS_TRACKED]));
	json_object_object_add(o, "tls", json_object_new_uint64(c[TG_CNT_VERDICT_TLS]));
	json_object_object_add(o, "plaintext",
			       json_object_new_uint64(c[TG_CNT_PLAINTEXT_FLAGGED] + c[TG_CNT_PLAINTEXT_BLOCKED]));
	json_object_object_add(o, "weak_tls",
			       json_object_new_uint64(c[TG_CNT_WEAK_TLS_FLAGGED] + c[TG_CNT_WEAK_TLS_BLOCKED]));
	json_object_object_add(o, "sni_mismatch",
			       json_object_new_uint64(c[TG_CNT_SNI_MISMATCH_FLAGGED] +
						      c[TG_CNT_SNI_MISMATCH_BLOCKED]));
	json_object_object_add(o, "blocked",
			       json_object_new_uint64(c[TG_CNT_PLAINTEXT_BLOCKED] + c[TG_CNT_CONNECT_BLOCKED]));
	json_object_object_add(o, "flagged",
			       json_object_new_uint64(c[TG_CNT_PLAINTEXT_FLAGGED] + c[TG_CNT_CONNECT_FLAGGED]));
	return o;
}

static json_object *counters_json(struct agent *a, const struct snapshot *s)
{
	json_object *o = status_verdict_counters_json(s->since);
	const uint64_t *c = s->since;

	json_object_object_add(o, "connect_blocked", json_object_new_uint64(c[TG_CNT_CONNECT_BLOCKED]));
	json_object_object_add(o, "connect_flagged", json_object_new_uint64(c[TG_CNT_CONNECT_FLAGGED]));
	json_object_object_add(o, "events_emitted", json_object_new_uint64(a->events_emitted));
	json_object_object_add(o, "events_lost", json_object_new_uint64(s->events_lost));
	json_object_object_add(o, "sockets_destroyed", json_object_new_uint64(a->sockets_destroyed));
	json_object_object_add(o, "destroy_failed", json_object_new_uint64(a->destroy_failed));
	json_object_object_add(o, "fail_open_passed", json_object_new_uint64(c[TG_CNT_FAIL_OPEN_PASSED]));
	return o;
}

/*
 * limits.max_tracked_flows: open tracked flows against the cap, and the
 * connects that could not be tracked (totals since the pins were created,
 * like the gauge).
 */
static json_object *flows_json(struct agent *a, const struct snapshot *s)
{
	json_object *o = json_object_new_object(), *u = json_object_new_object();
	const uint64_t *t = s->total;

	json_object_object_add(o, "live", json_object_new_uint64(s->live_flows));
	json_object_object_add(o, "max", json_object_new_uint64(a->policy->max_tracked_flows));
	json_object_object_add(u, "flow_cap", json_object_new_uint64(t[TG_CNT_UNTRACKED_FLOW_CAP]));
	json_object_object_add(u, "storage", json_object_new_uint64(t[TG_CNT_ERR_STORAGE]));
	json_object_object_add(u, "refused", json_object_new_uint64(t[TG_CNT_UNTRACKED_REFUSED]));
	json_object_object_add(u, "passed", json_object_new_uint64(t[TG_CNT_UNTRACKED_PASSED]));
	json_object_object_add(o, "untracked", u);
	return o;
}

/*
 * The pin layout, and an upgrade in progress: the old generation's counters
 * are its own (never added to "counters"); they are reported once, in the
 * upgrade_done event, when it is removed.
 */
static json_object *handoff_json(struct agent *a)
{
	const struct tg_upgrade *h = &a->handoff;
	json_object *o = json_object_new_object();

	json_object_object_add(o, "layout", json_object_new_int64(h->layout));
	json_object_object_add(o, "draining", json_object_new_boolean(h->retiring_layout != 0));
	json_object_object_add(o, "retiring_layout",
			       h->retiring_layout ? json_object_new_int64(h->retiring_layout) : NULL);
	if (h->retiring_layout) {
		json_object_object_add(o, "retiring_open_flows",
				       h->census_ok ? json_object_new_uint64(h->census_flows) : NULL);
		json_object_object_add(o, "retiring_events_read",
				       json_object_new_boolean(h->old_events_compatible));
	}
	add_time(o, "switched_at", h->switched_real_ns);
	return o;
}

static json_object *kernel_counters_json(const struct snapshot *s)
{
	json_object *o = json_object_new_object();

	for (int i = 0; i < TG_CNT__MAX; i++)
		json_object_object_add(o, counter_names[i], json_object_new_uint64(s->total[i]));
	return o;
}

/* The App Insights sink: "disabled" without a connection string. */
static json_object *ai_sink_json(struct agent *a)
{
	json_object *o = json_object_new_object(), *lost;
	struct tg_sink_ai_stats st;

	json_object_object_add(o, "name", json_object_new_string("appinsights"));
	if (!a->ai) {
		json_object_object_add(o, "state", json_object_new_string("disabled"));
		return o;
	}
	sink_ai_stats(a->ai, &st);
	lost = json_object_new_object();
	json_object_object_add(o, "target", tg_json_string(st.endpoint));
	json_object_object_add(o, "state", json_object_new_string(sink_ai_state_name(st.state)));
	json_object_object_add(o, "sent", json_object_new_uint64(st.sent));
	json_object_object_add(o, "failed", json_object_new_uint64(st.failed));
	json_object_object_add(o, "queued", json_object_new_uint64(st.queued));
	json_object_object_add(o, "spooled", json_object_new_uint64(st.spooled));
	json_object_object_add(o, "spool_bytes", json_object_new_uint64(st.spool_bytes));
	json_object_object_add(o, "spool", json_object_new_string(!st.spool_on_disk ? "memory" :
				       st.spool_encrypted ? "disk, encrypted" : "disk, NOT encrypted"));
	add_time(o, "last_success", st.last_success_ns);
	json_object_object_add(o, "last_error", st.last_error[0] ? tg_json_string(st.last_error) : NULL);
	json_object_object_add(lost, "rejected", json_object_new_uint64(st.lost_rejected));
	json_object_object_add(lost, "queue_full", json_object_new_uint64(st.lost_queue_full));
	json_object_object_add(lost, "evicted", json_object_new_uint64(st.lost_evicted));
	json_object_object_add(lost, "expired", json_object_new_uint64(st.lost_expired));
	json_object_object_add(lost, "other", json_object_new_uint64(st.lost_other));
	json_object_object_add(lost, "quota", json_object_new_uint64(st.lost_quota));
	json_object_object_add(o, "lost", lost);
	json_object_object_add(o, "requests", json_object_new_uint64(st.requests));
	json_object_object_add(o, "retries", json_object_new_uint64(st.retries));
	json_object_object_add(o, "throttled", json_object_new_uint64(st.throttled));
	json_object_object_add(o, "redirects", json_object_new_uint64(st.redirects));
	json_object_object_add(o, "redirects_refused", json_object_new_uint64(st.redirects_refused));
	json_object_object_add(o, "redirected_to",
			       st.redirected_to[0] ? tg_json_string(st.redirected_to) : NULL);
	if (st.journal) {
		json_object *j = json_object_new_object();

		json_object_object_add(j, "bytes", json_object_new_uint64(st.journal_bytes));
		json_object_object_add(j, "syncs", json_object_new_uint64(st.journal_syncs));
		json_object_object_add(j, "write_errors", json_object_new_uint64(st.journal_write_errors));
		json_object_object_add(j, "replayed", json_object_new_uint64(st.journal_replayed));
		json_object_object_add(j, "evicted", json_object_new_uint64(st.journal_evicted));
		json_object_object_add(j, "expired", json_object_new_uint64(st.journal_expired));
		json_object_object_add(o, "journal", j);
	}
	json_object_object_add(o, "token_fetches", json_object_new_uint64(st.token_fetches));
	json_object_object_add(o, "flood_folded", json_object_new_uint64(st.flood_folded));
	json_object_object_add(o, "flood_summaries", json_object_new_uint64(st.flood_summaries));
	return o;
}

static json_object *sinks_json(struct agent *a)
{
	json_object *arr = json_object_new_array(), *o = json_object_new_object();
	const struct tg_sink_stats *f = &a->file_sink;
	const char *target = a->opts->events_file ? a->opts->events_file : a->policy->events_file;

	json_object_object_add(o, "name", json_object_new_string(f->name));
	json_object_object_add(o, "target", tg_json_string(target && strcmp(target, "-") ?
								   target : "stdout"));
	json_object_object_add(o, "state", json_object_new_string(f->ok ? "ok" : "error"));
	json_object_object_add(o, "sent", json_object_new_uint64(f->sent));
	json_object_object_add(o, "failed", json_object_new_uint64(f->failed));
	json_object_object_add(o, "queued", json_object_new_uint64(f->queued));
	json_object_object_add(o, "spooled", json_object_new_uint64(f->spooled));
	add_time(o, "last_success", f->last_success_ns);
	json_object_object_add(o, "last_error", f->last_error[0] ? tg_json_string(f->last_error) : NULL);
	json_object_array_add(arr, o);
	json_object_array_add(arr, ai_sink_json(a));
	return arr;
}

static int tally_cmp(const void *x, const void *y)
{
	const struct tg_tally *a = x, *b = y;

	return a->count < b->count ? 1 : a->count > b->count ? -1 : strcmp(a->key, b->key);
}

static json_object *top_json(const struct tg_tally *t, const char *label)
{
	struct tg_tally sorted[TG_TOP_MAX];
	json_object *arr = json_object_new_array();
	size_t n = 0;

	for (size_t i = 0; i < TG_TOP_MAX; i++)
		if (t[i].count)
			sorted[n++] = t[i];
	qsort(sorted, n, sizeof(sorted[0]), tally_cmp);
	for (size_t i = 0; i < n && i < 5; i++) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, label, tg_json_string(sorted[i].key));
		json_object_object_add(o, "violations", json_object_new_uint64(sorted[i].count));
		json_object_array_add(arr, o);
	}
	return arr;
}

static json_object *health_json(struct agent *a, const struct snapshot *s, int missing_hooks)
{
	json_object *o = json_object_new_object(), *reasons = json_object_new_array();
	json_object *warnings = json_object_new_array();
	char buf[512];

	if (missing_hooks) {
		snprintf(buf, sizeof(buf), "%d hook(s) not attached", missing_hooks);
		json_object_array_add(reasons, tg_json_string(buf));
	}
	if (a->dns) {
		struct tg_dnslearn_stats ds;

		/* an answer not learned leaves its addresses unprotected: as bad as a missing hook */
		dnslearn_get_stats(a->dns, &ds);
		if (ds.table.refused_full || ds.table.refused_quota) {
			snprintf(buf, sizeof(buf), "dns: %llu address(es) not learned since start "
				 "(%llu: table full, dns.max_learned; %llu: a cgroup's quota, "
				 "dns.max_learned_per_cgroup)",
				 (unsigned long long)(ds.table.refused_full + ds.table.refused_quota),
				 (unsigned long long)ds.table.refused_full,
				 (unsigned long long)ds.table.refused_quota);
			json_object_array_add(reasons, tg_json_string(buf));
		}
	}
	if (!a->file_sink.ok) {
		snprintf(buf, sizeof(buf), "event sink %s failing: %s", a->file_sink.name, a->file_sink.last_error);
		json_object_array_add(reasons, tg_json_string(buf));
	}
	if (a->ai) {
		struct tg_sink_ai_stats st;

		sink_ai_stats(a->ai, &st);
		if (st.state == TG_SINK_AI_DOWN) {
			snprintf(buf, sizeof(buf), "event sink appinsights down: %s", st.last_error);
			json_object_array_add(reasons, tg_json_string(buf));
		}
		if (st.failed) {
			snprintf(buf, sizeof(buf), "appinsights: %llu item(s) lost since start",
				 (unsigned long long)st.failed);
			json_object_array_add(warnings, json_object_new_string(buf));
		}
	}
	/* losses are reported, but restarting the agent would not bring them back */
	if (s->events_lost) {
		snprintf(buf, sizeof(buf), "%llu event(s) lost since start", (unsigned long long)s->events_lost);
		json_object_array_add(warnings, json_object_new_string(buf));
	}
	if (s->live_flows >= a->policy->max_tracked_flows) {
		snprintf(buf, sizeof(buf), "tracked-flow cap reached: %llu of %u (limits.max_tracked_flows); "
			 "new connects to protected destinations are not tracked",
			 (unsigned long long)s->live_flows, a->policy->max_tracked_flows);
		json_object_array_add(warnings, json_object_new_string(buf));
	}
	if (s->since[TG_CNT_UNTRACKED_FLOW_CAP] || s->since[TG_CNT_ERR_STORAGE]) {
		snprintf(buf, sizeof(buf), "%llu connect(s) not tracked since start (%llu at the flow cap, "
			 "%llu without memory for flow state): %llu refused, %llu passed unjudged",
			 (unsigned long long)(s->since[TG_CNT_UNTRACKED_FLOW_CAP] + s->since[TG_CNT_ERR_STORAGE]),
			 (unsigned long long)s->since[TG_CNT_UNTRACKED_FLOW_CAP],
			 (unsigned long long)s->since[TG_CNT_ERR_STORAGE],
			 (unsigned long long)s->since[TG_CNT_UNTRACKED_REFUSED],
			 (unsigned long long)s->since[TG_CNT_UNTRACKED_PASSED]);
		json_object_array_add(warnings, json_object_new_string(buf));
	}
	if (a->destroy_failed) {
		snprintf(buf, sizeof(buf), "%llu blocked socket(s) could not be destroyed",
			 (unsigned long long)a->destroy_failed);
		json_object_array_add(warnings, json_object_new_string(buf));
	}
	json_object_object_add(o, "state", json_object_new_string(
				       json_object_array_length(reasons) ? "degraded" : "healthy"));
	json_object_object_add(o, "reasons", reasons);
	json_object_object_add(o, "warnings", warnings);
	return o;
}

json_object *status_build_json(struct agent *a)
{
	json_object *o = json_object_new_object(), *top = json_object_new_object();
	json_object *control = json_object_new_object(), *hooks;
	struct snapshot s;
	int missing;

	take_snapshot(a, &s);
	hooks = hooks_json(a, &missing);
	json_object_object_add(o, "agent", agent_json(a, &s));
	json_object_object_add(o, "health", health_json(a, &s, missing));
	json_object_object_add(o, "hooks", hooks);
	json_object_object_add(o, "policy", policy_json(a));
	json_object_object_add(o, "counters", counters_json(a, &s));
	json_object_object_add(o, "flows", flows_json(a, &s));
	json_object_object_add(o, "kernel_counters", kernel_counters_json(&s));
	json_object_object_add(o, "handoff", handoff_json(a));
	json_object_object_add(o, "sinks", sinks_json(a));
	if (a->ev_ctx.workloads)
		json_object_object_add(o, "workloads", workloads_status_json(a->ev_ctx.workloads));
	json_object_object_add(top, "workloads", top_json(a->top_workloads, "workload"));
	json_object_object_add(top, "destinations", top_json(a->top_destinations, "destination"));
	json_object_object_add(o, "top", top);
	json_object_object_add(control, "socket", tg_json_string(a->control.path));
	/* connected now, this status request included (at most TG_CONTROL_MAX_CLIENTS) */
	json_object_object_add(control, "clients", json_object_new_uint64(a->control.nclients));
	json_object_object_add(control, "refused_peers", json_object_new_uint64(a->control.refused_peers));
	json_object_object_add(control, "bad_requests", json_object_new_uint64(a->control.bad_requests));
	json_object_object_add(control, "follower_drops", json_object_new_uint64(a->control.follower_drops));
	json_object_object_add(o, "control", control);
	return o;
}

static void tally(struct tg_tally *t, const char *key)
{
	struct tg_tally *least = &t[0];

	for (size_t i = 0; i < TG_TOP_MAX; i++) {
		if (t[i].count && !strcmp(t[i].key, key)) {
			t[i].count++;
			return;
		}
		if (t[i].count < least->count)
			least = &t[i];
	}
	/* full: the least seen gives way (top-N of a bounded table, not exact) */
	snprintf(least->key, sizeof(least->key), "%s", key);
	least->count = 1;
}

static const char *get2(json_object *o, const char *a, const char *b)
{
	json_object *x;

	if (!json_object_object_get_ex(o, a, &x) || !x || !json_object_object_get_ex(x, b, &x) || !x)
		return NULL;
	return json_object_get_string(x);
}

void status_tally_fields(struct agent *a, const char *type, const char *cg, const char *comm,
			 const char *cls, const char *name, const char *ip, const char *port)
{
	char key[320];

	if (!type || !strcmp(type, "tls"))
		return;
	snprintf(key, sizeof(key), "%s%s%s%s", cg ? cg : "?", comm ? " (" : "", comm ? comm : "",
		 comm ? ")" : "");
	tally(a->top_workloads, key);
	snprintf(key, sizeof(key), "%s %s:%s", cls ? cls : "?", name ? name : ip ? ip : "?",
		 port ? port : "?");
	tally(a->top_destinations, key);
}

void status_tally_event(struct agent *a, json_object *ev)
{
	const char *type = NULL;
	json_object *t;

	if (json_object_object_get_ex(ev, "type", &t))
		type = json_object_get_string(t);
	status_tally_fields(a, type, get2(ev, "workload", "cgroup"), get2(ev, "workload", "comm"),
			    get2(ev, "destination", "class"), get2(ev, "destination", "name"),
			    get2(ev, "destination", "ip"), get2(ev, "destination", "port"));
}

/* ---- Prometheus ---------------------------------------------------------- */

struct mbuf {
	char *p;
	size_t len, cap;
	int err;
};

static void mprintf(struct mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mprintf(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->len) {
			b->len += n;
			return;
		}
		char *grown = realloc(b->p, b->cap * 2 + n + 1);

		if (!grown) {
			b->err = -ENOMEM;
			return;
		}
		b->p = grown;
		b->cap = b->cap * 2 + n + 1;
	}
}

static void metric_head(struct mbuf *b, const char *name, const char *type, const char *help)
{
	mprintf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/*
 * Label values: valid UTF-8 (a cgroup directory name can be any bytes), then
 * backslash, quote and newline escaped as the format asks.
 */
static const char *label(const char *s, char *buf, size_t len)
{
	size_t o = 0, n = s ? strlen(s) : 0, flen;
	char *fixed = s ? tg_utf8_repair(s, n, &flen) : NULL;

	for (const char *p = fixed; p && *p && o + 2 < len; p++) {
		/* not past the buffer with half a character */
		size_t k = tg_utf8_seq((const unsigned char *)p, flen - (size_t)(p - fixed));

		if (*p == '\\' || *p == '"' || *p == '\n') {
			buf[o++] = '\\';
			buf[o++] = *p == '\n' ? 'n' : *p;
		} else if (k && o + k < len) {
			memcpy(buf + o, p, k);
			o += k;
			p += k - 1;
		} else {
			break;
		}
	}
	buf[o] = '\0';
	free(fixed);
	return buf;
}

static void metrics_flows(struct agent *a, struct mbuf *b)
{
	char l[256];

	metric_head(b, "tlsguard_flows_total", "counter",
		    "Flows to protected destinations by class and outcome (since the pins were created).");
	for (uint32_t id = 1; id <= a->dests.nclasses; id++) {
		uint64_t st[TG_CS__MAX] = { 0 };

		if (!dests_class_name(&a->dests, id))
			continue;
		agent_read_class_stats(a, id, st);
		for (int s = 0; s < TG_CS__MAX; s++)
			mprintf(b, "tlsguard_flows_total{class=\"%s\",verdict=\"%s\"} %llu\n",
				label(dests_class_name(&a->dests, id), l, sizeof(l)), class_stat_names[s],
				(unsigned long long)st[s]);
	}
}

static void metrics_hooks(struct agent *a, struct mbuf *b)
{
	char l[PATH_MAX * 2];

	metric_head(b, "tlsguard_hook_attached", "gauge",
		    "1 while the program is attached to the watched cgroup (0: detached, e.g. the cgroup was removed).");
	for (size_t i = 0; i < a->loader.natts; i++)
		for (int h = 0; h < TG_HOOK__MAX; h++) {
			struct hook_state st;

			read_hook(a->loader.atts[i].link_fd[h], &st);
			mprintf(b, "tlsguard_hook_attached{program=\"%s\",cgroup=\"%s\"} %d\n",
				loader_hook_name(h), label(rel_cgroup(a, a->loader.atts[i].path), l, sizeof(l)),
				st.attached);
		}
	metric_head(b, "tlsguard_bpf_run_time_seconds_total", "counter",
		    "Kernel time spent in each program (needs kernel.bpf_stats_enabled=1).");
	for (size_t i = 0; i < a->loader.natts; i++)
		for (int h = 0; h < TG_HOOK__MAX; h++) {
			struct hook_state st;

			read_hook(a->loader.atts[i].link_fd[h], &st);
			mprintf(b, "tlsguard_bpf_run_time_seconds_total{program=\"%s\",cgroup=\"%s\"} %.9f\n",
				loader_hook_name(h), label(rel_cgroup(a, a->loader.atts[i].path), l, sizeof(l)),
				st.run_time_ns / 1e9);
		}
	metric_head(b, "tlsguard_bpf_run_count_total", "counter", "Invocations of each program.");
	for (size_t i = 0; i < a->loader.natts; i++)
		for (int h = 0; h < TG_HOOK__MAX; h++) {
			struct hook_state st;

			read_hook(a->loader.atts[i].link_fd[h], &st);
			mprintf(b, "tlsguard_bpf_run_count_total{program=\"%s\",cgroup=\"%s\"} %llu\n",
				loader_hook_name(h), label(rel_cgroup(a, a->loader.atts[i].path), l, sizeof(l)),
				(unsigned long long)st.run_cnt);
		}
}

/* The App Insights sink beyond up/sent (those share the families of every sink). */
static void metrics_ai(struct mbuf *b, const struct tg_sink_ai_stats *st)
{
	mprintf(b, "tlsguard_sink_sent_total{sink=\"appinsights\"} %llu\n", (unsigned long long)st->sent);
	metric_head(b, "tlsguard_sink_lost_total", "counter", "Items a sink lost, by reason.");
	mprintf(b, "tlsguard_sink_lost_total{sink=\"appinsights\",reason=\"rejected\"} %llu\n",
		(unsigned long long)st->lost_rejected);
	mprintf(b, "tlsguard_sink_lost_total{sink=\"appinsights\",reason=\"queue_full\"} %llu\n",
		(unsigned long long)st->lost_queue_full);
	mprintf(b, "tlsguard_sink_lost_total{sink=\"appinsights\",reason=\"evicted\"} %llu\n",
		(unsigned long long)st->lost_evicted);
	mprintf(b, "tlsguard_sink_lost_total{sink=\"appinsights\",reason=\"expired\"} %llu\n",
		(unsigned long long)st->lost_expired);
	mprintf(b, "tlsguard_sink_lost_total{sink=\"appinsights\",reason=\"other\"} %llu\n",
		(unsigned long long)st->lost_other);
	mprintf(b, "tlsguard_sink_lost_total{sink=\"appinsights\",reason=\"quota\"} %llu\n",
		(unsigned long long)st->lost_quota);
	metric_head(b, "tlsguard_sink_queued", "gauge", "Items waiting in memory.");
	mprintf(b, "tlsguard_sink_queued{sink=\"appinsights\"} %llu\n", (unsigned long long)st->queued);
	metric_head(b, "tlsguard_sink_spooled", "gauge", "Items waiting in the spool.");
	mprintf(b, "tlsguard_sink_spooled{sink=\"appinsights\"} %llu\n", (unsigned long long)st->spooled);
	metric_head(b, "tlsguard_sink_requests_total", "counter", "Requests to the ingestion endpoint.");
	mprintf(b, "tlsguard_sink_requests_total{sink=\"appinsights\"} %llu\n",
		(unsigned long long)st->requests);
	metric_head(b, "tlsguard_sink_retries_total", "counter", "Failed requests that will be retried.");
	mprintf(b, "tlsguard_sink_retries_total{sink=\"appinsights\"} %llu\n",
		(unsigned long long)st->retries);
	metric_head(b, "tlsguard_sink_flood_folded_total", "counter",
		    "Repeated violations folded into flood-control summaries.");
	mprintf(b, "tlsguard_sink_flood_folded_total{sink=\"appinsights\"} %llu\n",
		(unsigned long long)st->flood_folded);
}

int status_build_metrics(struct agent *a, char **out, size_t *len)
{
	struct mbuf b = { .cap = 8192 };
	struct tg_sink_ai_stats ai = { 0 };
	struct snapshot s;
	const uint64_t *t;

	b.p = malloc(b.cap);
	if (!b.p)
		return -ENOMEM;
	take_snapshot(a, &s);
	t = s.total;
	if (a->ai)
		sink_ai_stats(a->ai, &ai);
	metrics_flows(a, &b);
	metric_head(&b, "tlsguard_violations_total", "counter", "Violations by type and action.");
	mprintf(&b, "tlsguard_violations_total{type=\"plaintext\",action=\"flagged\"} %llu\n",
		(unsigned long long)t[TG_CNT_PLAINTEXT_FLAGGED]);
	mprintf(&b, "tlsguard_violations_total{type=\"plaintext\",action=\"blocked\"} %llu\n",
		(unsigned long long)t[TG_CNT_PLAINTEXT_BLOCKED]);
	mprintf(&b, "tlsguard_violations_total{type=\"blocked_connect\",action=\"flagged\"} %llu\n",
		(unsigned long long)t[TG_CNT_CONNECT_FLAGGED]);
	mprintf(&b, "tlsguard_violations_total{type=\"blocked_connect\",action=\"blocked\"} %llu\n",
		(unsigned long long)t[TG_CNT_CONNECT_BLOCKED]);
	metric_head(&b, "tlsguard_tracked_flows", "gauge",
		    "Tracked flows whose sockets are open (counted against limits.max_tracked_flows).");
	mprintf(&b, "tlsguard_tracked_flows %llu\n", (unsigned long long)s.live_flows);
	metric_head(&b, "tlsguard_tracked_flows_max", "gauge", "limits.max_tracked_flows.");
	mprintf(&b, "tlsguard_tracked_flows_max %u\n", a->policy->max_tracked_flows);
	metric_head(&b, "tlsguard_untracked_flows_total", "counter",
		    "Connects to protected destinations that could not be tracked, by reason.");
	mprintf(&b, "tlsguard_untracked_flows_total{reason=\"flow_cap\"} %llu\n",
		(unsigned long long)t[TG_CNT_UNTRACKED_FLOW_CAP]);
	mprintf(&b, "tlsguard_untracked_flows_total{reason=\"storage\"} %llu\n",
		(unsigned long long)t[TG_CNT_ERR_STORAGE]);
	metric_head(&b, "tlsguard_untracked_connects_total", "counter",
		    "What happened to them: refused (enforce, fail_mode closed) or passed unjudged.");
	mprintf(&b, "tlsguard_untracked_connects_total{action=\"refused\"} %llu\n",
		(unsigned long long)t[TG_CNT_UNTRACKED_REFUSED]);
	mprintf(&b, "tlsguard_untracked_connects_total{action=\"passed\"} %llu\n",
		(unsigned long long)t[TG_CNT_UNTRACKED_PASSED]);
	metric_head(&b, "tlsguard_events_emitted_total", "counter", "Events written by this agent.");
	mprintf(&b, "tlsguard_events_emitted_total %llu\n", (unsigned long long)a->events_emitted);
	metric_head(&b, "tlsguard_events_lost_total", "counter", "Events lost since this agent started, by reason.");
	mprintf(&b, "tlsguard_events_lost_total{reason=\"ringbuf_full\"} %llu\n",
		(unsigned long long)s.since[TG_CNT_ERR_RINGBUF]);
	mprintf(&b, "tlsguard_events_lost_total{reason=\"write_failed\"} %llu\n",
		(unsigned long long)a->events_write_failed);
	metric_head(&b, "tlsguard_sink_up", "gauge", "1 when the event sink is delivering.");
	mprintf(&b, "tlsguard_sink_up{sink=\"%s\"} %d\n", a->file_sink.name, a->file_sink.ok);
	if (a->ai)
		mprintf(&b, "tlsguard_sink_up{sink=\"appinsights\"} %d\n", ai.state == TG_SINK_AI_OK);
	metric_head(&b, "tlsguard_sink_sent_total", "counter", "Events delivered by each sink.");
	mprintf(&b, "tlsguard_sink_sent_total{sink=\"%s\"} %llu\n", a->file_sink.name,
		(unsigned long long)a->file_sink.sent);
	if (a->ai)
		metrics_ai(&b, &ai);
	metric_head(&b, "tlsguard_sockets_destroyed_total", "counter", "Blocked sockets destroyed.");
	mprintf(&b, "tlsguard_sockets_destroyed_total %llu\n", (unsigned long long)a->sockets_destroyed);
	metrics_hooks(a, &b);
	metric_head(&b, "tlsguard_kernel_counter_total", "counter",
		    "Every kernel verdict and failure counter (since the pins were created).");
	for (int i = 0; i < TG_CNT__MAX; i++)
		mprintf(&b, "tlsguard_kernel_counter_total{name=\"%s\"} %llu\n", counter_names[i],
			(unsigned long long)t[i]);
	metric_head(&b, "tlsguard_agent_uptime_seconds", "gauge", "Seconds since the agent started.");
	mprintf(&b, "tlsguard_agent_uptime_seconds %.0f\n", s.uptime_s);
	if (b.err) {
		free(b.p);
		return b.err;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}
