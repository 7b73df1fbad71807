// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <arpa/nameser.h>
#include <errno.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dnsparse.h"
#include "tlsguard/dns.h"

static const char *const result_names[TG_DNSP__MAX] = {
	[TG_DNSP_OK] = "ok",
	[TG_DNSP_MALFORMED] = "malformed",
	[TG_DNSP_NOT_ANSWER] = "not_answer",
	[TG_DNSP_TRUNCATED] = "truncated",
	[TG_DNSP_RCODE] = "rcode",
	[TG_DNSP_NO_QUESTION] = "no_question",
};

const char *dns_parse_result_name(enum tg_dns_parse_result r)
{
	return r < TG_DNSP__MAX ? result_names[r] : "?";
}

/*
 * A presentation-form name (libresolv's output) into @out, lower case,
 * without a trailing dot. False when it does not fit: such a name can match
 * no policy host (those are at most 253 characters).
 */
static bool copy_name(char out[TG_DNS_NAME_LEN], const char *name)
{
	size_t n = strlen(name);

	if (n && name[n - 1] == '.' && (n < 2 || name[n - 2] != '\\'))
		n--;
	if (n >= TG_DNS_NAME_LEN)
		return false;
	for (size_t i = 0; i < n; i++)
		out[i] = name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i];
	out[n] = '\0';
	return true;
}

static void read_cname(const ns_msg *h, const ns_rr *rr, struct tg_dns_answer *out)
{
	char target[NS_MAXDNAME];

	if (out->ncnames >= TG_DNS_MAX_CNAMES)
		return;
	if (ns_name_uncompress(ns_msg_base(*h), ns_msg_end(*h), ns_rr_rdata(*rr), target,
			       sizeof(target)) < 0)
		return;
	if (!copy_name(out->cnames[out->ncnames].owner, ns_rr_name(*rr)) ||
	    !copy_name(out->cnames[out->ncnames].target, target))
		return;
	out->ncnames++;
}

static void read_addr(const ns_rr *rr, struct tg_dns_answer *out)
{
	struct tg_dns_addr *a;

	if (out->nraw >= TG_DNS_MAX_ADDRS)
		return;
	a = &out->raw[out->nraw];
	memset(a, 0, sizeof(*a));
	if (ns_rr_type(*rr) == ns_t_a) {
		if (ns_rr_rdlen(*rr) != 4)
			return;
		a->addr[10] = a->addr[11] = 0xff;
		memcpy(a->addr + 12, ns_rr_rdata(*rr), 4);
	} else {
		if (ns_rr_rdlen(*rr) != 16)
			return;
		memcpy(a->addr, ns_rr_rdata(*rr), 16);
	}
	/* a TTL with the top bit set is 0 (RFC 2181 8) */
	a->ttl = ns_rr_ttl(*rr) > 0x7fffffffU ? 0 : ns_rr_ttl(*rr);
	if (!copy_name(out->addr_owner[out->nraw], ns_rr_name(*rr)))
		return;
	out->nraw++;
}

static int chain_index(const struct tg_dns_answer *a, const char *name)
{
	for (size_t i = 0; i < a->nchain; i++)
		if (!strcmp(a->chain[i], name))
			return i;
	return -1;
}

/* Follow CNAMEs from the name asked, in whatever order the records came. */
static void build_chain(struct tg_dns_answer *a)
{
	while (a->nchain < TG_DNS_MAX_CHAIN) {
		const char *cur = a->chain[a->nchain - 1];
		size_t i;

		for (i = 0; i < a->ncnames; i++)
			if (!strcmp(a->cnames[i].owner, cur))
				break;
		if (i == a->ncnames || chain_index(a, a->cnames[i].target) >= 0)
			return;	/* the end, or a loop */
		memcpy(a->chain[a->nchain++], a->cnames[i].target, TG_DNS_NAME_LEN);
	}
}

enum tg_dns_parse_result dns_parse_answer(const uint8_t *msg, size_t len, struct tg_dns_answer *out)
{
	ns_msg h;
	ns_rr rr;
	int n;

	out->nchain = out->naddrs = out->ncnames = out->nraw = 0;
	out->qtype = 0;
	if (len > 65535 || ns_initparse(msg, len, &h) < 0)
		return TG_DNSP_MALFORMED;
	if (!ns_msg_getflag(h, ns_f_qr) || ns_msg_getflag(h, ns_f_opcode) != ns_o_query)
		return TG_DNSP_NOT_ANSWER;
	if (ns_msg_getflag(h, ns_f_tc))
		return TG_DNSP_TRUNCATED;
	if (ns_msg_getflag(h, ns_f_rcode) != ns_r_noerror)
		return TG_DNSP_RCODE;
	if (ns_msg_count(h, ns_s_qd) < 1)
		return TG_DNSP_NO_QUESTION;
	if (ns_parserr(&h, ns_s_qd, 0, &rr) < 0)
		return TG_DNSP_MALFORMED;
	if (!copy_name(out->chain[0], ns_rr_name(rr)) || !out->chain[0][0])
		return TG_DNSP_NO_QUESTION;
	out->nchain = 1;
	out->qtype = ns_rr_type(rr);

	n = ns_msg_count(h, ns_s_an);
	for (int i = 0; i < n && i < TG_DNS_MAX_RRS; i++) {
		if (ns_parserr(&h, ns_s_an, i, &rr) < 0)
			return TG_DNSP_MALFORMED;
		if (ns_rr_class(rr) != ns_c_in)
			continue;
		switch (ns_rr_type(rr)) {
		case ns_t_cname:
			read_cname(&h, &rr, out);
			break;
		case ns_t_a:
		case ns_t_aaaa:
			read_addr(&rr, out);
			break;
		default:
			break;
		}
	}
	build_chain(out);
	for (size_t i = 0; i < out->nraw; i++) {
		int owner = chain_index(out, out->addr_owner[i]);

		if (owner < 0)
			continue;	/* not an answer to what was asked */
		out->addrs[out->naddrs] = out->raw[i];
		out->addrs[out->naddrs].owner = owner;
		out->naddrs++;
	}
	return TG_DNSP_OK;
}

/* ---- DNS over TCP --------------------------------------------------------- */

static void stream_reset(struct tg_dns_stream *st)
{
	free(st->buf);
	memset(st, 0, sizeof(*st));
}

/* The stream of @cookie; a new one (the least recently used giving way) when @create. */
static struct tg_dns_stream *stream_get(struct tg_dns_streams *s, uint64_t cookie, uint32_t seq,
					uint64_t now_ns, bool create)
{
	struct tg_dns_stream *free_slot = NULL, *oldest = NULL;

	for (int i = 0; i < TG_DNS_MAX_STREAMS; i++) {
		struct tg_dns_stream *st = &s->v[i];

		if (st->cookie == cookie)
			return st;
		if (!st->cookie) {
			if (!free_slot)
				free_slot = st;
		} else if (!oldest || st->last_ns < oldest->last_ns) {
			oldest = st;
		}
	}
	if (!create)
		return NULL;
	if (!free_slot) {
		s->stats.evicted++;
		stream_reset(oldest);
		free_slot = oldest;
	}
	free_slot->cookie = cookie;
	free_slot->next_seq = seq;
	free_slot->last_ns = now_ns;
	return free_slot;
}

static int stream_append(struct tg_dns_stream *st, const uint8_t *data, size_t n)
{
	if (st->len + n > st->cap) {
		size_t cap = st->cap ? st->cap : 512;
		uint8_t *nb;

		while (cap < st->len + n)
			cap *= 2;
		if (cap > TG_DNS_STREAM_BUF_MAX)
			cap = TG_DNS_STREAM_BUF_MAX;
		nb = realloc(st->buf, cap);
		if (!nb)
			return -ENOMEM;
		st->buf = nb;
		st->cap = cap;
	}
	memcpy(st->buf + st->len, data, n);
	st->len += n;
	return 0;
}

/* Hand out every complete message; keep the incomplete rest. */
static void stream_drain(struct tg_dns_streams *s, struct tg_dns_stream *st, tg_dns_msg_fn fn, void *ctx)
{
	size_t off = 0;

	while (st->len - off >= 2) {
		size_t mlen = (size_t)st->buf[off] << 8 | st->buf[off + 1];

		if (st->len - off < 2 + mlen)
			break;
		if (mlen) {
			s->stats.messages++;
			fn(ctx, st->buf + off + 2, mlen);
		}
		off += 2 + mlen;
	}
	if (off) {
		memmove(st->buf, st->buf + off, st->len - off);
		st->len -= off;
	}
}

int dns_streams_feed(struct tg_dns_streams *s, uint64_t cookie, uint32_t seq, uint8_t flags,
		     const uint8_t *data, size_t len, uint64_t now_ns, tg_dns_msg_fn fn, void *ctx)
{
	struct tg_dns_stream *st;
	int32_t rel;
	int err = 0;

	if (!cookie)
		return 0;	/* no identity: cannot be told apart from other streams */
	/* a FIN or RST of a stream not held is nothing to keep */
	st = stream_get(s, cookie, seq, now_ns, len || (flags & TG_DNS_TCP_SYN));
	if (!st)
		return 0;
	st->last_ns = now_ns;
	if (flags & TG_DNS_TCP_SYN) {
		/* a new connection (or a reused cookie): start over at its first byte */
		free(st->buf);
		st->buf = NULL;
		st->len = st->cap = 0;
		st->lost = false;
		st->next_seq = seq;
	}
	if (len && !st->lost) {
		rel = (int32_t)(seq - st->next_seq);
		if (rel > 0) {
			/* bytes missing: what follows cannot be framed any more */
			s->stats.gaps++;
			st->lost = true;
		} else if ((size_t)-(int64_t)rel < len) {
			size_t skip = -(int64_t)rel;	/* retransmitted bytes already held */
			size_t n = len - skip;

			if (st->len + n > TG_DNS_STREAM_BUF_MAX) {
				/* cannot happen with a drained buffer; a message never exceeds it */
				s->stats.oversized++;
				st->lost = true;
			} else {
				err = stream_append(st, data + skip, n);
				if (!err) {
					st->next_seq += n;
					stream_drain(s, st, fn, ctx);
				}
			}
		}
	}
	if (flags & (TG_DNS_TCP_FIN | TG_DNS_TCP_RST))
		stream_reset(st);
	return err;
}

void dns_streams_expire(struct tg_dns_streams *s, uint64_t older_than_ns)
{
	for (int i = 0; i < TG_DNS_MAX_STREAMS; i++)
		if (s->v[i].cookie && s->v[i].last_ns < older_than_ns)
			stream_reset(&s->v[i]);
}

bool dns_streams_active(const struct tg_dns_streams *s)
{
	for (int i = 0; i < TG_DNS_MAX_STREAMS; i++)
		if (s->v[i].cookie)
			return true;
	return false;
}

void dns_streams_free(struct tg_dns_streams *s)
{
	for (int i = 0; i < TG_DNS_MAX_STREAMS; i++)
		stream_reset(&s->v[i]);
}
