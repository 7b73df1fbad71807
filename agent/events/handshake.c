// SPDX-License-Identifier: MIT
#include <errno.h>
#include <string.h>

#include "handshake.h"
#include "jout.h"
#include "enum_name.h"
#include "tlsguard/preface.h"
#include "tlsguard/tls_hello.h"

/* TLS versions are 0x03NN; a later one than 1.3 is named for what it is at least. */
const char *handshake_version_name(unsigned int v)
{
	static const char *const names[] = { "ssl3", "1.0", "1.1", "1.2", "1.3" };

	return (v >> 8) == 3 ? TG_ENUM_NAME(names, v & 0xff, "1.3+") : NULL;
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

static const char *const sni_result_names[] = {
	[TG_SNI_UNCHECKED] = "unchecked",
	[TG_SNI_MATCH] = "match",
	[TG_SNI_MISMATCH] = "mismatch",
	[TG_SNI_MISSING] = "missing",
};

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
		tg_jout_lit(o, "sni_check", TG_ENUM_NAME(sni_result_names, t->sni_result, "unchecked"));
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
