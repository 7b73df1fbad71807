/* SPDX-License-Identifier: MIT */
/*
 * Prometheus metrics over plain HTTP (off unless `metrics.listen` is set,
 * e.g. 127.0.0.1:9464): GET /metrics answers the text exposition format.
 * One request per connection, bounded, non-blocking, in the agent's loop.
 */
#ifndef TLSGUARD_AGENT_METRICS_H
#define TLSGUARD_AGENT_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define TG_METRICS_REQ_MAX 8192

struct agent;

struct tg_metrics {
	struct agent *agent;
	int listen_fd;
	void *listen_watch;
	uint64_t scrapes;
};

/* listen is "ADDR:PORT" or "[ADDR6]:PORT". 0 or -errno, logged. */
int metrics_open(struct tg_metrics *m, struct agent *a, const char *listen);
void metrics_close(struct tg_metrics *m);

#endif /* TLSGUARD_AGENT_METRICS_H */
