/* SPDX-License-Identifier: MIT */
/*
 * The exact host names of the policy and their current addresses. A resolver
 * thread re-resolves each name when its TTL runs out and wakes the event loop
 * through an eventfd, so a slow DNS server never stalls event handling.
 */
#ifndef TLSGUARD_AGENT_HOSTS_H
#define TLSGUARD_AGENT_HOSTS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "resolve.h"

struct tg_host {
	char *name;
	struct tg_resolved addrs;	/* last good answer; kept when a refresh fails */
	uint64_t next_ns;		/* CLOCK_MONOTONIC time of the next refresh */
	int last_err;
};

struct tg_hosts {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool running, stop;
	struct tg_host *v;
	size_t n;
	int event_fd;			/* readable when addresses changed */
};

/*
 * The names' addresses at one moment, as plain data: what the builders
 * (dests_build, handshake_proxies_build) take, so they need no lock.
 */
struct tg_host_addrs {
	const struct tg_host *v;	/* sorted by name */
	size_t n;
};

/*
 * Collect the names (wildcards and duplicates left out, sorted) and resolve
 * each once, synchronously.
 */
int hosts_init(struct tg_hosts *h, char *const *names, size_t n);
/* The entry of @name (any case), or NULL. Call with h->lock held once the refresh runs. */
const struct tg_host *hosts_find(const struct tg_hosts *h, const char *name);
/*
 * A copy of @h's entries taken under its lock (@h NULL: none); the names are
 * borrowed from @h, which must outlive the copy. 0 or -ENOMEM. Free the
 * copy's array with host_addrs_free().
 */
int hosts_snapshot(struct tg_hosts *h, struct tg_host_addrs *out);
void host_addrs_free(struct tg_host_addrs *s);
/* The entry of @name (any case) in @s (may be NULL), or NULL. */
const struct tg_host *host_addrs_find(const struct tg_host_addrs *s, const char *name);
/* Start the refresh thread. */
int hosts_start(struct tg_hosts *h);
void hosts_free(struct tg_hosts *h);
/*
 * Ask the refresh thread to stop without waiting for it (it may be inside a
 * DNS query), then see whether it has: the loop retires a table this way.
 */
void hosts_stop_async(struct tg_hosts *h);
bool hosts_stopped(struct tg_hosts *h);
bool hosts_is_wildcard(const char *name);

#endif /* TLSGUARD_AGENT_HOSTS_H */
