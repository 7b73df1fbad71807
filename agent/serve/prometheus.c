// SPDX-License-Identifier: MIT
/* The Prometheus text exposition of a status view (prometheus.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dests.h"
#include "dnslearn.h"
#include "escape.h"
#include "loader.h"
#include "policy.h"
#include "prometheus.h"
#include "ai_sink.h"
#include "status.h"

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

/* One sample of a family: its labels (inside the braces) and value. */
struct sample {
	const char *labels;
	uint64_t n;
};

/* A family with fixed labels: HELP, TYPE, then name{labels} value for each sample. */
static void family(struct mbuf *b, const char *name, const char *type, const char *help,
		   const struct sample *s, size_t n)
{
	metric_head(b, name, type, help);
	for (size_t i = 0; i < n; i++)
		mprintf(b, "%s{%s} %llu\n", name, s[i].labels, (unsigned long long)s[i].n);
}

#define FAMILY(b, name, type, help, ...)                                                       \
	family((b), (name), (type), (help), (const struct sample[]){ __VA_ARGS__ },            \
	       sizeof((const struct sample[]){ __VA_ARGS__ }) / sizeof(struct sample))

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

static void metrics_flows(const struct tg_status_view *v, struct mbuf *b)
{
	char l[256];

	metric_head(b, "tlsguard_flows_total", "counter",
		    "Flows to protected destinations by class and outcome (since the pins were created).");
	for (uint32_t id = 1; id <= v->dests->nclasses; id++) {
		const uint64_t *st = status_class_stats(v, id);

		if (!dests_class_name(v->dests, id))
			continue;
		for (int s = 0; s < TG_CS__MAX; s++)
			mprintf(b, "tlsguard_flows_total{class=\"%s\",verdict=\"%s\"} %llu\n",
				label(dests_class_name(v->dests, id), l, sizeof(l)), status_class_stat_name(s),
				(unsigned long long)st[s]);
	}
}

/* Per program and cgroup: attached, kernel time, invocations (a family each, in this order). */
static void metrics_hooks(const struct tg_status_view *v, struct mbuf *b)
{
	static const struct {
		const char *name, *type, *help;
	} families[] = {
		{ "tlsguard_hook_attached", "gauge",
		  "1 while the program is attached to the watched cgroup (0: detached, e.g. the cgroup was removed)." },
		{ "tlsguard_bpf_run_time_seconds_total", "counter",
		  "Kernel time spent in each program (needs kernel.bpf_stats_enabled=1)." },
		{ "tlsguard_bpf_run_count_total", "counter", "Invocations of each program." },
	};
	char l[PATH_MAX * 2];

	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		metric_head(b, families[f].name, families[f].type, families[f].help);
		for (size_t i = 0; i < v->loader->natts; i++)
			for (int h = 0; h < TG_HOOK__MAX; h++) {
				struct tg_hook_state st;

				status_read_hook(v->loader->atts[i].link_fd[h], &st);
				mprintf(b, "%s{program=\"%s\",cgroup=\"%s\"} ", families[f].name,
					loader_hook_name(h),
					label(status_rel_cgroup(v, v->loader->atts[i].path), l, sizeof(l)));
				if (f == 0)
					mprintf(b, "%d\n", st.attached);
				else if (f == 1)
					mprintf(b, "%.9f\n", st.run_time_ns / 1e9);
				else
					mprintf(b, "%llu\n", (unsigned long long)st.run_cnt);
			}
	}
}

/* The App Insights sink beyond up/sent (those share the families of every sink). */
static void metrics_ai(struct mbuf *b, const struct tg_ai_sink_stats *st)
{
	const struct {
		const char *name, *type, *help;
		uint64_t n;
	} families[] = {
		{ "tlsguard_sink_queued", "gauge", "Items waiting in memory.", st->queued },
		{ "tlsguard_sink_spooled", "gauge", "Items waiting in the spool.", st->spooled },
		{ "tlsguard_sink_requests_total", "counter", "Requests to the ingestion endpoint.",
		  st->requests },
		{ "tlsguard_sink_retries_total", "counter", "Failed requests that will be retried.",
		  st->retries },
		{ "tlsguard_sink_flood_folded_total", "counter",
		  "Repeated violations folded into flood-control summaries.", st->flood_folded },
	};

	mprintf(b, "tlsguard_sink_sent_total{sink=\"appinsights\"} %llu\n", (unsigned long long)st->sent);
	FAMILY(b, "tlsguard_sink_lost_total", "counter", "Items a sink lost, by reason.",
	       { "sink=\"appinsights\",reason=\"rejected\"", st->lost_rejected },
	       { "sink=\"appinsights\",reason=\"queue_full\"", st->lost_queue_full },
	       { "sink=\"appinsights\",reason=\"evicted\"", st->lost_evicted },
	       { "sink=\"appinsights\",reason=\"expired\"", st->lost_expired },
	       { "sink=\"appinsights\",reason=\"other\"", st->lost_other },
	       { "sink=\"appinsights\",reason=\"quota\"", st->lost_quota });
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		family(b, families[i].name, families[i].type, families[i].help,
		       &(const struct sample){ "sink=\"appinsights\"", families[i].n }, 1);
}

/* The dns program's counters (status policy.dns.kernel), in the same family, "dns_" before. */
static void metrics_dns_kernel(const struct tg_dnslearn_stats *st, struct mbuf *b)
{
	if (!st || !st->kernel_names)
		return;		/* no DNS learning */
	for (size_t i = 0; i < st->nkernel; i++)
		mprintf(b, "tlsguard_kernel_counter_total{name=\"dns_%s\"} %llu\n", st->kernel_names[i],
			(unsigned long long)st->kernel[i]);
}

int prometheus_build(const struct tg_status_view *v, char **out, size_t *len)
{
	struct mbuf b = { .cap = 8192 };
	struct tg_status_figures fig;
	const uint64_t *t = v->counters;

	b.p = malloc(b.cap);
	if (!b.p)
		return -ENOMEM;
	status_figures(v, &fig);
	metrics_flows(v, &b);
	FAMILY(&b, "tlsguard_violations_total", "counter", "Violations by type and action.",
	       { "type=\"plaintext\",action=\"flagged\"", t[TG_CNT_PLAINTEXT_FLAGGED] },
	       { "type=\"plaintext\",action=\"blocked\"", t[TG_CNT_PLAINTEXT_BLOCKED] },
	       { "type=\"blocked_connect\",action=\"flagged\"", t[TG_CNT_CONNECT_FLAGGED] },
	       { "type=\"blocked_connect\",action=\"blocked\"", t[TG_CNT_CONNECT_BLOCKED] });
	metric_head(&b, "tlsguard_tracked_flows", "gauge",
		    "Tracked flows whose sockets are open (counted against limits.max_tracked_flows).");
	mprintf(&b, "tlsguard_tracked_flows %llu\n", (unsigned long long)v->live_flows);
	metric_head(&b, "tlsguard_tracked_flows_max", "gauge", "limits.max_tracked_flows.");
	mprintf(&b, "tlsguard_tracked_flows_max %u\n", v->policy->max_tracked_flows);
	FAMILY(&b, "tlsguard_untracked_flows_total", "counter",
	       "Connects to protected destinations that could not be tracked, by reason.",
	       { "reason=\"flow_cap\"", t[TG_CNT_UNTRACKED_FLOW_CAP] },
	       { "reason=\"storage\"", t[TG_CNT_ERR_STORAGE] });
	FAMILY(&b, "tlsguard_untracked_connects_total", "counter",
	       "What happened to them: refused (enforce, fail_mode closed) or passed unjudged.",
	       { "action=\"refused\"", t[TG_CNT_UNTRACKED_REFUSED] },
	       { "action=\"passed\"", t[TG_CNT_UNTRACKED_PASSED] });
	metric_head(&b, "tlsguard_events_emitted_total", "counter", "Events written by this agent.");
	mprintf(&b, "tlsguard_events_emitted_total %llu\n", (unsigned long long)v->events_emitted);
	FAMILY(&b, "tlsguard_events_lost_total", "counter", "Events lost since this agent started, by reason.",
	       { "reason=\"ringbuf_full\"", fig.since[TG_CNT_ERR_RINGBUF] },
	       { "reason=\"write_failed\"", v->events_write_failed });
	metric_head(&b, "tlsguard_sink_up", "gauge", "1 when the event sink is delivering.");
	mprintf(&b, "tlsguard_sink_up{sink=\"%s\"} %d\n", v->file_sink->name, v->file_sink->ok);
	if (v->ai)
		mprintf(&b, "tlsguard_sink_up{sink=\"appinsights\"} %d\n", v->ai->state == TG_AI_SINK_OK);
	metric_head(&b, "tlsguard_sink_sent_total", "counter", "Events delivered by each sink.");
	mprintf(&b, "tlsguard_sink_sent_total{sink=\"%s\"} %llu\n", v->file_sink->name,
		(unsigned long long)v->file_sink->sent);
	if (v->ai)
		metrics_ai(&b, v->ai);
	metric_head(&b, "tlsguard_sockets_destroyed_total", "counter", "Blocked sockets destroyed.");
	mprintf(&b, "tlsguard_sockets_destroyed_total %llu\n", (unsigned long long)v->sockets_destroyed);
	metrics_hooks(v, &b);
	metric_head(&b, "tlsguard_kernel_counter_total", "counter",
		    "Every kernel verdict and failure counter (since the pins were created).");
	for (int i = 0; i < TG_CNT__MAX; i++)
		mprintf(&b, "tlsguard_kernel_counter_total{name=\"%s\"} %llu\n", status_counter_name(i),
			(unsigned long long)t[i]);
	metrics_dns_kernel(v->dns_stats, &b);
	metric_head(&b, "tlsguard_agent_uptime_seconds", "gauge", "Seconds since the agent started.");
	mprintf(&b, "tlsguard_agent_uptime_seconds %.0f\n", v->uptime_s);
	if (b.err) {
		free(b.p);
		return b.err;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}
