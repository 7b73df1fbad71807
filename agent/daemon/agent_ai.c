// SPDX-License-Identifier: MIT
/* Event protection and the App Insights sink, as the agent uses them: see agent_ai.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/random.h>

#include "agent_ai.h"
#include "agent_state.h"
#include "loader.h"
#include "ai_auth.h"
#include "ai_config.h"
#include "connstr.h"
#include "fieldcrypt.h"
#include "log.h"
#include "ai_sink.h"

static uint64_t ms(unsigned int seconds)
{
	return seconds * 1000ULL;
}

static void report(struct agent *a, uint64_t n, const char *why)
{
	char msg[200];

	if (!n || !a->ai_on_loss)
		return;
	snprintf(msg, sizeof(msg), "appinsights: %llu item(s) lost: %s", (unsigned long long)n, why);
	tg_warn("%s", msg);
	a->ai_reporting_loss = true;	/* agent_ai_event(): this event reports the sink's loss */
	a->ai_on_loss(a, msg);
	a->ai_reporting_loss = false;
}

/* The sender thread counted losses: the agent thread reports them as `agent` events. */
static void on_ai_notify(void *ctx, uint32_t events)
{
	struct agent *a = ctx;
	struct tg_ai_sink_losses l;

	if (!ai_sink_take_losses(a->ai, &l))
		return;
	report(a, l.queue_full, "the sink's queue was full (events.application_insights.queue_max)");
	report(a, l.evicted, "the spool was full, the oldest batches were evicted "
	       "(events.spool.max_bytes)");
	report(a, l.expired, "spooled batches expired (events.spool.max_age)");
	report(a, l.quota, "the Application Insights resource's daily cap or quota was reached "
	       "(HTTP 402/439; not retried)");
	report(a, l.other - l.torn, "undeliverable (unreadable spool file, or not sent before stopping)");
	report(a, l.torn, "journal: the last write before the agent was killed was cut short "
	       "(events.spool.dir)");
	if (l.torn_bytes && a->ai_on_loss) {
		char msg[200];

		snprintf(msg, sizeof(msg), "journal: the last write before the agent was killed was "
			 "cut short (%llu bytes); how many events it held cannot be read",
			 (unsigned long long)l.torn_bytes);
		tg_warn("%s", msg);
		a->ai_reporting_loss = true;
		a->ai_on_loss(a, msg);
		a->ai_reporting_loss = false;
	}
}

static int open_keys(struct agent *a)
{
	struct tg_ai_config c;
	char err[600] = "";
	int ret;

	policy_ai_config(a->policy, &c);
	ret = ai_config_load_keys(&c, &a->keys, &a->fc, err, sizeof(err));

	if (ret)
		tg_err("%s", err);
	return ret;
}

int agent_ai_open(struct agent *a, agent_ai_loss_fn on_loss)
{
	const struct tg_policy *p = a->policy;
	struct tg_ai_sink_config cfg = {
		.connection_string_file = p->ai_connection_string_file,
		.ca_file = p->ai_ca_file,
		.role_instance = a->ev_ctx.host,
		.encrypt_fields = p->encrypt_fields.v,
		.nencrypt = p->encrypt_fields.n,
		.hash_fields = p->hash_fields.v,
		.nhash = p->hash_fields.n,
		.spool_dir = p->spool_dir,
		.spool_max_bytes = p->spool_max_bytes,
		.spool_max_age_s = p->spool_max_age_s,
		.batch_items = p->ai_batch_items,
		.batch_bytes = p->ai_batch_bytes,
		.batch_age_ms = ms(p->ai_batch_age_s),
		.queue_max = p->ai_queue_max,
		.timeout_ms = ms(p->ai_timeout_s),
		.retry_base_ms = ms(p->ai_retry_base_s),
		.retry_max_ms = ms(p->ai_retry_max_s),
		.metrics_interval_ms = ms(p->ai_metrics_interval_s),
		.flood_window_ms = ms(p->ai_flood_window_s),
		.auth_mode = p->ai_auth,
		.client_id = p->ai_client_id,
		.imds_url = p->ai_imds_url,
		.journal = p->spool_journal,
		.redirect_suffixes = p->ai_test_redirect_suffixes.v,
		.nredirect_suffixes = p->ai_test_redirect_suffixes.n,
		.resolve = p->ai_test_resolve.v,
		.nresolve = p->ai_test_resolve.n,
	};
	char err[600] = "";
	int ret;

	a->ai_on_loss = on_loss;
	ret = open_keys(a);
	if (ret)
		return ret;
	if (!p->ai_connection_string_file) {
		if (p->spool_dir)
			tg_warn("events.spool.dir is set but Application Insights is not "
				"(events.application_insights.connection_string_file): nothing to spool");
		return 0;
	}
	cfg.keys = a->keys;
	a->ai = ai_sink_new(&cfg, err, sizeof(err));
	if (!a->ai) {
		ret = -errno;
		tg_err("%s", err);
		return ret == -ENOMEM || ret == -EIO ? ret : -EINVAL;
	}
	a->w_ai = (struct tg_watch){ .fd = ai_sink_notify_fd(a->ai), .handle = on_ai_notify, .ctx = a };
	ret = tg_loop_add(&a->loop, &a->w_ai, EPOLLIN);
	if (!ret)
		ret = ai_sink_start(a->ai);
	if (ret) {
		tg_err("cannot start the Application Insights sink: %s", strerror(-ret));
		return ret;
	}
	tg_info("appinsights: sending to %s (batches of up to %u items / %us%s%s)",
		ai_sink_endpoint(a->ai), p->ai_batch_items ? p->ai_batch_items : TG_AI_DEF_BATCH_ITEMS,
		p->ai_batch_age_s ? p->ai_batch_age_s : TG_AI_DEF_BATCH_AGE_MS / 1000,
		p->spool_dir ? ", spool " : ", no spool", p->spool_dir ? p->spool_dir : "");
	return 0;
}

static void set_event_id(json_object *ev, uint64_t hi, uint64_t lo)
{
	char id[33];

	snprintf(id, sizeof(id), "%016llx%016llx", (unsigned long long)hi, (unsigned long long)lo);
	json_object_object_add(ev, "event_id", json_object_new_string(id));
}

void agent_ai_stamp(struct agent *a, json_object *ev, const void *raw, size_t len)
{
	char id[TG_EVENT_ID_LEN + 1];

	/* two differently seeded passes: 128 bits, unique per host and kernel record */
	events_event_id(a->ev_ctx.host, raw, len, id);
	json_object_object_add(ev, "event_id", json_object_new_string(id));
}

/* Agent events: a random id per run, then a counter. */
static void stamp_agent_event(struct agent *a, json_object *ev)
{
	if (json_object_object_get_ex(ev, "event_id", NULL))
		return;
	while (!a->event_id_run) {
		if (getrandom(&a->event_id_run, sizeof(a->event_id_run), 0) != sizeof(a->event_id_run))
			a->event_id_run = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	}
	set_event_id(ev, a->event_id_run, ++a->event_id_next);
}

#define RINGBUF_FILE	"kernel_lost"

uint64_t agent_ai_ringbuf_seen(struct agent *a, uint64_t now_total)
{
	const char *dir = a->policy->spool_dir;
	unsigned long long v;
	char path[4200];
	FILE *f;
	int n;

	if (!dir || !a->loader.adopted_maps)
		return now_total;	/* new pins: their counters start at 0 with us */
	snprintf(path, sizeof(path), "%s/" RINGBUF_FILE, dir);
	f = fopen(path, "re");
	if (!f)
		return now_total;
	n = fscanf(f, "%llu", &v);
	fclose(f);
	return n == 1 && v <= now_total ? v : now_total;
}

void agent_ai_ringbuf_reported(struct agent *a, uint64_t total)
{
	const char *dir = a->policy->spool_dir;
	char path[4200], tmp[4300];
	FILE *f;

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/" RINGBUF_FILE, dir);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "we");
	if (!f)
		return;
	/* a crash leaves the old value or the new one: at worst reported again, never lost */
	if (fprintf(f, "%llu\n", (unsigned long long)total) < 0 || fclose(f) || rename(tmp, path))
		tg_warn("cannot record the reported ring buffer losses in %s: %s", path, strerror(errno));
}

void agent_ai_commit(struct agent *a)
{
	if (a->ai)
		ai_sink_commit(a->ai);
}

void agent_ai_event(struct agent *a, json_object *ev)
{
	int err;

	stamp_agent_event(a, ev);
	if (a->ai && a->ai_reporting_loss)
		ai_sink_submit_loss_report(a->ai, ev);
	else if (a->ai)
		ai_sink_submit(a->ai, ev);
	if (!a->fc)
		return;
	err = fieldcrypt_protect(a->fc, ev);
	if (err && !a->ai_protect_logged) {
		tg_err("field protection failed (%s); the value was redacted in the event",
		       strerror(-err));
		a->ai_protect_logged = true;
	}
}

void agent_ai_tick(struct agent *a)
{
	uint64_t now = ai_sink_now_ms(), c[TG_CNT__MAX], since[TG_CNT__MAX];
	struct tg_ai_sink_stats st;

	if (!a->ai)
		return;
	ai_sink_tick(a->ai, now);
	if (!ai_sink_metrics_due(a->ai, now) || agent_read_counters(a, c))
		return;
	for (int i = 0; i < TG_CNT__MAX; i++)
		since[i] = c[i] >= a->counters_at_start[i] ? c[i] - a->counters_at_start[i] : c[i];
	ai_sink_stats(a->ai, &st);
	const struct tg_ai_sink_metric m[] = {
		{ "tlsguard.flows_tracked", since[TG_CNT_FLOWS_TRACKED] },
		{ "tlsguard.tls", since[TG_CNT_VERDICT_TLS] },
		{ "tlsguard.plaintext_flagged", since[TG_CNT_PLAINTEXT_FLAGGED] },
		{ "tlsguard.plaintext_blocked", since[TG_CNT_PLAINTEXT_BLOCKED] },
		{ "tlsguard.connect_flagged", since[TG_CNT_CONNECT_FLAGGED] },
		{ "tlsguard.connect_blocked", since[TG_CNT_CONNECT_BLOCKED] },
		{ "tlsguard.events_emitted", a->events_emitted },
		{ "tlsguard.events_lost", since[TG_CNT_ERR_RINGBUF] + a->events_write_failed },
		{ "tlsguard.appinsights.sent", st.sent },
		{ "tlsguard.appinsights.failed", st.failed },
		{ "tlsguard.appinsights.spooled", st.spooled },
		{ "tlsguard.appinsights.lost_quota", st.lost_quota },
	};
	ai_sink_metrics(a->ai, m, sizeof(m) / sizeof(m[0]));
}

void agent_ai_close(struct agent *a)
{
	if (a->ai) {
		ai_sink_stop(a->ai);
		ai_sink_free(a->ai);
		a->ai = NULL;
	}
	fieldcrypt_free(a->fc);
	a->fc = NULL;
	keyring_free(a->keys);
	a->keys = NULL;
}
