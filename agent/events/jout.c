// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "jout.h"

static bool jbuf_room(struct tg_jbuf *b, size_t n)
{
	size_t cap;
	char *p;

	if (b->err)
		return false;
	if (b->len + n + 1 <= b->cap)
		return true;
	cap = b->cap ? b->cap : 1024;
	while (cap < b->len + n + 1)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p) {
		b->err = -ENOMEM;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void jbuf_put(struct tg_jbuf *b, const char *s, size_t n)
{
	if (!jbuf_room(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void jbuf_emit(void *ctx, const char *p, size_t n)
{
	jbuf_put(ctx, p, n);
}

void tg_jbuf_free(struct tg_jbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

const char *tg_jbuf_cstr(struct tg_jbuf *b)
{
	if (!jbuf_room(b, 0))
		return NULL;
	b->p[b->len] = '\0';
	return b->p;
}

/* Text: the separator and "key": before a member (or an array element). */
static void text_key(struct tg_jout *o, const char *key)
{
	struct tg_jbuf *b = o->buf;

	if (!o->first)
		jbuf_put(b, ",", 1);
	o->first = false;
	if (key) {
		/* keys are the agent's own ASCII names: nothing to escape */
		jbuf_put(b, "\"", 1);
		jbuf_put(b, key, strlen(key));
		jbuf_put(b, "\":", 2);
	}
}

/* json-c: @v into the innermost open object or array (or as the root). */
static void tree_add(struct tg_jout *o, const char *key, json_object *v)
{
	json_object *parent;

	if (!o->depth) {
		json_object_put(o->stack[0]);
		o->stack[0] = v;
		return;
	}
	parent = o->stack[o->depth - 1];
	if (json_object_is_type(parent, json_type_array))
		json_object_array_add(parent, v);
	else
		json_object_object_add(parent, key, v);
}

void tg_jout_open(struct tg_jout *o, const char *key, bool array)
{
	json_object *v;

	if (o->buf) {
		text_key(o, key);
		jbuf_put(o->buf, array ? "[" : "{", 1);
		o->first = true;
		if (o->depth < 32)
			o->arrays = (o->arrays & ~(1u << o->depth)) | (uint32_t)array << o->depth;
		o->depth++;
		return;
	}
	v = array ? json_object_new_array() : json_object_new_object();
	tree_add(o, key, v);
	if (o->depth < TG_JOUT_DEPTH)
		o->stack[o->depth++] = v;
}

void tg_jout_close(struct tg_jout *o)
{
	if (!o->depth)
		return;
	o->depth--;
	if (o->buf) {
		jbuf_put(o->buf, o->depth < 32 && (o->arrays >> o->depth & 1) ? "]" : "}", 1);
		o->first = false;
		return;
	}
	/* json-c: the root stays in stack[0] for the caller */
}

void tg_jout_null(struct tg_jout *o, const char *key)
{
	if (o->buf) {
		text_key(o, key);
		jbuf_put(o->buf, "null", 4);
		return;
	}
	tree_add(o, key, NULL);
}

void tg_jout_str(struct tg_jout *o, const char *key, const char *s, size_t len)
{
	if (!s) {
		tg_jout_null(o, key);
		return;
	}
	if (!o->buf) {
		tree_add(o, key, tg_json_string_len(s, len));
		return;
	}
	text_key(o, key);
	jbuf_put(o->buf, "\"", 1);
	/* invalid UTF-8 becomes U+FFFD here, as tg_json_string_len() repairs it */
	tg_json_escape_inner(s, len, false, jbuf_emit, o->buf);
	jbuf_put(o->buf, "\"", 1);
}

void tg_jout_cstr(struct tg_jout *o, const char *key, const char *s)
{
	tg_jout_str(o, key, s, s ? strlen(s) : 0);
}

void tg_jout_lit(struct tg_jout *o, const char *key, const char *s)
{
	if (o->buf || !s)
		tg_jout_cstr(o, key, s);	/* plain ASCII: json-c's escaping says the same */
	else
		tree_add(o, key, json_object_new_string(s));
}

static void text_u64(struct tg_jbuf *b, uint64_t v, bool neg)
{
	char d[24];
	size_t i = sizeof(d);

	do {
		d[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (neg)
		d[--i] = '-';
	jbuf_put(b, d + i, sizeof(d) - i);
}

void tg_jout_i64(struct tg_jout *o, const char *key, int64_t v)
{
	if (!o->buf) {
		tree_add(o, key, json_object_new_int64(v));
		return;
	}
	text_key(o, key);
	text_u64(o->buf, v < 0 ? -(uint64_t)v : (uint64_t)v, v < 0);
}

void tg_jout_u64(struct tg_jout *o, const char *key, uint64_t v)
{
	if (!o->buf) {
		tree_add(o, key, json_object_new_uint64(v));
		return;
	}
	text_key(o, key);
	text_u64(o->buf, v, false);
}

void tg_jout_bool(struct tg_jout *o, const char *key, bool v)
{
	if (!o->buf) {
		tree_add(o, key, json_object_new_boolean(v));
		return;
	}
	text_key(o, key);
	jbuf_put(o->buf, v ? "true" : "false", v ? 4 : 5);
}
