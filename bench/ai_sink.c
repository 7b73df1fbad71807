// SPDX-License-Identifier: MIT
/*
 * bench/ai_sink: CPU cost of the Application Insights export per event, on one
 * thread, without the network:
 *
 *   submit    what the agent thread pays: flood check + serialize + enqueue
 *             (ai_sink_submit on a sink whose sender is not started)
 *   journal   submit + the journal's group commit per ring-buffer batch (one
 *             write + fdatasync per 64 events), against the same without
 *   pipeline  what the sender thread pays for the event it receives (a deep
 *             copy made by the agent thread): protect 3 encrypted fields +
 *             1 hashed field, build the envelope, free it, batch (500), gzip
 *
 * Prints events/s of CPU time (CLOCK_THREAD_CPUTIME_ID) for each.
 *   make bench-ai [BENCH_AI_EVENTS=N]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ai_batch.h"
#include "ai_envelope.h"
#include "fieldcrypt.h"
#include "log.h"
#include "ai_sink.h"

#define BENCH_RING_BATCH	64	/* events per ring-buffer wakeup (agent.c commits per batch) */

static double wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void flush(struct tg_ai_batch *b, size_t *gz_total, size_t *batches)
{
	const uint8_t *gz;
	size_t gzlen;

	if (!ai_batch_finish(b, &gz, &gzlen)) {
		*gz_total += gzlen;
	}
	(*batches)++;
	ai_batch_reset(b);
}

static void add(struct tg_ai_batch *b, const char *line, size_t len, size_t *gz_total,
		size_t *batches)
{
	if (ai_batch_add(b, line, len, 0) == -ENOSPC) {
		flush(b, gz_total, batches);
		ai_batch_add(b, line, len, 0);
	}
	if (ai_batch_count(b) == 500)
		flush(b, gz_total, batches);
}

/* What the sender keeps between events, and what a run adds up. */
struct pipeline {
	long n;
	struct tg_fieldcrypt *fc;
	struct tg_ai_envelope *env;
	struct tg_ai_batch *b;
	struct tg_ai_line line;		/* kept from item to item, as the sender does */
	json_object **copies;
	size_t gz_total, raw_total, batches;
};

/* CPU seconds of the sender's work on a deep copy of each of @evs; @stage_s: time each stage too. */
static double run_pipeline(struct pipeline *p, json_object **evs, bool protect, double *stage_s)
{
	double t0, s0 = 0, s1 = 0, s2 = 0, s3 = 0;

	for (long i = 0; i < p->n; i++) {
		p->copies[i] = NULL;	/* json_object_deep_copy() wants an empty destination */
		json_object_deep_copy(evs[i], &p->copies[i], NULL);	/* the agent thread's part */
	}
	ai_batch_reset(p->b);
	p->gz_total = p->raw_total = p->batches = 0;
	if (stage_s)
		memset(stage_s, 0, 4 * sizeof(*stage_s));
	t0 = cpu_now();
	for (long i = 0; i < p->n; i++) {
		if (stage_s)
			s0 = cpu_now();
		if (protect)
			fieldcrypt_protect(p->fc, p->copies[i]);
		if (stage_s)
			s1 = cpu_now();
		ai_envelope_event(p->env, p->copies[i], &p->line);
		if (stage_s)
			s2 = cpu_now();
		json_object_put(p->copies[i]);
		if (stage_s)
			s3 = cpu_now();
		p->raw_total += p->line.len;
		add(p->b, p->line.p, p->line.len, &p->gz_total, &p->batches);
		if (stage_s) {
			stage_s[0] += s1 - s0;
			stage_s[1] += s2 - s1;
			stage_s[2] += s3 - s2;
			stage_s[3] += cpu_now() - s3;
		}
	}
	return cpu_now() - t0;
}

/* One CLOCK_THREAD_CPUTIME_ID read, in us: a system call, not free on a VM. */
static double clock_cost(void)
{
	double t0 = cpu_now();

	for (int i = 0; i < 10000; i++)
		cpu_now();
	return (cpu_now() - t0) * 1e6 / 10001;
}

static json_object *make_event(long i)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "{\"schema\":\"tlsguard.event/v1\",\"time\":\"2026-11-22T19:00:00.%06ldZ\","
		 "\"host\":\"aks-nodepool1-12345678-vmss000003\",\"type\":\"plaintext\",\"action\":\"blocked\","
		 "\"destination\":{\"class\":\"storage\",\"ip\":\"20.60.1.%ld\",\"port\":80,"
		 "\"name\":\"acct%ld.blob.core.windows.net\"},\"source\":{\"ip\":\"10.244.1.7\",\"port\":%ld},"
		 "\"workload\":{\"cgroup\":\"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c.slice/cri-containerd-7f3a.scope\","
		 "\"cgroup_id\":%ld,\"pid\":%ld,\"comm\":\"python3\",\"pod\":\"train-%ld\","
		 "\"namespace\":\"azureml\",\"container\":\"trainer\"},"
		 "\"protocol\":{\"detected\":\"http\",\"method\":\"PUT\",\"host\":\"acct.blob.core.windows.net\"},"
		 "\"tls\":null,\"flow\":{\"cookie\":%ld}}",
		 i % 1000000, i % 250, i % 7, 30000 + i % 30000, 4000 + i % 10, 4242 + i, i % 50, 81234 + i);
	return json_tokener_parse(text);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000;
	char dir[] = "/tmp/tg-bench-ai-XXXXXX", keyf[256], csf[256], err[512];
	char *enc[] = { "workload.pod", "workload.namespace", "destination.name" };
	char *hash[] = { "workload.container" };
	struct tg_keyring *kr;
	struct tg_fieldcrypt *fc;
	struct tg_ai_envelope *env;
	struct tg_ai_batch *b;
	struct tg_ai_sink *s;
	double t0, t1, stage_s[4] = { 0 };
	FILE *f;

	if (!mkdtemp(dir))
		return 1;
	snprintf(keyf, sizeof(keyf), "%s/key", dir);
	snprintf(csf, sizeof(csf), "%s/cs", dir);
	f = fopen(keyf, "w");
	fprintf(f, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");
	fclose(f);
	f = fopen(csf, "w");
	fprintf(f, "InstrumentationKey=1b7e0c42-3f5a-4d8e-9c21-7a6b5d4e3f20;"
		   "IngestionEndpoint=https://127.0.0.1:1/\n");
	fclose(f);
	chmod(keyf, 0600);
	chmod(csf, 0600);
	{
		char *paths[] = { keyf };

		kr = keyring_load(paths, 1, err, sizeof(err));
	}
	fc = fieldcrypt_new(kr, enc, 3, hash, 1, err, sizeof(err));
	env = ai_envelope_new("1b7e0c42-3f5a-4d8e-9c21-7a6b5d4e3f20", "aks-node", "0.1.0");
	b = ai_batch_new(&(struct tg_ai_batch_limits){ .max_items = 500, .max_bytes = 1 << 20,
						       .max_age_ms = 5000 });
	if (!kr || !fc || !env || !b) {
		fprintf(stderr, "setup: %s\n", err);
		return 1;
	}

	/* the sender thread's work, event by event, on what the agent thread hands over */
	json_object **evs = calloc(n, sizeof(*evs));
	struct pipeline p = { .n = n, .fc = fc, .env = env, .b = b,
			      .copies = calloc(n, sizeof(*p.copies)) };

	for (long i = 0; i < n; i++)
		evs[i] = make_event(i);
	t0 = run_pipeline(&p, evs, true, NULL);
	printf("pipeline (3 encrypted + 1 hashed field + envelope + batch + gzip): "
	       "%ld events in %.3f s CPU = %.0f events/s per core, %.2f us/event; "
	       "%.0f bytes/item, gzip %.1fx, %zu batches\n",
	       n, t0, n / t0, t0 * 1e6 / n, (double)p.raw_total / n,
	       p.gz_total ? (double)p.raw_total / p.gz_total : 0, p.batches);
	t1 = clock_cost();
	run_pipeline(&p, evs, true, stage_s);
	printf("  per event: protect %.2f us, envelope %.2f us, free %.2f us, batch + gzip %.2f us "
	       "(a second run, timed per stage; %.2f us per clock read taken off)\n",
	       stage_s[0] * 1e6 / n - t1, stage_s[1] * 1e6 / n - t1, stage_s[2] * 1e6 / n - t1,
	       stage_s[3] * 1e6 / n - t1, t1);
	t0 = run_pipeline(&p, evs, false, NULL);
	printf("pipeline without field protection: %.0f events/s per core, %.2f us/event\n",
	       n / t0, t0 * 1e6 / n);

	/* the agent thread's share: flood check + serialize + enqueue */
	{
		struct tg_ai_sink_config cfg = {
			.connection_string_file = csf, .keys = kr, .queue_max = n + 10,
			.flood_window_ms = 60000,
		};

		s = ai_sink_new(&cfg, err, sizeof(err));
		if (!s) {
			fprintf(stderr, "sink: %s\n", err);
			return 1;
		}
		t0 = cpu_now();
		for (long i = 0; i < n; i++)
			ai_sink_submit(s, evs[i]);
		t1 = cpu_now();
		printf("submit on the agent thread (flood check + deep copy + enqueue): "
		       "%.0f events/s, %.2f us/event\n", n / (t1 - t0), (t1 - t0) * 1e6 / n);
		ai_sink_free(s);
	}
	/* the journal's cost on the agent thread: per event, and per ring-buffer batch */
	for (int journal = 0; journal < 2; journal++) {
		char spool[300], cmd[400];
		struct tg_ai_sink_config cfg = {
			.connection_string_file = csf, .keys = kr, .queue_max = n + 10,
			.spool_dir = journal ? spool : NULL, .spool_max_bytes = 1ULL << 30,
			.journal = journal,
		};
		struct tg_ai_sink_stats st;
		double w0, w1;

		snprintf(spool, sizeof(spool), "%s/spool", dir);
		s = ai_sink_new(&cfg, err, sizeof(err));
		if (!s) {
			fprintf(stderr, "sink: %s\n", err);
			return 1;
		}
		w0 = wall_now();
		t0 = cpu_now();
		for (long i = 0; i < n; i++) {
			ai_sink_submit(s, evs[i]);
			if (i % BENCH_RING_BATCH == BENCH_RING_BATCH - 1)
				ai_sink_commit(s);
		}
		ai_sink_commit(s);
		t1 = cpu_now();
		w1 = wall_now();
		ai_sink_stats(s, &st);
		printf("submit + commit per %d events, %s: %.0f events/s CPU (%.2f us/event), "
		       "%.0f events/s wall, %llu fdatasync(s), %.1f MB journal\n", BENCH_RING_BATCH,
		       journal ? "journal on (encrypted)" : "no journal",
		       n / (t1 - t0), (t1 - t0) * 1e6 / n, n / (w1 - w0),
		       (unsigned long long)st.journal_syncs, st.journal_bytes / 1e6);
		ai_sink_free(s);
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", spool);
		if (journal && system(cmd))
			fprintf(stderr, "cannot remove %s\n", spool);
	}
	for (long i = 0; i < n; i++)
		json_object_put(evs[i]);
	free(evs);
	free(p.copies);
	ai_batch_free(b);
	ai_line_free(&p.line);
	ai_envelope_free(env);
	fieldcrypt_free(fc);
	keyring_free(kr);
	unlink(keyf);
	unlink(csf);
	rmdir(dir);
	return 0;
}
