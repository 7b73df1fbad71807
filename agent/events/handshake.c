// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <bpf/bpf.h>

#include "escape.h"
#include "dests.h"
#include "events.h"
#include "handshake.h"
#include "hosts.h"
#include "log.h"
#include "tlsguard/preface.h"
#include "tlsguard/tls_hello.h"

/* the policy's protocols (enum tg_protocol) as the kernel's machines (enum tg_l7) */
static const uint8_t protocol_l7[] = {
	[TG_PROTO_TLS] = TG_L7_TLS,
	[TG_PROTO_POSTGRES] = TG_L7_POSTGRES,
	[TG_PROTO_MYSQL] = TG_L7_MYSQL,
	[TG_PROTO_TDS] = TG_L7_TDS,
	[TG_PROTO_SMB3] = TG_L7_SMB3,	/* TG_L7_CONNECT is the kernel's own, for proxies */
};
_Static_assert(TG_TLS_1_0 == 1 && TG_TLS_1_3 == 4, "min_tls is the version's minor number");

static int names_fd = -1, sipkey_fd = -1, proxies_fd = -1;

void handshake_set_maps(int names, int sipkey, int proxies)
{
	names_fd = names;
	sipkey_fd = sipkey;
	proxies_fd = proxies;
}

void handshake_class_fill(struct tg_class *c, const struct tg_policy *p,
			  const struct tg_policy_dest *d)
{
	c->protocol = d->protocol >= 0 && (size_t)d->protocol < sizeof(protocol_l7) ?
			      protocol_l7[d->protocol] : TG_L7_TLS;
	c->min_tls = policy_dest_min_tls_version(p, d);
	c->flags = 0;
	if (policy_dest_owner(p, d)->hosts.n)
		c->flags |= TG_CLS_SNI_BIND;
	if (policy_dest_require_sni(p, d))
		c->flags |= TG_CLS_REQUIRE_SNI;
}

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

struct name_set {
	struct tg_name_key *k;
	struct tg_name_value *v;
	size_t n, cap;
};

static int key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, sizeof(struct tg_name_key));
}

/* Index of @k in the sorted set, or -1. */
static int set_find(const struct name_set *s, const struct tg_name_key *k)
{
	const struct tg_name_key *hit = s->n ? bsearch(k, s->k, s->n, sizeof(*k), key_cmp) : NULL;

	return hit ? (int)(hit - s->k) : -1;
}

/* Append; set_sort() orders the set once every key is in. */
static int set_add(struct name_set *s, const struct tg_name_key *k, uint16_t class_id)
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
	int r = key_cmp(&x->k, &y->k);

	return r ? r : (x->order > y->order) - (x->order < y->order);
}

/* Sort by key and keep the first of equal keys: n log n, however many names. */
static int set_sort(struct name_set *s)
{
	struct name_entry *e = malloc((s->n ? s->n : 1) * sizeof(*e));
	size_t out = 0;

	if (!e)
		return -ENOMEM;
	for (size_t i = 0; i < s->n; i++)
		e[i] = (struct name_entry){ s->k[i], s->v[i], i };
	qsort(e, s->n, sizeof(*e), entry_cmp);
	for (size_t i = 0; i < s->n; i++) {
		if (out && !key_cmp(&s->k[out - 1], &e[i].k))
			continue;
		s->k[out] = e[i].k;
		s->v[out++] = e[i].v;
	}
	s->n = out;
	free(e);
	return 0;
}

static int get_sipkey(struct tg_sipkey *key)
{
	uint32_t zero = 0;

	if (bpf_map_lookup_elem(sipkey_fd, &zero, key))
		return -errno;
	if (key->k0 || key->k1)
		return 0;	/* kept in the pins: a restarted agent hashes the same */
	if (getrandom(key, sizeof(*key), 0) != sizeof(*key))
		return -EIO;
	if (bpf_map_update_elem(sipkey_fd, &zero, key, BPF_ANY))
		return -errno;
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

int handshake_sync_names(const struct tg_policy *p, const struct tg_dest_table *t)
{
	struct name_set want = { 0 };
	struct tg_name_key key, next, *prev = NULL;
	struct tg_sipkey sk;
	int err;

	if (names_fd < 0 || sipkey_fd < 0)
		return 0;
	err = get_sipkey(&sk);
	if (err)
		return err;
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
			k.hash = handshake_name_hash(&sk, name, strlen(name));
			k.class_id = id;
			err = set_add(&want, &k, id);
			/* CONNECT takes the destination's class (the first naming it), not an entry's */
			k.class_id = TG_NAME_ANY_CLASS;
			if (!err && p->dests[i].parent < 0)
				err = set_add(&want, &k, id);
		}
	}
	if (!err)
		err = set_sort(&want);
	for (size_t i = 0; i < want.n && !err; i++)
		if (bpf_map_update_elem(names_fd, &want.k[i], &want.v[i], BPF_ANY))
			err = -errno;
	/* then what the last policy had and this one does not */
	while (!err && !bpf_map_get_next_key(names_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (set_find(&want, &key) < 0)
			bpf_map_delete_elem(names_fd, &key);
	}
	free(want.k);
	free(want.v);
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
static size_t proxy_keys(const char *spec, struct tg_hosts *hosts, struct tg_proxy_key *out,
			 size_t max)
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
	if (!hosts)
		return 0;
	pthread_mutex_lock(&hosts->lock);
	h = hosts_find(hosts, host);
	for (size_t i = 0; h && i < h->addrs.naddrs && n < max; i++)
		n = push_proxy(out, n, h->addrs.addrs[i], port);
	pthread_mutex_unlock(&hosts->lock);
	return n;
}

int handshake_sync_proxies(const struct tg_policy *p, struct tg_hosts *hosts)
{
	struct tg_proxy_key want[TG_MAX_PROXIES], key, next, *prev = NULL;
	size_t n = 0;
	uint32_t one = 1;
	int err = 0;

	if (proxies_fd < 0)
		return 0;
	for (size_t i = 0; i < p->proxies.n && n < TG_MAX_PROXIES; i++)
		n += proxy_keys(p->proxies.v[i], hosts, &want[n], TG_MAX_PROXIES - n);
	for (size_t i = 0; i < n && !err; i++)
		if (bpf_map_update_elem(proxies_fd, &want[i], &one, BPF_ANY))
			err = -errno;
	while (!err && !bpf_map_get_next_key(proxies_fd, prev, &next)) {
		bool keep = false;

		key = next;
		prev = &key;
		for (size_t i = 0; i < n && !keep; i++)
			keep = !memcmp(&want[i], &key, sizeof(key));
		if (!keep)
			bpf_map_delete_elem(proxies_fd, &key);
	}
	return err;
}

/* ---- events --------------------------------------------------------------- */

const char *handshake_version_name(unsigned int v)
{
	switch (v) {
	case 0x0300:
		return "ssl3";
	case 0x0301:
		return "1.0";
	case 0x0302:
		return "1.1";
	case 0x0303:
		return "1.2";
	case 0x0304:
		return "1.3";
	default:
		return (v >> 8) == 3 ? "1.3+" : NULL;
	}
}

static void add_version(struct tg_jout *o, const char *key, unsigned int v)
{
	tg_jout_lit(o, key, handshake_version_name(v));
}

/*
 * SNI and ALPN names as the client sent them, made valid UTF-8 (escape.h):
 * JSON escapes control bytes, text renderers show them as \xNN.
 */
static void hello_string(struct tg_jout *o, const char *key, const char *s, size_t n)
{
	tg_jout_str(o, key, s, n < TG_SNI_MAX ? n : TG_SNI_MAX);
}

static void alpn_out(struct tg_jout *o, const struct tg_tls_summary *t)
{
	uint32_t off = 0, noff, nlen, end = t->alpn_len < TG_ALPN_MAX ? t->alpn_len : TG_ALPN_MAX;

	tg_jout_open(o, "alpn", true);
	/* the kernel keeps the first TG_ALPN_MAX bytes: a cut last name is left out */
	for (int i = 0; i < 16 && tg_alpn_next(t->alpn, &off, end, &noff, &nlen) == 1; i++)
		hello_string(o, NULL, (const char *)t->alpn + noff, nlen);
	tg_jout_close(o);
}

static const char *sni_result_name(unsigned int r)
{
	switch (r) {
	case TG_SNI_MATCH:
		return "match";
	case TG_SNI_MISMATCH:
		return "mismatch";
	case TG_SNI_MISSING:
		return "missing";
	default:
		return "unchecked";
	}
}

static bool has_tls(const struct tg_event *ev)
{
	if (ev->type != TG_EV_TLS && ev->type != TG_EV_WEAK_TLS && ev->type != TG_EV_SNI_MISMATCH)
		return false;
	return ev->tls.l7 != TG_L7_SMB3;	/* SMB 3 encryption, not TLS: protocol says what it was */
}

static void tls_members(struct tg_jout *o, const struct tg_event *ev)
{
	const struct tg_tls_summary *t = &ev->tls;

	add_version(o, "version", t->negotiated);
	add_version(o, "offered_max", t->offered);
	if (t->sni_len)
		hello_string(o, "sni", t->sni, t->sni_len);
	else
		tg_jout_null(o, "sni");
	alpn_out(o, t);
	if (t->min)
		add_version(o, "min_version", t->min);
	if (ev->type == TG_EV_WEAK_TLS)
		tg_jout_lit(o, "weak_side", t->side == TG_SIDE_SERVER ? "server" : "client");
	if (t->sni_result)
		tg_jout_lit(o, "sni_check", sni_result_name(t->sni_result));
	if (t->hello_flags & TG_HELLO_F_TRUNCATED)
		tg_jout_bool(o, "hello_truncated", true);
}

void handshake_tls_out(struct tg_jout *o, const struct tg_event *ev)
{
	if (!has_tls(ev)) {
		tg_jout_null(o, "tls");
		return;
	}
	tg_jout_open(o, "tls", false);
	tls_members(o, ev);
	tg_jout_close(o);
}

json_object *handshake_tls_json(const struct tg_event *ev)
{
	struct tg_jout o = { 0 };

	if (!has_tls(ev))
		return NULL;
	tg_jout_open(&o, NULL, false);
	tls_members(&o, ev);
	tg_jout_close(&o);
	return o.stack[0];
}

int handshake_tunnel_host(const struct tg_event *ev, char *host, size_t len, unsigned int *port)
{
	struct tg_preface pf;
	size_t n = ev->payload_len < TG_PAYLOAD_MAX ? ev->payload_len : TG_PAYLOAD_MAX;
	uint8_t buf[TG_HELLO_MAX] = { 0 };

	if (ev->tls.l7 != TG_L7_CONNECT)
		return -ENOENT;
	if (ev->tls.tunnel[0]) {
		/* what the kernel kept (events after the ServerHello carry no payload) */
		size_t l = strnlen(ev->tls.tunnel, TG_TUNNEL_MAX);

		for (size_t i = 0; i < l; i++)
			if (!tg_host_char(ev->tls.tunnel[i]))
				return -EINVAL;
		if (l >= len)
			return -ENOENT;
		memcpy(host, ev->tls.tunnel, l);
		host[l] = '\0';
		*port = ev->tls.tunnel_port;
		return 0;
	}
	memcpy(buf, ev->payload, n);
	memset(&pf, 0, sizeof(pf));
	tg_preface_connect(buf, n, &pf);
	if (!pf.host_len || pf.host_len >= len)
		return -ENOENT;
	memcpy(host, buf + pf.host_off, pf.host_len);
	host[pf.host_len] = '\0';
	*port = pf.port;
	return 0;
}
