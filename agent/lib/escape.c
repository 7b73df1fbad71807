// SPDX-License-Identifier: MIT
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/printbuf.h>

#include "escape.h"

#define ESC_MAX_PER_BYTE 4	/* "\xNN" */

/* Decode the UTF-8 sequence at @s: its length (1 to 4) and code point, or 0. */
static size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *cp)
{
	uint32_t v, min;
	size_t n;

	if (!len)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2, v = s[0] & 0x1f, min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3, v = s[0] & 0x0f, min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4, v = s[0] & 0x07, min = 0x10000;
	} else {
		return 0;	/* a continuation byte, 0xc0/0xc1 (overlong) or 0xf5.. */
	}
	if (len < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = v << 6 | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;	/* overlong, beyond Unicode, or a UTF-16 surrogate */
	*cp = v;
	return n;
}

size_t tg_utf8_seq(const unsigned char *s, size_t len)
{
	uint32_t cp;

	return utf8_decode(s, len, &cp);
}

bool tg_utf8_valid(const char *s, size_t len)
{
	const unsigned char *b = (const unsigned char *)s;

	for (size_t i = 0, n; i < len; i += n) {
		if (b[i] < 0x80) {
			n = 1;	/* ASCII, nearly all an event holds: no decoding */
			continue;
		}
		n = tg_utf8_seq(b + i, len - i);
		if (!n)
			return false;
	}
	return true;
}

/* Characters that move the cursor, talk to the terminal or reorder the line. */
static bool must_escape(uint32_t cp)
{
	return cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f) ||
	       cp == 0x061c || cp == 0x200e || cp == 0x200f ||
	       (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

static size_t hex_escape(char *unit, const unsigned char *b, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t u = 0;

	for (size_t i = 0; i < n; i++) {
		unit[u++] = '\\';
		unit[u++] = 'x';
		unit[u++] = hex[b[i] >> 4];
		unit[u++] = hex[b[i] & 15];
	}
	return u;
}

bool tg_escape(char *out, size_t outlen, const char *s, size_t len, unsigned int flags)
{
	const unsigned char *b = (const unsigned char *)s;
	size_t o = 0;
	bool fit = true;

	for (size_t i = 0; i < len;) {
		char unit[4 * ESC_MAX_PER_BYTE];
		uint32_t cp = 0;
		size_t n = utf8_decode(b + i, len - i, &cp), ulen;

		if (!n || must_escape(cp)) {
			n = n ? n : 1;	/* an invalid sequence: one byte at a time */
			ulen = hex_escape(unit, b + i, n);
		} else if ((cp == '\\' && !(flags & TG_ESC_KEEP_BACKSLASH)) ||
			   (cp == '"' && (flags & TG_ESC_QUOTES))) {
			unit[0] = '\\';
			unit[1] = (char)cp;
			ulen = 2;
		} else {
			memcpy(unit, b + i, n);
			ulen = n;
		}
		if (o + ulen >= outlen) {
			fit = false;
			break;
		}
		memcpy(out + o, unit, ulen);
		o += ulen;
		i += n;
	}
	if (outlen)
		out[o] = '\0';
	return fit;
}

char *tg_escape_dup(const char *s, unsigned int flags)
{
	size_t len = strlen(s), cap = len * ESC_MAX_PER_BYTE + 1;
	char *out = malloc(cap);

	if (out)
		tg_escape(out, cap, s, len, flags);
	return out;
}

char *tg_utf8_repair(const char *s, size_t len, size_t *outlen)
{
	static const char replacement[] = "\xef\xbf\xbd";	/* U+FFFD */
	char *out = malloc(len * 3 + 1);
	size_t o = 0;

	if (!out)
		return NULL;
	for (size_t i = 0, n; i < len; i += n) {
		n = tg_utf8_seq((const unsigned char *)s + i, len - i);
		if (n) {
			memcpy(out + o, s + i, n);
			o += n;
		} else {
			memcpy(out + o, replacement, 3);
			o += 3;
			n = 1;
		}
	}
	out[o] = '\0';
	*outlen = o;
	return out;
}

/* Printable ASCII that a JSON string holds as it is ('/' apart: see escape_slash). */
static const bool json_plain[256] = {
	[0x20 ... 0x21] = true,		/* '"' (0x22) is not */
	[0x23 ... 0x5b] = true,		/* '\\' (0x5c) is not */
	[0x5d ... 0x7e] = true,
};

void tg_json_escape_inner(const char *s, size_t len, bool escape_slash, tg_emit_fn emit, void *ctx)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *b = (const unsigned char *)s;
	size_t start = 0;

	for (size_t i = 0; i < len;) {
		char esc[6] = { '\\', 'u', '0', '0' };
		uint32_t cp = b[i];
		size_t n = 1, elen = 2;

		if (json_plain[b[i]] && (b[i] != '/' || !escape_slash)) {
			i++;	/* the common case: runs of printable ASCII */
			continue;
		}
		if (b[i] >= 0x80) {
			n = utf8_decode(b + i, len - i, &cp);
			if (n && !must_escape(cp)) {
				i += n;
				continue;
			}
		}
		emit(ctx, s + start, i - start);
		if (!n) {
			emit(ctx, "\xef\xbf\xbd", 3);	/* not UTF-8: U+FFFD */
			i++;
			start = i;
			continue;
		}
		if (cp == '"' || cp == '\\' || cp == '/') {
			esc[1] = (char)cp;
		} else if (cp == '\n' || cp == '\t' || cp == '\r') {
			esc[1] = cp == '\n' ? 'n' : cp == '\t' ? 't' : 'r';
		} else {
			esc[2] = hex[cp >> 12 & 15];
			esc[3] = hex[cp >> 8 & 15];
			esc[4] = hex[cp >> 4 & 15];
			esc[5] = hex[cp & 15];
			elen = 6;
		}
		emit(ctx, esc, elen);
		i += n;
		start = i;
	}
	emit(ctx, s + start, len - start);
}

static void printbuf_emit(void *ctx, const char *p, size_t n)
{
	if (n)
		printbuf_memappend(ctx, p, (int)n);
}

/* json-c's serializer for strings of outside origin: see tg_json_escape_inner(). */
static int safe_string_to_json(json_object *jso, struct printbuf *pb, int level, int flags)
{
	printbuf_memappend(pb, "\"", 1);
	tg_json_escape_inner(json_object_get_string(jso), (size_t)json_object_get_string_len(jso),
			     !(flags & JSON_C_TO_STRING_NOSLASHESCAPE), printbuf_emit, pb);
	printbuf_memappend(pb, "\"", 1);
	return 0;
}

json_object *tg_json_string_len(const char *s, size_t len)
{
	json_object *o;

	if (!s)
		return NULL;
	/* the value itself is valid UTF-8: readers of the object (fieldcrypt, the
	 * App Insights envelope) see what every JSON reader will see */
	if (tg_utf8_valid(s, len)) {
		o = json_object_new_string_len(s, (int)len);
	} else {
		size_t fixed_len;
		char *fixed = tg_utf8_repair(s, len, &fixed_len);

		if (!fixed)
			return NULL;
		o = json_object_new_string_len(fixed, (int)fixed_len);
		free(fixed);
	}
	if (o)
		json_object_set_serializer(o, safe_string_to_json, NULL, NULL);
	return o;
}

json_object *tg_json_parse_depth(const char *s, size_t len, int depth)
{
	json_tokener *tok;
	json_object *o;

	if (len > INT_MAX)
		return NULL;
	tok = json_tokener_new_ex(depth);
	if (!tok)
		return NULL;
	o = json_tokener_parse_ex(tok, s, (int)len);
	if (o && json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

json_object *tg_json_parse(const char *s, size_t len)
{
	return tg_json_parse_depth(s, len, JSON_TOKENER_DEFAULT_DEPTH);
}

json_object *tg_json_member(json_object *o, const char *a, const char *b)
{
	json_object *x;

	if (!json_object_object_get_ex(o, a, &x) || !x)
		return NULL;
	if (b && (!json_object_object_get_ex(x, b, &x) || !x))
		return NULL;
	return x;
}

json_object *tg_json_string(const char *s)
{
	return s ? tg_json_string_len(s, strlen(s)) : NULL;
}

static int escape_string_value(json_object *v)
{
	const char *s = json_object_get_string(v);
	size_t len = (size_t)json_object_get_string_len(v), cap = len * ESC_MAX_PER_BYTE + 1;
	char *buf = malloc(cap);
	int ret;

	if (!buf)
		return -ENOMEM;
	tg_escape(buf, cap, s, len, 0);
	ret = json_object_set_string(v, buf) ? 0 : -ENOMEM;
	free(buf);
	return ret;
}

static int safe_serializer(json_object *v)
{
	json_object_set_serializer(v, safe_string_to_json, NULL, NULL);
	return 0;
}

/* Call @fn on every string value of @o, at any depth; stops at the first error. */
static int each_string(json_object *o, int (*fn)(json_object *v))
{
	int ret = 0;

	switch (json_object_get_type(o)) {
	case json_type_string:
		return fn(o);
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o) && !ret; i++)
			ret = each_string(json_object_array_get_idx(o, i), fn);
		return ret;
	case json_type_object: {
		json_object_object_foreach(o, key, val) {
			(void)key;
			if (val && !ret)
				ret = each_string(val, fn);
		}
		return ret;
	}
	default:
		return 0;
	}
}

int tg_json_strings_to_text(json_object *o)
{
	return each_string(o, escape_string_value);
}

void tg_json_strings_safe(json_object *o)
{
	each_string(o, safe_serializer);
}
