/* SPDX-License-Identifier: MIT */
#ifndef TLSGUARD_AGENT_JOUT_H
#define TLSGUARD_AGENT_JOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/*
 * Where an event's members go: a json-c object tree (events_to_json), or
 * JSON text written straight into a buffer (events_line), from the same
 * code (events.c, handshake.c), so both say the same thing in the same
 * order. The text is what json-c prints for the tree (JSON_C_TO_STRING_PLAIN
 * | NOSLASHESCAPE) byte for byte; the direct form costs no allocation.
 */
#define TG_JOUT_DEPTH 8

struct tg_jbuf {
	char *p;
	size_t len, cap;
	int err;			/* -ENOMEM once growing failed */
};

struct tg_jout {
	struct tg_jbuf *buf;		/* text; NULL: build json-c objects */
	bool first;			/* text: no member written yet at this level */
	uint32_t arrays;		/* text: bit d set when level d is an array */
	int depth;
	json_object *stack[TG_JOUT_DEPTH];	/* json-c: the open objects and arrays */
};

void tg_jout_open(struct tg_jout *o, const char *key, bool array);	/* key NULL in an array */
void tg_jout_close(struct tg_jout *o);
/* A string of outside origin (tg_json_string_len()); @s NULL: null. */
void tg_jout_str(struct tg_jout *o, const char *key, const char *s, size_t len);
void tg_jout_cstr(struct tg_jout *o, const char *key, const char *s);
/* The agent's own ASCII text (json_object_new_string()); @s NULL: null. */
void tg_jout_lit(struct tg_jout *o, const char *key, const char *s);
void tg_jout_i64(struct tg_jout *o, const char *key, int64_t v);
void tg_jout_u64(struct tg_jout *o, const char *key, uint64_t v);
void tg_jout_bool(struct tg_jout *o, const char *key, bool v);
void tg_jout_null(struct tg_jout *o, const char *key);

void tg_jbuf_free(struct tg_jbuf *b);
/* The text so far, NUL-terminated; NULL when growing the buffer failed. */
const char *tg_jbuf_cstr(struct tg_jbuf *b);

#endif /* TLSGUARD_AGENT_JOUT_H */
