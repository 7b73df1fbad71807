// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>

#include "dest_table.h"

int dests_entry_cmp(const void *a, const void *b)
{
	const struct tg_dest_entry *x = a, *y = b;

	if (x->key.prefixlen != y->key.prefixlen)
		return x->key.prefixlen < y->key.prefixlen ? -1 : 1;
	return memcmp(x->key.addr, y->key.addr, 16);
}

void dests_mask_prefix(uint8_t addr[16], unsigned int prefixlen)
{
	for (unsigned int bit = prefixlen; bit < 128; bit++)
		addr[bit / 8] &= ~(0x80 >> (bit % 8));
}

int dests_push(struct tg_dest_table *t, size_t *cap, const uint8_t addr[16], unsigned int prefixlen,
	       uint16_t class_id, uint8_t flags, const char *name)
{
	struct tg_dest_entry *e;

	if (t->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct tg_dest_entry *nv = realloc(t->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		t->v = nv;
		*cap = ncap;
	}
	e = &t->v[t->n++];
	memset(e, 0, sizeof(*e));
	e->key.prefixlen = prefixlen;
	memcpy(e->key.addr, addr, 16);
	dests_mask_prefix(e->key.addr, prefixlen);
	e->val.class_id = class_id;
	e->val.flags = flags;
	e->name = name;
	return 0;
}

const struct tg_dest_entry *dests_find(const struct tg_dest_table *t, const struct tg_dest_entry *e)
{
	return t && t->n ? bsearch(e, t->v, t->n, sizeof(t->v[0]), dests_entry_cmp) : NULL;
}

static int write_classes(int classes_fd, const struct tg_dest_table *t)
{
	for (uint32_t id = 1; id <= t->nclasses; id++) {
		if (!t->class_names[id])
			continue;
		if (bpf_map_update_elem(classes_fd, &id, &t->classes[id], BPF_ANY))
			return -errno;
	}
	return 0;
}

/* Entries of @next that @old lacks or holds with another value. */
static int write_entries(int dests_fd, const struct tg_dest_table *old,
			 const struct tg_dest_table *next)
{
	for (size_t i = 0; i < next->n; i++) {
		const struct tg_dest_entry *prev = dests_find(old, &next->v[i]);

		if (prev && !memcmp(&prev->val, &next->v[i].val, sizeof(prev->val)))
			continue;
		if (bpf_map_update_elem(dests_fd, &next->v[i].key, &next->v[i].val, BPF_ANY))
			return -errno;
	}
	return 0;
}

/* Entries of @old that @next does not have. */
static int delete_stale(int dests_fd, const struct tg_dest_table *old,
			const struct tg_dest_table *next)
{
	for (size_t i = 0; old && i < old->n; i++) {
		if (dests_find(next, &old->v[i]))
			continue;
		if (bpf_map_delete_elem(dests_fd, &old->v[i].key) && errno != ENOENT)
			return -errno;
	}
	return 0;
}

/*
 * Additions before deletions: an address that stays protected, even under
 * another prefix, is never missing from the map. That needs room for both
 * policies at once; when the trie is full (ENOSPC), the entries the new
 * policy drops go first and the rest is added after (the dropped ones were
 * leaving anyway). Any other failure puts @old back, as far as the kernel
 * lets it, so the map matches the policy the agent keeps in force.
 *
 * As a state machine, so that a large table can go in slices between which
 * the agent serves its control socket: each phase resumes at ap->i.
 */
enum { AP_CLASSES, AP_WRITE, AP_DELETE, AP_FULL_DELETE, AP_FULL_WRITE, AP_DONE };

void dests_apply_begin(struct tg_dest_apply *ap, const struct tg_kmaps *km,
		       const struct tg_dest_table *old, const struct tg_dest_table *next)
{
	*ap = (struct tg_dest_apply){ .dests_fd = km->dests, .classes_fd = km->classes,
				      .old = old, .next = next, .phase = AP_CLASSES };
}

/* One map operation of the current phase at ap->i: 1 when it took a syscall, 0 when not, -errno. */
static int apply_one(struct tg_dest_apply *ap)
{
	const struct tg_dest_entry *e;

	if (ap->phase == AP_WRITE || ap->phase == AP_FULL_WRITE) {
		const struct tg_dest_entry *prev;

		e = &ap->next->v[ap->i++];
		prev = dests_find(ap->old, e);
		if (prev && !memcmp(&prev->val, &e->val, sizeof(prev->val)))
			return 0;
		return bpf_map_update_elem(ap->dests_fd, &e->key, &e->val, BPF_ANY) ? -errno : 1;
	}
	e = &ap->old->v[ap->i++];
	if (dests_find(ap->next, e))
		return 0;
	return bpf_map_delete_elem(ap->dests_fd, &e->key) && errno != ENOENT ? -errno : 1;
}

/* The phase after @phase once its entries are done. */
static int next_phase(int phase)
{
	switch (phase) {
	case AP_WRITE:
		return AP_DELETE;
	case AP_FULL_DELETE:
		return AP_FULL_WRITE;
	default:
		return AP_DONE;
	}
}

static int apply_fail(struct tg_dest_apply *ap, int err)
{
	if (ap->old) {
		/* whatever of @next got in goes; @old's entries and classes come back */
		delete_stale(ap->dests_fd, ap->next, ap->old);
		write_classes(ap->classes_fd, ap->old);
		write_entries(ap->dests_fd, NULL, ap->old);
	}
	ap->phase = AP_DONE;
	return err;
}

int dests_apply_step(struct tg_dest_apply *ap, size_t budget)
{
	/* entries that need no write cost a lookup each: a slice looks at a bounded number too */
	size_t used = 0, looked = 0, look_budget = budget > SIZE_MAX / 8 ? SIZE_MAX : budget * 8;
	int ret;

	if (ap->phase == AP_CLASSES) {
		/* classes first: a new entry must never point at a class not yet written */
		ret = write_classes(ap->classes_fd, ap->next);
		if (ret)
			return apply_fail(ap, ret);
		ap->phase = AP_WRITE;
		ap->i = 0;
	}
	while (ap->phase != AP_DONE && used < budget && looked++ < look_budget) {
		const struct tg_dest_table *t = ap->phase == AP_WRITE || ap->phase == AP_FULL_WRITE ?
						ap->next : ap->old;

		if (!t || ap->i >= t->n) {
			ap->phase = next_phase(ap->phase);
			ap->i = 0;
			continue;
		}
		ret = apply_one(ap);
		if (ret == -ENOSPC && ap->phase == AP_WRITE) {
			ap->phase = AP_FULL_DELETE;	/* the trie is full: the leaving entries first */
			ap->i = 0;
			continue;
		}
		if (ret < 0)
			return apply_fail(ap, ret);
		used += ret;
	}
	return ap->phase != AP_DONE;
}

int dests_apply(const struct tg_kmaps *km, const struct tg_dest_table *old,
		const struct tg_dest_table *next)
{
	struct tg_dest_apply ap;
	int ret;

	dests_apply_begin(&ap, km, old, next);
	while ((ret = dests_apply_step(&ap, SIZE_MAX)) > 0)
		;
	return ret;
}

void dests_free(struct tg_dest_table *t)
{
	free(t->v);
	t->v = NULL;
	t->n = 0;
	free(t->learned_names);
	t->learned_names = NULL;
	t->learned = t->learned_left_out = 0;
}

const char *dests_name_for(const struct tg_dest_table *t, const uint8_t addr[16])
{
	struct tg_dest_entry probe = { .key.prefixlen = 128 };
	const struct tg_dest_entry *e;

	memcpy(probe.key.addr, addr, 16);
	e = dests_find(t, &probe);
	return e ? e->name : NULL;
}

const char *dests_class_name(const struct tg_dest_table *t, unsigned int class_id)
{
	return class_id && class_id <= t->nclasses && class_id < TG_MAX_CLASSES ?
	       t->class_names[class_id] : NULL;
}

int dests_read_map(const struct tg_kmaps *km, struct tg_dest_table *out)
{
	struct tg_dest_key key, next;
	struct tg_dest_value val;
	size_t cap = 0;
	void *prev = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	while (!bpf_map_get_next_key(km->dests, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(km->dests, &key, &val))
			continue;	/* deleted meanwhile */
		err = dests_push(out, &cap, key.addr, key.prefixlen, val.class_id, val.flags, NULL);
		if (err) {
			dests_free(out);
			return err;
		}
	}
	if (errno != ENOENT) {
		err = -errno;
		dests_free(out);
		return err;
	}
	qsort(out->v, out->n, sizeof(out->v[0]), dests_entry_cmp);
	return 0;
}
