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
#include "clock.h"
#include "describe.h"
#include "dest_table.h"
#include "escape.h"
#include "events.h"
#include "handshake.h"
#include "enum_name.h"
#include "tlsguard/preface.h"
#include "workload.h"

#define TG_EVENT_FILE_BUF (64 * 1024)

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

void events_ctx_init(struct tg_event_ctx *ctx)
{
	const char *node = getenv("NODE_NAME");
	int64_t mono;

	memset(ctx, 0, sizeof(*ctx));
	/* in a DaemonSet the host name is the pod's; the downward API gives the node's */
	if (node && *node)
		snprintf(ctx->host, sizeof(ctx->host), "%s", node);
	else if (gethostname(ctx->host, sizeof(ctx->host) - 1) < 0)
		strcpy(ctx->host, "unknown");
	mono = (int64_t)tg_mono_ns();
	ctx->mono_to_real_ns = tg_real_ns() - mono;
}

static const char *const type_names[] = {
	[TG_EV_PLAINTEXT] = "plaintext",
	[TG_EV_TLS] = "tls",
	[TG_EV_BLOCKED_CONNECT] = "blocked_connect",
	[TG_EV_WEAK_TLS] = "weak_tls",
	[TG_EV_SNI_MISMATCH] = "sni_mismatch",
};

/* blocked_connect: why the connect was refused (or flagged). */
static const char *const connect_reason_names[] = {
	[TG_CR_PORT] = "port",
	[TG_CR_FLOW_CAP] = "flow_cap",
	[TG_CR_STORAGE] = "flow_storage",
	[TG_CR_PROXY_TARGET] = "proxy_target",
	[TG_CR_UDP_SECOND_DEST] = "udp_second_destination",
};

/* plaintext: which bytes were not what the flow's protocol allows. */
static const char *const plain_reason_names[] = {
	[TG_PR_FIRST_BYTES] = "first_bytes",
	[TG_PR_AFTER_HELLO] = "after_hello",
	[TG_PR_NOT_SERVER_HELLO] = "not_server_hello",
	[TG_PR_SERVER_FIRST] = "server_first",
	[TG_PR_UNDECIDED] = "undecided",
	[TG_PR_NOT_QUIC] = "not_quic",
	[TG_PR_UNPARSEABLE] = "unparseable",
	[TG_PR_RAW_SOCKET] = "raw_socket",
};

static const char *const action_names[] = {
	[TG_ACT_FLAGGED] = "flagged",
	[TG_ACT_BLOCKED] = "blocked",
	[TG_ACT_ALLOWED] = "allowed",
};

const char *events_type_name(uint8_t type)
{
	return TG_ENUM_NAME(type_names, type, "unknown");
}

const char *events_connect_reason_name(uint8_t reason)
{
	return TG_ENUM_NAME(connect_reason_names, reason, "unknown");
}

const char *events_plain_reason_name(uint8_t reason)
{
	return TG_ENUM_NAME(plain_reason_names, reason, "unknown");
}

/* what the kernel did not name it did not stop or flag */
const char *events_action_name(uint8_t action)
{
	return TG_ENUM_NAME(action_names, action, "allowed");
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

/* ---- the event's members --------------------------------------------------- */

static void destination_out(struct tg_jout *o, const struct tg_event_ctx *ctx,
			    const struct tg_event *ev, struct tg_event_keys *k)
{
	const char *name = ctx->dests ? dests_name_for(ctx->dests, ev->daddr) : NULL;
	const char *cls = ctx->dests ? dests_class_name(ctx->dests, ev->class_id) : NULL;
	unsigned int port = 0;

	tg_jout_open(o, "destination", false);
	events_format_addr(ev->daddr, k->ip, sizeof(k->ip));
	k->cls = cls;
	k->port = ev->dport;
	tg_jout_cstr(o, "class", cls);
	tg_jout_cstr(o, "ip", k->ip);
	tg_jout_i64(o, "port", ev->dport);
	if (ev->type != TG_EV_BLOCKED_CONNECT &&
	    !handshake_tunnel_host(ev, k->host_buf, sizeof(k->host_buf), &port)) {
		/* through a forward proxy: ip/port are the proxy's, the name is the tunnel's */
		tg_jout_open(o, "tunnel", false);
		tg_jout_cstr(o, "host", k->host_buf);
		if (port)
			tg_jout_i64(o, "port", port);
		tg_jout_close(o);
		name = k->host_buf;
	}
	k->name = name;
	if (name)
		tg_jout_cstr(o, "name", name);
	if (ctx->dests && ev->class_id < TG_MAX_CLASSES && ev->class_id && ctx->dests->class_notes[ev->class_id])
		tg_jout_cstr(o, "note", ctx->dests->class_notes[ev->class_id]);
	tg_jout_close(o);
}
/*
 * Which rule set the flow's mode: a policy override (its number, name and
 * mode) or the class itself. The kernel recorded which at connect().
 */
static void rule_out(struct tg_jout *o, const struct tg_event_ctx *ctx, const struct tg_event *ev)
{
	const struct tg_policy_override *ov = NULL;

	tg_jout_open(o, "rule", false);
	if (ctx->dests && ev->rule && ev->rule <= ctx->dests->noverrides)
		ov = &ctx->dests->overrides[ev->rule - 1];
	if (ov) {
		tg_jout_cstr(o, "source", "override");
		tg_jout_i64(o, "index", ev->rule - 1);
		if (ov->name)
			tg_jout_cstr(o, "name", ov->name);
		tg_jout_cstr(o, "mode", ov->mode == TG_MODE_ENFORCE ? "enforce" : "audit");
	} else {
		tg_jout_cstr(o, "source", ev->rule ? "override" : "class");	/* a rule since reloaded away */
		if (ev->rule)
			tg_jout_i64(o, "index", ev->rule - 1);
		else if (ctx->dests && ev->class_id && ev->class_id <= ctx->dests->nclasses &&
			 ev->class_id < TG_MAX_CLASSES)
			tg_jout_cstr(o, "mode", ctx->dests->classes[ev->class_id].mode == TG_MODE_ENFORCE ?
						"enforce" : "audit");
	}
	tg_jout_close(o);
}

static void source_out(struct tg_jout *o, const struct tg_event *ev)
{
	char ip[INET6_ADDRSTRLEN];

	if (!ev->sport && is_unset_addr(ev->saddr)) {
		tg_jout_null(o, "source");	/* connect() time: the kernel has not picked one yet */
		return;
	}
	tg_jout_open(o, "source", false);
	events_format_addr(ev->saddr, ip, sizeof(ip));
	tg_jout_cstr(o, "ip", ip);
	tg_jout_i64(o, "port", ev->sport);
	tg_jout_close(o);
}

static void workload_out(struct tg_jout *o, const struct tg_event_ctx *ctx, const struct tg_event *ev,
			 struct tg_event_keys *k)
{
	const char *path = ctx->cgroups ? cgroup_names_lookup(ctx->cgroups, ev->cgroup_id) : NULL;

	tg_jout_open(o, "workload", false);
	k->cgroup = path;
	if (path)
		tg_jout_cstr(o, "cgroup", path);
	tg_jout_u64(o, "cgroup_id", ev->cgroup_id);
	if (ev->tgid)
		tg_jout_i64(o, "pid", ev->tgid);
	memcpy(k->comm_buf, ev->comm, sizeof(ev->comm));
	k->comm_buf[sizeof(ev->comm)] = '\0';
	k->comm = k->comm_buf[0] ? k->comm_buf : NULL;
	if (k->comm)
		tg_jout_cstr(o, "comm", k->comm);
	if (ctx->workloads) {
		struct wl_attribution wa;

		workloads_lookup(ctx->workloads, ev->cgroup_id, &wa);
		if (wa.pod)
			tg_jout_cstr(o, "pod", wa.pod);
		if (wa.namespace)
			tg_jout_cstr(o, "namespace", wa.namespace);
		if (wa.container)
			tg_jout_cstr(o, "container", wa.container);
		if (wa.unit)
			tg_jout_cstr(o, "unit", wa.unit);
	}
	tg_jout_close(o);
}

static void protocol_out(struct tg_jout *o, const struct tg_event *ev)
{
	struct tg_payload_desc desc;
	size_t n = ev->payload_len < TG_PAYLOAD_MAX ? ev->payload_len : TG_PAYLOAD_MAX;

	if (ev->type == TG_EV_BLOCKED_CONNECT) {
		tg_jout_null(o, "protocol");	/* nothing was sent */
		return;
	}
	if (ev->tls.l7 == TG_L7_SMB3)
		describe_smb(ev->tls.finding, ev->tls.offered, ev->tls.negotiated,
			     ev->tls.hello_flags, ev->tls.legacy, &desc);
	else if (ev->type == TG_EV_PLAINTEXT && ev->reason != TG_PR_FIRST_BYTES)
		describe_payload(ev->payload, n, &desc);	/* the offending bytes themselves */
	else if (ev->type == TG_EV_PLAINTEXT)
		describe_flow(ev->payload, n, ev->tls.l7, ev->tls.pf_kind, ev->tls.tls_off, &desc);
	else
		describe_tls(ev->tls.l7, ev->tls.pf_kind, &desc);
	tg_jout_open(o, "protocol", false);
	tg_jout_cstr(o, "detected", desc.detected);
	if (desc.negotiation)
		tg_jout_cstr(o, "negotiation", desc.negotiation);
	if (desc.method[0])
		tg_jout_cstr(o, "method", desc.method);
	if (desc.host[0])
		tg_jout_cstr(o, "host", desc.host);
	if (desc.dialect)
		tg_jout_cstr(o, "dialect", desc.dialect);
	if (desc.encryption)
		tg_jout_cstr(o, "encryption", desc.encryption);
	if (desc.finding)
		tg_jout_cstr(o, "finding", desc.finding);
	tg_jout_close(o);
}

/* The seconds part of the last time formatted on this thread: one gmtime per second. */
static __thread struct {
	time_t secs;
	char base[32];
} time_cache = { .secs = -1 };

static void time_out(struct tg_jout *o, int64_t real_ns)
{
	char when[64];
	time_t secs;
	long us;
	struct tm tm;

	if (real_ns < 0) {
		events_format_time(real_ns, when, sizeof(when));
		tg_jout_cstr(o, "time", when);
		return;
	}
	secs = real_ns / 1000000000LL;
	us = (long)(real_ns % 1000000000LL) / 1000;
	if (secs != time_cache.secs) {
		gmtime_r(&secs, &tm);
		strftime(time_cache.base, sizeof(time_cache.base), "%Y-%m-%dT%H:%M:%S", &tm);
		time_cache.secs = secs;
	}
	/* what events_format_time() prints: "%s.%06ldZ" */
	snprintf(when, sizeof(when), "%s.000000Z", time_cache.base);
	for (int i = 0, end = (int)strlen(when) - 2; i < 6; i++, us /= 10)
		when[end - i] = (char)('0' + us % 10);
	tg_jout_cstr(o, "time", when);
}

static void event_out(struct tg_jout *o, const struct tg_event_ctx *ctx, const struct tg_event *ev,
		      struct tg_event_keys *k)
{
	k->type = events_type_name(ev->type);
	tg_jout_open(o, NULL, false);
	tg_jout_cstr(o, "schema", TG_EVENT_SCHEMA);
	time_out(o, (int64_t)ev->ts_ns + ctx->mono_to_real_ns);
	tg_jout_cstr(o, "host", ctx->host);
	tg_jout_cstr(o, "type", k->type);
	tg_jout_cstr(o, "action", events_action_name(ev->action));
	if (ev->type == TG_EV_BLOCKED_CONNECT)
		tg_jout_cstr(o, "reason", events_connect_reason_name(ev->reason));
	if (ev->type == TG_EV_PLAINTEXT) {
		tg_jout_cstr(o, "reason", events_plain_reason_name(ev->reason));
		tg_jout_cstr(o, "side", ev->tls.side == TG_SIDE_SERVER ? "server" : "client");
	}
	destination_out(o, ctx, ev, k);
	if (ev->class_id)
		rule_out(o, ctx, ev);
	source_out(o, ev);
	workload_out(o, ctx, ev, k);
	protocol_out(o, ev);
	handshake_tls_out(o, ev);
	tg_jout_open(o, "flow", false);
	tg_jout_u64(o, "cookie", ev->cookie);
	tg_jout_close(o);
}

json_object *events_to_json(const struct tg_event_ctx *ctx, const struct tg_event *ev)
{
	struct tg_jout o = { 0 };
	struct tg_event_keys k;

	event_out(&o, ctx, ev, &k);
	tg_jout_close(&o);
	return o.stack[0];
}

const char *events_line(const struct tg_event_ctx *ctx, const struct tg_event *ev,
			const char *event_id, struct tg_jbuf *buf, struct tg_event_keys *keys)
{
	struct tg_jout o = { .buf = buf, .first = true };
	struct tg_event_keys k;

	buf->len = 0;
	buf->err = 0;
	event_out(&o, ctx, ev, keys ? keys : &k);
	if (event_id)
		tg_jout_lit(&o, "event_id", event_id);
	tg_jout_close(&o);
	return tg_jbuf_cstr(buf);
}

/* FNV-1a 64 (offset basis @h) over @len bytes. */
static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

void events_event_id(const char *host, const void *raw, size_t len, char out[TG_EVENT_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t hlen = strlen(host);
	uint64_t hi = fnv(0xcbf29ce484222325ULL, host, hlen), lo = 0x84222325cbf29ce4ULL;
	const uint8_t *b = raw;

	/*
	 * fnv(fnv(A, host), raw) and fnv(fnv(B, raw), host): the two passes over
	 * the record run side by side, so the CPU overlaps their multiplications
	 * (each pass is one long dependency chain)
	 */
	for (size_t i = 0; i < len; i++) {
		hi = (hi ^ b[i]) * 0x100000001b3ULL;
		lo = (lo ^ b[i]) * 0x100000001b3ULL;
	}
	lo = fnv(lo, host, hlen);
	for (int i = 0; i < 16; i++) {
		out[i] = hex[hi >> (60 - 4 * i) & 15];
		out[16 + i] = hex[lo >> (60 - 4 * i) & 15];
	}
	out[TG_EVENT_ID_LEN] = '\0';
}


int event_file_open(struct tg_event_file *out, const char *path)
{
	int fd;

	memset(out, 0, sizeof(*out));
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
	/* one write(2) per ring buffer batch (event_file_flush), not one per 4 KiB */
	setvbuf(out->f, NULL, _IOFBF, TG_EVENT_FILE_BUF);
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

int event_file_write_len(struct tg_event_file *ef, const char *line, size_t len)
{
	if (fwrite_unlocked(line, 1, len, ef->f) != len || fputc_unlocked('\n', ef->f) == EOF)
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
	tg_jbuf_free(&ef->line);
	ef->f = NULL;
}
