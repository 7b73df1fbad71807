// SPDX-License-Identifier: MIT
/*
 * libFuzzer: the ways out of strings of outside origin (escape.h), and the
 * text views of `tlsguard status` / `tlsguard events` (cli/render.h) over any
 * JSON an agent could send. Aborts when a raw control byte (below 0x20 but
 * newline, DEL, C1 or a bidirectional control) or invalid UTF-8 reaches an
 * output, when escaped text does not read back to the input, or when a JSON
 * string does not parse back to its (UTF-8-repaired) value.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "cli/render.h"
#include "escape.h"

static void check_clean(const char *what, const char *s, size_t len, bool newlines)
{
	const unsigned char *b = (const unsigned char *)s;

	for (size_t i = 0; i < len; i++) {
		if ((b[i] < 0x20 && !(newlines && b[i] == '\n')) || b[i] == 0x7f)
			goto bad;
		if (i + 1 < len && b[i] == 0xc2 && b[i + 1] >= 0x80 && b[i + 1] <= 0x9f)
			goto bad;
		if (i + 2 < len && b[i] == 0xe2 && b[i + 1] == 0x80 && b[i + 2] >= 0xa8 && b[i + 2] <= 0xae)
			goto bad;
	}
	if (tg_utf8_valid(s, len))
		return;
bad:
	fprintf(stderr, "%s: raw control character or invalid UTF-8 in %zu bytes\n", what, len);
	abort();
}

/* tg_escape's output, read back: exactly the input. */
static void check_reads_back(const uint8_t *in, size_t len, const char *out)
{
	size_t o = 0;

	for (size_t i = 0; out[i]; i++) {
		unsigned char c = out[i];

		if (c == '\\' && out[i + 1] == '\\') {
			i++;
		} else if (c == '\\' && out[i + 1] == 'x') {
			char hex[3] = { out[i + 2], out[i + 3], 0 };

			c = (unsigned char)strtoul(hex, NULL, 16);
			i += 3;
		}
		if (o >= len || in[o++] != c) {
			fprintf(stderr, "escaped text does not read back to the input\n");
			abort();
		}
	}
	if (o != len)
		abort();
}

static void escape_paths(const uint8_t *data, size_t size)
{
	size_t cap = size * 4 + 1, olen;
	char *out = malloc(cap), *fixed;
	json_object *s, *back;
	const char *line;

	if (!out)
		return;
	if (!tg_escape(out, cap, (const char *)data, size, 0))
		abort();	/* 4 bytes per input byte always fit */
	check_clean("tg_escape", out, strlen(out), false);
	check_reads_back(data, size, out);
	free(out);

	s = tg_json_string_len((const char *)data, size);
	fixed = tg_utf8_repair((const char *)data, size, &olen);
	if (!s || !fixed)
		abort();
	line = json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN);
	check_clean("JSON string", line, strlen(line), false);
	back = json_tokener_parse(line);
	if (!back || (size_t)json_object_get_string_len(back) != olen ||
	    memcmp(json_object_get_string(back), fixed, olen))
		abort();
	json_object_put(back);
	json_object_put(s);
	free(fixed);
}

/* The input as what the agent sent: a status object, or an event line. */
static void render_paths(const uint8_t *data, size_t size)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = tok ? json_tokener_parse_ex(tok, (const char *)data, (int)size) : NULL;
	char *text = NULL;
	size_t len = 0;
	FILE *m;

	json_tokener_free(tok);
	if (!o)
		return;
	if (json_object_is_type(o, json_type_object) && !tg_json_strings_to_text(o)) {
		m = open_memstream(&text, &len);
		if (!m)
			abort();
		status_render_text(m, o, false);
		events_render_text(m, o);
		fclose(m);
		check_clean("text view", text, len, true);
		free(text);
	}
	json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	escape_paths(data, size);
	render_paths(data, size);
	return 0;
}
