// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "kmaps.h"

void kmaps_none(struct tg_kmaps *km)
{
	*km = (struct tg_kmaps){ .dests = -1, .classes = -1, .names = -1, .sipkey = -1,
				 .proxies = -1, .config = -1, .counters = -1, .class_stats = -1,
				 .live_flows = -1, .handoff = -1, .skip_cgroups = -1,
				 .overrides = -1, .dns_chain_ingress = -1, .dns_chain_egress = -1 };
}

int kmaps_percpu_sum(int fd, uint32_t first, size_t n, uint64_t *out)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals;

	memset(out, 0, n * sizeof(*out));
	if (ncpu <= 0)
		return -EINVAL;
	vals = calloc(ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		uint32_t k = first + (uint32_t)i;

		if (bpf_map_lookup_elem(fd, &k, vals))
			continue;
		for (int c = 0; c < ncpu; c++)
			out[i] += vals[c];
	}
	free(vals);
	return 0;
}

size_t kmaps_u64_keys(int fd, uint64_t **out)
{
	uint64_t key = 0, next, *have = NULL, *grown;
	size_t n = 0;

	while (!bpf_map_get_next_key(fd, &key, &next)) {
		grown = realloc(have, (n + 1) * sizeof(*have));
		if (!grown)
			break;
		have = grown;
		have[n++] = next;
		key = next;
	}
	*out = have;
	return n;
}

int kmaps_read_counters(const struct tg_kmaps *km, uint64_t out[TG_CNT__MAX])
{
	return kmaps_percpu_sum(km->counters, 0, TG_CNT__MAX, out);
}

int kmaps_read_class_stats(const struct tg_kmaps *km, uint32_t class_id, uint64_t out[TG_CS__MAX])
{
	return kmaps_percpu_sum(km->class_stats, class_id * TG_CS_STRIDE, TG_CS__MAX, out);
}

int kmaps_read_live_flows(const struct tg_kmaps *km, uint64_t *out)
{
	uint32_t key = 0;

	*out = 0;
	if (bpf_map_lookup_elem(km->live_flows, &key, out))
		return -errno;
	return 0;
}

int kmaps_write_config(const struct tg_kmaps *km, const struct tg_config *cfg)
{
	uint32_t key = 0;

	if (bpf_map_update_elem(km->config, &key, cfg, BPF_ANY))
		return -errno;
	return 0;
}

int kmaps_sipkey(const struct tg_kmaps *km, struct tg_sipkey *key)
{
	uint32_t zero = 0;

	if (bpf_map_lookup_elem(km->sipkey, &zero, key))
		return -errno;
	if (key->k0 || key->k1)
		return 0;	/* kept in the pins: a restarted agent hashes the same */
	if (getrandom(key, sizeof(*key), 0) != sizeof(*key))
		return -EIO;
	if (bpf_map_update_elem(km->sipkey, &zero, key, BPF_ANY))
		return -errno;
	return 0;
}

int name_key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct tg_name_key));
}

int name_set_find(const struct tg_name_set *s, const struct tg_name_key *k)
{
	const struct tg_name_key *hit = s->n ? bsearch(k, s->k, s->n, sizeof(*k), name_key_cmp) : NULL;

	return hit ? (int)(hit - s->k) : -1;
}

void name_set_free(struct tg_name_set *s)
{
	free(s->k);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

int kmaps_apply_names(const struct tg_kmaps *km, const struct tg_name_set *want)
{
	struct tg_name_key key, next, *prev = NULL;
	int err = 0;

	for (size_t i = 0; i < want->n && !err; i++)
		if (bpf_map_update_elem(km->names, &want->k[i], &want->v[i], BPF_ANY))
			err = -errno;
	/* then what the last policy had and this one does not */
	while (!err && !bpf_map_get_next_key(km->names, prev, &next)) {
		key = next;
		prev = &key;
		if (name_set_find(want, &key) < 0)
			bpf_map_delete_elem(km->names, &key);
	}
	return err;
}

int kmaps_apply_proxies(const struct tg_kmaps *km, const struct tg_proxy_key *want, size_t n)
{
	struct tg_proxy_key key, next, *prev = NULL;
	uint32_t one = 1;
	int err = 0;

	if (km->proxies < 0)
		return 0;
	for (size_t i = 0; i < n && !err; i++)
		if (bpf_map_update_elem(km->proxies, &want[i], &one, BPF_ANY))
			err = -errno;
	while (!err && !bpf_map_get_next_key(km->proxies, prev, &next)) {
		bool keep = false;

		key = next;
		prev = &key;
		for (size_t i = 0; i < n && !keep; i++)
			keep = !memcmp(&want[i], &key, sizeof(key));
		if (!keep)
			bpf_map_delete_elem(km->proxies, &key);
	}
	return err;
}
