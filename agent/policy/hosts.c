// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "hosts.h"
#include "log.h"

#define NS_PER_S 1000000000ULL
#define RETRY_AFTER_FAILURE_S 10

bool hosts_is_wildcard(const char *name)
{
	return name[0] == '*';
}

static bool same_addrs(const struct tg_resolved *a, const struct tg_resolved *b)
{
	if (a->naddrs != b->naddrs)
		return false;
	for (size_t i = 0; i < a->naddrs; i++) {
		size_t j = 0;

		while (j < b->naddrs && memcmp(a->addrs[i], b->addrs[j], 16))
			j++;
		if (j == b->naddrs)
			return false;
	}
	return true;
}

/* Resolve one name; returns true when its address set changed. Caller holds no lock. */
static bool refresh_one(struct tg_hosts *h, size_t i, const char *name)
{
	struct tg_resolved r;
	int err = resolve_host(name, &r);
	bool changed = false;

	pthread_mutex_lock(&h->lock);
	if (err) {
		/* keep the last good addresses: a DNS hiccup must not open a hole */
		if (err != h->v[i].last_err)
			tg_warn("cannot resolve %s: %s; keeping %zu known address(es)", name,
				err == -ENOENT ? "no address" : strerror(-err), h->v[i].addrs.naddrs);
		h->v[i].next_ns = tg_mono_ns() + RETRY_AFTER_FAILURE_S * NS_PER_S;
	} else {
		changed = !same_addrs(&r, &h->v[i].addrs);
		h->v[i].addrs = r;
		h->v[i].next_ns = tg_mono_ns() + (uint64_t)r.ttl_s * NS_PER_S;
	}
	h->v[i].last_err = err;
	pthread_mutex_unlock(&h->lock);
	return changed;
}

static int cmp_name(const void *a, const void *b)
{
	return strcasecmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_host(const void *a, const void *b)
{
	return strcasecmp(((const struct tg_host *)a)->name, ((const struct tg_host *)b)->name);
}

const struct tg_host *host_addrs_find(const struct tg_host_addrs *s, const char *name)
{
	struct tg_host key = { .name = (char *)name };

	return s && s->n ? bsearch(&key, s->v, s->n, sizeof(s->v[0]), cmp_host) : NULL;
}

const struct tg_host *hosts_find(const struct tg_hosts *h, const char *name)
{
	const struct tg_host_addrs all = { .v = h->v, .n = h->n };

	return host_addrs_find(&all, name);
}

int hosts_snapshot(struct tg_hosts *h, struct tg_host_addrs *out)
{
	struct tg_host *copy = NULL;
	int err = 0;

	memset(out, 0, sizeof(*out));
	if (!h)
		return 0;
	pthread_mutex_lock(&h->lock);
	if (h->n) {
		copy = malloc(h->n * sizeof(*copy));
		if (copy) {
			memcpy(copy, h->v, h->n * sizeof(*copy));
			out->v = copy;
			out->n = h->n;
		} else {
			err = -ENOMEM;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return err;
}

void host_addrs_free(struct tg_host_addrs *s)
{
	free((void *)s->v);
	memset(s, 0, sizeof(*s));
}

int hosts_init(struct tg_hosts *h, char *const *names, size_t n)
{
	char **sorted;

	memset(h, 0, sizeof(*h));
	h->event_fd = -1;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->wake, NULL);
	h->v = calloc(n ? n : 1, sizeof(*h->v));
	sorted = malloc((n ? n : 1) * sizeof(*sorted));
	if (!h->v || !sorted) {
		free(sorted);
		return -ENOMEM;
	}
	/* sorted once: duplicates fall next to each other, and lookups bisect */
	memcpy(sorted, names, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_name);
	for (size_t i = 0; i < n; i++) {
		if (hosts_is_wildcard(sorted[i]) ||
		    (h->n && !strcasecmp(h->v[h->n - 1].name, sorted[i])))
			continue;
		h->v[h->n].name = strdup(sorted[i]);
		if (!h->v[h->n].name) {
			free(sorted);
			return -ENOMEM;
		}
		h->n++;
	}
	free(sorted);
	h->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->event_fd < 0)
		return -errno;
	for (size_t i = 0; i < h->n; i++)
		refresh_one(h, i, h->v[i].name);
	return 0;
}

static void *refresh_loop(void *arg)
{
	struct tg_hosts *h = arg;

	pthread_mutex_lock(&h->lock);
	while (!h->stop) {
		uint64_t now = tg_mono_ns(), next = now + 3600 * NS_PER_S;
		struct timespec until;
		bool changed = false;

		for (size_t i = 0; i < h->n && !h->stop; i++) {
			char *name;

			if (h->v[i].next_ns > now) {
				if (h->v[i].next_ns < next)
					next = h->v[i].next_ns;
				continue;
			}
			name = h->v[i].name;	/* stable: the array never changes size */
			pthread_mutex_unlock(&h->lock);
			changed |= refresh_one(h, i, name);
			pthread_mutex_lock(&h->lock);
			if (h->v[i].next_ns < next)
				next = h->v[i].next_ns;
		}
		if (changed) {
			uint64_t one = 1;

			if (write(h->event_fd, &one, sizeof(one)) < 0)
				tg_debug("hosts: eventfd write: %s", strerror(errno));
		}
		if (h->stop)
			break;
		/* pthread_cond_timedwait wants CLOCK_REALTIME: convert the delay */
		clock_gettime(CLOCK_REALTIME, &until);
		{
			uint64_t delay = next > tg_mono_ns() ? next - tg_mono_ns() : 0;
			uint64_t t = until.tv_sec * NS_PER_S + until.tv_nsec + delay;

			until.tv_sec = t / NS_PER_S;
			until.tv_nsec = t % NS_PER_S;
		}
		pthread_cond_timedwait(&h->wake, &h->lock, &until);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

int hosts_start(struct tg_hosts *h)
{
	int err;

	if (!h->n)
		return 0;
	err = pthread_create(&h->thread, NULL, refresh_loop, h);
	if (err)
		return -err;
	h->running = true;
	return 0;
}

void hosts_stop_async(struct tg_hosts *h)
{
	if (!h->running)
		return;
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_cond_signal(&h->wake);
	pthread_mutex_unlock(&h->lock);
}

bool hosts_stopped(struct tg_hosts *h)
{
	if (h->running && pthread_tryjoin_np(h->thread, NULL))
		return false;
	h->running = false;
	return true;
}

void hosts_free(struct tg_hosts *h)
{
	if (h->running) {
		pthread_mutex_lock(&h->lock);
		h->stop = true;
		pthread_cond_signal(&h->wake);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->thread, NULL);
		h->running = false;
	}
	for (size_t i = 0; i < h->n; i++)
		free(h->v[i].name);
	free(h->v);
	h->v = NULL;
	h->n = 0;
	if (h->event_fd >= 0)
		close(h->event_fd);
	h->event_fd = -1;
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->lock);
}
