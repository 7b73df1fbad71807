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

#include "control.h"
#include "dests.h"
#include "dnslearn.h"
#include "enum_name.h"
#include "escape.h"
#include "events.h"
#include "handoff.h"
#include "loader.h"
#include "policy.h"
#include "ai_sink.h"
#include "status.h"
#include "tally.h"
#include "tlsguard/dns.h"
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
	[TG_CNT_DNS_HELD_UNREADABLE] = "dns_held_unreadable",
	[TG_CNT_BLOCKED_UNREADABLE] = "blocked_unreadable",
	[TG_CNT_QUIC_UNREADABLE] = "quic_unreadable",
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

const char *status_counter_name(int i)
{
	return TG_ENUM_NAME(counter_names, i, NULL);
}

const char *status_class_stat_name(int s)
{
	return TG_ENUM_NAME(class_stat_names, s, NULL);
}

void status_figures(const struct tg_status_view *v, struct tg_status_figures *f)
{
	for (int i = 0; i < TG_CNT__MAX; i++) {
		uint64_t start = v->counters_at_start ? v->counters_at_start[i] : 0;

		f->since[i] = v->counters[i] >= start ? v->counters[i] - start : v->counters[i];
	}
	f->events_lost = f->since[TG_CNT_ERR_RINGBUF] + v->events_write_failed;
}

const uint64_t *status_class_stats(const struct tg_status_view *v, uint32_t id)
{
	static const uint64_t zeros[TG_CS__MAX];

	return v->class_stats ? v->class_stats[id] : zeros;
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

static json_object *agent_json(const struct tg_status_view *v)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "version", json_object_new_string(TLSGUARD_VERSION));
	json_object_object_add(o, "pid", json_object_new_int(getpid()));
	json_object_object_add(o, "uptime_s", json_object_new_int64((int64_t)v->uptime_s));
	add_time(o, "started_at", v->started_real_ns);
	json_object_object_add(o, "mode", json_object_new_string(mode_name(v->mode)));
	json_object_object_add(o, "mode_source",
			       json_object_new_string(v->mode_from_cli ? "--mode" : "policy"));
	json_object_object_add(o, "fail_mode", json_object_new_string(
				       v->policy->fail_mode == TG_FAIL_OPEN ? "open" : "closed"));
	json_object_object_add(o, "fail_open_after_s", json_object_new_int64(v->policy->fail_open_after_s));
	json_object_object_add(o, "pin_path", tg_json_string(v->loader->pin_dir));
	json_object_object_add(o, "adopted_pins", json_object_new_boolean(v->loader->adopted_maps));
	return o;
}

/* A program's id and run stats (bpf_stats_enabled), into @h. */
static void read_prog(int prog_fd, struct tg_hook_state *h)
{
	struct bpf_prog_info prog = { 0 };
	__u32 len = sizeof(prog);

	if (prog_fd < 0 || bpf_obj_get_info_by_fd(prog_fd, &prog, &len))
		return;
	h->prog_id = prog.id;
	h->run_cnt = prog.run_cnt;
	h->run_time_ns = prog.run_time_ns;
}

void status_read_hook(int link_fd, struct tg_hook_state *h)
{
	struct bpf_link_info link = { 0 };
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
	read_prog(fd, h);
	close(fd);
}

const char *status_rel_cgroup(const struct tg_status_view *v, const char *abs)
{
	size_t n = strlen(v->cg_mount);

	return !strncmp(abs, v->cg_mount, n) && abs[n] ? abs + n : "/";
}

/*
 * A DNS program run from the verdict's program of @host_hook: attached when
 * that program is and the slot still holds this agent's program. The kernel
 * counts a run only for the program it dispatched, so its runs are in the
 * host hook's run_cnt and its own stay 0.
 */
static void dns_chained_state(const struct tg_status_view *v, const struct tg_attachment *att,
			      int hook, enum tg_hook host_hook, struct tg_hook_state *st)
{
	struct tg_hook_state host;
	bool in_slot;
	int fd = dnslearn_chained_prog(v->dns, hook, &in_slot);

	memset(st, 0, sizeof(*st));
	status_read_hook(att->link_fd[host_hook], &host);
	read_prog(fd, st);
	st->attached = host.attached && in_slot;
}

/* One hook of one cgroup, as status lists it (DESIGN.md, docs/operations.md). */
static json_object *hook_json(const struct tg_status_view *v, const struct tg_attachment *att,
			      const char *name, const struct tg_hook_state *st, const char *pin,
			      bool adopted, const char *chained_in)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "attached", json_object_new_boolean(st->attached));
	json_object_object_add(o, "cgroup", tg_json_string(status_rel_cgroup(v, att->path)));
	json_object_object_add(o, "pinned", tg_json_string(pin));
	json_object_object_add(o, "prog_id", json_object_new_int64(st->prog_id));
	json_object_object_add(o, "adopted", json_object_new_boolean(adopted));
	json_object_object_add(o, "run_cnt", json_object_new_uint64(st->run_cnt));
	json_object_object_add(o, "run_time_ns", json_object_new_uint64(st->run_time_ns));
	json_object_object_add(o, "chained_in", chained_in ? json_object_new_string(chained_in) : NULL);
	return o;
}

/* DNS answer learning's programs on the same cgroup (dnslearn.h). */
static void dns_hook_json(const struct tg_status_view *v, const struct tg_attachment *att, int hook,
			  json_object *arr, int *missing)
{
	struct tg_hook_state st;
	char pin[4400] = "";
	bool adopted = false, chained = dnslearn_chained(v->dns);
	enum tg_hook host_hook = hook == TG_DNS_HOOK_INGRESS ? TG_HOOK_INGRESS : TG_HOOK_EGRESS;
	int fd;

	if (!v->dns)
		return;
	if (chained) {
		dns_chained_state(v, att, hook, host_hook, &st);
		snprintf(pin, sizeof(pin), "%s", loader_dns_chain_pin(v->loader, host_hook));
	} else {
		fd = dnslearn_link(v->dns, att->cgroup_id, hook, pin, sizeof(pin), &adopted);
		status_read_hook(fd, &st);
	}
	if (!st.attached)
		(*missing)++;
	json_object_array_add(arr, hook_json(v, att, dnslearn_hook_name(hook), &st, pin, adopted,
					     chained ? loader_hook_name(host_hook) : NULL));
}

static json_object *hooks_json(const struct tg_status_view *v, int *missing)
{
	json_object *arr = json_object_new_array();

	*missing = 0;
	for (size_t i = 0; i < v->loader->natts; i++) {
		const struct tg_attachment *att = &v->loader->atts[i];

		for (int h = 0; h < TG_HOOK__MAX; h++) {
			struct tg_hook_state st;
			char pin[4400];

			status_read_hook(att->link_fd[h], &st);
			if (!st.attached)
				(*missing)++;
			snprintf(pin, sizeof(pin), "%s/links/%llu_%s", v->loader->pin_dir,
				 (unsigned long long)att->cgroup_id, loader_hook_name(h));
			/* chained_in null: the kernel dispatches these */
			json_object_array_add(arr, hook_json(v, att, loader_hook_name(h), &st, pin,
							     att->adopted[h], NULL));
		}
		for (int h = 0; dnslearn_hook_name(h); h++)
			dns_hook_json(v, att, h, arr, missing);
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

static json_object *classes_json(const struct tg_status_view *v)
{
	json_object *arr = json_object_new_array();

	for (uint32_t id = 1; id <= v->dests->nclasses; id++) {
		json_object *o, *flows;
		uint64_t stats[TG_CS__MAX] = { 0 };
		char ports[160];
		size_t entries = 0;

		if (!dests_class_name(v->dests, id))
			continue;	/* an id left free by a reload */
		o = json_object_new_object();
		flows = json_object_new_object();
		for (size_t i = 0; i < v->dests->n; i++)
			entries += v->dests->v[i].val.class_id == id;
		memcpy(stats, status_class_stats(v, id), sizeof(stats));
		json_object_object_add(o, "name", tg_json_string(dests_class_name(v->dests, id)));
		json_object_object_add(o, "mode", json_object_new_string(mode_name(v->dests->classes[id].mode)));
		json_object_object_add(o, "ports",
				       json_object_new_string(ports_text(&v->dests->classes[id], ports,
									  sizeof(ports))));
		json_object_object_add(o, "map_entries", json_object_new_int64(entries));
		for (int s = 0; s < TG_CS__MAX; s++)
			json_object_object_add(flows, class_stat_names[s], json_object_new_uint64(stats[s]));
		json_object_object_add(o, "flows", flows);
		json_object_array_add(arr, o);
	}
	return arr;
}

struct named_u64 {
	const char *name;
	uint64_t v;
};

/* Add each {name, value} of @f to @o as a number, in order. Returns @o. */
static json_object *add_u64s(json_object *o, const struct named_u64 *f, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_object_object_add(o, f[i].name, json_object_new_uint64(f[i].v));
	return o;
}

#define ADD_U64S(o, ...)                                                                       \
	add_u64s((o), (const struct named_u64[]){ __VA_ARGS__ },                               \
		 sizeof((const struct named_u64[]){ __VA_ARGS__ }) / sizeof(struct named_u64))

static json_object *counts_json(const char *const *names, const uint64_t *v, size_t n)
{
	json_object *o = json_object_new_object();

	for (size_t i = 0; i < n; i++)
		json_object_object_add(o, names[i], json_object_new_uint64(v[i]));
	return o;
}

static size_t learned_count_or_0(const struct tg_status_view *v)
{
	const struct tg_learned *t = dnslearn_table(v->dns);

	return t ? learned_count(t) : 0;
}

/* Learned addresses dropped before they expired (only a smaller dns.max_learned does that). */
static uint64_t learned_evicted_or_0(const struct tg_status_view *v)
{
	const struct tg_learned *t = dnslearn_table(v->dns);
	struct tg_learned_stats st = { 0 };

	if (t)
		learned_get_stats(t, &st);
	return st.evicted;
}

/* Learning from DNS answers: the table, the parser, the kernel copy. */
static json_object *dns_json(const struct tg_status_view *v)
{
	static const char *const parse_names[TG_DNSP__MAX] = {
		"ok", "malformed", "not_answer", "truncated", "rcode", "no_question",
	};
	static const char *const tcp_names[] = { "messages", "gaps", "evicted", "oversized" };
	const struct tg_dnslearn_stats *st = v->dns_stats;
	json_object *o = json_object_new_object();
	uint64_t tcp[4];

	tcp[0] = st->tcp.messages;
	tcp[1] = st->tcp.gaps;
	tcp[2] = st->tcp.evicted;
	tcp[3] = st->tcp.oversized;
	json_object_object_add(o, "learned_ips", json_object_new_int64(st->learned_ips));
	json_object_object_add(o, "max_learned", json_object_new_int64(st->max_learned));
	json_object_object_add(o, "map_entries", json_object_new_int64(v->dests->learned));
	json_object_object_add(o, "left_out", json_object_new_int64(v->dests->learned_left_out));
	ADD_U64S(o, { "evicted", st->table.evicted }, { "refused_full", st->table.refused_full },
		 { "refused_quota", st->table.refused_quota }, { "hold_publishes", st->hold_publishes },
		 { "kernel_learned_handed_over", st->klearned_dropped },
		 { "unsolicited", st->unsolicited }, { "queries_swept", st->queries_swept },
		 { "expired", st->table.expired }, { "learned", st->table.learned },
		 { "refreshed", st->table.refreshed }, { "class_conflicts", st->table.class_conflicts },
		 { "answers", st->table.answers }, { "answers_matched", st->table.answers_matched },
		 { "records", st->records }, { "udp_truncated", st->udp_truncated });
	json_object_object_add(o, "parsed", counts_json(parse_names, st->parsed, TG_DNSP__MAX));
	json_object_object_add(o, "tcp", counts_json(tcp_names, tcp, 4));
	if (st->kernel_names)
		json_object_object_add(o, "kernel", counts_json(st->kernel_names, st->kernel, st->nkernel));
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

static json_object *policy_json(const struct tg_status_view *v)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "source", tg_json_string(v->policy->source));
	json_object_object_add(o, "sha256", json_object_new_string(v->policy_sha256));
	add_time(o, "loaded_at", v->policy_loaded_ns);
	json_object_object_add(o, "destinations", json_object_new_int64(v->policy->ndests));
	json_object_object_add(o, "exceptions", json_object_new_int64(v->policy->nexceptions));
	json_object_object_add(o, "hosts", json_object_new_int64(v->hosts));
	json_object_object_add(o, "resolved_ips", json_object_new_int64(v->resolved_ips));
	json_object_object_add(o, "unresolved_hosts", json_object_new_int64(v->unresolved_hosts));
	json_object_object_add(o, "learned_ips", json_object_new_int64(learned_count_or_0(v)));
	json_object_object_add(o, "learned_evicted", json_object_new_uint64(learned_evicted_or_0(v)));
	json_object_object_add(o, "dns", dns_json(v));
	json_object_object_add(o, "service_tags", service_tags_json(v->policy));
	json_object_object_add(o, "map_entries", json_object_new_int64(v->dests->n));
	json_object_object_add(o, "reloads", json_object_new_uint64(v->reloads));
	json_object_object_add(o, "reload_failures", json_object_new_uint64(v->reload_failures));
	/* a reload being prepared (on its thread) or applied (in slices): the policy above is in force */
	json_object_object_add(o, "reloading", json_object_new_boolean(v->reloading));
	json_object_object_add(o, "classes", classes_json(v));
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

static json_object *counters_json(const struct tg_status_view *v,
				  const struct tg_status_figures *fig)
{
	json_object *o = status_verdict_counters_json(fig->since);
	const uint64_t *c = fig->since;

	json_object_object_add(o, "connect_blocked", json_object_new_uint64(c[TG_CNT_CONNECT_BLOCKED]));
	json_object_object_add(o, "connect_flagged", json_object_new_uint64(c[TG_CNT_CONNECT_FLAGGED]));
	json_object_object_add(o, "events_emitted", json_object_new_uint64(v->events_emitted));
	json_object_object_add(o, "events_lost", json_object_new_uint64(fig->events_lost));
	json_object_object_add(o, "sockets_destroyed", json_object_new_uint64(v->sockets_destroyed));
	json_object_object_add(o, "destroy_failed", json_object_new_uint64(v->destroy_failed));
	json_object_object_add(o, "fail_open_passed", json_object_new_uint64(c[TG_CNT_FAIL_OPEN_PASSED]));
	return o;
}

/*
 * limits.max_tracked_flows: open tracked flows against the cap, and the
 * connects that could not be tracked (totals since the pins were created,
 * like the gauge).
 */
static json_object *flows_json(const struct tg_status_view *v)
{
	json_object *o = json_object_new_object(), *u = json_object_new_object();
	const uint64_t *t = v->counters;

	json_object_object_add(o, "live", json_object_new_uint64(v->live_flows));
	json_object_object_add(o, "max", json_object_new_uint64(v->policy->max_tracked_flows));
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
static json_object *handoff_json(const struct tg_status_view *v)
{
	const struct tg_handoff_state *h = v->handoff;
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

static json_object *kernel_counters_json(const struct tg_status_view *v)
{
	json_object *o = json_object_new_object();

	for (int i = 0; i < TG_CNT__MAX; i++)
		json_object_object_add(o, counter_names[i], json_object_new_uint64(v->counters[i]));
	return o;
}

/* The App Insights sink: "disabled" without a connection string. */
static json_object *ai_sink_json(const struct tg_status_view *v)
{
	const struct tg_ai_sink_stats *st = v->ai;
	json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string("appinsights"));
	if (!st) {
		json_object_object_add(o, "state", json_object_new_string("disabled"));
		return o;
	}
	json_object_object_add(o, "target", tg_json_string(st->endpoint));
	json_object_object_add(o, "state", json_object_new_string(ai_sink_state_name(st->state)));
	ADD_U64S(o, { "sent", st->sent }, { "failed", st->failed }, { "queued", st->queued },
		 { "spooled", st->spooled }, { "spool_bytes", st->spool_bytes });
	json_object_object_add(o, "spool", json_object_new_string(!st->spool_on_disk ? "memory" :
				       st->spool_encrypted ? "disk, encrypted" : "disk, NOT encrypted"));
	add_time(o, "last_success", st->last_success_ns);
	json_object_object_add(o, "last_error", st->last_error[0] ? tg_json_string(st->last_error) : NULL);
	json_object_object_add(o, "lost", ADD_U64S(json_object_new_object(),
		{ "rejected", st->lost_rejected }, { "queue_full", st->lost_queue_full },
		{ "evicted", st->lost_evicted }, { "expired", st->lost_expired },
		{ "other", st->lost_other }, { "quota", st->lost_quota }));
	ADD_U64S(o, { "requests", st->requests }, { "retries", st->retries },
		 { "throttled", st->throttled }, { "redirects", st->redirects },
		 { "redirects_refused", st->redirects_refused });
	json_object_object_add(o, "redirected_to",
			       st->redirected_to[0] ? tg_json_string(st->redirected_to) : NULL);
	if (st->journal)
		json_object_object_add(o, "journal", ADD_U64S(json_object_new_object(),
			{ "bytes", st->journal_bytes }, { "syncs", st->journal_syncs },
			{ "write_errors", st->journal_write_errors },
			{ "replayed", st->journal_replayed }, { "evicted", st->journal_evicted },
			{ "expired", st->journal_expired }));
	ADD_U64S(o, { "token_fetches", st->token_fetches }, { "flood_folded", st->flood_folded },
		 { "flood_summaries", st->flood_summaries });
	return o;
}

static json_object *sinks_json(const struct tg_status_view *v)
{
	json_object *arr = json_object_new_array(), *o = json_object_new_object();
	const struct tg_sink_stats *f = v->file_sink;
	const char *target = v->events_target;

	json_object_object_add(o, "name", json_object_new_string(f->name));
	json_object_object_add(o, "target", tg_json_string(target && strcmp(target, "-") ?
								   target : "stdout"));
	json_object_object_add(o, "state", json_object_new_string(f->ok ? "ok" : "error"));
	ADD_U64S(o, { "sent", f->sent }, { "failed", f->failed }, { "queued", f->queued },
		 { "spooled", f->spooled });
	add_time(o, "last_success", f->last_success_ns);
	json_object_object_add(o, "last_error", f->last_error[0] ? tg_json_string(f->last_error) : NULL);
	json_object_array_add(arr, o);
	json_object_array_add(arr, ai_sink_json(v));
	return arr;
}

static json_object *health_json(const struct tg_status_view *v,
				const struct tg_status_figures *fig, int missing_hooks)
{
	json_object *o = json_object_new_object(), *reasons = json_object_new_array();
	json_object *warnings = json_object_new_array();
	char buf[512];

	if (missing_hooks) {
		snprintf(buf, sizeof(buf), "%d hook(s) not attached", missing_hooks);
		json_object_array_add(reasons, tg_json_string(buf));
	}
	if (v->dns) {
		const struct tg_dnslearn_stats *ds = v->dns_stats;

		/* an answer not learned leaves its addresses unprotected: as bad as a missing hook */
		if (ds->table.refused_full || ds->table.refused_quota) {
			snprintf(buf, sizeof(buf), "dns: %llu address(es) not learned since start "
				 "(%llu: table full, dns.max_learned; %llu: a cgroup's quota, "
				 "dns.max_learned_per_cgroup)",
				 (unsigned long long)(ds->table.refused_full + ds->table.refused_quota),
				 (unsigned long long)ds->table.refused_full,
				 (unsigned long long)ds->table.refused_quota);
			json_object_array_add(reasons, tg_json_string(buf));
		}
	}
	if (!v->file_sink->ok) {
		snprintf(buf, sizeof(buf), "event sink %s failing: %s", v->file_sink->name,
			 v->file_sink->last_error);
		json_object_array_add(reasons, tg_json_string(buf));
	}
	if (v->ai) {
		if (v->ai->state == TG_AI_SINK_DOWN) {
			snprintf(buf, sizeof(buf), "event sink appinsights down: %s", v->ai->last_error);
			json_object_array_add(reasons, tg_json_string(buf));
		}
		if (v->ai->failed) {
			snprintf(buf, sizeof(buf), "appinsights: %llu item(s) lost since start",
				 (unsigned long long)v->ai->failed);
			json_object_array_add(warnings, json_object_new_string(buf));
		}
	}
	/* losses are reported, but restarting the agent would not bring them back */
	if (fig->events_lost) {
		snprintf(buf, sizeof(buf), "%llu event(s) lost since start",
			 (unsigned long long)fig->events_lost);
		json_object_array_add(warnings, json_object_new_string(buf));
	}
	if (v->live_flows >= v->policy->max_tracked_flows) {
		snprintf(buf, sizeof(buf), "tracked-flow cap reached: %llu of %u (limits.max_tracked_flows); "
			 "new connects to protected destinations are not tracked",
			 (unsigned long long)v->live_flows, v->policy->max_tracked_flows);
		json_object_array_add(warnings, json_object_new_string(buf));
	}
	if (fig->since[TG_CNT_UNTRACKED_FLOW_CAP] || fig->since[TG_CNT_ERR_STORAGE]) {
		snprintf(buf, sizeof(buf), "%llu connect(s) not tracked since start (%llu at the flow cap, "
			 "%llu without memory for flow state): %llu refused, %llu passed unjudged",
			 (unsigned long long)(fig->since[TG_CNT_UNTRACKED_FLOW_CAP] + fig->since[TG_CNT_ERR_STORAGE]),
			 (unsigned long long)fig->since[TG_CNT_UNTRACKED_FLOW_CAP],
			 (unsigned long long)fig->since[TG_CNT_ERR_STORAGE],
			 (unsigned long long)fig->since[TG_CNT_UNTRACKED_REFUSED],
			 (unsigned long long)fig->since[TG_CNT_UNTRACKED_PASSED]);
		json_object_array_add(warnings, json_object_new_string(buf));
	}
	if (v->destroy_failed) {
		snprintf(buf, sizeof(buf), "%llu blocked socket(s) could not be destroyed",
			 (unsigned long long)v->destroy_failed);
		json_object_array_add(warnings, json_object_new_string(buf));
	}
	json_object_object_add(o, "state", json_object_new_string(
				       json_object_array_length(reasons) ? "degraded" : "healthy"));
	json_object_object_add(o, "reasons", reasons);
	json_object_object_add(o, "warnings", warnings);
	return o;
}

json_object *status_build_json(const struct tg_status_view *v)
{
	json_object *o = json_object_new_object(), *top = json_object_new_object();
	json_object *control = json_object_new_object(), *hooks;
	struct tg_status_figures fig;
	int missing;

	status_figures(v, &fig);
	hooks = hooks_json(v, &missing);
	json_object_object_add(o, "agent", agent_json(v));
	json_object_object_add(o, "health", health_json(v, &fig, missing));
	json_object_object_add(o, "hooks", hooks);
	json_object_object_add(o, "policy", policy_json(v));
	json_object_object_add(o, "counters", counters_json(v, &fig));
	json_object_object_add(o, "flows", flows_json(v));
	json_object_object_add(o, "kernel_counters", kernel_counters_json(v));
	json_object_object_add(o, "handoff", handoff_json(v));
	json_object_object_add(o, "sinks", sinks_json(v));
	if (v->workloads)
		json_object_object_add(o, "workloads", workloads_status_json(v->workloads));
	json_object_object_add(top, "workloads", tally_top_json(v->top->workloads, "workload"));
	json_object_object_add(top, "destinations", tally_top_json(v->top->destinations, "destination"));
	json_object_object_add(o, "top", top);
	json_object_object_add(control, "socket", tg_json_string(v->control->path));
	/* connected now, this status request included (at most TG_CONTROL_MAX_CLIENTS) */
	json_object_object_add(control, "clients", json_object_new_uint64(v->control->nclients));
	json_object_object_add(control, "refused_peers", json_object_new_uint64(v->control->refused_peers));
	json_object_object_add(control, "bad_requests", json_object_new_uint64(v->control->bad_requests));
	json_object_object_add(control, "follower_drops", json_object_new_uint64(v->control->follower_drops));
	json_object_object_add(o, "control", control);
	return o;
}
