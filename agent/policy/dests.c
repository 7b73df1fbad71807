// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dests.h"
#include "dnslearn.h"
#include "log.h"
#include "tlsguard/preface.h"

/* the policy's protocols (enum tg_protocol) as the kernel's machines (enum tg_l7) */
static const uint8_t protocol_l7[] = {
	[TG_PROTO_TLS] = TG_L7_TLS,
	[TG_PROTO_POSTGRES] = TG_L7_POSTGRES,
	[TG_PROTO_MYSQL] = TG_L7_MYSQL,
	[TG_PROTO_TDS] = TG_L7_TDS,
	[TG_PROTO_SMB3] = TG_L7_SMB3,	/* TG_L7_CONNECT is the kernel's own, for proxies */
};
_Static_assert(TG_TLS_1_0 == 1 && TG_TLS_1_3 == 4, "min_tls is the version's minor number");

static int add_hosts(struct tg_dest_table *t, size_t *cap, const struct tg_strlist *names,
		     uint16_t class_id, uint8_t flags, const struct tg_host_addrs *resolved)
{
	int err = 0;

	for (size_t i = 0; i < names->n && !err; i++) {
		const struct tg_host *h = host_addrs_find(resolved, names->v[i]);

		for (size_t a = 0; h && a < h->addrs.naddrs && !err; a++)
			err = dests_push(t, cap, h->addrs.addrs[a], 128, class_id, flags, names->v[i]);
	}
	return err;
}

static void build_class(struct tg_class *c, const struct tg_policy *p, const struct tg_policy_dest *d,
			int mode_override)
{
	memset(c, 0, sizeof(*c));
	c->mode = mode_override >= 0 ? mode_override : policy_dest_mode(p, d);
	c->nranges = d->nports;
	memcpy(c->ports, d->ports, d->nports * sizeof(d->ports[0]));
	/* what the kernel checks of the handshake: protocol, min_tls_version, SNI binding */
	c->protocol = d->protocol >= 0 && (size_t)d->protocol < sizeof(protocol_l7) ?
			      protocol_l7[d->protocol] : TG_L7_TLS;
	c->min_tls = policy_dest_min_tls_version(p, d);
	c->flags = 0;
	if (policy_dest_owner(p, d)->hosts.n)
		c->flags |= TG_CLS_SNI_BIND;
	if (policy_dest_require_sni(p, d))
		c->flags |= TG_CLS_REQUIRE_SNI;
}

/* The same prefix twice: exceptions win, then the first class named. */
static void drop_duplicates(struct tg_dest_table *t)
{
	size_t out = 0;

	if (!t->n)
		return;	/* a policy of wildcard hosts only: nothing until DNS answers come */
	qsort(t->v, t->n, sizeof(t->v[0]), dests_entry_cmp);
	for (size_t i = 0; i < t->n; i++) {
		if (out && !dests_entry_cmp(&t->v[out - 1], &t->v[i])) {
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
		err = dests_push(t, cap, d->tag_cidrs[i].addr, d->tag_cidrs[i].prefixlen, class_id, 0, NULL);
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

int dests_build(const struct tg_policy *p, int mode_override, const struct tg_host_addrs *resolved,
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
			err = dests_push(out, &cap, d->cidrs[c].addr, d->cidrs[c].prefixlen, id, 0, NULL);
		if (!err)
			err = add_hosts(out, &cap, &d->hosts, id, 0, resolved);
		if (!err)
			err = add_service_tags(out, &cap, d, id);
	}
	for (size_t i = 0; i < p->nexceptions && !err; i++) {
		const struct tg_policy_exception *x = &p->exceptions[i];

		for (size_t c = 0; c < x->ncidrs && !err; c++)
			err = dests_push(out, &cap, x->cidrs[c].addr, x->cidrs[c].prefixlen, 0,
				   TG_DEST_EXCEPTION, NULL);
		if (!err)
			err = add_hosts(out, &cap, &x->hosts, 0, TG_DEST_EXCEPTION, resolved);
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
		dests_mask_prefix(probe.key.addr, c->plens[i]);
		e = bsearch(&probe, c->t->v, c->n_policy, sizeof(c->t->v[0]), dests_entry_cmp);
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
	qsort(t->v, t->n, sizeof(t->v[0]), dests_entry_cmp);
	return 0;
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
