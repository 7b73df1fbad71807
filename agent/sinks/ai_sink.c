// SPDX-License-Identifier: MIT
/* The Application Insights sink: see ai_sink.h for the picture. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "ai_auth.h"
#include "ai_batch.h"
#include "ai_envelope.h"
#include "bytes.h"
#include "connstr.h"
#include "escape.h"
#include "flood.h"
#include "journal.h"
#include "log.h"
#include "ai_sink.h"
#include "spool.h"

#define JSON_FLAGS		(JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)
#define MAX_RESPONSE		(1u << 20)
#define MAX_REDIRECTS		3
#define MAX_AUTH_RETRIES	2
#define DOWN_AFTER		3	/* failed requests in a row */
#define DELIVER_PER_ROUND	8	/* stored batches sent before looking at the queue again */
#define EXPIRE_EVERY_MS		10000
#define MAX_RETRY_AFTER_S	3600
#define MIN_BATCH_BYTES		(128u << 10)	/* room for the largest item (64 KB) */
#define LOGGED_STATUSES		16
#define COMMIT_MAX		4096	/* submitted items before a commit is forced */

enum qkind { Q_EVENT, Q_SUMMARY, Q_METRICS };

struct qitem {
	struct qitem *next;
	enum qkind kind;
	bool quiet;			/* a loss report (count_loss_quiet_locked()) */
	uint64_t jseq;			/* journal sequence, 0: not journaled */
	uint64_t count;			/* Q_SUMMARY */
	char last_time[40];		/* Q_SUMMARY */
	json_object *obj;		/* Q_EVENT: a deep copy, owned (no parsing on the sender) */
	size_t len;
	char json[];			/* Q_SUMMARY: the sample; Q_METRICS: {"name": value, ...} */
};

/* A batch waiting for delivery, when there is no spool. */
struct mem_entry {
	struct mem_entry *next;
	char *body;
	size_t len;
	uint32_t items;
};

/* What the sender holds back: the spool, or memory when no spool is configured. */
struct store {
	struct tg_spool *sp;
	struct mem_entry *head, *tail;
	uint64_t mem_bytes, mem_items, mem_max;
	uint64_t mem_seq;
};

/* One stored batch being delivered. */
struct stored {
	uint64_t seq;
	uint32_t items;
	const char *data;
	size_t len;
	struct tg_spool_item it;	/* spool: owns data */
};

struct response {
	long status;			/* 0: no HTTP answer */
	char *body;
	size_t len;
	bool overflow;
	char retry_after[64];
	char location[1024];		/* a 206's Location: where its 307/308 items go */
	char err[200];
};

struct tg_ai_sink {
	/* set up by ai_sink_new(), read-only afterwards */
	struct tg_connstr cs;
	char *url;			/* where requests go (a redirect moves it), sender thread */
	char *home_url;			/* the connection string's: the fallback when the moved one fails */
	char **suffixes;		/* extra allowed redirect suffixes (tests) */
	size_t nsuffixes;
	struct curl_slist *resolve;	/* tests: CURLOPT_RESOLVE */
	char *ca_file;
	char *spool_dir;
	char endpoint[256];
	struct tg_ai_envelope *env;
	struct tg_fieldcrypt *fc;	/* sender thread only */
	struct tg_ai_auth *auth;	/* sender thread only, NULL without Entra ID */
	struct tg_ai_batch_limits limits;
	size_t queue_max;
	uint64_t timeout_ms, stop_timeout_ms, metrics_ms;

	/* agent thread only */
	struct tg_journal *journal;	/* append here, ack on the sender */
	struct qitem *phead, *ptail;	/* submitted, waiting for the journal commit */
	size_t plen;
	char *jbuf;			/* their JSON lines, for the one journal write */
	size_t jlen, jcap;
	bool logged_journal;
	struct tg_flood *flood;
	uint64_t next_metrics_ms;
	bool stopped;
	uint64_t abort_at_ms;		/* atomic: in-flight requests give up then (stop) */
	uint64_t flood_folded, flood_summaries;	/* atomic: written here, read by stats */

	/* sender thread only */
	CURL *h;
	struct tg_ai_batch *batch, *replay;
	struct tg_ai_line line;		/* the sender's item buffer, kept from item to item */
	struct store store;
	struct tg_backoff backoff;
	uint64_t next_attempt_ms;	/* no request before this (backoff, Retry-After) */
	unsigned int failures;		/* in a row */
	uint64_t next_expire_ms;
	int logged_status[LOGGED_STATUSES];
	bool logged_redirect, logged_protect, logged_unreadable_206, logged_quota;
	uint64_t jseq_done;		/* every journaled item up to here is batched, settled or lost */
	uint64_t jseq_acked;
	bool started;
	pthread_t thread;

	/* shared: under mu */
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct qitem *qhead, *qtail;
	size_t qlen;
	bool stop;
	struct tg_ai_sink_stats st;
	struct tg_ai_sink_losses pending;
	bool pending_signalled;
	bool pending_deferred;		/* a loss report did not fit: say so once there is room */
	int efd;
};

static const char *const state_names[] = {
	[TG_AI_SINK_OK] = "ok",
	[TG_AI_SINK_RETRYING] = "retrying",
	[TG_AI_SINK_DOWN] = "down",
};

const char *ai_sink_state_name(enum tg_ai_sink_state st)
{
	return st <= TG_AI_SINK_DOWN ? state_names[st] : "?";
}

const char *ai_sink_endpoint(const struct tg_ai_sink *s)
{
	return s->st.endpoint;
}

uint64_t ai_sink_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static int64_t now_real_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- losses and counters (any thread, under mu) ------------------------------- */

static void signal_losses_locked(struct tg_ai_sink *s)
{
	uint64_t one = 1;

	if (s->pending_signalled)
		return;
	s->pending_signalled = true;
	if (write(s->efd, &one, sizeof(one)) < 0) {
		/* the counter saturates only after 2^64 - 2 writes: nothing to do */
	}
}

enum loss { LOSS_REJECTED, LOSS_QUEUE_FULL, LOSS_EVICTED, LOSS_EXPIRED, LOSS_OTHER, LOSS_QUOTA };

/*
 * Count @n lost items. Losses are signalled to the agent, which reports them in
 * an `agent` loss event; a loss report that is itself lost (@quiet) is counted
 * but not signalled, or a stalled sink would make the agent report the loss of
 * its report of a loss, and so on, as fast as it can: its count waits in
 * s->pending for the next report, at the latest when the queue has room again.
 */
static void count_loss_quiet_locked(struct tg_ai_sink *s, enum loss why, uint64_t n, bool quiet)
{
	/* Where a loss is counted: its status counter and its share of the next agent event. */
	const struct {
		uint64_t *stat, *pending;
	} at[] = {
		[LOSS_REJECTED] = { &s->st.lost_rejected, NULL },
		[LOSS_QUEUE_FULL] = { &s->st.lost_queue_full, &s->pending.queue_full },
		[LOSS_EVICTED] = { &s->st.lost_evicted, &s->pending.evicted },
		[LOSS_EXPIRED] = { &s->st.lost_expired, &s->pending.expired },
		[LOSS_OTHER] = { &s->st.lost_other, &s->pending.other },
		[LOSS_QUOTA] = { &s->st.lost_quota, &s->pending.quota },
	};

	if (!n)
		return;
	s->st.failed += n;
	*at[why].stat += n;
	if (!at[why].pending)
		return;		/* rejected: logged once per status; not an agent event (see docs) */
	*at[why].pending += n;
	if (quiet)
		s->pending_deferred = true;
	else
		signal_losses_locked(s);
}

static void count_loss_locked(struct tg_ai_sink *s, enum loss why, uint64_t n)
{
	count_loss_quiet_locked(s, why, n, false);
}

static void count_loss(struct tg_ai_sink *s, enum loss why, uint64_t n)
{
	pthread_mutex_lock(&s->mu);
	count_loss_locked(s, why, n);
	pthread_mutex_unlock(&s->mu);
}

static void spool_losses(struct tg_ai_sink *s, const struct tg_spool_loss *evicted,
			 const struct tg_spool_loss *expired)
{
	pthread_mutex_lock(&s->mu);
	if (evicted)
		count_loss_locked(s, LOSS_EVICTED, evicted->items);
	if (expired)
		count_loss_locked(s, LOSS_EXPIRED, expired->items);
	pthread_mutex_unlock(&s->mu);
}

bool ai_sink_take_losses(struct tg_ai_sink *s, struct tg_ai_sink_losses *out)
{
	uint64_t v;
	bool any;

	if (read(s->efd, &v, sizeof(v)) < 0) {
		/* EAGAIN: nothing signalled; the counters decide below */
	}
	pthread_mutex_lock(&s->mu);
	*out = s->pending;
	memset(&s->pending, 0, sizeof(s->pending));
	s->pending_signalled = false;
	s->pending_deferred = false;
	pthread_mutex_unlock(&s->mu);
	any = out->queue_full || out->evicted || out->expired || out->other || out->quota ||
	      out->torn_bytes;
	return any;
}

int ai_sink_notify_fd(const struct tg_ai_sink *s)
{
	return s->efd;
}

void ai_sink_stats(struct tg_ai_sink *s, struct tg_ai_sink_stats *st)
{
	pthread_mutex_lock(&s->mu);
	*st = s->st;
	st->queued += s->qlen;
	pthread_mutex_unlock(&s->mu);
	if (s->journal) {
		struct tg_journal_stats js;

		journal_stats(s->journal, &js);
		st->journal_bytes = js.bytes;
		st->journal_syncs = js.syncs;
		st->journal_write_errors = js.write_errors;
		st->journal_evicted = js.evicted.items;
		st->journal_expired = js.expired.items;
	}
	st->flood_folded = __atomic_load_n(&s->flood_folded, __ATOMIC_RELAXED);
	st->flood_summaries = __atomic_load_n(&s->flood_summaries, __ATOMIC_RELAXED);
}

static void bump(struct tg_ai_sink *s, uint64_t *counter)
{
	pthread_mutex_lock(&s->mu);
	(*counter)++;
	pthread_mutex_unlock(&s->mu);
}

static void set_error(struct tg_ai_sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct tg_ai_sink *s, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&s->mu);
	va_start(ap, fmt);
	vsnprintf(s->st.last_error, sizeof(s->st.last_error), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&s->mu);
}

/* ---- the queue (agent thread → sender) ---------------------------------------- */

/* Append @q (q->next NULL) to the queue; no bound here: the callers decide what it may hold. */
static void queue_push_locked(struct tg_ai_sink *s, struct qitem *q)
{
	if (s->qtail)
		s->qtail->next = q;
	else
		s->qhead = q;
	s->qtail = q;
	s->qlen++;
}

/* Takes @obj (may be NULL: then @json is the item). @quiet: a loss report (see count_loss_quiet_locked()). */
static bool enqueue(struct tg_ai_sink *s, enum qkind kind, json_object *obj, const char *json,
		    size_t len, uint64_t count, const char *last_time, bool quiet)
{
	struct qitem *q = malloc(sizeof(*q) + len + 1);
	uint64_t items = count ? count : 1;

	pthread_mutex_lock(&s->mu);
	if (!q || s->qlen >= s->queue_max || s->stop) {
		/* a folded summary stands for @count events: all of them are lost */
		count_loss_quiet_locked(s, LOSS_QUEUE_FULL, kind == Q_METRICS ? 0 : items, quiet);
		pthread_mutex_unlock(&s->mu);
		free(q);
		json_object_put(obj);
		return false;
	}
	q->next = NULL;
	q->obj = obj;
	q->kind = kind;
	q->count = count;
	snprintf(q->last_time, sizeof(q->last_time), "%s", last_time ? last_time : "");
	q->len = len;
	if (len)
		memcpy(q->json, json, len);
	q->json[len] = '\0';
	queue_push_locked(s, q);
	/* the sender sleeps until a batch is due: wake it only for the first item */
	if (s->qlen == 1)
		pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->mu);
	return true;
}

/* ---- the journal (agent thread appends, sender acknowledges) ----------------------- */

static int jbuf_add(struct tg_ai_sink *s, const char *text, size_t len)
{
	if (tg_reserve((void **)&s->jbuf, &s->jcap, s->jlen + len + 1, 1, 64 << 10))
		return -ENOMEM;
	if (s->jlen)
		s->jbuf[s->jlen++] = '\n';
	memcpy(s->jbuf + s->jlen, text, len);
	s->jlen += len;
	return 0;
}

/*
 * Hold @obj (taken) until ai_sink_commit() has written it to the journal: only
 * then is it the sender's. Its sequence is the journal's next one plus what
 * waits already, so the order of the journal is the order of the queue.
 */
static void stage(struct tg_ai_sink *s, enum qkind kind, json_object *obj, uint64_t count,
		  const char *last_time, bool quiet)
{
	struct qitem *q = malloc(sizeof(*q) + 1);
	const char *text;
	size_t len = 0;

	text = q ? json_object_to_json_string_length(obj, JSON_FLAGS, &len) : NULL;
	if (!text || jbuf_add(s, text, len)) {
		pthread_mutex_lock(&s->mu);
		count_loss_quiet_locked(s, LOSS_OTHER, count ? count : 1, quiet);
		pthread_mutex_unlock(&s->mu);
		free(q);
		json_object_put(obj);
		return;
	}
	memset(q, 0, sizeof(*q) + 1);
	q->kind = kind;
	q->obj = obj;
	q->quiet = quiet;
	q->count = count;
	snprintf(q->last_time, sizeof(q->last_time), "%s", last_time ? last_time : "");
	q->jseq = journal_next_seq(s->journal) + s->plen;
	if (s->ptail)
		s->ptail->next = q;
	else
		s->phead = q;
	s->ptail = q;
	if (++s->plen >= COMMIT_MAX)
		ai_sink_commit(s);
}

void ai_sink_commit(struct tg_ai_sink *s)
{
	struct tg_spool_loss lost = { 0 };
	struct qitem *q, *next;
	bool wake;
	int err;

	if (!s || !s->plen)
		return;
	err = journal_append(s->journal, s->jbuf, s->jlen, (uint32_t)s->plen, &lost);
	if (err && !s->logged_journal) {
		tg_err("appinsights: cannot write the journal: %s; events are sent but a crash "
		       "until it works again would lose them", strerror(-err));
		s->logged_journal = true;
	} else if (!err) {
		s->logged_journal = false;
	}
	if (lost.items)
		tg_warn("appinsights: the journal was full (events.spool.max_bytes): %llu "
			"unacknowledged item(s) are no longer protected against a crash",
			(unsigned long long)lost.items);
	pthread_mutex_lock(&s->mu);
	wake = !s->qlen;
	for (q = s->phead; q; q = next) {
		next = q->next;
		q->next = NULL;
		if (s->qlen >= s->queue_max || s->stop) {
			count_loss_quiet_locked(s, LOSS_QUEUE_FULL, q->count ? q->count : 1, q->quiet);
			json_object_put(q->obj);
			free(q);
			continue;
		}
		queue_push_locked(s, q);
	}
	if (wake && s->qlen)
		pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->mu);
	s->phead = s->ptail = NULL;
	s->plen = 0;
	s->jlen = 0;
}

/* Sender: everything journaled up to jseq_done is settled (sent, lost or in the spool). */
static void journal_settle(struct tg_ai_sink *s)
{
	if (!s->journal || s->jseq_done <= s->jseq_acked)
		return;
	journal_ack(s->journal, s->jseq_done);
	s->jseq_acked = s->jseq_done;
}

static void submit(struct tg_ai_sink *s, json_object *ev, bool loss_report)
{
	json_object *copy = NULL;

	if (!s || s->stopped)
		return;
	if (flood_check(s->flood, ev, ai_sink_now_ms()) == TG_FLOOD_FOLDED) {
		__atomic_add_fetch(&s->flood_folded, 1, __ATOMIC_RELAXED);
		return;
	}
	/*
	 * A private deep copy goes to the sender: it shares nothing with @ev (json-c
	 * reference counts are not atomic), and it costs the agent thread about what
	 * serializing would, while sparing the sender a parse (the dearest step).
	 */
	if (json_object_deep_copy(ev, &copy, NULL)) {
		pthread_mutex_lock(&s->mu);
		count_loss_quiet_locked(s, LOSS_OTHER, 1, loss_report);
		pthread_mutex_unlock(&s->mu);
		return;
	}
	if (s->journal)
		stage(s, Q_EVENT, copy, 0, NULL, loss_report);
	else
		enqueue(s, Q_EVENT, copy, NULL, 0, 0, NULL, loss_report);
}

void ai_sink_submit(struct tg_ai_sink *s, json_object *ev)
{
	submit(s, ev, false);
}

void ai_sink_submit_loss_report(struct tg_ai_sink *s, json_object *ev)
{
	submit(s, ev, true);
}

static void emit_summary(void *ctx, const struct tg_flood_summary *sum)
{
	struct tg_ai_sink *s = ctx;

	__atomic_add_fetch(&s->flood_summaries, 1, __ATOMIC_RELAXED);
	if (s->journal) {
		/* the journal holds the summary as it will be sent */
		json_object *o = tg_json_parse(sum->sample, sum->len);

		if (!json_object_is_type(o, json_type_object)) {
			json_object_put(o);
			count_loss(s, LOSS_OTHER, sum->count);
			return;
		}
		json_object_object_add(o, "count", json_object_new_int64((int64_t)sum->count));
		if (sum->last_time && sum->last_time[0])
			json_object_object_add(o, "last_time", json_object_new_string(sum->last_time));
		stage(s, Q_SUMMARY, o, sum->count, sum->last_time, false);
		return;
	}
	enqueue(s, Q_SUMMARY, NULL, sum->sample, sum->len, sum->count, sum->last_time, false);
}

void ai_sink_tick(struct tg_ai_sink *s, uint64_t now_ms)
{
	if (s && !s->stopped) {
		flood_expire(s->flood, now_ms, 0, emit_summary, s);
		ai_sink_commit(s);	/* summaries, and whatever a caller did not commit */
	}
}

bool ai_sink_metrics_due(struct tg_ai_sink *s, uint64_t now_ms)
{
	if (!s || s->stopped || !s->metrics_ms)
		return false;
	if (!s->next_metrics_ms)
		s->next_metrics_ms = now_ms + s->metrics_ms;
	if (now_ms < s->next_metrics_ms)
		return false;
	s->next_metrics_ms = now_ms + s->metrics_ms;
	return true;
}

void ai_sink_metrics(struct tg_ai_sink *s, const struct tg_ai_sink_metric *m, size_t n)
{
	json_object *o = json_object_new_object();
	const char *text;
	size_t len;

	if (!o)
		return;
	for (size_t i = 0; i < n; i++)
		json_object_object_add(o, m[i].name, json_object_new_double(m[i].value));
	text = json_object_to_json_string_length(o, JSON_FLAGS, &len);
	if (text)
		enqueue(s, Q_METRICS, NULL, text, len, 0, NULL, false);
	json_object_put(o);
}

/* ---- the store: spool or memory (sender thread) ----------------------------------- */

static bool store_empty(struct tg_ai_sink *s)
{
	struct tg_spool_stats st;

	if (!s->store.sp)
		return !s->store.head;
	spool_stats(s->store.sp, &st);
	return !st.files;
}

static void store_put(struct tg_ai_sink *s, const char *body, size_t len, uint32_t items)
{
	struct store *sto = &s->store;
	struct mem_entry *e;

	if (sto->sp) {
		struct tg_spool_loss lost = { 0 };
		int err = spool_put(sto->sp, body, len, items, &lost);

		spool_losses(s, &lost, NULL);
		if (err) {
			tg_warn("appinsights: cannot spool a batch of %u item(s): %s; they are lost",
				items, strerror(-err));
			set_error(s, "spool: %s", strerror(-err));
			count_loss(s, LOSS_OTHER, items);
		}
		return;
	}
	e = calloc(1, sizeof(*e));
	if (e)
		e->body = malloc(len);
	if (!e || !e->body) {
		free(e);
		count_loss(s, LOSS_OTHER, items);
		return;
	}
	memcpy(e->body, body, len);
	e->len = len;
	e->items = items;
	if (sto->tail)
		sto->tail->next = e;
	else
		sto->head = e;
	sto->tail = e;
	sto->mem_bytes += len;
	sto->mem_items += items;
	/* the same rule as the spool: the oldest gives way */
	while (sto->mem_bytes > sto->mem_max && sto->head != e) {
		struct mem_entry *old = sto->head;

		sto->head = old->next;
		sto->mem_bytes -= old->len;
		sto->mem_items -= old->items;
		count_loss(s, LOSS_EVICTED, old->items);
		free(old->body);
		free(old);
	}
}

/* The oldest stored batch. 0, or -ENOENT when the store is empty. */
static int store_peek(struct tg_ai_sink *s, struct stored *out)
{
	struct store *sto = &s->store;

	memset(out, 0, sizeof(*out));
	if (!sto->sp) {
		if (!sto->head)
			return -ENOENT;
		out->data = sto->head->body;
		out->len = sto->head->len;
		out->items = sto->head->items;
		return 0;
	}
	for (;;) {
		struct tg_spool_loss expired = { 0 };
		int err = spool_peek_oldest(sto->sp, &out->it, &expired);

		spool_losses(s, NULL, &expired);
		if (err == -ENOENT)
			return err;
		if (!err) {
			out->seq = out->it.seq;
			out->items = out->it.items;
			out->data = (const char *)out->it.data;
			out->len = out->it.len;
			return 0;
		}
		/* corrupt, tampered, or written with a key we no longer have */
		tg_warn("appinsights: spooled batch %llu is unusable (%s); its %u item(s) are lost",
			(unsigned long long)out->it.seq,
			err == -ENOKEY ? "its key is not in the key ring" :
			err == -EBADMSG ? "corrupt or tampered" : strerror(-err), out->it.items);
		count_loss(s, LOSS_OTHER, out->it.items);
		spool_remove(sto->sp, out->it.seq);
		spool_item_free(&out->it);
	}
}

static void store_release(struct stored *st)
{
	spool_item_free(&st->it);
}

static void store_remove(struct tg_ai_sink *s, struct stored *st)
{
	struct store *sto = &s->store;

	if (sto->sp) {
		spool_remove(sto->sp, st->seq);
		return;
	}
	if (sto->head) {
		struct mem_entry *e = sto->head;

		sto->head = e->next;
		if (!sto->head)
			sto->tail = NULL;
		sto->mem_bytes -= e->len;
		sto->mem_items -= e->items;
		free(e->body);
		free(e);
	}
}

static void store_counts(struct tg_ai_sink *s, uint64_t *items, uint64_t *bytes)
{
	struct tg_spool_stats st;

	if (!s->store.sp) {
		*items = s->store.mem_items;
		*bytes = s->store.mem_bytes;
		return;
	}
	spool_stats(s->store.sp, &st);
	*items = st.items;
	*bytes = st.bytes;
}

/* ---- HTTP ---------------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct response *r = arg;
	int ret = tg_text_append(&r->body, &r->len, MAX_RESPONSE, data, size * n);

	if (ret == -E2BIG)
		r->overflow = true;	/* keep reading, drop the rest: the status still counts */
	return ret == -ENOMEM ? 0 : size * n;
}

static void response_reset(struct response *r)
{
	free(r->body);
	memset(r, 0, sizeof(*r));
}

/* scheme, host and port of @url; 0 or -EINVAL. */
static int origin(const char *url, char **scheme, char **host, char **port)
{
	CURLU *u = curl_url();
	int ret = -EINVAL;

	*scheme = *host = *port = NULL;
	if (!u)
		return -ENOMEM;
	if (!curl_url_set(u, CURLUPART_URL, url, 0) &&
	    !curl_url_get(u, CURLUPART_SCHEME, scheme, 0) &&
	    !curl_url_get(u, CURLUPART_HOST, host, 0) &&
	    !curl_url_get(u, CURLUPART_PORT, port, CURLU_DEFAULT_PORT))
		ret = 0;
	curl_url_cleanup(u);
	if (ret) {
		curl_free(*scheme);
		curl_free(*host);
		curl_free(*port);
		*scheme = *host = *port = NULL;
	}
	return ret;
}

/* Same scheme, host (case-insensitive) and port: only there may a token follow. */
static bool same_origin(const char *a, const char *b)
{
	char *s1, *h1, *p1, *s2, *h2, *p2;
	bool same = false;

	if (origin(a, &s1, &h1, &p1))
		return false;
	if (!origin(b, &s2, &h2, &p2)) {
		same = !strcasecmp(s1, s2) && !strcasecmp(h1, h2) && !strcmp(p1, p2);
		curl_free(s2);
		curl_free(h2);
		curl_free(p2);
	}
	curl_free(s1);
	curl_free(h1);
	curl_free(p1);
	return same;
}

/* Lets ai_sink_stop() cut a slow request short instead of waiting for its timeout. */
static int stop_due(void *arg)
{
	struct tg_ai_sink *s = arg;
	uint64_t abort_at = __atomic_load_n(&s->abort_at_ms, __ATOMIC_RELAXED);

	return abort_at && ai_sink_now_ms() >= abort_at;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	return stop_due(arg);
}

static void endpoint_text(const char *url, char *out, size_t len);

static int setup_curl(struct tg_ai_sink *s)
{
	s->h = curl_easy_init();
	if (!s->h)
		return -ENOMEM;
	curl_easy_setopt(s->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(s->h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(s->h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(s->h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(s->h, CURLOPT_SSL_EC_CURVES, "X25519:P-256:P-384");
	if (s->ca_file)
		curl_easy_setopt(s->h, CURLOPT_CAINFO, s->ca_file);
	curl_easy_setopt(s->h, CURLOPT_FOLLOWLOCATION, 0L);	/* redirects: by hand, see post() */
	curl_easy_setopt(s->h, CURLOPT_USERAGENT, "tlsguard/" TLSGUARD_VERSION);
	curl_easy_setopt(s->h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(s->h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(s->h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(s->h, CURLOPT_XFERINFODATA, s);
	if (s->resolve)
		curl_easy_setopt(s->h, CURLOPT_RESOLVE, s->resolve);
	return 0;
}

/* ---- redirects ------------------------------------------------------------------ */

/*
 * The ingestion hosts of Azure Monitor, as the Application Insights
 * connection strings and the Azure Monitor OpenTelemetry exporters name them:
 * <region>.in.applicationinsights.azure.com (and the global
 * dc.applicationinsights.azure.com), dc.services.visualstudio.com (the
 * classic global endpoint), the monitor.azure.* ingestion and data collection
 * endpoints, and the sovereign clouds' equivalents.
 */
const char *const tg_ai_redirect_suffixes[] = {
	".applicationinsights.azure.com",
	".services.visualstudio.com",
	".monitor.azure.com",
	".applicationinsights.azure.cn",
	".monitor.azure.cn",
	".applicationinsights.us",
	".monitor.azure.us",
	NULL,
};

static bool ends_with_label(const char *host, const char *suffix)
{
	size_t h = strlen(host), n = strlen(suffix);

	if (!n)
		return false;
	if (suffix[0] != '.') {
		/* "example.test" allows example.test and *.example.test */
		if (h == n)
			return !strcasecmp(host, suffix);
		return h > n && host[h - n - 1] == '.' && !strcasecmp(host + h - n, suffix);
	}
	return h > n && !strcasecmp(host + h - n, suffix);
}

bool ai_sink_redirect_allowed(const char *host, char *const *extra, size_t nextra)
{
	size_t len = host ? strlen(host) : 0;

	/* a trailing dot would be the same name to DNS, and a way around the check */
	if (!len || host[len - 1] == '.')
		return false;
	for (size_t i = 0; tg_ai_redirect_suffixes[i]; i++)
		if (ends_with_label(host, tg_ai_redirect_suffixes[i]))
			return true;
	for (size_t i = 0; i < nextra; i++)
		if (extra[i] && ends_with_label(host, extra[i]))
			return true;
	return false;
}

/* May a request (and its token) follow @from's redirect to @to? Counts and logs a refusal. */
static bool redirect_ok(struct tg_ai_sink *s, const char *from, const char *to)
{
	char *scheme, *host, *port;
	bool ok;

	if (same_origin(from, to) || same_origin(s->home_url, to))
		return true;
	if (origin(to, &scheme, &host, &port))
		return false;
	ok = !strcasecmp(scheme, "https") && ai_sink_redirect_allowed(host, s->suffixes, s->nsuffixes);
	if (!ok) {
		pthread_mutex_lock(&s->mu);
		s->st.redirects_refused++;
		pthread_mutex_unlock(&s->mu);
		if (!s->logged_redirect)
			tg_warn("appinsights: the endpoint redirects to another host (%s://%s:%s), "
				"not an Azure Monitor ingestion host; not followed: credentials and "
				"events go to the connection string's host and Azure Monitor's only "
				"(logged once, counted in status: redirects_refused)", scheme, host, port);
		s->logged_redirect = true;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	return ok;
}

/* Later requests go to @url (a redirect's target), or home again when @url is the home one. */
static void move_to(struct tg_ai_sink *s, const char *url)
{
	char *moved = strdup(url);
	bool home = same_origin(url, s->home_url);

	if (!moved)
		return;
	if (strcmp(moved, s->url) && !home)
		tg_info("appinsights: the endpoint moved this sink to %s", moved);
	free(s->url);
	s->url = moved;
	pthread_mutex_lock(&s->mu);
	if (home)
		s->st.redirected_to[0] = '\0';
	else
		endpoint_text(moved, s->st.redirected_to, sizeof(s->st.redirected_to));
	pthread_mutex_unlock(&s->mu);
}

/* A request to a host a redirect led to failed: the configured one is tried next. */
static void fall_back_home(struct tg_ai_sink *s)
{
	if (!strcmp(s->url, s->home_url))
		return;
	tg_info("appinsights: %s failed; back to the connection string's endpoint", s->st.redirected_to);
	move_to(s, s->home_url);
}

/*
 * POST @gz to the ingestion endpoint: redirects followed to the same origin
 * or an allow-listed Azure Monitor host (redirect_ok()), a 401/403 refreshes
 * the token a bounded number of times. The token is requested for the
 * connection string's audience, which every Azure Monitor ingestion host of
 * the cloud accepts, so it stays valid after a redirect. @r gets the final answer.
 */
static void post(struct tg_ai_sink *s, const uint8_t *gz, size_t len, uint64_t timeout_ms,
		 struct response *r)
{
	char cerr[CURL_ERROR_SIZE];
	char *url = strdup(s->url);
	int hops = 0, auth_tries = 0;

	if (!url) {
		snprintf(r->err, sizeof(r->err), "out of memory");
		return;
	}
	for (;;) {
		struct curl_slist *hdrs = NULL;
		struct curl_header *ra;
		char *bearer = NULL, *loc = NULL;
		const char *token = NULL;
		CURLcode rc;

		response_reset(r);
		if (s->auth) {
			char aerr[200] = "";

			if (ai_auth_token(s->auth, &token, aerr, sizeof(aerr))) {
				snprintf(r->err, sizeof(r->err), "%s", aerr);
				break;
			}
			if (asprintf(&bearer, "Authorization: Bearer %s", token) < 0) {
				bearer = NULL;
				snprintf(r->err, sizeof(r->err), "out of memory");
				break;
			}
		}
		hdrs = curl_slist_append(hdrs, "Content-Type: application/x-json-stream");
		hdrs = curl_slist_append(hdrs, "Content-Encoding: gzip");
		hdrs = curl_slist_append(hdrs, "Expect:");
		if (bearer)
			hdrs = curl_slist_append(hdrs, bearer);
		cerr[0] = '\0';
		curl_easy_setopt(s->h, CURLOPT_URL, url);
		curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, gz);
		curl_easy_setopt(s->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
		curl_easy_setopt(s->h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
		curl_easy_setopt(s->h, CURLOPT_CONNECTTIMEOUT_MS,
				 (long)(timeout_ms < 10000 ? timeout_ms : 10000));
		curl_easy_setopt(s->h, CURLOPT_WRITEDATA, r);
		curl_easy_setopt(s->h, CURLOPT_ERRORBUFFER, cerr);
		rc = curl_easy_perform(s->h);
		curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, NULL);
		curl_slist_free_all(hdrs);
		if (bearer) {
			explicit_bzero(bearer, strlen(bearer));
			free(bearer);
		}
		bump(s, &s->st.requests);
		if (rc != CURLE_OK) {
			r->status = 0;
			snprintf(r->err, sizeof(r->err), "%.190s", cerr[0] ? cerr : curl_easy_strerror(rc));
			break;
		}
		curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &r->status);
		if (curl_easy_header(s->h, "Retry-After", 0, CURLH_HEADER, -1, &ra) == CURLHE_OK)
			snprintf(r->retry_after, sizeof(r->retry_after), "%s", ra->value);
		if (r->status == 206 &&
		    curl_easy_header(s->h, "Location", 0, CURLH_HEADER, -1, &ra) == CURLHE_OK)
			snprintf(r->location, sizeof(r->location), "%s", ra->value);
		switch (ai_status_class((int)r->status)) {
		case TG_AI_REDIRECT:
			curl_easy_getinfo(s->h, CURLINFO_REDIRECT_URL, &loc);
			if (!loc) {
				snprintf(r->err, sizeof(r->err), "HTTP %ld without a Location", r->status);
				goto out;
			}
			if (!redirect_ok(s, url, loc)) {
				snprintf(r->err, sizeof(r->err), "redirect to a host outside the Azure "
					 "Monitor allow-list refused");
				goto out;
			}
			if (++hops > MAX_REDIRECTS) {
				snprintf(r->err, sizeof(r->err), "too many redirects");
				goto out;
			}
			bump(s, &s->st.redirects);
			free(url);
			url = strdup(loc);
			if (!url) {
				snprintf(r->err, sizeof(r->err), "out of memory");
				return;
			}
			/* 307 and 308 alike: later batches go there too, until it fails */
			move_to(s, url);
			continue;
		case TG_AI_AUTH:
			if (s->auth && auth_tries++ < MAX_AUTH_RETRIES) {
				ai_auth_invalidate(s->auth);
				continue;
			}
			snprintf(r->err, sizeof(r->err), "HTTP %ld: %s", r->status,
				 s->auth ? "the token was refused" :
				 "the resource requires Entra ID authentication (events.application_insights.auth)");
			goto out;
		default:
			goto out;
		}
	}
out:
	free(url);
	if (s->auth) {
		pthread_mutex_lock(&s->mu);
		s->st.token_fetches = ai_auth_fetches(s->auth);
		pthread_mutex_unlock(&s->mu);
	}
}

/* ---- delivery (sender thread) ---------------------------------------------------- */

enum outcome {
	DONE,	/* the batch is settled: accepted, lost, or its retryable items re-stored */
	KEEP,	/* try the whole batch again later */
};

static void log_rejection_once(struct tg_ai_sink *s, int status, const char *what)
{
	for (int i = 0; i < LOGGED_STATUSES; i++) {
		if (s->logged_status[i] == status)
			return;
		if (!s->logged_status[i]) {
			s->logged_status[i] = status;
			break;
		}
	}
	tg_err("appinsights: %s (HTTP %d); counted as lost. Check the connection string's "
	       "InstrumentationKey and endpoint. Logged once per status.", what, status);
}

static void on_success(struct tg_ai_sink *s, uint64_t accepted)
{
	bool recovered = s->failures > 0;

	backoff_reset(&s->backoff);
	s->failures = 0;
	pthread_mutex_lock(&s->mu);
	s->st.sent += accepted;
	s->st.state = TG_AI_SINK_OK;
	s->st.last_success_ns = now_real_ns();
	pthread_mutex_unlock(&s->mu);
	if (recovered)
		tg_info("appinsights: delivering again");
}

static void on_failure(struct tg_ai_sink *s, const struct response *r, uint64_t now)
{
	uint64_t delay = 0, ra = 0;
	bool throttled = r->status == 429;

	if (r->retry_after[0] && !ai_retry_after_parse(r->retry_after, time(NULL), &ra)) {
		delay = (ra > MAX_RETRY_AFTER_S ? MAX_RETRY_AFTER_S : ra) * 1000;
		backoff_next(&s->backoff);	/* keep the exponent growing */
	} else {
		delay = backoff_next(&s->backoff);
	}
	s->next_attempt_ms = now + delay;
	s->failures++;
	fall_back_home(s);
	pthread_mutex_lock(&s->mu);
	s->st.retries++;
	s->st.throttled += throttled;
	s->st.state = s->failures >= DOWN_AFTER ? TG_AI_SINK_DOWN : TG_AI_SINK_RETRYING;
	if (r->status)
		snprintf(s->st.last_error, sizeof(s->st.last_error), "HTTP %ld%s%s", r->status,
			 r->err[0] ? ": " : "", r->err);
	else
		snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", r->err[0] ? r->err : "no answer");
	pthread_mutex_unlock(&s->mu);
	if (s->failures == 1 || s->failures == DOWN_AFTER)
		tg_warn("appinsights: request failed (%s); retrying in %llu ms%s", s->st.last_error,
			(unsigned long long)delay, s->failures == DOWN_AFTER ?
			"; batches go to the spool until the endpoint answers" : "");
}

/* The lines of @b at @idx (ascending) as a new body. */
static char *subset_body(struct tg_ai_batch *b, const size_t *idx, size_t n, size_t *len)
{
	size_t total = 0, off = 0;
	char *body;

	for (size_t i = 0; i < n; i++) {
		const char *line;
		size_t l;

		if (!ai_batch_item(b, idx[i], &line, &l))
			total += l + 1;
	}
	body = malloc(total + 1);
	if (!body)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const char *line;
		size_t l;

		if (ai_batch_item(b, idx[i], &line, &l))
			continue;
		if (off)
			body[off++] = '\n';
		memcpy(body + off, line, l);
		off += l;
	}
	body[off] = '\0';
	*len = off;
	return body;
}

static enum outcome handle_partial(struct tg_ai_sink *s, struct tg_ai_batch *b,
				   const struct response *r, uint64_t now)
{
	size_t n = ai_batch_count(b), accepted;
	struct tg_ai_response pr;

	if (ai_response_parse(r->body ? r->body : "", r->len, n, &pr)) {
		/* nothing says which items failed: resending all could duplicate */
		if (!s->logged_unreadable_206)
			tg_warn("appinsights: HTTP 206 without a readable body; its %zu item(s) "
				"are counted as sent", n);
		s->logged_unreadable_206 = true;
		on_success(s, n);
		return DONE;
	}
	accepted = n - pr.nretry - pr.nlost - pr.nquota - pr.unaccounted;
	on_success(s, accepted);
	if (pr.nquota) {
		if (!s->logged_quota)
			tg_err("appinsights: %zu of %zu item(s) refused for the resource's daily cap "
			       "or quota; counted as lost (quota). Logged once.", pr.nquota, n);
		s->logged_quota = true;
		count_loss(s, LOSS_QUOTA, pr.nquota);
	}
	/* items answered 307/308 go again, to the Location when it may be followed */
	bool moved = pr.nredirect && r->location[0] && redirect_ok(s, s->url, r->location);

	if (moved) {
		bump(s, &s->st.redirects);
		move_to(s, r->location);
	}
	if (pr.nlost) {
		char what[320];

		snprintf(what, sizeof(what), "%zu of %zu item(s) rejected: %s", pr.nlost, n,
			 pr.first_lost_message[0] ? pr.first_lost_message : "no message");
		log_rejection_once(s, pr.first_lost_status > 0 ? pr.first_lost_status : 206, what);
		count_loss(s, LOSS_REJECTED, pr.nlost);
	}
	count_loss(s, LOSS_OTHER, pr.unaccounted);
	if (pr.nretry) {
		size_t len;
		char *body = subset_body(b, pr.retry, pr.nretry, &len);

		if (body) {
			store_put(s, body, len, (uint32_t)pr.nretry);
			free(body);
		} else {
			count_loss(s, LOSS_OTHER, pr.nretry);
		}
		/* items refused for load: give the service the same pause as a whole refusal */
		pthread_mutex_lock(&s->mu);
		s->st.retries++;
		pthread_mutex_unlock(&s->mu);
		s->next_attempt_ms = now + (r->retry_after[0] ? 0 : backoff_next(&s->backoff));
		if (moved && pr.nredirect == pr.nretry)
			s->next_attempt_ms = now;	/* only moved, not refused: to the new host at once */
		if (r->retry_after[0]) {
			uint64_t ra;

			if (!ai_retry_after_parse(r->retry_after, time(NULL), &ra))
				s->next_attempt_ms = now + (ra > MAX_RETRY_AFTER_S ? MAX_RETRY_AFTER_S : ra) * 1000;
		}
	}
	ai_response_free(&pr);
	return DONE;
}

/*
 * 402/439: the resource's daily cap or quota. The SDKs drop such items without
 * retrying (a retry only adds to the bill, or is refused again): counted as
 * `quota`, reported in a loss event. A Retry-After still spaces the next request.
 */
static void on_quota(struct tg_ai_sink *s, const struct response *r, size_t n, uint64_t now)
{
	uint64_t ra;

	if (!s->logged_quota)
		tg_err("appinsights: HTTP %ld: the Application Insights resource's daily cap or "
		       "quota is reached; %zu item(s) dropped, counted as lost (quota). Raise the "
		       "cap or lower the volume. Logged once.", r->status, n);
	s->logged_quota = true;
	count_loss(s, LOSS_QUOTA, n);
	pthread_mutex_lock(&s->mu);
	snprintf(s->st.last_error, sizeof(s->st.last_error), "HTTP %ld: daily cap or quota reached",
		 r->status);
	pthread_mutex_unlock(&s->mu);
	if (r->retry_after[0] && !ai_retry_after_parse(r->retry_after, time(NULL), &ra))
		s->next_attempt_ms = now + (ra > MAX_RETRY_AFTER_S ? MAX_RETRY_AFTER_S : ra) * 1000;
}

/* Send @b once (plus redirects and token refreshes). */
static enum outcome attempt(struct tg_ai_sink *s, struct tg_ai_batch *b, uint64_t timeout_ms)
{
	struct response r = { 0 };
	size_t n = ai_batch_count(b), gzlen;
	const uint8_t *gz;
	enum outcome out = DONE;
	uint64_t now;
	int err;

	err = ai_batch_finish(b, &gz, &gzlen);
	if (err) {
		snprintf(r.err, sizeof(r.err), "cannot compress a batch: %s", strerror(-err));
		on_failure(s, &r, ai_sink_now_ms());
		return KEEP;
	}
	post(s, gz, gzlen, timeout_ms, &r);
	now = ai_sink_now_ms();
	switch (ai_status_class((int)r.status)) {
	case TG_AI_OK:
		on_success(s, n);
		break;
	case TG_AI_PARTIAL:
		out = handle_partial(s, b, &r, now);
		break;
	case TG_AI_QUOTA:
		on_quota(s, &r, n, now);
		break;
	case TG_AI_DROP: {
		char what[300];

		snprintf(what, sizeof(what), "the endpoint rejected a request of %zu item(s)", n);
		log_rejection_once(s, (int)r.status, what);
		count_loss(s, LOSS_REJECTED, n);
		/* the endpoint answers, but refuses everything: as good as down */
		s->failures = DOWN_AFTER;
		pthread_mutex_lock(&s->mu);
		s->st.state = TG_AI_SINK_DOWN;
		snprintf(s->st.last_error, sizeof(s->st.last_error), "HTTP %ld: request rejected",
			 r.status);
		pthread_mutex_unlock(&s->mu);
		break;
	}
	default:	/* RETRY, AUTH after refreshes, REDIRECT not followed */
		on_failure(s, &r, now);
		out = KEEP;
		break;
	}
	response_reset(&r);
	return out;
}

/* Settle the open batch: send it now, or store it behind what waits. */
static void flush_batch(struct tg_ai_sink *s, uint64_t timeout_ms, bool may_send)
{
	size_t n = ai_batch_count(s->batch), len;
	const char *body;

	if (!n)
		return;
	if (may_send && store_empty(s) && ai_sink_now_ms() >= s->next_attempt_ms &&
	    attempt(s, s->batch, timeout_ms) == DONE) {
		ai_batch_reset(s->batch);
		journal_settle(s);
		return;
	}
	body = ai_batch_body(s->batch, &len);
	store_put(s, body, len, (uint32_t)n);
	ai_batch_reset(s->batch);
	journal_settle(s);	/* the spool holds it now (fsync'ed), or it was counted lost */
}

/* Send stored batches, oldest first, while the endpoint takes them. */
static void deliver(struct tg_ai_sink *s, int max, uint64_t deadline_ms)
{
	for (int k = 0; k < max; k++) {
		uint64_t now = ai_sink_now_ms(), timeout = s->timeout_ms;
		struct stored st;
		int err;

		if (now < s->next_attempt_ms || (deadline_ms && now >= deadline_ms))
			return;
		if (deadline_ms && deadline_ms - now < timeout)
			timeout = deadline_ms - now;
		if (store_peek(s, &st))
			return;
		err = ai_batch_load(s->replay, st.data, st.len, now);
		if (err) {
			tg_warn("appinsights: a stored batch of %u item(s) cannot be read back (%s); lost",
				st.items, strerror(-err));
			count_loss(s, LOSS_OTHER, st.items);
			store_remove(s, &st);
			store_release(&st);
			continue;
		}
		if (attempt(s, s->replay, timeout) == DONE)
			store_remove(s, &st);
		store_release(&st);
		ai_batch_reset(s->replay);
		if (s->failures)
			return;
	}
}

/* ---- rendering (sender thread) ----------------------------------------------------- */

/* Batch the item rendered into s->line. */
static void add_line(struct tg_ai_sink *s, uint64_t items)
{
	uint64_t now = ai_sink_now_ms();
	int err = ai_batch_add(s->batch, s->line.p, s->line.len, now);

	if (err == -ENOSPC) {
		flush_batch(s, s->timeout_ms, true);
		err = ai_batch_add(s->batch, s->line.p, s->line.len, ai_sink_now_ms());
	}
	if (err) {
		tg_warn("appinsights: cannot batch an item: %s", strerror(-err));
		count_loss(s, LOSS_OTHER, items);
	}
}

static void render_event_one(struct tg_ai_sink *s, struct qitem *q);

/* The item is batched or counted as lost: the journal may forget it with its batch. */
static void render_event(struct tg_ai_sink *s, struct qitem *q)
{
	render_event_one(s, q);
	if (q->jseq > s->jseq_done)
		s->jseq_done = q->jseq;
}

static void render_event_one(struct tg_ai_sink *s, struct qitem *q)
{
	uint64_t items = q->kind == Q_SUMMARY ? q->count : 1;
	json_object *ev = q->obj ? q->obj : tg_json_parse(q->json, q->len);
	int err;

	q->obj = NULL;	/* ours now */
	if (!ev) {
		count_loss(s, LOSS_OTHER, items);
		return;
	}
	if (q->kind == Q_SUMMARY) {
		json_object_object_add(ev, "count", json_object_new_int64((int64_t)q->count));
		if (q->last_time[0])
			json_object_object_add(ev, "last_time", json_object_new_string(q->last_time));
	}
	/* fails closed: a value that cannot be protected is redacted, never sent */
	if (s->fc && (err = fieldcrypt_protect(s->fc, ev)) && !s->logged_protect) {
		tg_err("appinsights: field protection failed (%s); the value was redacted",
		       strerror(-err));
		s->logged_protect = true;
	}
	err = ai_envelope_event(s->env, ev, &s->line);
	json_object_put(ev);
	if (err) {
		count_loss(s, LOSS_OTHER, items);
		return;
	}
	add_line(s, items);
}

static void render_metrics(struct tg_ai_sink *s, struct qitem *q)
{
	json_object *o = tg_json_parse(q->json, q->len);

	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return;
	}
	json_object_object_foreach(o, name, v) {
		struct tg_ai_metric m = { .name = name, .value = json_object_get_double(v) };

		if (!ai_envelope_metric(s->env, &m, &s->line))
			add_line(s, 0);
	}
	json_object_put(o);
}

static void render(struct tg_ai_sink *s, struct qitem *list)
{
	while (list) {
		struct qitem *next = list->next;

		if (list->kind == Q_METRICS)
			render_metrics(s, list);
		else
			render_event(s, list);
		free(list);
		list = next;
	}
	if (!ai_batch_count(s->batch))
		journal_settle(s);	/* nothing open: all of it is settled */
}

/* ---- the sender thread ------------------------------------------------------------- */

static void publish_counts(struct tg_ai_sink *s)
{
	uint64_t items, bytes;

	store_counts(s, &items, &bytes);
	pthread_mutex_lock(&s->mu);
	s->st.queued = ai_batch_count(s->batch);
	s->st.spooled = items;
	s->st.spool_bytes = bytes;
	pthread_mutex_unlock(&s->mu);
}

static void periodic_expire(struct tg_ai_sink *s, uint64_t now)
{
	struct tg_spool_loss expired = { 0 };

	if (!s->store.sp || now < s->next_expire_ms)
		return;
	s->next_expire_ms = now + EXPIRE_EVERY_MS;
	spool_expire(s->store.sp, &expired);
	spool_losses(s, NULL, &expired);
}

static uint64_t next_wake(struct tg_ai_sink *s, uint64_t now)
{
	uint64_t wake = now + 5000, d = ai_batch_deadline(s->batch);

	if (d < wake)
		wake = d;
	if (!store_empty(s))
		wake = s->next_attempt_ms > now ? (s->next_attempt_ms < wake ? s->next_attempt_ms : wake) : now;
	if (s->store.sp && s->next_expire_ms < wake)
		wake = s->next_expire_ms;
	return wake;
}

static void wait_until(struct tg_ai_sink *s, uint64_t wake_ms)
{
	struct timespec ts = { .tv_sec = wake_ms / 1000, .tv_nsec = (wake_ms % 1000) * 1000000 };

	while (!s->qhead && !s->stop && ai_sink_now_ms() < wake_ms)
		if (pthread_cond_timedwait(&s->cond, &s->mu, &ts) == ETIMEDOUT)
			break;
}

/*
 * Losses counted after the agent stopped reporting (a batch stored at stop
 * evicted older ones) would go unreported: the spool directory keeps their
 * counts in LOST_FILE and the next start reports them.
 */
#define LOST_FILE	"lost.json"

/* Add the counts of a LOST_FILE object @o to @l: the keys persist_losses() writes. */
static void losses_add_json(struct tg_ai_sink_losses *l, json_object *o)
{
	const struct {
		const char *key;
		uint64_t *count;
	} f[] = {
		{ "queue_full", &l->queue_full }, { "evicted", &l->evicted },
		{ "expired", &l->expired }, { "other", &l->other },
	};
	json_object *v;

	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (json_object_object_get_ex(o, f[i].key, &v))
			*f[i].count += json_object_get_uint64(v);
}

static void persist_losses(struct tg_ai_sink *s)
{
	struct tg_ai_sink_losses l;
	char path[4200], tmp[4300];
	json_object *o;
	FILE *f;

	if (!s->spool_dir)
		return;
	pthread_mutex_lock(&s->mu);
	l = s->pending;
	pthread_mutex_unlock(&s->mu);
	if (!l.queue_full && !l.evicted && !l.expired && !l.other)
		return;
	snprintf(path, sizeof(path), "%s/" LOST_FILE, s->spool_dir);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	o = json_object_from_file(path);	/* what an earlier run left, if anything */
	if (json_object_is_type(o, json_type_object))
		losses_add_json(&l, o);
	json_object_put(o);
	f = fopen(tmp, "we");
	if (!f || fchmod(fileno(f), 0600) ||
	    fprintf(f, "{\"queue_full\":%llu,\"evicted\":%llu,\"expired\":%llu,\"other\":%llu}\n",
		    (unsigned long long)l.queue_full, (unsigned long long)l.evicted,
		    (unsigned long long)l.expired, (unsigned long long)l.other) < 0 ||
	    fflush(f) || fsync(fileno(f)) || rename(tmp, path)) {
		tg_warn("appinsights: cannot record the losses for the next start in %s: %s", path,
			strerror(errno));
	}
	if (f)
		fclose(f);
}

/* The counts a previous run left: reported by this one (ai_sink_take_losses()). */
static void load_losses(struct tg_ai_sink *s)
{
	char path[4200];
	json_object *o;

	snprintf(path, sizeof(path), "%s/" LOST_FILE, s->spool_dir);
	o = json_object_from_file(path);
	if (!o)
		return;
	if (json_object_is_type(o, json_type_object)) {
		pthread_mutex_lock(&s->mu);
		losses_add_json(&s->pending, o);
		signal_losses_locked(s);
		pthread_mutex_unlock(&s->mu);
	}
	json_object_put(o);
	unlink(path);
}

/* Stopping: send what can be sent within the stop timeout, keep the rest. */
static void finish(struct tg_ai_sink *s)
{
	uint64_t deadline = __atomic_load_n(&s->abort_at_ms, __ATOMIC_RELAXED), now = ai_sink_now_ms();
	uint64_t items, bytes;

	flush_batch(s, deadline > now ? deadline - now : 1, s->failures == 0);
	if (!s->failures)
		deliver(s, 1 << 20, deadline);
	store_counts(s, &items, &bytes);
	if (items && s->store.sp)
		tg_info("appinsights: %llu item(s) stay in the spool (%s) for the next start",
			(unsigned long long)items, s->failures ? "endpoint not reachable" : "stop timeout");
	if (items && !s->store.sp) {
		tg_warn("appinsights: %llu item(s) could not be delivered before stopping and are "
			"lost (no events.spool.dir configured)", (unsigned long long)items);
		count_loss(s, LOSS_OTHER, items);
	}
	persist_losses(s);
	publish_counts(s);
}

static void *sender_main(void *arg)
{
	struct tg_ai_sink *s = arg;
	uint64_t wake = ai_sink_now_ms();

	for (;;) {
		struct qitem *list;
		bool stopping;
		uint64_t now;

		pthread_mutex_lock(&s->mu);
		wait_until(s, wake);
		list = s->qhead;
		s->qhead = s->qtail = NULL;
		s->qlen = 0;
		stopping = s->stop;
		/* the queue has room again: the agent can report the losses of its reports */
		if (s->pending_deferred && !stopping) {
			s->pending_deferred = false;
			signal_losses_locked(s);
		}
		/* what the list holds counts as queued until it is batched */
		pthread_mutex_unlock(&s->mu);
		render(s, list);
		now = ai_sink_now_ms();
		if (stopping) {
			finish(s);
			break;
		}
		if (ai_batch_due(s->batch, now))
			flush_batch(s, s->timeout_ms, true);
		deliver(s, DELIVER_PER_ROUND, 0);
		periodic_expire(s, ai_sink_now_ms());
		publish_counts(s);
		wake = next_wake(s, ai_sink_now_ms());
	}
	return NULL;
}

/* ---- lifecycle (agent thread) ------------------------------------------------------ */

static uint64_t or_default(uint64_t v, uint64_t dflt)
{
	return v ? v : dflt;
}

/* journal_open(): an unacknowledged event goes to the queue, ahead of anything new. */
static int replay_one(void *arg, uint64_t seq, char *line, size_t len)
{
	struct tg_ai_sink *s = arg;
	json_object *o = tg_json_parse(line, len), *v;
	struct qitem *q;

	if (!json_object_is_type(o, json_type_object) || !(q = calloc(1, sizeof(*q) + 1))) {
		json_object_put(o);
		count_loss(s, LOSS_OTHER, 1);
		return 0;
	}
	q->kind = Q_EVENT;
	q->obj = o;
	q->jseq = seq;
	/* a flood summary stands for its count, for the loss accounting */
	if (json_object_object_get_ex(o, "count", &v) && json_object_get_int64(v) > 1) {
		q->kind = Q_SUMMARY;
		q->count = (uint64_t)json_object_get_int64(v);
		if (json_object_object_get_ex(o, "last_time", &v))
			snprintf(q->last_time, sizeof(q->last_time), "%s", json_object_get_string(v));
	}
	pthread_mutex_lock(&s->mu);
	queue_push_locked(s, q);	/* past queue_max if need be: the journal bounds them */
	pthread_mutex_unlock(&s->mu);
	return 0;
}

/* What the replay could not hand over is counted and reported, never silent. */
static void replay_losses(struct tg_ai_sink *s, const struct tg_journal_replay *r)
{
	if (r->items)
		tg_info("appinsights: replaying %llu event(s) the journal holds and Application "
			"Insights did not acknowledge before the agent stopped",
			(unsigned long long)r->items);
	if (r->torn_items || r->torn_bytes) {
		if (r->torn_same_boot) {
			/* the kernel's ring buffer was not advanced past them (ringread.h) */
			tg_info("appinsights: the journal's last write was cut short (%llu event(s), "
				"%llu bytes); the kernel ring buffer still holds them and they are read "
				"again", (unsigned long long)r->torn_items,
				(unsigned long long)r->torn_bytes);
		} else {
			pthread_mutex_lock(&s->mu);
			count_loss_locked(s, LOSS_OTHER, r->torn_items);
			s->pending.torn += r->torn_items;
			if (!r->torn_items)
				s->pending.torn_bytes += r->torn_bytes;
			signal_losses_locked(s);
			pthread_mutex_unlock(&s->mu);
		}
	}
	if (r->corrupt_items) {
		tg_warn("appinsights: %llu journaled event(s) fail authentication (corrupt, "
			"tampered, or a key no longer in the ring); lost",
			(unsigned long long)r->corrupt_items);
		count_loss(s, LOSS_OTHER, r->corrupt_items);
	}
	count_loss(s, LOSS_EXPIRED, r->expired_items);
	s->st.journal_replayed = r->items;
}

static int open_journal(struct tg_ai_sink *s, const struct tg_ai_sink_config *cfg,
			uint32_t max_age, bool protect, char *err, size_t errlen)
{
	struct tg_journal_replay res;
	char dir[4200], msg[512];
	struct tg_journal_config jc = {
		.dir = dir, .kr = cfg->keys, .max_bytes = cfg->spool_max_bytes,
		.max_age_s = max_age, .flags = protect ? TG_SPOOL_REQUIRE_ENCRYPTION : 0,
	};

	snprintf(dir, sizeof(dir), "%s/journal", cfg->spool_dir);
	s->journal = journal_open(&jc, replay_one, s, &res, msg, sizeof(msg));
	if (!s->journal) {
		int ret = -errno;

		snprintf(err, errlen, "events.spool.dir: %s", msg);
		return ret;
	}
	replay_losses(s, &res);
	s->st.journal = true;
	return 0;
}

static void endpoint_text(const char *url, char *out, size_t len)
{
	char *scheme, *host, *port;

	if (origin(url, &scheme, &host, &port)) {
		snprintf(out, len, "?");
		return;
	}
	snprintf(out, len, "%s://%s:%s", scheme, host, port);
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
}

struct tg_ai_sink *ai_sink_new(const struct tg_ai_sink_config *cfg, char *err, size_t errlen)
{
	struct tg_ai_sink *s = calloc(1, sizeof(*s));
	bool protect = cfg->nencrypt || cfg->nhash;
	pthread_condattr_t ca;
	char msg[512];
	int ret;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->efd = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		snprintf(err, errlen, "cannot initialise libcurl");
		ret = -EIO;
		goto fail_nocurl;
	}
	ret = connstr_read_file(cfg->connection_string_file, &s->cs, msg, sizeof(msg));
	if (ret) {
		snprintf(err, errlen, "application_insights.connection_string_file: %s", msg);
		goto fail;
	}
	if (strncasecmp(s->cs.track_url, "https://", 8)) {
		snprintf(err, errlen, "application_insights: the ingestion endpoint must be https://");
		ret = -EINVAL;
		goto fail;
	}
	if (protect && (!cfg->keys || !keyring_count(cfg->keys))) {
		snprintf(err, errlen, "events.encrypt_fields/hash_fields need a key (events.key_file)");
		ret = -EINVAL;
		goto fail;
	}
	s->url = strdup(s->cs.track_url);
	s->home_url = strdup(s->cs.track_url);
	s->ca_file = cfg->ca_file && *cfg->ca_file ? strdup(cfg->ca_file) : NULL;
	if (!s->url || !s->home_url || (cfg->ca_file && *cfg->ca_file && !s->ca_file))
		goto nomem;
	if (cfg->nredirect_suffixes) {
		s->suffixes = calloc(cfg->nredirect_suffixes, sizeof(*s->suffixes));
		if (!s->suffixes)
			goto nomem;
		for (size_t i = 0; i < cfg->nredirect_suffixes; i++)
			if (!(s->suffixes[s->nsuffixes++] = strdup(cfg->redirect_suffixes[i])))
				goto nomem;
	}
	for (size_t i = 0; i < cfg->nresolve; i++) {
		struct curl_slist *l = curl_slist_append(s->resolve, cfg->resolve[i]);

		if (!l)
			goto nomem;
		s->resolve = l;
	}
	endpoint_text(s->url, s->st.endpoint, sizeof(s->st.endpoint));
	s->limits.max_items = or_default(cfg->batch_items, TG_AI_DEF_BATCH_ITEMS);
	s->limits.max_bytes = or_default(cfg->batch_bytes, TG_AI_DEF_BATCH_BYTES);
	if (s->limits.max_bytes < MIN_BATCH_BYTES)
		s->limits.max_bytes = MIN_BATCH_BYTES;
	s->limits.max_age_ms = or_default(cfg->batch_age_ms, TG_AI_DEF_BATCH_AGE_MS);
	s->queue_max = or_default(cfg->queue_max, TG_AI_DEF_QUEUE_MAX);
	s->timeout_ms = or_default(cfg->timeout_ms, TG_AI_DEF_TIMEOUT_MS);
	s->stop_timeout_ms = or_default(cfg->stop_timeout_ms, TG_AI_DEF_STOP_MS);
	s->metrics_ms = cfg->metrics_interval_ms;
	backoff_init(&s->backoff, or_default(cfg->retry_base_ms, TG_AI_DEF_RETRY_BASE_MS),
		     or_default(cfg->retry_max_ms, TG_AI_DEF_RETRY_MAX_MS), 0);
	s->batch = ai_batch_new(&s->limits);
	s->replay = ai_batch_new(&(struct tg_ai_batch_limits){
		.max_items = TG_AI_MAX_ITEMS_PER_REQUEST, .max_bytes = TG_SPOOL_MAX_BATCH,
		.max_age_ms = UINT64_MAX / 2 });
	s->flood = flood_new(cfg->flood_window_ms, 0);
	s->env = ai_envelope_new(s->cs.ikey, cfg->role_instance, TLSGUARD_VERSION);
	s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (!s->batch || !s->replay || !s->flood || !s->env || s->efd < 0)
		goto nomem;
	if (protect) {
		s->fc = fieldcrypt_new(cfg->keys, cfg->encrypt_fields, cfg->nencrypt, cfg->hash_fields,
				       cfg->nhash, msg, sizeof(msg));
		if (!s->fc) {
			ret = -errno;
			snprintf(err, errlen, "field protection: %s", msg);
			goto fail;
		}
	}
	s->store.mem_max = TG_AI_MEMSTORE_MAX;
	if (cfg->spool_dir) {
		uint32_t age = cfg->spool_max_age_s;

		if (!age || age > TG_AI_SPOOL_MAX_AGE)
			age = TG_AI_SPOOL_MAX_AGE;	/* older items would be refused anyway */
		s->store.sp = spool_open(cfg->spool_dir, cfg->keys, cfg->spool_max_bytes, age,
					 protect ? TG_SPOOL_REQUIRE_ENCRYPTION : 0, msg, sizeof(msg));
		if (!s->store.sp) {
			ret = -errno;
			snprintf(err, errlen, "events.spool.dir: %s", msg);
			goto fail;
		}
		s->spool_dir = strdup(cfg->spool_dir);
		if (!s->spool_dir)
			goto nomem;
		load_losses(s);
		if (cfg->journal) {
			ret = open_journal(s, cfg, age, protect, err, errlen);
			if (ret)
				goto fail;
		}
		s->st.spool_on_disk = true;
		s->st.spool_encrypted = cfg->keys && keyring_count(cfg->keys);
		if (!s->st.spool_encrypted)
			tg_warn("appinsights: the spool %s is not encrypted (no events.key_file); "
				"it holds events in clear text", cfg->spool_dir);
	}
	if (cfg->auth_mode != TG_AI_AUTH_NONE) {
		struct tg_ai_auth_config ac = {
			.mode = ai_auth_resolve_mode(cfg->auth_mode, s->cs.authorization),
			.audience = s->cs.aad_audience, .imds_url = cfg->imds_url,
			.client_id = cfg->client_id, .ca_file = cfg->ca_file,
			.timeout_ms = (long)s->timeout_ms,
			.cancel = stop_due, .cancel_arg = s,
		};

		if (ac.mode != TG_AI_AUTH_NONE) {
			s->auth = ai_auth_new(&ac, msg, sizeof(msg));
			if (!s->auth) {
				ret = -errno;
				snprintf(err, errlen, "application_insights auth: %s", msg);
				goto fail;
			}
		}
	}
	if (setup_curl(s))
		goto nomem;
	return s;
nomem:
	snprintf(err, errlen, "out of memory");
	ret = -ENOMEM;
fail:
	ai_sink_free(s);
	errno = -ret;
	return NULL;
fail_nocurl:
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cond);
	free(s);
	errno = -ret;
	return NULL;
}

int ai_sink_start(struct tg_ai_sink *s)
{
	int err = pthread_create(&s->thread, NULL, sender_main, s);

	if (err)
		return -err;
	s->started = true;
	return 0;
}

void ai_sink_stop(struct tg_ai_sink *s)
{
	if (!s || s->stopped)
		return;
	/* open windows hold counts that exist nowhere else */
	if (s->flood && s->started)
		flood_expire(s->flood, ai_sink_now_ms(), 1, emit_summary, s);
	ai_sink_commit(s);
	s->stopped = true;
	__atomic_store_n(&s->abort_at_ms, ai_sink_now_ms() + s->stop_timeout_ms, __ATOMIC_RELAXED);
	pthread_mutex_lock(&s->mu);
	s->stop = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->mu);
	if (s->started)
		pthread_join(s->thread, NULL);
	s->started = false;
}

void ai_sink_free(struct tg_ai_sink *s)
{
	struct qitem *q, *qn;
	struct mem_entry *e, *en;

	if (!s)
		return;
	ai_sink_stop(s);
	for (q = s->qhead; q; q = qn) {
		qn = q->next;
		json_object_put(q->obj);
		free(q);
	}
	for (q = s->phead; q; q = qn) {
		qn = q->next;
		json_object_put(q->obj);
		free(q);
	}
	free(s->jbuf);
	journal_close(s->journal);
	curl_slist_free_all(s->resolve);
	for (size_t i = 0; i < s->nsuffixes; i++)
		free(s->suffixes[i]);
	free(s->suffixes);
	free(s->home_url);
	for (e = s->store.head; e; e = en) {
		en = e->next;
		free(e->body);
		free(e);
	}
	if (s->h)
		curl_easy_cleanup(s->h);
	spool_close(s->store.sp);
	ai_auth_free(s->auth);
	fieldcrypt_free(s->fc);
	ai_envelope_free(s->env);
	flood_free(s->flood);
	ai_batch_free(s->batch);
	ai_batch_free(s->replay);
	ai_line_free(&s->line);
	if (s->efd >= 0)
		close(s->efd);
	connstr_free(&s->cs);
	free(s->url);
	free(s->ca_file);
	free(s->spool_dir);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cond);
	free(s);
	curl_global_cleanup();
}
