/* SPDX-License-Identifier: MIT */
/*
 * Strings from outside the agent (process names and cgroup paths from
 * workloads, names from DNS answers, ClientHellos and HTTP prefaces, pods and
 * labels from the Kubernetes API, text from files) on their way to a person
 * or a JSON reader. Any process on the node can choose its name: printed raw,
 * "\x1b]0;pwned\x07" rewrites the operator's terminal, and a byte that is not
 * UTF-8 makes an event line invalid JSON.
 *
 * Text (a terminal, a log line): valid printable UTF-8 stays as it is; every
 * other byte is shown as "\xNN" (two lower-case hex digits) and a backslash
 * as "\\", so the escaped form reads back to exactly one byte string. The
 * bytes escaped are C0 controls (tab and newline too), DEL, the UTF-8
 * encodings of C1 controls (U+0080-U+009F: 8-bit CSI and OSC), of the
 * bidirectional controls that make a line display in another order than it
 * is stored (U+061C, U+200E, U+200F, U+202A-U+202E, U+2066-U+2069) and of the
 * line and paragraph separators U+2028/U+2029, and every byte that is not
 * part of a valid UTF-8 sequence (overlong forms, surrogates, beyond U+10FFFF,
 * cut sequences).
 *
 * JSON: json-c escapes control characters itself but copies other bytes as
 * they are, so a string is made valid UTF-8 before it becomes a JSON value:
 * each byte of an invalid sequence becomes U+FFFD (what RFC 8259 section 8.1
 * and most JSON encoders do). Control characters stay; JSON carries them
 * escaped ("\u001b") and a text renderer escapes them again as above.
 */
#ifndef TLSGUARD_AGENT_ESCAPE_H
#define TLSGUARD_AGENT_ESCAPE_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

enum tg_esc_flags {
	TG_ESC_QUOTES = 1 << 0,		/* '"' as "\\\"" too, for text inside quotes */
	/*
	 * Leave '\\' alone. Only for a whole formatted line whose parts were
	 * escaped already (log.c): it keeps raw control bytes off a terminal
	 * without doubling the backslashes of those parts.
	 */
	TG_ESC_KEEP_BACKSLASH = 1 << 1,
};

/*
 * Escape @len bytes of @s into @out (@outlen bytes, NUL-terminated when
 * @outlen > 0). Returns true when all of it fit; when not, @out holds the
 * longest prefix that ends on a whole character or a whole escape.
 */
bool tg_escape(char *out, size_t outlen, const char *s, size_t len, unsigned int flags);

/* The escaped form of the C string @s in a malloc'd buffer, or NULL (ENOMEM). */
char *tg_escape_dup(const char *s, unsigned int flags);

/* Length of the valid UTF-8 sequence at @s (1 to 4), or 0 when none starts there. */
size_t tg_utf8_seq(const unsigned char *s, size_t len);

bool tg_utf8_valid(const char *s, size_t len);

/* @len bytes of @s with each byte of an invalid sequence as U+FFFD: malloc'd, NUL-terminated. */
char *tg_utf8_repair(const char *s, size_t len, size_t *outlen);

/*
 * A JSON string of @len bytes at @s (a C string with tg_json_string): the
 * value is made valid UTF-8 as above, and the object serialises with
 * tg_json_escape_inner(), so a JSON line carries no raw control character.
 * NULL when @s is NULL or memory runs out. The one constructor for a JSON
 * value of outside origin.
 */
json_object *tg_json_string_len(const char *s, size_t len);

/*
 * The JSON document in the @len bytes at @s, nested at most @depth deep, or
 * NULL when it is not one whole document within that depth (or @len exceeds
 * what json-c takes). tg_json_parse(): json-c's default depth (32).
 */
json_object *tg_json_parse_depth(const char *s, size_t len, int depth);
json_object *tg_json_parse(const char *s, size_t len);

/* @o's member @a, or that member's member @b when @b is not NULL; NULL when absent or null. */
json_object *tg_json_member(json_object *o, const char *a, const char *b);
json_object *tg_json_string(const char *s);

typedef void (*tg_emit_fn)(void *ctx, const char *p, size_t n);

/*
 * The inside of a JSON string for @len bytes at @s, in pieces through @emit:
 * the RFC 8259 escapes, "\u" escapes for DEL and every other character text
 * escaping would show as "\xNN" (C1, bidirectional controls, U+2028/9), and
 * U+FFFD for each byte that is not UTF-8; '/' as "\/" with @escape_slash.
 * What json-c does for control characters, without the bytes it lets by.
 */
void tg_json_escape_inner(const char *s, size_t len, bool escape_slash, tg_emit_fn emit, void *ctx);

/*
 * For renderers of JSON the agent sent (tlsguard status, events): replace
 * every string value in @o, at any depth, by its escaped text form (text
 * output; 0 or -ENOMEM), or give each the serialiser of tg_json_string()
 * (JSON output).
 */
int tg_json_strings_to_text(json_object *o);
void tg_json_strings_safe(json_object *o);

#endif /* TLSGUARD_AGENT_ESCAPE_H */
