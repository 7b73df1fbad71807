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

#include "loop.h"

#define TG_METRICS_REQ_MAX 8192

/* The exposition text of one scrape into a malloc'd buffer (*out, *len). 0 or -ENOMEM. */
typedef int tg_metrics_fn(void *arg, char **out, size_t *len);

struct tg_metrics {
	struct tg_loop *loop;
	tg_metrics_fn *build;
	void *build_arg;
	int listen_fd;
	struct tg_watch listen_watch;
	uint64_t scrapes;
};

/*
 * Listen on @listen ("ADDR:PORT" or "[ADDR6]:PORT"; NULL: off) in @loop; a
 * scrape is answered with build(arg, ...). 0 or -errno, logged.
 */
int metrics_open(struct tg_metrics *m, struct tg_loop *loop, const char *listen,
		 tg_metrics_fn *build, void *arg);
void metrics_close(struct tg_metrics *m);

#endif /* TLSGUARD_AGENT_METRICS_H */
