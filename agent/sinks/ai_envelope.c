// SPDX-License-Identifier: MIT
/*
 * Application Insights envelopes. Items are written as JSON text directly
 * (a json-c tree per item cost ~8x the time of the whole rest of the export
 * path); only an item over TG_AI_MAX_ITEM goes through the shrinking loop,
 * which is bounded and always ends with a valid item.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ai_envelope.h"
#include "escape.h"
#include "keypath.h"

#define MARKER_LEN	(sizeof(TG_AI_TRUNC_MARKER) - 1)
#define MIN_KEEP	64	/* shortest a value is cut to before properties are dropped */
#define SHRINK_ROUNDS	64
#define JSON_FLAGS	(JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

struct tg_ai_envelope {
	char *ikey;
	char *event_name;	/* Microsoft.ApplicationInsights.<ikey without dashes>.Event */
	char *metric_name;
	char *role_instance;
	char *sdk_version;
	char *common;		/* ,"sampleRate":100.0,"iKey":...,"tags":{...}, pre-rendered */
};

struct prop {
	char *key;		/* final key: flattened, valid UTF-8, within the key limit, unique */
	size_t klen;
	uint32_t khash;		/* hash_str(key): the key set probes and compares by it first */
	bool key_owned;		/* malloc'd (a repaired or renamed key), not in props.keys */
	const char *val;	/* into the event, @num or @own */
	size_t len;
	char *own;		/* UTF-8-repaired copy, when needed */
	char num[24];		/* integers, formatted here rather than by json-c */
	size_t cap;		/* longest output allowed; shrinks for the item limit */
	bool atomic;		/* enc:/hmac: value: all or nothing */
	bool dropped;
};

/*
 * An event has about 20 leaves: the table, its key set and the keys live in
 * the item itself (on the stack) up to these sizes, and only a larger item
 * allocates. Per-item allocations were most of an envelope's cost: every one
 * of 1 KiB or more makes glibc consolidate the fast bins the freed event
 * objects fill.
 */
#define PROPS_INLINE	32
#define KEYS_INLINE	2048

struct props {
	struct prop *v;
	size_t n, alloc;
	uint32_t *set;		/* open addressing over v[] by key: keys stay unique after cuts */
	size_t setsize;		/* power of two, at least twice n */
	bool truncated;
	size_t ndropped;
	size_t keys_used;
	struct prop v_inline[PROPS_INLINE];
	uint32_t set_inline[2 * PROPS_INLINE];
	char keys[KEYS_INLINE];
};

/* Output buffer; an allocation failure is remembered and reported once at the end. */
struct out {
	char *p;
	size_t len, cap;
	bool oom;
};

struct item {
	const char *base_type;
	const char *env_name;
	char time[32];
	char *name;		/* event name / metric name, final */
	double number;		/* count measurement, or metric value */
	int count;		/* metric samples */
	char op_id[129];	/* ai.operation.id: the event's event_id, "" when none */
	struct props props;
};

/* ---- UTF-8 ---------------------------------------------------------------- */

static bool cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/* Longest prefix of valid UTF-8 @s that is at most @max bytes and ends on a character. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && cont((unsigned char)s[max]))
		max--;
	return max;
}

/* @s cut to at most @cap bytes including the marker; malloc'd. */
static char *cut_with_marker(const char *s, size_t len, size_t cap, size_t *outlen)
{
	size_t keep = utf8_cut(s, len, cap > MARKER_LEN ? cap - MARKER_LEN : 0);
	char *out = malloc(keep + MARKER_LEN + 1);

	if (!out)
		return NULL;
	memcpy(out, s, keep);
	memcpy(out + keep, TG_AI_TRUNC_MARKER, MARKER_LEN + 1);
	*outlen = keep + MARKER_LEN;
	return out;
}

/* Valid UTF-8 within @cap bytes, marked when cut. malloc'd; NULL on ENOMEM. */
static char *clean_string(const char *s, size_t len, size_t cap, bool *truncated)
{
	char *fixed = NULL, *out;
	size_t outlen;

	if (!tg_utf8_valid(s, len)) {
		fixed = tg_utf8_repair(s, len, &len);
		if (!fixed)
			return NULL;
		s = fixed;
	}
	if (len <= cap) {
		out = fixed ? fixed : strndup(s, len);
		return out;
	}
	*truncated = true;
	out = cut_with_marker(s, len, cap, &outlen);
	free(fixed);
	return out;
}

/* ---- JSON output -------------------------------------------------------------- */

static void out_reserve(struct out *o, size_t more)
{
	size_t cap;
	char *p;

	if (o->oom || o->len + more + 1 <= o->cap)
		return;
	cap = o->cap ? o->cap : 1024;
	while (cap < o->len + more + 1)
		cap *= 2;
	p = realloc(o->p, cap);
	if (!p) {
		o->oom = true;
		return;
	}
	o->p = p;
	o->cap = cap;
}

static void out_raw(struct out *o, const char *s, size_t n)
{
	out_reserve(o, n);
	if (o->oom)
		return;
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

#define out_lit(o, s) out_raw(o, s, sizeof(s) - 1)

static void out_emit(void *ctx, const char *s, size_t n)
{
	out_raw(ctx, s, n);
}

/* The inside of a JSON string: no raw control character either (escape.h). */
static void out_escaped(struct out *o, const char *s, size_t n)
{
	tg_json_escape_inner(s, n, false, out_emit, o);
}

static void out_str(struct out *o, const char *s, size_t n)
{
	out_lit(o, "\"");
	out_escaped(o, s, n);
	out_lit(o, "\"");
}

static void out_cstr(struct out *o, const char *s)
{
	out_str(o, s, strlen(s));
}

/* Decimal text of @v, negated when @neg, into @buf (24 bytes); returns the length. */
static int fmt_u64(char *buf, uint64_t v, bool neg)
{
	char tmp[24];
	int n = 0, len = 0;

	do {
		tmp[n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	if (neg)
		buf[len++] = '-';
	while (n)
		buf[len++] = tmp[--n];
	buf[len] = '\0';
	return len;
}

/*
 * A finite double; integral values get ".0" as the SDKs send them. The agent
 * never calls setlocale(), so the decimal point is '.'.
 */
static void out_double(struct out *o, double d)
{
	char buf[48];
	int n;

	/* The usual case (count = 1) without the cost of printf. */
	if (d > -9e15 && d < 9e15 && d == (double)(int64_t)d) {
		n = fmt_u64(buf, d < 0 ? (uint64_t)-(int64_t)d : (uint64_t)d, d < 0);
		memcpy(buf + n, ".0", 3);
		out_raw(o, buf, n + 2);
		return;
	}
	n = snprintf(buf, sizeof(buf) - 3, "%.17g", d);

	if (!strpbrk(buf, ".eE")) {
		memcpy(buf + n, ".0", 3);
		n += 2;
	}
	out_raw(o, buf, n);
}

/* ---- envelope settings ------------------------------------------------------- */

void ai_envelope_free(struct tg_ai_envelope *e)
{
	if (!e)
		return;
	free(e->ikey);
	free(e->event_name);
	free(e->metric_name);
	free(e->role_instance);
	free(e->sdk_version);
	free(e->common);
	free(e);
}

static char *ikey_compact(const char *ikey)
{
	char *out = malloc(strlen(ikey) + 1), *o = out;

	if (!out)
		return NULL;
	for (; *ikey; ikey++) {
		if (*ikey != '-')
			*o++ = *ikey;
	}
	*o = '\0';
	return out;
}

/* The part of every envelope that never changes, rendered once. */
static char *render_common(const struct tg_ai_envelope *e)
{
	struct out o = { 0 };

	out_lit(&o, ",\"sampleRate\":100.0,\"iKey\":");
	out_cstr(&o, e->ikey);
	out_lit(&o, ",\"tags\":{\"ai.cloud.role\":\"" TG_AI_ROLE "\",\"ai.cloud.roleInstance\":");
	out_cstr(&o, e->role_instance);
	out_lit(&o, ",\"ai.internal.sdkVersion\":");
	out_cstr(&o, e->sdk_version);
	/* tags stay open: render() adds the item's ai.operation.id and closes them */
	if (o.oom) {
		free(o.p);
		return NULL;
	}
	return o.p;
}

struct tg_ai_envelope *ai_envelope_new(const char *ikey, const char *role_instance,
				       const char *version)
{
	struct tg_ai_envelope *e;
	char host[256], *compact = NULL, *ver = NULL;
	bool cut = false;

	if (!ikey || !*ikey || strlen(ikey) > 64 || !version) {
		errno = EINVAL;
		return NULL;
	}
	if (!role_instance) {
		if (gethostname(host, sizeof(host)))
			return NULL;
		host[sizeof(host) - 1] = '\0';
		role_instance = host;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->ikey = clean_string(ikey, strlen(ikey), 64, &cut);
	compact = e->ikey ? ikey_compact(e->ikey) : NULL;
	if (!compact)
		goto err;
	if (asprintf(&e->event_name, "Microsoft.ApplicationInsights.%s.Event", compact) < 0)
		e->event_name = NULL;
	if (asprintf(&e->metric_name, "Microsoft.ApplicationInsights.%s.Metric", compact) < 0)
		e->metric_name = NULL;
	if (asprintf(&ver, "tlsguard:%s", version) < 0)
		ver = NULL;
	if (!e->event_name || !e->metric_name || !ver)
		goto err;
	e->role_instance = clean_string(role_instance, strlen(role_instance),
					TG_AI_MAX_ROLE_INSTANCE, &cut);
	e->sdk_version = clean_string(ver, strlen(ver), TG_AI_MAX_SDK_VERSION, &cut);
	if (!e->role_instance || !e->sdk_version || !(e->common = render_common(e)))
		goto err;
	free(compact);
	free(ver);
	return e;
err:
	free(compact);
	free(ver);
	ai_envelope_free(e);
	errno = ENOMEM;
	return NULL;
}

/* ---- time ------------------------------------------------------------------- */

int ai_format_time(const struct timespec *ts, char *buf, size_t buflen)
{
	struct tm tm;
	time_t t = ts->tv_sec;

	if (ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L || !gmtime_r(&t, &tm) ||
	    tm.tm_year + 1900 < 1 || tm.tm_year + 1900 > 9999)
		return -EINVAL;
	if (snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		     ts->tv_nsec / 1000000L) >= (int)buflen)
		return -EINVAL;
	return 0;
}

/* "YYYY-MM-DDTHH:MM:SS[.fraction]Z", exactly, with a real calendar date. */
static bool parse_time(const char *s, struct timespec *ts)
{
	static const char pattern[] = "dddd-dd-ddTdd:dd:dd";
	struct tm tm = { 0 }, chk;
	long ns = 0, scale = 100000000L;
	const char *p;
	time_t t;

	for (size_t i = 0; i < sizeof(pattern) - 1; i++) {
		if (pattern[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pattern[i])
			return false;
	}
	tm.tm_year = atoi(s) - 1900;
	tm.tm_mon = atoi(s + 5) - 1;
	tm.tm_mday = atoi(s + 8);
	tm.tm_hour = atoi(s + 11);
	tm.tm_min = atoi(s + 14);
	tm.tm_sec = atoi(s + 17);
	p = s + 19;
	if (*p == '.') {
		if (!isdigit((unsigned char)*++p))
			return false;
		for (; isdigit((unsigned char)*p); p++, scale /= 10)
			ns += (*p - '0') * scale;
	}
	if (strcmp(p, "Z"))
		return false;
	chk = tm;
	t = timegm(&chk);
	if (t == (time_t)-1 || chk.tm_mday != tm.tm_mday || chk.tm_mon != tm.tm_mon ||
	    chk.tm_hour != tm.tm_hour || chk.tm_min != tm.tm_min || chk.tm_sec != tm.tm_sec)
		return false;
	ts->tv_sec = t;
	ts->tv_nsec = ns;
	return true;
}

static void item_time(struct item *it, const char *event_time, const struct timespec *ts)
{
	struct timespec now;

	if (event_time && parse_time(event_time, &now) &&
	    !ai_format_time(&now, it->time, sizeof(it->time)))
		return;
	if (ts && !ai_format_time(ts, it->time, sizeof(it->time)))
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	ai_format_time(&now, it->time, sizeof(it->time));
}
/* ---- properties ---------------------------------------------------------------- */

static const char *pval(const struct prop *p)
{
	return p->val ? p->val : p->num;
}

static void props_free(struct props *ps)
{
	for (size_t i = 0; i < ps->n; i++) {
		if (ps->v[i].key_owned)
			free(ps->v[i].key);
		free(ps->v[i].own);
	}
	if (ps->v != ps->v_inline)
		free(ps->v);
	if (ps->set != ps->set_inline)
		free(ps->set);
	ps->v = NULL;
	ps->set = NULL;
	ps->n = ps->alloc = ps->setsize = ps->keys_used = 0;
}

static uint32_t hash_str(const char *s)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

static void set_insert(struct props *ps, size_t idx)
{
	size_t mask = ps->setsize - 1, i = ps->v[idx].khash & mask;

	while (ps->set[i])
		i = (i + 1) & mask;
	ps->set[i] = idx + 1;	/* 0 marks a free slot */
}

/* Keep the table at most half full, for room to insert one more. */
static int set_reserve(struct props *ps)
{
	size_t size = ps->setsize ? ps->setsize : 2 * PROPS_INLINE;
	uint32_t *old = ps->set;

	if (ps->setsize >= 2 * (ps->n + 1))
		return 0;
	if (!old) {
		memset(ps->set_inline, 0, sizeof(ps->set_inline));
		ps->set = ps->set_inline;
		ps->setsize = 2 * PROPS_INLINE;
		return 0;
	}
	while (size < 2 * (ps->n + 1))
		size *= 2;
	ps->set = calloc(size, sizeof(*ps->set));
	if (!ps->set) {
		ps->set = old;
		return -ENOMEM;
	}
	ps->setsize = size;
	if (old != ps->set_inline)
		free(old);
	for (size_t k = 0; k < ps->n; k++)
		set_insert(ps, k);
	return 0;
}

/* Taken by another property, or by one of the notes this file adds. */
static bool key_taken(const struct props *ps, const char *key)
{
	size_t mask = ps->setsize - 1;
	uint32_t h = hash_str(key);

	if (key[0] == 't' &&
	    (!strcmp(key, "tlsguard.truncated") || !strcmp(key, "tlsguard.dropped_properties")))
		return true;
	for (size_t i = h & mask; ps->set[i]; i = (i + 1) & mask) {
		const struct prop *p = &ps->v[ps->set[i] - 1];

		if (p->khash == h && !strcmp(p->key, key))
			return true;
	}
	return false;
}

/*
 * Give @key (valid UTF-8, within the limit) a "~N" suffix while it is taken.
 * *owned: @key is malloc'd; so is a renamed key.
 */
static char *unique_key(struct props *ps, char *key, bool *owned)
{
	char *alt = NULL;
	size_t len = strlen(key), keep;

	if (!key_taken(ps, key))
		return key;
	for (int n = 2; n < 1000000; n++) {
		char sfx[16];
		int slen = snprintf(sfx, sizeof(sfx), "~%d", n);

		keep = utf8_cut(key, len, TG_AI_MAX_PROP_KEY - slen);
		if (asprintf(&alt, "%.*s%s", (int)keep, key, sfx) < 0) {
			alt = NULL;
			break;
		}
		if (!key_taken(ps, alt))
			break;
		free(alt);
		alt = NULL;
	}
	if (*owned)
		free(key);
	*owned = alt != NULL;
	return alt;
}

/* The flattened @path as a key: kept in the item's own key space when it is valid and fits. */
static char *make_key(struct props *ps, const char *path, size_t len, bool *owned)
{
	char *key;

	if (len <= TG_AI_MAX_PROP_KEY && len < KEYS_INLINE - ps->keys_used &&
	    tg_utf8_valid(path, len)) {
		key = ps->keys + ps->keys_used;
		memcpy(key, path, len + 1);
		ps->keys_used += len + 1;
		*owned = false;
	} else {
		key = clean_string(path, len, TG_AI_MAX_PROP_KEY, &ps->truncated);
		*owned = true;
	}
	return key ? unique_key(ps, key, owned) : NULL;
}

static int props_grow(struct props *ps)
{
	struct prop *v;
	size_t alloc;

	if (!ps->v) {
		ps->v = ps->v_inline;
		ps->alloc = PROPS_INLINE;
		return 0;
	}
	alloc = ps->alloc * 2;
	v = ps->v == ps->v_inline ? malloc(alloc * sizeof(*v)) : realloc(ps->v, alloc * sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (ps->v == ps->v_inline)
		memcpy(v, ps->v_inline, sizeof(ps->v_inline));
	ps->v = v;
	ps->alloc = alloc;
	return 0;
}

/* Add "@path": @val. A NULL @val means the @len bytes at @num (short, copied). */
static int props_add(struct props *ps, const char *path, size_t plen, const char *val, const char *num,
		     size_t len)
{
	struct prop *p;
	bool owned;
	char *key;

	if (ps->n == ps->alloc && props_grow(ps))
		return -ENOMEM;
	if (set_reserve(ps))
		return -ENOMEM;
	key = make_key(ps, path, plen, &owned);
	if (!key)
		return -ENOMEM;
	p = &ps->v[ps->n];
	memset(p, 0, sizeof(*p));
	p->key = key;
	p->klen = strlen(key);
	p->khash = hash_str(key);
	p->key_owned = owned;
	p->val = val;
	p->len = len;
	p->cap = TG_AI_MAX_PROP_VALUE;
	if (!val) {
		memcpy(p->num, num, len < sizeof(p->num) ? len : sizeof(p->num) - 1);
	} else if (!tg_utf8_valid(val, len)) {
		p->own = tg_utf8_repair(val, len, &p->len);
		p->val = p->own;
		if (!p->own) {
			if (owned)
				free(key);
			return -ENOMEM;
		}
	}
	p->atomic = !strncmp(pval(p), "enc:v1:", 7) || !strncmp(pval(p), "hmac:v1:", 8);
	set_insert(ps, ps->n);
	ps->n++;
	return 0;
}

static int add_leaf(struct props *ps, const char *path, size_t plen, json_object *v)
{
	char num[24];
	const char *s;
	size_t len;
	int64_t i;
	int n;

	switch (json_object_get_type(v)) {
	case json_type_null:
		return 0;
	case json_type_string:
		return props_add(ps, path, plen, json_object_get_string(v), NULL,
				 json_object_get_string_len(v));
	case json_type_boolean:
		s = json_object_get_boolean(v) ? "true" : "false";
		return props_add(ps, path, plen, s, NULL, strlen(s));
	case json_type_int:
		i = json_object_get_int64(v);
		if (i == INT64_MAX)	/* may be a uint64 above it */
			n = fmt_u64(num, json_object_get_uint64(v), false);
		else
			n = fmt_u64(num, i < 0 ? 0 - (uint64_t)i : (uint64_t)i, i < 0);
		return props_add(ps, path, plen, NULL, num, n);
	default:	/* doubles and arrays: their JSON text */
		s = json_object_to_json_string_length(v, JSON_FLAGS, &len);
		return s ? props_add(ps, path, plen, s, NULL, len) : -ENOMEM;
	}
}

static bool is_number(json_object *v)
{
	return json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double);
}

static int flatten(struct props *ps, struct tg_keypath *path, json_object *obj, bool top)
{
	int ret = 0;

	json_object_object_foreach(obj, k, v) {
		size_t saved = path->len;

		if (!v || (top && !strcmp(k, "count") && is_number(v)))
			continue;	/* nulls are omitted; count is the measurement */
		ret = tg_keypath_push(path, k);
		if (ret)
			return ret;
		if (json_object_is_type(v, json_type_object))
			ret = flatten(ps, path, v, false);
		else
			ret = add_leaf(ps, path->buf, path->len, v);
		tg_keypath_cut(path, saved);
		if (ret)
			return ret;
	}
	return 0;
}
static int props_collect(struct props *ps, json_object *obj)
{
	struct tg_keypath path;
	int ret;

	if (tg_keypath_init(&path))
		return -ENOMEM;
	ret = obj ? flatten(ps, &path, obj, true) : 0;
	tg_keypath_free(&path);
	return ret;
}

/* ---- rendering and limits ------------------------------------------------------- */

static void out_value(struct out *o, const struct prop *p)
{
	size_t keep;

	if (p->len <= p->cap) {
		out_str(o, pval(p), p->len);
		return;
	}
	if (p->atomic) {
		out_lit(o, "\"" TG_AI_REMOVED_MARKER "\"");
		return;
	}
	keep = utf8_cut(pval(p), p->len, p->cap > MARKER_LEN ? p->cap - MARKER_LEN : 0);
	out_lit(o, "\"");
	out_escaped(o, pval(p), keep);
	out_lit(o, TG_AI_TRUNC_MARKER "\"");
}

static void render_properties(struct out *o, const struct props *ps)
{
	bool truncated = ps->truncated;
	const char *sep = "";
	char num[24];

	out_lit(o, "\"properties\":{");
	for (size_t i = 0; i < ps->n; i++) {
		const struct prop *p = &ps->v[i];

		if (p->dropped)
			continue;
		out_raw(o, sep, strlen(sep));
		sep = ",";
		out_str(o, p->key, p->klen);
		out_lit(o, ":");
		out_value(o, p);
		truncated |= p->len > p->cap;
	}
	if (ps->ndropped) {
		snprintf(num, sizeof(num), "%zu", ps->ndropped);
		out_raw(o, sep, strlen(sep));
		sep = ",";
		out_lit(o, "\"tlsguard.dropped_properties\":");
		out_cstr(o, num);
	}
	if (truncated) {
		out_raw(o, sep, strlen(sep));
		out_lit(o, "\"tlsguard.truncated\":\"true\"");
	}
	out_lit(o, "}");
}

static void render(const struct tg_ai_envelope *e, const struct item *it, struct out *o)
{
	char num[24];

	out_lit(o, "{\"ver\":1,\"name\":");
	out_cstr(o, it->env_name);
	out_lit(o, ",\"time\":");
	out_cstr(o, it->time);
	out_raw(o, e->common, strlen(e->common));
	if (it->op_id[0]) {
		out_lit(o, ",\"ai.operation.id\":");
		out_cstr(o, it->op_id);
	}
	out_lit(o, "}");
	out_lit(o, ",\"data\":{\"baseType\":");
	out_cstr(o, it->base_type);
	out_lit(o, ",\"baseData\":{\"ver\":2,");
	if (!strcmp(it->base_type, "EventData")) {
		out_lit(o, "\"name\":");
		out_cstr(o, it->name);
		out_lit(o, ",\"measurements\":{\"count\":");
		out_double(o, it->number);
		out_lit(o, "},");
	} else {
		/* One data point: the service reads only the first. */
		out_lit(o, "\"metrics\":[{\"name\":");
		out_cstr(o, it->name);
		out_lit(o, ",\"value\":");
		out_double(o, it->number);
		snprintf(num, sizeof(num), ",\"count\":%d}],", it->count);
		out_raw(o, num, strlen(num));
	}
	render_properties(o, &it->props);
	out_lit(o, "}}}");
}

static size_t effective(const struct prop *p)
{
	if (p->dropped)
		return 0;
	if (p->len <= p->cap)
		return p->len;
	return p->atomic ? sizeof(TG_AI_REMOVED_MARKER) - 1 : p->cap;
}

/* Bytes that capping every value at @level would save. */
static size_t saving(const struct props *ps, size_t level)
{
	size_t sum = 0, eff;

	for (size_t i = 0; i < ps->n; i++) {
		eff = effective(&ps->v[i]);
		if (eff > level)
			sum += eff - level;
	}
	return sum;
}

/*
 * Make the properties at least @excess bytes smaller: lower one common cap on
 * the longest values ("water filling", so one huge value does not wipe out
 * every other), and when that is not enough drop properties from the end.
 */
static void shrink(struct props *ps, size_t excess)
{
	size_t lo = MIN_KEEP, hi = TG_AI_MAX_PROP_VALUE, mid, est;

	excess += MARKER_LEN + 32;	/* markers and the tlsguard.* notes cost bytes too */
	if (saving(ps, lo) >= excess) {
		/* Largest level that still saves enough. */
		while (lo < hi) {
			mid = lo + (hi - lo + 1) / 2;
			if (saving(ps, mid) >= excess)
				lo = mid;
			else
				hi = mid - 1;
		}
		for (size_t i = 0; i < ps->n; i++) {
			if (effective(&ps->v[i]) > lo)
				ps->v[i].cap = lo;
		}
		return;
	}
	excess -= saving(ps, MIN_KEEP);
	for (size_t i = 0; i < ps->n; i++) {
		if (effective(&ps->v[i]) > MIN_KEEP)
			ps->v[i].cap = MIN_KEEP;
	}
	for (size_t i = ps->n; i-- > 0 && excess;) {
		if (ps->v[i].dropped)
			continue;
		est = ps->v[i].klen + effective(&ps->v[i]) + 6;	/* "k":"v", */
		ps->v[i].dropped = true;
		ps->ndropped++;
		excess = est >= excess ? 0 : excess - est;
	}
}
/* Render into @line's buffer (grown as needed, kept by the caller). */
static int serialize(const struct tg_ai_envelope *e, struct item *it, struct tg_ai_line *line)
{
	struct out o = { .p = line->p, .cap = line->cap };
	int ret = o.p ? -E2BIG : -ENOMEM;

	for (int round = 0; round < SHRINK_ROUNDS; round++) {
		o.len = 0;
		render(e, it, &o);
		if (o.oom) {
			ret = -ENOMEM;
			break;
		}
		if (o.len <= TG_AI_MAX_ITEM) {
			ret = 0;
			break;
		}
		shrink(&it->props, o.len - TG_AI_MAX_ITEM);
	}
	line->p = o.p;
	line->cap = o.cap;
	/* E2BIG is not reached: the fixed part of an item is far below the limit. */
	line->len = ret ? 0 : o.len;
	return ret;
}

void ai_line_free(struct tg_ai_line *line)
{
	free(line->p);
	memset(line, 0, sizeof(*line));
}

static int item_name(struct item *it, const char *name)
{
	bool cut = false;

	if (!name || !*name)
		return -EINVAL;
	it->name = clean_string(name, strlen(name), TG_AI_MAX_NAME, &cut);
	if (!it->name)
		return -ENOMEM;
	it->props.truncated |= cut;
	return 0;
}

int ai_envelope_event(const struct tg_ai_envelope *e, json_object *event, struct tg_ai_line *line)
{
	struct item it = { .base_type = "EventData", .env_name = e->event_name, .number = 1 };
	json_object *v;
	double count;
	int ret;

	line->len = 0;
	if (!json_object_is_type(event, json_type_object) ||
	    !json_object_object_get_ex(event, "type", &v) || !json_object_is_type(v, json_type_string))
		return -EINVAL;
	ret = props_collect(&it.props, event);
	if (!ret)
		ret = item_name(&it, json_object_get_string(v));
	if (ret)
		goto out;
	if (json_object_object_get_ex(event, "count", &v) && is_number(v)) {
		count = json_object_get_double(v);
		if (isfinite(count) && count >= 0)
			it.number = count;
	}
	/* the event's stable id groups a replayed duplicate with its original (docs/events.md) */
	if (json_object_object_get_ex(event, "event_id", &v) && json_object_is_type(v, json_type_string) &&
	    json_object_get_string_len(v) < (int)sizeof(it.op_id))
		snprintf(it.op_id, sizeof(it.op_id), "%s", json_object_get_string(v));
	item_time(&it, json_object_object_get_ex(event, "time", &v) &&
		       json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL,
		  NULL);
	ret = serialize(e, &it, line);
out:
	free(it.name);
	props_free(&it.props);
	return ret;
}

int ai_envelope_metric(const struct tg_ai_envelope *e, const struct tg_ai_metric *m,
		       struct tg_ai_line *line)
{
	struct item it = { .base_type = "MetricData", .env_name = e->metric_name };
	int ret;

	line->len = 0;
	if (!isfinite(m->value) || m->count < 0)
		return -EINVAL;
	if (m->properties && !json_object_is_type(m->properties, json_type_object))
		return -EINVAL;
	it.number = m->value;
	it.count = m->count ? m->count : 1;
	ret = props_collect(&it.props, m->properties);
	if (!ret)
		ret = item_name(&it, m->name);
	if (!ret) {
		item_time(&it, NULL, m->time);
		ret = serialize(e, &it, line);
	}
	free(it.name);
	props_free(&it.props);
	return ret;
}
