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
#include "handshake.h"
#include "log.h"
#include "tlsguard/preface.h"
#include "tlsguard/tls_hello.h"

_Static_assert((int)TG_PROTO_TLS == (int)TG_L7_TLS && (int)TG_PROTO_POSTGRES == (int)TG_L7_POSTGRES &&
		       (int)TG_PROTO_MYSQL == (int)TG_L7_MYSQL && (int)TG_PROTO_TDS == (int)TG_L7_TDS,
	       "policy protocols are the kernel's tg_l7 values");
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
	c->protocol = d->protocol >= 0 && d->protocol < TG_L7__MAX ? d->protocol : TG_L7_TLS;
	c->min_tls = policy_dest_min_tls_version(p, d);
	c->flags = 0;
	if (d->hosts.n)
		c->flags |= TG_CLS_SNI_BIND;
	if (policy_dest_require_sni(p, d))
		c->flags |= TG_CLS_REQUIRE_SNI;
	/*
	 * The names and proxies maps follow the policy as a whole; the first
	 * class of a build is where a new policy (or new addresses) shows up.
	 */
	if (p->ndests && d == &p->dests[0]) {
		int err = handshake_sync(p);

		if (err)
			tg_warn("cannot write host names/proxies for the kernel: %s; SNI binding "
				"and proxy flows use the previous policy's", strerror(-err));
	}
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

static int set_find(const struct name_set *s, const struct tg_name_key *k)
{
	for (size_t i = 0; i < s->n; i++)
		if (!memcmp(&s->k[i], k, sizeof(*k)))
			return i;
	return -1;
}

static int set_add(struct name_set *s, const struct tg_name_key *k, uint16_t class_id)
{
	if (set_find(s, k) >= 0)
		return 0;	/* the first class naming it keeps it */
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

static int sync_names(const struct tg_policy *p)
{
	struct name_set want = { 0 };
	struct tg_name_key key, next, *prev = NULL;
	struct tg_sipkey sk;
	int err = get_sipkey(&sk);

	if (err)
		return err;
	for (size_t i = 0; i < p->ndests && !err; i++) {
		const struct tg_strlist *hosts = &p->dests[i].hosts;

		for (size_t h = 0; h < hosts->n && !err; h++) {
			const char *name = hosts->v[h];
			struct tg_name_key k = { 0 };

			if (!strncmp(name, "*.", 2)) {
				name++;		/* "*.suffix" is the hash of ".suffix" */
				k.flags = TG_NAME_WILDCARD;
			}
			k.hash = handshake_name_hash(&sk, name, strlen(name));
			k.class_id = i + 1;
			err = set_add(&want, &k, i + 1);
			k.class_id = TG_NAME_ANY_CLASS;
			if (!err)
				err = set_add(&want, &k, i + 1);
		}
	}
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

static int proxy_keys(const char *spec, struct tg_proxy_key *out, size_t max)
{
	char host[256];
	const char *colon = strrchr(spec, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	size_t n = 0, hl;
	long port;

	if (!colon)
		return -EINVAL;
	hl = colon - spec;
	if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
		spec++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, spec, hl);
	host[hl] = '\0';
	port = strtol(colon + 1, NULL, 10);
	if (port <= 0 || port > 65535)
		return -EINVAL;
	if (getaddrinfo(host, NULL, &hints, &res))
		return -ENOENT;
	for (ai = res; ai && n < max; ai = ai->ai_next) {
		struct tg_proxy_key *k = &out[n];

		memset(k, 0, sizeof(*k));
		k->port = port;
		if (ai->ai_family == AF_INET) {
			k->addr[10] = k->addr[11] = 0xff;
			memcpy(&k->addr[12], &((struct sockaddr_in *)ai->ai_addr)->sin_addr, 4);
		} else if (ai->ai_family == AF_INET6) {
			memcpy(k->addr, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, 16);
		} else {
			continue;
		}
		n++;
	}
	freeaddrinfo(res);
	return n;
}

static int sync_proxies(const struct tg_policy *p)
{
	struct tg_proxy_key want[TG_MAX_PROXIES], key, next, *prev = NULL;
	size_t n = 0;
	uint32_t one = 1;
	int err = 0;

	for (size_t i = 0; i < p->proxies.n && n < TG_MAX_PROXIES; i++) {
		int got = proxy_keys(p->proxies.v[i], &want[n], TG_MAX_PROXIES - n);

		if (got < 0) {
			tg_warn("proxy %s: %s; its flows are not followed", p->proxies.v[i],
				got == -ENOENT ? "the name does not resolve" : "not HOST:PORT");
			continue;
		}
		n += got;
	}
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

int handshake_sync(const struct tg_policy *p)
{
	int err;

	if (names_fd < 0 || sipkey_fd < 0 || proxies_fd < 0)
		return 0;
	err = sync_names(p);
	if (!err)
		err = sync_proxies(p);
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

static void add_version(json_object *o, const char *key, unsigned int v)
{
	const char *name = handshake_version_name(v);

	json_object_object_add(o, key, name ? json_object_new_string(name) : NULL);
}

/*
 * SNI and ALPN names as the client sent them, made valid UTF-8 (escape.h):
 * JSON escapes control bytes, text renderers show them as \xNN.
 */
static json_object *hello_string(const char *s, size_t n)
{
	return tg_json_string_len(s, n < TG_SNI_MAX ? n : TG_SNI_MAX);
}

static json_object *alpn_json(const struct tg_tls_summary *t)
{
	json_object *arr = json_object_new_array();
	uint32_t off = 0, noff, nlen, end = t->alpn_len < TG_ALPN_MAX ? t->alpn_len : TG_ALPN_MAX;

	/* the kernel keeps the first TG_ALPN_MAX bytes: a cut last name is left out */
	for (int i = 0; i < 16 && tg_alpn_next(t->alpn, &off, end, &noff, &nlen) == 1; i++)
		json_object_array_add(arr, hello_string((const char *)t->alpn + noff, nlen));
	return arr;
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

json_object *handshake_tls_json(const struct tg_event *ev)
{
	const struct tg_tls_summary *t = &ev->tls;
	json_object *o;

	if (ev->type != TG_EV_TLS && ev->type != TG_EV_WEAK_TLS && ev->type != TG_EV_SNI_MISMATCH)
		return NULL;
	o = json_object_new_object();
	add_version(o, "version", t->negotiated);
	add_version(o, "offered_max", t->offered);
	json_object_object_add(o, "sni", t->sni_len ? hello_string(t->sni, t->sni_len) : NULL);
	json_object_object_add(o, "alpn", alpn_json(t));
	if (t->min)
		add_version(o, "min_version", t->min);
	if (ev->type == TG_EV_WEAK_TLS)
		json_object_object_add(o, "weak_side", json_object_new_string(
						   t->side == TG_SIDE_SERVER ? "server" : "client"));
	if (t->sni_result)
		json_object_object_add(o, "sni_check",
				       json_object_new_string(sni_result_name(t->sni_result)));
	if (t->hello_flags & TG_HELLO_F_TRUNCATED)
		json_object_object_add(o, "hello_truncated", json_object_new_boolean(1));
	return o;
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
