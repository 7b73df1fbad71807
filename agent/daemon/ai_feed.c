// SPDX-License-Identifier: MIT
/* The daemon's feed into the App Insights sink: see ai_feed.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/random.h>

#include "ai_auth.h"
#include "ai_config.h"
#include "ai_feed.h"
#include "ai_sink.h"
#include "connstr.h"
#include "fieldcrypt.h"
#include "log.h"
#include "policy.h"

static uint64_t ms(unsigned int seconds)
{
	return seconds * 1000ULL;
}

/* @msg as an `agent` loss event, which ai_feed_submit() hands the sink as a loss report. */
static void report_loss(struct ai_feed *f, const char *msg)
{
	tg_warn("%s", msg);
	f->reporting_loss = true;
	f->on_loss(f->loss_ctx, msg);
	f->reporting_loss = false;
}

static void report(struct ai_feed *f, uint64_t n, const char *why)
{
	char msg[200];

	if (!n || !f->on_loss)
		return;
	snprintf(msg, sizeof(msg), "appinsights: %llu item(s) lost: %s", (unsigned long long)n, why);
	report_loss(f, msg);
}

/* The sender thread counted losses: the agent thread reports them as `agent` events. */
static void on_ai_notify(void *ctx, uint32_t events)
{
	struct ai_feed *f = ctx;
	struct tg_ai_sink_losses l;

	if (!ai_sink_take_losses(f->sink, &l))
		return;
	report(f, l.queue_full, "the sink's queue was full (events.application_insights.queue_max)");
	report(f, l.evicted, "the spool was full, the oldest batches were evicted "
	       "(events.spool.max_bytes)");
	report(f, l.expired, "spooled batches expired (events.spool.max_age)");
	report(f, l.quota, "the Application Insights resource's daily cap or quota was reached "
	       "(HTTP 402/439; not retried)");
	report(f, l.other - l.torn, "undeliverable (unreadable spool file, or not sent before stopping)");
	report(f, l.torn, "journal: the last write before the agent was killed was cut short "
	       "(events.spool.dir)");
	if (l.torn_bytes && f->on_loss) {
		char msg[200];

		snprintf(msg, sizeof(msg), "journal: the last write before the agent was killed was "
			 "cut short (%llu bytes); how many events it held cannot be read",
			 (unsigned long long)l.torn_bytes);
		report_loss(f, msg);
	}
}

static int open_keys(struct ai_feed *f, const struct tg_policy *p)
{
	struct tg_ai_config c;
	char err[600] = "";
	int ret;

	policy_ai_config(p, &c);
	ret = ai_config_load_keys(&c, &f->keys, &f->fc, err, sizeof(err));

	if (ret)
		tg_err("%s", err);
	return ret;
}

int ai_feed_open(struct ai_feed *f, const struct tg_policy *p, const char *host,
		 struct tg_loop *loop, ai_feed_loss_fn on_loss, void *loss_ctx)
{
	struct tg_ai_sink_config cfg = {
		.connection_string_file = p->ai_connection_string_file,
		.ca_file = p->ai_ca_file,
		.role_instance = host,
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

	f->loop = loop;
	f->on_loss = on_loss;
	f->loss_ctx = loss_ctx;
	ret = open_keys(f, p);
	if (ret)
		return ret;
	if (!p->ai_connection_string_file) {
		if (p->spool_dir)
			tg_warn("events.spool.dir is set but Application Insights is not "
				"(events.application_insights.connection_string_file): nothing to spool");
		return 0;
	}
	cfg.keys = f->keys;
	f->sink = ai_sink_new(&cfg, err, sizeof(err));
	if (!f->sink) {
		ret = -errno;
		tg_err("%s", err);
		return ret == -ENOMEM || ret == -EIO ? ret : -EINVAL;
	}
	f->w_notify = (struct tg_watch){ .fd = ai_sink_notify_fd(f->sink), .handle = on_ai_notify,
					 .ctx = f };
	ret = tg_loop_add(loop, &f->w_notify, EPOLLIN);
	if (!ret)
		ret = ai_sink_start(f->sink);
	if (ret) {
		tg_err("cannot start the Application Insights sink: %s", strerror(-ret));
		return ret;
	}
	tg_info("appinsights: sending to %s (batches of up to %u items / %us%s%s)",
		ai_sink_endpoint(f->sink), p->ai_batch_items ? p->ai_batch_items : TG_AI_DEF_BATCH_ITEMS,
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

/* Agent events: a random id per run, then a counter. */
static void stamp_agent_event(struct ai_feed *f, json_object *ev)
{
	if (json_object_object_get_ex(ev, "event_id", NULL))
		return;
	while (!f->event_id_run) {
		if (getrandom(&f->event_id_run, sizeof(f->event_id_run), 0) != sizeof(f->event_id_run))
			f->event_id_run = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	}
	set_event_id(ev, f->event_id_run, ++f->event_id_next);
}

#define RINGBUF_FILE	"kernel_lost"

uint64_t ai_feed_ringbuf_seen(const char *dir, bool adopted, uint64_t now_total)
{
	unsigned long long v;
	char path[4200];
	FILE *f;
	int n;

	if (!dir || !adopted)
		return now_total;	/* new pins: their counters start at 0 with us */
	snprintf(path, sizeof(path), "%s/" RINGBUF_FILE, dir);
	f = fopen(path, "re");
	if (!f)
		return now_total;
	n = fscanf(f, "%llu", &v);
	fclose(f);
	return n == 1 && v <= now_total ? v : now_total;
}

void ai_feed_ringbuf_reported(const char *dir, uint64_t total)
{
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

void ai_feed_commit(struct ai_feed *f)
{
	if (f->sink)
		ai_sink_commit(f->sink);
}

void ai_feed_submit(struct ai_feed *f, json_object *ev)
{
	stamp_agent_event(f, ev);
	if (f->sink && f->reporting_loss)
		ai_sink_submit_loss_report(f->sink, ev);
	else if (f->sink)
		ai_sink_submit(f->sink, ev);
}

bool ai_feed_tick(struct ai_feed *f)
{
	uint64_t now = ai_sink_now_ms();

	if (!f->sink)
		return false;
	ai_sink_tick(f->sink, now);
	return ai_sink_metrics_due(f->sink, now);
}

void ai_feed_send_metrics(struct ai_feed *f, const uint64_t since[TG_CNT__MAX],
			  uint64_t events_emitted, uint64_t events_write_failed)
{
	struct tg_ai_sink_stats st;

	ai_sink_stats(f->sink, &st);
	const struct tg_ai_sink_metric m[] = {
		{ "tlsguard.flows_tracked", since[TG_CNT_FLOWS_TRACKED] },
		{ "tlsguard.tls", since[TG_CNT_VERDICT_TLS] },
		{ "tlsguard.plaintext_flagged", since[TG_CNT_PLAINTEXT_FLAGGED] },
		{ "tlsguard.plaintext_blocked", since[TG_CNT_PLAINTEXT_BLOCKED] },
		{ "tlsguard.connect_flagged", since[TG_CNT_CONNECT_FLAGGED] },
		{ "tlsguard.connect_blocked", since[TG_CNT_CONNECT_BLOCKED] },
		{ "tlsguard.events_emitted", events_emitted },
		{ "tlsguard.events_lost", since[TG_CNT_ERR_RINGBUF] + events_write_failed },
		{ "tlsguard.appinsights.sent", st.sent },
		{ "tlsguard.appinsights.failed", st.failed },
		{ "tlsguard.appinsights.spooled", st.spooled },
		{ "tlsguard.appinsights.lost_quota", st.lost_quota },
	};
	ai_sink_metrics(f->sink, m, sizeof(m) / sizeof(m[0]));
}

void ai_feed_close(struct ai_feed *f)
{
	if (f->sink) {
		ai_sink_stop(f->sink);
		ai_sink_free(f->sink);
		f->sink = NULL;
	}
	fieldcrypt_free(f->fc);
	f->fc = NULL;
	keyring_free(f->keys);
	f->keys = NULL;
}
