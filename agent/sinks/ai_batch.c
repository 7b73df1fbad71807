// SPDX-License-Identifier: MIT
/*
 * Application Insights batches (newline-delimited envelopes, gzip), response
 * parsing, Retry-After and backoff. See ai_batch.h.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <json-c/json.h>
#include <libdeflate.h>
#include <zlib.h>

#include "ai_batch.h"
#include "bytes.h"
#include "escape.h"

#define DEFAULT_ITEMS	1024
#define DEFAULT_BYTES	(4u << 20)
#define DEFAULT_AGE_MS	15000
/*
 * Level 1: JSON still shrinks ~8x and it costs a fraction of the default
 * level's CPU. Compressed with libdeflate (whole buffers, which is what a
 * request body is): at level 1 it is 1.8x as fast as zlib's and compresses
 * better; zlib still inflates (ai_gunzip()).
 */
#define GZIP_LEVEL	1

struct tg_ai_batch {
	struct tg_ai_batch_limits lim;
	char *buf;		/* lines joined by '\n' */
	size_t len, alloc;
	size_t *offs;		/* start of each line in @buf */
	size_t n, offalloc;
	uint64_t first_ms;
	/*
	 * One compressor and one output buffer for the batch's life: a new
	 * compressor per request is hundreds of KiB of allocations, and each of
	 * them makes glibc consolidate every small chunk the batch's events
	 * freed (with zlib's per-request stream it was a third of the export's CPU).
	 */
	struct libdeflate_compressor *gzc;
	uint8_t *gz;
	size_t gzcap;
};

/* ---- batch ------------------------------------------------------------------- */

struct tg_ai_batch *ai_batch_new(const struct tg_ai_batch_limits *lim)
{
	struct tg_ai_batch *b = calloc(1, sizeof(*b));

	if (!b)
		return NULL;
	if (lim)
		b->lim = *lim;
	if (!b->lim.max_items)
		b->lim.max_items = DEFAULT_ITEMS;
	if (b->lim.max_items > TG_AI_MAX_ITEMS_PER_REQUEST)
		b->lim.max_items = TG_AI_MAX_ITEMS_PER_REQUEST;
	if (!b->lim.max_bytes)
		b->lim.max_bytes = DEFAULT_BYTES;
	if (!b->lim.max_age_ms)
		b->lim.max_age_ms = DEFAULT_AGE_MS;
	return b;
}

void ai_batch_free(struct tg_ai_batch *b)
{
	if (!b)
		return;
	free(b->buf);
	free(b->offs);
	libdeflate_free_compressor(b->gzc);
	free(b->gz);
	free(b);
}

int ai_batch_add(struct tg_ai_batch *b, const char *line, size_t len, uint64_t now_ms)
{
	size_t need = len + (b->n ? 1 : 0);

	if (!len || memchr(line, '\n', len))
		return -EINVAL;
	if (len > b->lim.max_bytes)
		return -E2BIG;
	if (b->n == b->lim.max_items || b->len + need > b->lim.max_bytes)
		return -ENOSPC;
	if (tg_reserve((void **)&b->buf, &b->alloc, b->len + need + 1, 1, 16) ||
	    tg_reserve((void **)&b->offs, &b->offalloc, b->n + 1, sizeof(*b->offs), 16))
		return -ENOMEM;
	if (b->n)
		b->buf[b->len++] = '\n';
	else
		b->first_ms = now_ms;
	b->offs[b->n++] = b->len;
	memcpy(b->buf + b->len, line, len);
	b->len += len;
	b->buf[b->len] = '\0';
	return 0;
}

int ai_batch_load(struct tg_ai_batch *b, const char *body, size_t len, uint64_t now_ms)
{
	const char *p = body, *end = body + len, *nl;
	int ret;

	ai_batch_reset(b);
	while (p < end) {
		nl = memchr(p, '\n', end - p);
		if (!nl)
			nl = end;
		if (nl > p) {
			ret = ai_batch_add(b, p, nl - p, now_ms);
			if (ret)
				return ret;
		}
		p = nl + 1;
	}
	return 0;
}

bool ai_batch_due(const struct tg_ai_batch *b, uint64_t now_ms)
{
	if (!b->n)
		return false;
	return b->n >= b->lim.max_items || b->len >= b->lim.max_bytes ||
	       now_ms - b->first_ms >= b->lim.max_age_ms;
}

uint64_t ai_batch_deadline(const struct tg_ai_batch *b)
{
	return b->n ? b->first_ms + b->lim.max_age_ms : UINT64_MAX;
}

size_t ai_batch_count(const struct tg_ai_batch *b)
{
	return b->n;
}

const char *ai_batch_body(const struct tg_ai_batch *b, size_t *len)
{
	*len = b->len;
	return b->buf ? b->buf : "";
}

int ai_batch_item(const struct tg_ai_batch *b, size_t i, const char **line, size_t *len)
{
	size_t end;

	if (i >= b->n)
		return -ERANGE;
	end = i + 1 < b->n ? b->offs[i + 1] - 1 : b->len;
	*line = b->buf + b->offs[i];
	*len = end - b->offs[i];
	return 0;
}

/* gzip (RFC 1952) of @in into *buf, grown to the bound when short. */
static int gzip_into(struct libdeflate_compressor *c, const void *in, size_t len, uint8_t **buf,
		     size_t *cap, size_t *outlen)
{
	size_t bound = libdeflate_gzip_compress_bound(c, len);

	if (bound > *cap) {
		uint8_t *p = realloc(*buf, bound);

		if (!p)
			return -ENOMEM;
		*buf = p;
		*cap = bound;
	}
	/* the bound's room means it always fits: 0 would be a libdeflate bug */
	*outlen = libdeflate_gzip_compress(c, in, len, *buf, *cap);
	return *outlen ? 0 : -EIO;
}

int ai_batch_finish(struct tg_ai_batch *b, const uint8_t **out, size_t *outlen)
{
	size_t len;
	const char *body = ai_batch_body(b, &len);
	int ret;

	*out = NULL;
	*outlen = 0;
	if (len > UINT_MAX)
		return -EMSGSIZE;
	if (!b->gzc) {
		b->gzc = libdeflate_alloc_compressor(GZIP_LEVEL);
		if (!b->gzc)
			return -ENOMEM;
	}
	ret = gzip_into(b->gzc, body, len, &b->gz, &b->gzcap, outlen);
	if (!ret)
		*out = b->gz;
	return ret;
}

void ai_batch_reset(struct tg_ai_batch *b)
{
	b->len = 0;
	b->n = 0;
	b->first_ms = 0;
	if (b->buf)
		b->buf[0] = '\0';
}

/* ---- gzip ------------------------------------------------------------------- */

int ai_gzip(const void *in, size_t len, int level, uint8_t **out, size_t *outlen)
{
	struct libdeflate_compressor *c;
	size_t cap = 0;
	int ret;

	*out = NULL;
	*outlen = 0;
	if (len > UINT_MAX)
		return -EMSGSIZE;
	c = libdeflate_alloc_compressor(level < 0 ? 6 : level);
	if (!c)
		return -ENOMEM;
	ret = gzip_into(c, in, len, out, &cap, outlen);
	libdeflate_free_compressor(c);
	if (ret) {
		free(*out);
		*out = NULL;
		*outlen = 0;
	}
	return ret;
}

int ai_gunzip(const void *in, size_t len, size_t max_out, uint8_t **out, size_t *outlen)
{
	z_stream zs = { 0 };
	size_t cap = len * 4 + 64;
	uint8_t *buf = NULL, *nbuf;
	int zret = Z_OK, ret = -EBADMSG;

	*out = NULL;
	*outlen = 0;
	if (len > UINT_MAX)
		return -EMSGSIZE;
	if (inflateInit2(&zs, 15 + 16) != Z_OK)
		return -ENOMEM;
	zs.next_in = (Bytef *)in;
	zs.avail_in = len;
	while (zret != Z_STREAM_END) {
		if (zs.total_out == cap || !buf) {
			if (buf && cap >= max_out) {
				ret = -EFBIG;
				goto out;
			}
			if (buf)
				cap *= 2;
			if (cap > max_out)
				cap = max_out;
			nbuf = realloc(buf, cap + 1);
			if (!nbuf) {
				ret = -ENOMEM;
				goto out;
			}
			buf = nbuf;
		}
		zs.next_out = buf + zs.total_out;
		zs.avail_out = cap - zs.total_out;
		zret = inflate(&zs, Z_NO_FLUSH);
		if (zret != Z_OK && zret != Z_STREAM_END)
			goto out;
		if (zret == Z_OK && !zs.avail_in && zs.avail_out)
			goto out;	/* truncated input */
	}
	if (zs.avail_in)
		goto out;	/* trailing garbage */
	buf[zs.total_out] = '\0';
	*out = buf;
	*outlen = zs.total_out;
	buf = NULL;
	ret = 0;
out:
	inflateEnd(&zs);
	free(buf);
	return ret;
}

/* ---- responses ---------------------------------------------------------------- */

enum tg_ai_class ai_status_class(int s)
{
	switch (s) {
	case 0:			/* no HTTP answer at all: connection reset, timeout, TLS error */
	case 408:
	case 429:
		return TG_AI_RETRY;
	case 402:
	case 439:
		return TG_AI_QUOTA;
	case 206:
		return TG_AI_PARTIAL;
	case 401:
	case 403:
		return TG_AI_AUTH;
	case 307:
	case 308:
		return TG_AI_REDIRECT;
	}
	if (s >= 200 && s < 300)
		return TG_AI_OK;
	if (s >= 500 && s < 600)
		return TG_AI_RETRY;
	return TG_AI_DROP;
}

bool ai_item_retryable(int s)
{
	/* 307/308 per item: the service moved; the items go again (to the new host) */
	return s == 408 || s == 429 || s == 500 || s == 503 || s == 307 || s == 308;
}

bool ai_item_quota(int s)
{
	return s == 402 || s == 439;
}

void ai_response_free(struct tg_ai_response *r)
{
	free(r->retry);
	free(r->lost);
	memset(r, 0, sizeof(*r));
}

static long get_long(json_object *obj, const char *key, long dflt)
{
	json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int))
		return dflt;
	return (long)json_object_get_int64(v);
}

enum { ITEM_OK, ITEM_RETRY, ITEM_LOST, ITEM_QUOTA };

/* Mark each error's index; the first mention of an index wins. */
static void mark_errors(json_object *errors, uint8_t *state, size_t nsent, struct tg_ai_response *r)
{
	for (size_t i = 0; i < json_object_array_length(errors); i++) {
		json_object *e = json_object_array_get_idx(errors, i), *m;
		long idx = get_long(e, "index", -1), status = get_long(e, "statusCode", 0);

		if (!json_object_is_type(e, json_type_object) || idx < 0 || (size_t)idx >= nsent) {
			r->bad_errors++;
			continue;
		}
		if (state[idx] != ITEM_OK)
			continue;
		state[idx] = ai_item_retryable(status) ? ITEM_RETRY :
			     ai_item_quota(status) ? ITEM_QUOTA : ITEM_LOST;
		if (state[idx] == ITEM_QUOTA)
			r->nquota++;
		if (status == 307 || status == 308)
			r->nredirect++;
		if (state[idx] == ITEM_LOST && !r->first_lost_status) {
			r->first_lost_status = status ? status : -1;
			if (json_object_object_get_ex(e, "message", &m) &&
			    json_object_is_type(m, json_type_string))
				snprintf(r->first_lost_message, sizeof(r->first_lost_message), "%s",
					 json_object_get_string(m));
		}
	}
}

static int collect(const uint8_t *state, size_t nsent, uint8_t which, size_t **out, size_t *n)
{
	size_t count = 0;

	for (size_t i = 0; i < nsent; i++)
		count += state[i] == which;
	*n = 0;
	*out = calloc(count ? count : 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (size_t i = 0; i < nsent; i++) {
		if (state[i] == which)
			(*out)[(*n)++] = i;
	}
	return 0;
}

int ai_response_parse(const char *body, size_t len, size_t nsent, struct tg_ai_response *r)
{
	json_object *root = NULL, *errors;
	uint8_t *state = NULL;
	size_t accounted;
	int ret = -EBADMSG;

	memset(r, 0, sizeof(*r));
	root = tg_json_parse(body, len);
	if (!json_object_is_type(root, json_type_object))
		goto out;
	state = calloc(nsent ? nsent : 1, 1);
	if (!state) {
		ret = -ENOMEM;
		goto out;
	}
	r->items_received = get_long(root, "itemsReceived", -1);
	r->items_accepted = get_long(root, "itemsAccepted", -1);
	if (json_object_object_get_ex(root, "errors", &errors)) {
		if (!json_object_is_type(errors, json_type_array))
			goto out;
		mark_errors(errors, state, nsent, r);
	}
	ret = collect(state, nsent, ITEM_RETRY, &r->retry, &r->nretry);
	if (!ret)
		ret = collect(state, nsent, ITEM_LOST, &r->lost, &r->nlost);
	if (ret)
		goto out;
	accounted = r->nretry + r->nlost + r->nquota + (r->items_accepted > 0 ? r->items_accepted : 0);
	if (r->items_accepted >= 0 && accounted < nsent)
		r->unaccounted = nsent - accounted;
out:
	json_object_put(root);
	free(state);
	if (ret)
		ai_response_free(r);
	return ret;
}

/* ---- Retry-After -------------------------------------------------------------- */

static int month_index(const char *m)
{
	static const char names[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
					   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

	for (int i = 0; i < 12; i++) {
		if (!strcmp(m, names[i]))
			return i;
	}
	return -1;
}

static bool only_space(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return !*s;
}

/* The three HTTP-date forms of RFC 9110 section 5.6.7. */
static int parse_http_date(const char *s, time_t *out)
{
	char wday[16], mon[4];
	int d, y, h, mi, sec, n = -1;
	struct tm tm = { 0 }, chk;
	time_t t;

	if (sscanf(s, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d GMT%n",
		   wday, &d, mon, &y, &h, &mi, &sec, &n) == 7 && n > 0) {
		/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
	} else if (n = -1, sscanf(s, "%15[A-Za-z], %2d-%3[A-Za-z]-%2d %2d:%2d:%2d GMT%n",
				  wday, &d, mon, &y, &h, &mi, &sec, &n) == 7 && n > 0) {
		y += y < 70 ? 2000 : 1900;	/* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
	} else if (n = -1, sscanf(s, "%3[A-Za-z] %3[A-Za-z] %2d %2d:%2d:%2d %4d%n",
				  wday, mon, &d, &h, &mi, &sec, &y, &n) == 7 && n > 0) {
		/* asctime: Sun Nov  6 08:49:37 1994 */
	} else {
		return -EINVAL;
	}
	if (!only_space(s + n) || month_index(mon) < 0)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = month_index(mon);
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	chk = tm;
	t = timegm(&chk);
	if (t == (time_t)-1 || chk.tm_mday != d || chk.tm_hour != h || chk.tm_min != mi ||
	    chk.tm_sec != sec || chk.tm_mon != tm.tm_mon)
		return -EINVAL;
	*out = t;
	return 0;
}

int ai_retry_after_parse(const char *value, time_t now, uint64_t *delay_s)
{
	const char *p = value;
	uint64_t v = 0;
	time_t t;

	if (!value)
		return -EINVAL;
	while (isspace((unsigned char)*p))
		p++;
	if (isdigit((unsigned char)*p)) {
		for (; isdigit((unsigned char)*p); p++) {
			if (v < UINT32_MAX)	/* saturate: a silly value is still "much later" */
				v = v * 10 + (*p - '0');
		}
		if (!only_space(p))
			return -EINVAL;
		*delay_s = v < UINT32_MAX ? v : UINT32_MAX;
		return 0;
	}
	if (parse_http_date(p, &t))
		return -EINVAL;
	*delay_s = t > now ? (uint64_t)(t - now) : 0;
	return 0;
}

/* ---- backoff -------------------------------------------------------------------- */

static uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

void backoff_init(struct tg_backoff *b, uint64_t base_ms, uint64_t cap_ms, uint64_t seed)
{
	b->base_ms = base_ms ? base_ms : TG_AI_BACKOFF_BASE_MS;
	b->cap_ms = cap_ms ? cap_ms : TG_AI_BACKOFF_CAP_MS;
	if (b->cap_ms < b->base_ms)
		b->cap_ms = b->base_ms;
	b->attempt = 0;
	if (!seed && getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
		seed = (uint64_t)(uintptr_t)b ^ (uint64_t)time(NULL) << 20;
	b->rng = seed ? seed : 0x9e3779b97f4a7c15ULL;
}

uint64_t backoff_next(struct tg_backoff *b)
{
	uint64_t d = b->base_ms, r;

	for (unsigned int i = 0; i < b->attempt && d < b->cap_ms; i++)
		d = d > b->cap_ms / 2 ? b->cap_ms : d * 2;
	if (d > b->cap_ms)
		d = b->cap_ms;
	if (b->attempt < 64)
		b->attempt++;
	r = d - d / 4 + xorshift64(&b->rng) % (d / 2 + 1);
	return r < b->cap_ms ? r : b->cap_ms;
}

void backoff_reset(struct tg_backoff *b)
{
	b->attempt = 0;
}
