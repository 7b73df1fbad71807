// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <bpf/bpf.h>

#include "dests.h"
#include "handshake.h"
#include "dnslearn.h"
#include "log.h"

static int key_cmp(const void *a, const void *b)
{
	const struct tg_dest_entry *x = a, *y = b;

	if (x->key.prefixlen != y->key.prefixlen)
		return x->key.prefixlen < y->key.prefixlen ? -1 : 1;
	return memcmp(x->key.addr, y->key.addr, 16);
}

static void mask_prefix(uint8_t addr[16], unsigned int prefixlen)
{
	for (unsigned int bit = prefixlen; bit < 128; bit++)
		addr[bit / 8] &= ~(0x80 >> (bit % 8));
}

static int push(struct tg_dest_table *t, size_t *cap, const uint8_t addr[16], unsigned int prefixlen,
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
	mask_prefix(e->key.addr, prefixlen);
	e->val.class_id = class_id;
	e->val.flags = flags;
	e->name = name;
	return 0;
}

static int add_hosts(struct tg_dest_table *t, size_t *cap, const struct tg_strlist *names,
		     uint16_t class_id, uint8_t flags, struct tg_hosts *hosts)
{
	int err = 0;

	if (!hosts)
		return 0;
	pthread_mutex_lock(&hosts->lock);
	for (size_t i = 0; i < names->n && !err; i++) {
		const struct tg_host *h = hosts_find(hosts, names->v[i]);

		for (size_t a = 0; h && a < h->addrs.naddrs && !err; a++)
			err = push(t, cap, h->addrs.addrs[a], 128, class_id, flags, names->v[i]);
	}
	pthread_mutex_unlock(&hosts->lock);
	return err;
}

static void build_class(struct tg_class *c, const struct tg_policy *p, const struct tg_policy_dest *d,
			int mode_override)
{
	memset(c, 0, sizeof(*c));
	c->mode = mode_override >= 0 ? mode_override : policy_dest_mode(p, d);
	c->nranges = d->nports;
	memcpy(c->ports, d->ports, d->nports * sizeof(d->ports[0]));
	handshake_class_fill(c, p, d);	/* protocol, min_tls_version, SNI binding */
}

/* The same prefix twice: exceptions win, then the first class named. */
static void drop_duplicates(struct tg_dest_table *t)
{
	size_t out = 0;

	if (!t->n)
		return;	/* a policy of wildcard hosts only: nothing until DNS answers come */
	qsort(t->v, t->n, sizeof(t->v[0]), key_cmp);
	for (size_t i = 0; i < t->n; i++) {
		if (out && !key_cmp(&t->v[out - 1], &t->v[i])) {
			struct tg_dest_entry *kept = &t->v[out - 1];

			if (t->v[i].val.flags & TG_DEST_EXCEPTION)
				*kept = t->v[i];
			continue;
		}
		t->v[out++] = t->v[i];
	}
	t->n = out;
}

/* The prefixes of the destination's service tags, read from their file when the policy was prepared. */
static int add_service_tags(struct tg_dest_table *t, size_t *cap, const struct tg_policy_dest *d,
			    uint16_t class_id)
{
	int err = 0;

	for (size_t i = 0; i < d->ntag_cidrs && !err; i++)
		err = push(t, cap, d->tag_cidrs[i].addr, d->tag_cidrs[i].prefixlen, class_id, 0, NULL);
	return err;
}

/*
 * Class ids stay with their class name across reloads, so per-class kernel
 * counters keep their meaning; new names take the lowest id the previous
 * table did not use.
 */
static uint16_t pick_class_id(const struct tg_dest_table *prev, const struct tg_dest_table *out,
			      const char *name)
{
	for (uint16_t id = 1; prev && id <= prev->nclasses; id++)
		if (prev->class_names[id] && !strcmp(prev->class_names[id], name) && !out->class_names[id])
			return id;
	for (uint16_t id = 1; id < TG_MAX_CLASSES; id++) {
		bool taken_before = false;

		for (size_t j = 1; prev && j <= prev->nclasses && !taken_before; j++)
			taken_before = j == id && prev->class_names[j];
		if (!out->class_names[id] && !taken_before)
			return id;
	}
	for (uint16_t id = 1; id < TG_MAX_CLASSES; id++)	/* all used once: reuse */
		if (!out->class_names[id])
			return id;
	return 0;
}

static bool name_in_prev(const struct tg_dest_table *prev, const char *name)
{
	for (uint16_t id = 1; prev && id <= prev->nclasses; id++)
		if (prev->class_names[id] && !strcmp(prev->class_names[id], name))
			return true;
	return false;
}

static int assign_class_ids(const struct tg_policy *p, const struct tg_dest_table *prev,
			    struct tg_dest_table *out, uint16_t *ids)
{
	/* names carried over first, so a new name cannot take a kept class's id */
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < p->ndests; i++) {
			uint16_t id;

			if (name_in_prev(prev, p->dests[i].name) != (pass == 0))
				continue;
			id = pick_class_id(prev, out, p->dests[i].name);
			if (!id)
				return -E2BIG;
			ids[i] = id;
			out->class_names[id] = p->dests[i].name;
			if (id > out->nclasses)
				out->nclasses = id;
		}
	}
	return 0;
}

int dests_build(const struct tg_policy *p, int mode_override, struct tg_hosts *hosts,
		const struct tg_dest_table *prev, struct tg_dest_table *out, char *why, size_t whylen)
{
	uint16_t ids[TG_MAX_CLASSES] = { 0 };
	size_t cap = 0;
	int err = 0;

	memset(out, 0, sizeof(*out));
	if (p->ndests < TG_MAX_CLASSES)
		err = assign_class_ids(p, prev, out, ids);
	if (p->ndests >= TG_MAX_CLASSES || err) {
		if (why)
			snprintf(why, whylen, "the policy has %zu destinations; at most %d fit",
				 p->ndests, TG_MAX_CLASSES - 1);
		return -E2BIG;
	}
	for (size_t i = 0; i < p->ndests && !err; i++) {
		const struct tg_policy_dest *d = &p->dests[i];
		uint16_t id = ids[i];

		build_class(&out->classes[id], p, d, mode_override);
		out->class_notes[id] = d->note;
		/* the ranges a port entry judges go to its class (a port entry has no addresses) */
		for (size_t r = 0; r < d->nports; r++)
			if (d->port_dest[r] >= 0 && (size_t)d->port_dest[r] < p->ndests)
				out->classes[id].port_class[r] = ids[d->port_dest[r]];
		for (size_t c = 0; c < d->ncidrs && !err; c++)
			err = push(out, &cap, d->cidrs[c].addr, d->cidrs[c].prefixlen, id, 0, NULL);
		if (!err)
			err = add_hosts(out, &cap, &d->hosts, id, 0, hosts);
		if (!err)
			err = add_service_tags(out, &cap, d, id);
	}
	for (size_t i = 0; i < p->nexceptions && !err; i++) {
		const struct tg_policy_exception *x = &p->exceptions[i];

		for (size_t c = 0; c < x->ncidrs && !err; c++)
			err = push(out, &cap, x->cidrs[c].addr, x->cidrs[c].prefixlen, 0,
				   TG_DEST_EXCEPTION, NULL);
		if (!err)
			err = add_hosts(out, &cap, &x->hosts, 0, TG_DEST_EXCEPTION, hosts);
	}
	if (err) {
		dests_free(out);
		return err;
	}
	out->overrides = p->overrides;
	out->noverrides = p->noverrides;
	drop_duplicates(out);
	if (out->n > TG_MAX_DESTS) {
		if (why)
			snprintf(why, whylen, "the policy needs %zu destination map entries (prefixes, "
				 "resolved and learned addresses); the kernel map holds at most %d: "
				 "merge prefixes or split the policy", out->n, TG_MAX_DESTS);
		dests_free(out);
		return -E2BIG;
	}
	return 0;
}

static const struct tg_dest_entry *find(const struct tg_dest_table *t, const struct tg_dest_entry *e)
{
	return t && t->n ? bsearch(e, t->v, t->n, sizeof(t->v[0]), key_cmp) : NULL;
}

struct learned_ctx {
	struct tg_dest_table *t;
	size_t n_policy;		/* entries before the learned ones: what lookups see */
	uint8_t plens[129];		/* prefix lengths present, longest first */
	size_t nplens;
	char *names, *next_name;
	const char *last_class;		/* entries of one class share the name pointer */
	uint16_t last_id;
};

/* The longest prefix of the policy's entries holding @addr, or NULL. */
static const struct tg_dest_entry *policy_lpm(const struct learned_ctx *c, const uint8_t addr[16])
{
	for (size_t i = 0; i < c->nplens; i++) {
		struct tg_dest_entry probe = { .key.prefixlen = c->plens[i] };
		const struct tg_dest_entry *e;

		memcpy(probe.key.addr, addr, 16);
		mask_prefix(probe.key.addr, c->plens[i]);
		e = bsearch(&probe, c->t->v, c->n_policy, sizeof(c->t->v[0]), key_cmp);
		if (e)
			return e;
	}
	return NULL;
}

static uint16_t class_id_by_name(struct learned_ctx *c, const char *name)
{
	if (name == c->last_class)
		return c->last_id;
	c->last_class = name;
	c->last_id = 0;
	for (uint16_t id = 1; id <= c->t->nclasses && id < TG_MAX_CLASSES; id++)
		if (c->t->class_names[id] && !strcmp(c->t->class_names[id], name))
			c->last_id = id;
	return c->last_id;
}

static int add_one_learned(void *ctx, const struct tg_learned_entry *le)
{
	struct learned_ctx *c = ctx;
	struct tg_dest_table *t = c->t;
	const struct tg_dest_entry *cover;
	struct tg_dest_entry *e;
	uint16_t id = class_id_by_name(c, le->class_name);
	size_t len;

	if (!id)
		return 0;	/* the class is gone; the learner drops it on its next policy */
	cover = policy_lpm(c, le->addr);
	if (cover && (cover->val.flags & TG_DEST_EXCEPTION || cover->key.prefixlen == 128))
		return 0;
	if (cover)
		id = cover->val.class_id;
	if (t->n >= TG_MAX_DESTS) {
		t->learned_left_out++;
		return 0;
	}
	len = strlen(le->qname) + 1;
	memcpy(c->next_name, le->qname, len);
	e = &t->v[t->n++];
	memset(e, 0, sizeof(*e));
	e->key.prefixlen = 128;
	memcpy(e->key.addr, le->addr, 16);
	e->val.class_id = id;
	e->name = c->next_name;
	c->next_name += len;
	t->learned++;
	return 0;
}

static int sum_name(void *ctx, const struct tg_learned_entry *le)
{
	*(size_t *)ctx += strlen(le->qname) + 1;
	return 0;
}

int dests_add_learned(struct tg_dest_table *t, const struct tg_learned *learned)
{
	struct learned_ctx c = { .t = t, .n_policy = t->n };
	size_t n = learned ? learned_count(learned) : 0, bytes = 0;
	struct tg_dest_entry *nv;
	bool seen[129] = { false };

	if (!n)
		return 0;
	learned_for_each(learned, sum_name, &bytes);
	c.names = c.next_name = malloc(bytes);
	nv = realloc(t->v, (t->n + n) * sizeof(*nv));
	if (!c.names || !nv) {
		free(c.names);
		if (nv)
			t->v = nv;
		return -ENOMEM;
	}
	t->v = nv;
	for (size_t i = 0; i < t->n; i++)
		seen[t->v[i].key.prefixlen] = true;
	for (int plen = 128; plen >= 0; plen--)
		if (seen[plen])
			c.plens[c.nplens++] = plen;
	learned_for_each(learned, add_one_learned, &c);
	free(t->learned_names);
	t->learned_names = c.names;
	/* learned addresses are distinct and never a policy /128: no duplicates to drop */
	qsort(t->v, t->n, sizeof(t->v[0]), key_cmp);
	return 0;
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
		const struct tg_dest_entry *prev = find(old, &next->v[i]);

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
		if (find(next, &old->v[i]))
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

void dests_apply_begin(struct tg_dest_apply *ap, int dests_fd, int classes_fd,
		       const struct tg_dest_table *old, const struct tg_dest_table *next)
{
	*ap = (struct tg_dest_apply){ .dests_fd = dests_fd, .classes_fd = classes_fd,
				      .old = old, .next = next, .phase = AP_CLASSES };
}

/* One map operation of the current phase at ap->i: 1 when it took a syscall, 0 when not, -errno. */
static int apply_one(struct tg_dest_apply *ap)
{
	const struct tg_dest_entry *e;

	if (ap->phase == AP_WRITE || ap->phase == AP_FULL_WRITE) {
		const struct tg_dest_entry *prev;

		e = &ap->next->v[ap->i++];
		prev = find(ap->old, e);
		if (prev && !memcmp(&prev->val, &e->val, sizeof(prev->val)))
			return 0;
		return bpf_map_update_elem(ap->dests_fd, &e->key, &e->val, BPF_ANY) ? -errno : 1;
	}
	e = &ap->old->v[ap->i++];
	if (find(ap->next, e))
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

int dests_apply(int dests_fd, int classes_fd, const struct tg_dest_table *old,
		const struct tg_dest_table *next)
{
	struct tg_dest_apply ap;
	int ret;

	dests_apply_begin(&ap, dests_fd, classes_fd, old, next);
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
	e = find(t, &probe);
	return e ? e->name : NULL;
}

void dests_override_values(const struct tg_policy *p, const struct tg_dest_table *t,
			   struct tg_override *out)
{
	for (size_t r = 0; r < p->noverrides; r++) {
		const struct tg_policy_override *o = &p->overrides[r];

		memset(&out[r], 0, sizeof(out[r]));
		out[r].rule = (uint8_t)(r + 1);
		out[r].mode = (uint8_t)o->mode;
		for (size_t id = 1; id <= t->nclasses && id < TG_MAX_CLASSES; id++) {
			for (size_t i = 0; t->class_names[id] && i < p->ndests; i++) {
				if (strcmp(p->dests[i].name, t->class_names[id]))
					continue;
				if (policy_override_covers(p, o, &p->dests[i]))
					out[r].classes[id / 64] |= 1ULL << (id % 64);
				break;
			}
		}
	}
}

const char *dests_class_name(const struct tg_dest_table *t, unsigned int class_id)
{
	return class_id && class_id <= t->nclasses && class_id < TG_MAX_CLASSES ?
	       t->class_names[class_id] : NULL;
}

int dests_read_map(int dests_fd, struct tg_dest_table *out)
{
	struct tg_dest_key key, next;
	struct tg_dest_value val;
	size_t cap = 0;
	void *prev = NULL;
	int err;

	memset(out, 0, sizeof(*out));
	while (!bpf_map_get_next_key(dests_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(dests_fd, &key, &val))
			continue;	/* deleted meanwhile */
		err = push(out, &cap, key.addr, key.prefixlen, val.class_id, val.flags, NULL);
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
	qsort(out->v, out->n, sizeof(out->v[0]), key_cmp);
	return 0;
}
