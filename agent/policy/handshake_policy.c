// SPDX-License-Identifier: MIT
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "handshake_policy.h"
#include "tlsguard/tls_hello.h"

uint64_t handshake_name_hash(const struct tg_sipkey *key, const char *name, size_t len)
{
	uint8_t buf[TG_NAME_BUF] = { 0 };

	if (len > TG_SNI_MAX)
		len = TG_SNI_MAX;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = name[i];

		buf[i] = c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
	}
	return tg_siphash(key, buf, len);
}

/* ---- names ---------------------------------------------------------------- */

/* Append; set_sort() orders the set once every key is in. */
static int set_add(struct tg_name_set *s, const struct tg_name_key *k, uint16_t class_id)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		void *nk = realloc(s->k, cap * sizeof(*s->k)), *nv;

		if (!nk)
			return -ENOMEM;
		s->k = nk;
		nv = realloc(s->v, cap * sizeof(*s->v));
		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	s->k[s->n] = *k;
	memset(&s->v[s->n], 0, sizeof(s->v[0]));
	s->v[s->n].class_id = class_id;
	s->n++;
	return 0;
}

struct name_entry {
	struct tg_name_key k;
	struct tg_name_value v;
	size_t order;			/* the first class naming a key keeps it */
};

static int entry_cmp(const void *a, const void *b)
{
	const struct name_entry *x = a, *y = b;
	int r = name_key_cmp(&x->k, &y->k);

	return r ? r : (x->order > y->order) - (x->order < y->order);
}

/* Sort by key and keep the first of equal keys: n log n, however many names. */
static int set_sort(struct tg_name_set *s)
{
	struct name_entry *e = malloc((s->n ? s->n : 1) * sizeof(*e));
	size_t out = 0;

	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++)
		e[i] = (struct name_entry){ s->k[i], s->v[i], i };
	qsort(e, s->n, sizeof(*e), entry_cmp);
	for (size_t i = 0; i < s->n; i++) {
		if (out && !name_key_cmp(&s->k[out - 1], &e[i].k))
			continue;
		s->k[out] = e[i].k;
		s->v[out++] = e[i].v;
	}
	s->n = out;
	free(e);
	return 0;
}

/* The class id @t gave destination @d (its name points into the same policy). */
static uint16_t class_id_of(const struct tg_dest_table *t, const struct tg_policy_dest *d)
{
	for (uint16_t id = 1; id <= t->nclasses && id < TG_MAX_CLASSES; id++)
		if (t->class_names[id] == d->name)
			return id;
	return 0;
}

int handshake_names_build(const struct tg_policy *p, const struct tg_dest_table *t,
			  const struct tg_sipkey *sk, struct tg_name_set *out)
{
	int err = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < p->ndests && !err; i++) {
		/* a port entry's names are its destination's, under its own class id */
		const struct tg_strlist *hosts = &policy_dest_owner(p, &p->dests[i])->hosts;
		/* the class's id in the kernel, which a reload may have kept from before */
		uint16_t id = class_id_of(t, &p->dests[i]);

		for (size_t h = 0; id && h < hosts->n && !err; h++) {
			const char *name = hosts->v[h];
			struct tg_name_key k = { 0 };

			if (!strncmp(name, "*.", 2)) {
				name++;		/* "*.suffix" is the hash of ".suffix" */
				k.flags = TG_NAME_WILDCARD;
			}
			k.hash = handshake_name_hash(sk, name, strlen(name));
			k.class_id = id;
			err = set_add(out, &k, id);
			/* CONNECT takes the destination's class (the first naming it), not an entry's */
			k.class_id = TG_NAME_ANY_CLASS;
			if (!err && p->dests[i].parent < 0)
				err = set_add(out, &k, id);
		}
	}
	if (!err)
		err = set_sort(out);
	if (err)
		name_set_free(out);
	return err;
}

int handshake_sync_names(const struct tg_kmaps *km, const struct tg_policy *p,
			 const struct tg_dest_table *t)
{
	struct tg_name_set want;
	struct tg_sipkey sk;
	int err;

	if (km->names < 0 || km->sipkey < 0)
		return 0;
	err = kmaps_sipkey(km, &sk);
	if (!err)
		err = handshake_names_build(p, t, &sk, &want);
	if (err)
		return err;
	err = kmaps_apply_names(km, &want);
	name_set_free(&want);
	return err;
}

/* ---- proxies -------------------------------------------------------------- */

int handshake_proxy_host(const char *spec, char *host, size_t len, uint16_t *port)
{
	const char *colon = strrchr(spec, ':');
	size_t hl;
	long pn;

	if (!colon)
		return -EINVAL;
	hl = colon - spec;
	if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
		spec++;
		hl -= 2;
	}
	if (hl == 0 || hl >= len)
		return -EINVAL;
	memcpy(host, spec, hl);
	host[hl] = '\0';
	pn = strtol(colon + 1, NULL, 10);
	if (pn <= 0 || pn > 65535)
		return -EINVAL;
	*port = pn;
	return 0;
}

static size_t push_proxy(struct tg_proxy_key *out, size_t n, const uint8_t addr[16], uint16_t port)
{
	memset(&out[n], 0, sizeof(out[n]));
	memcpy(out[n].addr, addr, 16);
	out[n].port = port;
	return n + 1;
}

/*
 * The keys of one proxy: its address if written as one, else the addresses
 * the host name table resolved (hosts.h: no lookup here). How many.
 */
static size_t proxy_keys(const char *spec, const struct tg_host_addrs *resolved,
			 struct tg_proxy_key *out, size_t max)
{
	uint8_t addr[16] = { [10] = 0xff, [11] = 0xff };
	const struct tg_host *h;
	char host[256];
	uint16_t port;
	size_t n = 0;

	if (handshake_proxy_host(spec, host, sizeof(host), &port) || !max)
		return 0;
	if (inet_pton(AF_INET, host, addr + 12) == 1 || inet_pton(AF_INET6, host, addr) == 1)
		return push_proxy(out, 0, addr, port);
	h = host_addrs_find(resolved, host);
	for (size_t i = 0; h && i < h->addrs.naddrs && n < max; i++)
		n = push_proxy(out, n, h->addrs.addrs[i], port);
	return n;
}

size_t handshake_proxies_build(const struct tg_policy *p, const struct tg_host_addrs *resolved,
			       struct tg_proxy_key out[TG_MAX_PROXIES])
{
	size_t n = 0;

	for (size_t i = 0; i < p->proxies.n && n < TG_MAX_PROXIES; i++)
		n += proxy_keys(p->proxies.v[i], resolved, &out[n], TG_MAX_PROXIES - n);
	return n;
}

int handshake_sync_proxies(const struct tg_kmaps *km, const struct tg_policy *p,
			   const struct tg_host_addrs *resolved)
{
	struct tg_proxy_key want[TG_MAX_PROXIES];

	if (km->proxies < 0)
		return 0;
	return kmaps_apply_proxies(km, want, handshake_proxies_build(p, resolved, want));
}
