// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "describe.h"
#include "dests.h"
#include "escape.h"
#include "events.h"
#include "handshake.h"
#include "tlsguard/preface.h"
#include "workload.h"

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

void events_ctx_init(struct tg_event_ctx *ctx)
{
	struct timespec mono, real;

	const char *node = getenv("NODE_NAME");

	memset(ctx, 0, sizeof(*ctx));
	/* in a DaemonSet the host name is the pod's; the downward API gives the node's */
	if (node && *node)
		snprintf(ctx->host, sizeof(ctx->host), "%s", node);
	else if (gethostname(ctx->host, sizeof(ctx->host) - 1) < 0)
		strcpy(ctx->host, "unknown");
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	ctx->mono_to_real_ns = (real.tv_sec - mono.tv_sec) * 1000000000LL + (real.tv_nsec - mono.tv_nsec);
}

const char *events_type_name(uint8_t type)
{
	switch (type) {
	case TG_EV_PLAINTEXT:
		return "plaintext";
	case TG_EV_TLS:
		return "tls";
	case TG_EV_BLOCKED_CONNECT:
		return "blocked_connect";
	case TG_EV_WEAK_TLS:
		return "weak_tls";
	case TG_EV_SNI_MISMATCH:
		return "sni_mismatch";
	default:
		return "unknown";
	}
}

/* blocked_connect: why the connect was refused (or flagged). */
const char *events_connect_reason_name(uint8_t reason)
{
	switch (reason) {
	case TG_CR_PORT:
		return "port";
	case TG_CR_FLOW_CAP:
		return "flow_cap";
	case TG_CR_STORAGE:
		return "flow_storage";
	case TG_CR_PROXY_TARGET:
		return "proxy_target";
	case TG_CR_UDP_SECOND_DEST:
		return "udp_second_destination";
	default:
		return "unknown";
	}
}

/* plaintext: which bytes were not what the flow's protocol allows. */
const char *events_plain_reason_name(uint8_t reason)
{
	switch (reason) {
	case TG_PR_FIRST_BYTES:
		return "first_bytes";
	case TG_PR_AFTER_HELLO:
		return "after_hello";
	case TG_PR_NOT_SERVER_HELLO:
		return "not_server_hello";
	case TG_PR_SERVER_FIRST:
		return "server_first";
	case TG_PR_UNDECIDED:
		return "undecided";
	case TG_PR_NOT_QUIC:
		return "not_quic";
	case TG_PR_UNPARSEABLE:
		return "unparseable";
	case TG_PR_RAW_SOCKET:
		return "raw_socket";
	default:
		return "unknown";
	}
}

const char *events_action_name(uint8_t action)
{
	switch (action) {
	case TG_ACT_FLAGGED:
		return "flagged";
	case TG_ACT_BLOCKED:
		return "blocked";
	default:
		return "allowed";
	}
}

void events_format_addr(const uint8_t addr[16], char *out, size_t len)
{
	if (!memcmp(addr, v4_mapped_prefix, sizeof(v4_mapped_prefix)))
		inet_ntop(AF_INET, addr + 12, out, len);
	else
		inet_ntop(AF_INET6, addr, out, len);
}

void events_format_time(int64_t real_ns, char *out, size_t len)
{
	time_t secs = real_ns / 1000000000LL;
	struct tm tm;
	char base[32];

	gmtime_r(&secs, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, len, "%s.%06ldZ", base, (long)(real_ns % 1000000000LL) / 1000);
}

static int is_unset_addr(const uint8_t addr[16])
{
	static const uint8_t zero[16];

	return !memcmp(addr, zero, 16) ||
	       (!memcmp(addr, v4_mapped_prefix, 12) && !memcmp(addr + 12, zero, 4));
}

/* Every string of an event: names workloads chose, or the network brought (escape.h). */
static void add_str(json_object *o, const char *key, const char *val)
{
	json_object_object_add(o, key, tg_json_string(val));
}

static json_object *destination_json(const struct tg_event_ctx *ctx, const struct tg_event *ev)
{
	json_object *d = json_object_new_object();
	const char *name = ctx->dests ? dests_name_for(ctx->dests, ev->daddr) : NULL;
	const char *cls = ctx->dests ? dests_class_name(ctx->dests, ev->class_id) : NULL;
	char ip[INET6_ADDRSTRLEN];

	char host[TG_DESCRIBE_HOST_MAX];
	unsigned int port = 0;

	events_format_addr(ev->daddr, ip, sizeof(ip));
	add_str(d, "class", cls);
	add_str(d, "ip", ip);
	json_object_object_add(d, "port", json_object_new_int(ev->dport));
	if (ev->type != TG_EV_BLOCKED_CONNECT && !handshake_tunnel_host(ev, host, sizeof(host), &port)) {
		/* through a forward proxy: ip/port are the proxy's, the name is the tunnel's */
		json_object *t = json_object_new_object();

		add_str(t, "host", host);
		if (port)
			json_object_object_add(t, "port", json_object_new_int(port));
		json_object_object_add(d, "tunnel", t);
		name = NULL;
		add_str(d, "name", host);
	}
	if (name)
		add_str(d, "name", name);
	if (ctx->dests && ev->class_id < TG_MAX_CLASSES && ev->class_id && ctx->dests->class_notes[ev->class_id])
		add_str(d, "note", ctx->dests->class_notes[ev->class_id]);
	return d;
}

/*
 * Which rule set the flow's mode: a policy override (its number, name and
 * mode) or the class itself. The kernel recorded which at connect().
 */
static json_object *rule_json(const struct tg_event_ctx *ctx, const struct tg_event *ev)
{
	json_object *r = json_object_new_object();
	const struct tg_policy_override *o = NULL;

	if (ctx->dests && ev->rule && ev->rule <= ctx->dests->noverrides)
		o = &ctx->dests->overrides[ev->rule - 1];
	if (o) {
		add_str(r, "source", "override");
		json_object_object_add(r, "index", json_object_new_int(ev->rule - 1));
		if (o->name)
			add_str(r, "name", o->name);
		add_str(r, "mode", o->mode == TG_MODE_ENFORCE ? "enforce" : "audit");
		return r;
	}
	add_str(r, "source", ev->rule ? "override" : "class");	/* a rule since reloaded away */
	if (ev->rule)
		json_object_object_add(r, "index", json_object_new_int(ev->rule - 1));
	else if (ctx->dests && ev->class_id && ev->class_id <= ctx->dests->nclasses &&
		 ev->class_id < TG_MAX_CLASSES)
		add_str(r, "mode", ctx->dests->classes[ev->class_id].mode == TG_MODE_ENFORCE ?
				   "enforce" : "audit");
	return r;
}

static json_object *source_json(const struct tg_event *ev)
{
	json_object *s;
	char ip[INET6_ADDRSTRLEN];

	if (!ev->sport && is_unset_addr(ev->saddr))
		return NULL;	/* connect() time: the kernel has not picked one yet */
	s = json_object_new_object();
	events_format_addr(ev->saddr, ip, sizeof(ip));
	add_str(s, "ip", ip);
	json_object_object_add(s, "port", json_object_new_int(ev->sport));
	return s;
}

static json_object *workload_json(const struct tg_event_ctx *ctx, const struct tg_event *ev)
{
	json_object *w = json_object_new_object();
	const char *path = ctx->cgroups ? cgroup_names_lookup(ctx->cgroups, ev->cgroup_id) : NULL;
	char comm[sizeof(ev->comm) + 1];

	if (path)
		add_str(w, "cgroup", path);
	json_object_object_add(w, "cgroup_id", json_object_new_uint64(ev->cgroup_id));
	if (ev->tgid)
		json_object_object_add(w, "pid", json_object_new_int64(ev->tgid));
	memcpy(comm, ev->comm, sizeof(ev->comm));
	comm[sizeof(ev->comm)] = '\0';
	if (comm[0])
		add_str(w, "comm", comm);
	if (ctx->workloads) {
		struct wl_attribution wa;

		workloads_lookup(ctx->workloads, ev->cgroup_id, &wa);
		if (wa.pod)
			add_str(w, "pod", wa.pod);
		if (wa.namespace)
			add_str(w, "namespace", wa.namespace);
		if (wa.container)
			add_str(w, "container", wa.container);
		if (wa.unit)
			add_str(w, "unit", wa.unit);
	}
	return w;
}

static json_object *protocol_json(const struct tg_event *ev)
{
	struct tg_payload_desc desc;
	json_object *p;
	size_t n = ev->payload_len < TG_PAYLOAD_MAX ? ev->payload_len : TG_PAYLOAD_MAX;

	if (ev->type == TG_EV_BLOCKED_CONNECT)
		return NULL;	/* nothing was sent */
	if (ev->tls.l7 == TG_L7_SMB3)
		describe_smb(ev->tls.finding, ev->tls.offered, ev->tls.negotiated,
			     ev->tls.hello_flags, ev->tls.legacy, &desc);
	else if (ev->type == TG_EV_PLAINTEXT && ev->reason != TG_PR_FIRST_BYTES)
		describe_payload(ev->payload, n, &desc);	/* the offending bytes themselves */
	else if (ev->type == TG_EV_PLAINTEXT)
		describe_flow(ev->payload, n, ev->tls.l7, ev->tls.pf_kind, ev->tls.tls_off, &desc);
	else
		describe_tls(ev->tls.l7, ev->tls.pf_kind, &desc);
	p = json_object_new_object();
	add_str(p, "detected", desc.detected);
	if (desc.negotiation)
		add_str(p, "negotiation", desc.negotiation);
	if (desc.method[0])
		add_str(p, "method", desc.method);
	if (desc.host[0])
		add_str(p, "host", desc.host);
	if (desc.dialect)
		add_str(p, "dialect", desc.dialect);
	if (desc.encryption)
		add_str(p, "encryption", desc.encryption);
	if (desc.finding)
		add_str(p, "finding", desc.finding);
	return p;
}

json_object *events_to_json(const struct tg_event_ctx *ctx, const struct tg_event *ev)
{
	json_object *o = json_object_new_object(), *flow;
	char when[64];

	if (!o)
		return NULL;
	events_format_time((int64_t)ev->ts_ns + ctx->mono_to_real_ns, when, sizeof(when));
	add_str(o, "schema", TG_EVENT_SCHEMA);
	add_str(o, "time", when);
	add_str(o, "host", ctx->host);
	add_str(o, "type", events_type_name(ev->type));
	add_str(o, "action", events_action_name(ev->action));
	if (ev->type == TG_EV_BLOCKED_CONNECT)
		add_str(o, "reason", events_connect_reason_name(ev->reason));
	if (ev->type == TG_EV_PLAINTEXT) {
		add_str(o, "reason", events_plain_reason_name(ev->reason));
		add_str(o, "side", ev->tls.side == TG_SIDE_SERVER ? "server" : "client");
	}
	json_object_object_add(o, "destination", destination_json(ctx, ev));
	if (ev->class_id)
		json_object_object_add(o, "rule", rule_json(ctx, ev));
	json_object_object_add(o, "source", source_json(ev));
	json_object_object_add(o, "workload", workload_json(ctx, ev));
	json_object_object_add(o, "protocol", protocol_json(ev));
	json_object_object_add(o, "tls", handshake_tls_json(ev));
	flow = json_object_new_object();
	json_object_object_add(flow, "cookie", json_object_new_uint64(ev->cookie));
	json_object_object_add(o, "flow", flow);
	return o;
}

int event_file_open(struct tg_event_file *out, const char *path)
{
	int fd;

	out->owned = 0;
	out->f = stdout;
	if (!path || !strcmp(path, "-"))
		return 0;
	/* events name workloads and endpoints: not for other local users */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	out->f = fdopen(fd, "a");
	if (!out->f) {
		int err = -errno;

		close(fd);
		return err;
	}
	out->owned = 1;
	return 0;
}

const char *event_line(json_object *obj)
{
	return json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

int event_file_write_line(struct tg_event_file *ef, const char *line)
{
	if (fputs(line, ef->f) < 0 || fputc('\n', ef->f) < 0)
		return -EIO;
	return 0;
}

int event_file_flush(struct tg_event_file *ef)
{
	return fflush(ef->f) ? -EIO : 0;
}

int event_file_write(struct tg_event_file *ef, json_object *obj)
{
	int err = event_file_write_line(ef, event_line(obj));

	return err ? err : event_file_flush(ef);
}

void event_file_close(struct tg_event_file *ef)
{
	if (ef->owned && ef->f)
		fclose(ef->f);
	ef->f = NULL;
}
