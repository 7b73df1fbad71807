// SPDX-License-Identifier: MIT
/* Flood control: see flood.h. A chained hash table, scanned once per tick. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "flood.h"

#define NBUCKETS	1024	/* power of two */
#define JSON_FLAGS	(JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct group {
	struct group *next;
	uint64_t hash;
	uint64_t window_end_ms;
	uint64_t count;
	char *sample;		/* first folded event of this window, JSON text */
	size_t sample_len;
	char last_time[40];
	char key[];
};

struct tg_flood {
	uint64_t window_ms;
	size_t max_keys;
	size_t ngroups;
	uint64_t folded, summaries, untracked;
	struct group *buckets[NBUCKETS];
};

struct tg_flood *flood_new(uint64_t window_ms, size_t max_keys)
{
	struct tg_flood *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->window_ms = window_ms;
	f->max_keys = max_keys ? max_keys : TG_FLOOD_MAX_KEYS;
	return f;
}

static void group_free(struct group *g)
{
	free(g->sample);
	free(g);
}

void flood_free(struct tg_flood *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < NBUCKETS; i++) {
		struct group *g = f->buckets[i], *next;

		for (; g; g = next) {
			next = g->next;
			group_free(g);
		}
	}
	free(f);
}

static const char *get_str(json_object *o, const char *a, const char *b)
{
	json_object *v = tg_json_member(o, a, b);

	return v ? json_object_get_string(v) : NULL;
}

int flood_key(json_object *ev, char *buf, size_t len)
{
	const char *type = get_str(ev, "type", NULL), *action = get_str(ev, "action", NULL);
	const char *pod = get_str(ev, "workload", "pod"), *ns = get_str(ev, "workload", "namespace");
	const char *cg = get_str(ev, "workload", "cgroup"), *cgid = get_str(ev, "workload", "cgroup_id");
	const char *cls = get_str(ev, "destination", "class"), *name = get_str(ev, "destination", "name");
	const char *ip = get_str(ev, "destination", "ip"), *port = get_str(ev, "destination", "port");
	int n;

	if (!type || !strcmp(type, "agent"))
		return -ENOENT;
	/*
	 * The workload is the pod when the event names one (its containers are one
	 * workload), else the cgroup. A process name is not part of it: a shell
	 * loop starting a new curl each time is still one workload.
	 */
	if (pod)
		n = snprintf(buf, len, "%s|%s|pod:%s/%s|%s|%s|%s", type, action ? action : "",
			     ns ? ns : "", pod, cls ? cls : "", name ? name : ip ? ip : "",
			     port ? port : "");
	else
		n = snprintf(buf, len, "%s|%s|cg:%s|%s|%s|%s", type, action ? action : "",
			     cg ? cg : cgid ? cgid : "", cls ? cls : "", name ? name : ip ? ip : "",
			     port ? port : "");
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* FNV-1a, 64 bit. */
static uint64_t hash_key(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static struct group *lookup(struct tg_flood *f, const char *key, uint64_t h)
{
	for (struct group *g = f->buckets[h & (NBUCKETS - 1)]; g; g = g->next)
		if (g->hash == h && !strcmp(g->key, key))
			return g;
	return NULL;
}

static void copy_time(struct group *g, json_object *ev)
{
	const char *t = get_str(ev, "time", NULL);

	snprintf(g->last_time, sizeof(g->last_time), "%s", t ? t : "");
}

enum tg_flood_verdict flood_check(struct tg_flood *f, json_object *ev, uint64_t now_ms)
{
	char key[TG_FLOOD_KEY_MAX];
	struct group *g;
	uint64_t h;
	size_t klen;

	if (!f->window_ms || flood_key(ev, key, sizeof(key)))
		return TG_FLOOD_PASS;
	h = hash_key(key);
	g = lookup(f, key, h);
	if (g && now_ms < g->window_end_ms) {
		if (!g->sample) {
			const char *s = json_object_to_json_string_length(ev, JSON_FLAGS, &g->sample_len);

			g->sample = s ? malloc(g->sample_len + 1) : NULL;
			if (!g->sample)
				return TG_FLOOD_PASS;	/* cannot keep it: send it rather than lose it */
			memcpy(g->sample, s, g->sample_len + 1);
		}
		g->count++;
		f->folded++;
		copy_time(g, ev);
		return TG_FLOOD_FOLDED;
	}
	if (g)
		return TG_FLOOD_PASS;	/* window over but not expired yet: the tick closes it */
	if (f->ngroups >= f->max_keys) {
		f->untracked++;
		return TG_FLOOD_PASS;
	}
	klen = strlen(key);
	g = calloc(1, sizeof(*g) + klen + 1);
	if (!g)
		return TG_FLOOD_PASS;
	memcpy(g->key, key, klen + 1);
	g->hash = h;
	g->window_end_ms = now_ms + f->window_ms;
	g->next = f->buckets[h & (NBUCKETS - 1)];
	f->buckets[h & (NBUCKETS - 1)] = g;
	f->ngroups++;
	return TG_FLOOD_PASS;
}

size_t flood_expire(struct tg_flood *f, uint64_t now_ms, int all,
		    void (*emit)(void *ctx, const struct tg_flood_summary *s), void *ctx)
{
	size_t n = 0;

	for (size_t i = 0; i < NBUCKETS; i++) {
		struct group **pp = &f->buckets[i];

		while (*pp) {
			struct group *g = *pp;

			if (!all && now_ms < g->window_end_ms) {
				pp = &g->next;
				continue;
			}
			if (g->count && g->sample) {
				struct tg_flood_summary s = {
					.sample = g->sample, .len = g->sample_len,
					.count = g->count, .last_time = g->last_time,
				};

				emit(ctx, &s);
				n++;
				f->summaries++;
			}
			if (g->count && !all) {
				/* still hot: keep folding into the next window */
				free(g->sample);
				g->sample = NULL;
				g->count = 0;
				g->window_end_ms = now_ms + f->window_ms;
				pp = &g->next;
				continue;
			}
			*pp = g->next;
			group_free(g);
			f->ngroups--;
		}
	}
	return n;
}

void flood_stats(const struct tg_flood *f, struct tg_flood_stats *st)
{
	st->groups = f->ngroups;
	st->folded = f->folded;
	st->summaries = f->summaries;
	st->untracked = f->untracked;
}
