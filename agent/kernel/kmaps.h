/* SPDX-License-Identifier: MIT */
/*
 * The kernel maps the agent reads and writes, as one value passed to whoever
 * needs them (no module keeps a map fd of its own in a static): the loader
 * fills it (loader.h), builders elsewhere make plain data (dests.h,
 * handshake_policy.h) and the functions here and in dest_table.h write it.
 * A map fd of -1 makes its writes no-ops (unit tests, no kernel).
 */
#ifndef TLSGUARD_AGENT_KMAPS_H
#define TLSGUARD_AGENT_KMAPS_H

#include <stddef.h>
#include <stdint.h>

#include "tlsguard/config.h"
#include "tlsguard/counters.h"
#include "tlsguard/dest.h"
#include "tlsguard/names.h"

struct tg_kmaps {
	int dests;			/* LPM trie: destination prefix → class (dest_table.h) */
	int classes;			/* class id → struct tg_class */
	int names;			/* keyed hash of a host name → class, for SNI binding */
	int sipkey;			/* the key of those hashes, kept in the pins */
	int proxies;			/* forward proxies' addresses */
	int config;			/* struct tg_config, with the heartbeat */
	int counters;			/* per CPU: enum tg_counter */
	int class_stats;		/* per CPU: TG_CS_STRIDE slots per class */
	int live_flows;			/* the open tracked flows gauge */
	int handoff;			/* which generation takes new connects (handoff.h) */
	int skip_cgroups;		/* unwatched cgroup ids */
	int overrides;			/* cgroup id → struct tg_override */
	/* where DNS learning's programs go when chained (loader.h), else -1 */
	int dns_chain_ingress, dns_chain_egress;
};

/* Every fd -1. */
void kmaps_none(struct tg_kmaps *km);

/*
 * Sum the per-CPU values of @n consecutive keys from @first of a per-CPU
 * array of u64 into out[0..n) (a key that cannot be read counts 0).
 * 0, -EINVAL (no CPU count) or -ENOMEM; out[] is zeroed in every case.
 */
int kmaps_percpu_sum(int fd, uint32_t first, size_t n, uint64_t *out);

/*
 * The keys of a map keyed by u64 cgroup ids, unsorted, into *out (malloc'd,
 * NULL when none): how many, or as many as memory allowed. No cgroup has id
 * 0, so the walk starts at key 0 (not at the NULL key memory checkers take
 * for a bad pointer).
 */
size_t kmaps_u64_keys(int fd, uint64_t **out);

/* Kernel counters and one class's verdict counters, summed over CPUs. */
int kmaps_read_counters(const struct tg_kmaps *km, uint64_t out[TG_CNT__MAX]);
int kmaps_read_class_stats(const struct tg_kmaps *km, uint32_t class_id, uint64_t out[TG_CS__MAX]);
/* Tracked flows whose sockets are open. 0 or -errno. */
int kmaps_read_live_flows(const struct tg_kmaps *km, uint64_t *out);

/* The runtime config (heartbeat included). 0 or -errno. */
int kmaps_write_config(const struct tg_kmaps *km, const struct tg_config *cfg);

/*
 * The names map's hash key: the pinned one, or a new random one written
 * there when the map holds none yet (a restarted agent hashes the same).
 */
int kmaps_sipkey(const struct tg_kmaps *km, struct tg_sipkey *key);

/* The names map's entries, sorted by key (handshake_names_build()). */
struct tg_name_set {
	struct tg_name_key *k;
	struct tg_name_value *v;
	size_t n, cap;
};

/* The set's order: the keys' bytes. */
int name_key_cmp(const void *a, const void *b);
/* Index of @k in the sorted set, or -1. */
int name_set_find(const struct tg_name_set *s, const struct tg_name_key *k);
void name_set_free(struct tg_name_set *s);

/* Make the names map hold @want: write every entry, then delete the others. 0 or -errno. */
int kmaps_apply_names(const struct tg_kmaps *km, const struct tg_name_set *want);
/* The same for the proxies map and its @n keys. */
int kmaps_apply_proxies(const struct tg_kmaps *km, const struct tg_proxy_key *want, size_t n);

#endif /* TLSGUARD_AGENT_KMAPS_H */
