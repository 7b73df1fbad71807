// SPDX-License-Identifier: MIT
/*
 * tlsguard decrypt: restore "enc:v1:" fields of event JSON lines for an
 * authorised reader. Stops at the first line that does not decrypt, so what
 * was written is always authentic plaintext, never a guess.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "commands.h"
#include "fieldcrypt.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: tlsguard decrypt --key-file FILE [--key-file FILE]... [IN]\n"
		"\n"
		"Read tlsguard events (JSON lines) from IN, or standard input when IN is\n"
		"absent or \"-\", and write them to standard output with every encrypted\n"
		"field (\"enc:v1:...\") restored. Hashed fields (\"hmac:v1:...\") stay hashed.\n"
		"Give every key that may have encrypted the input (key rotation).\n"
		"\n"
		"Options:\n"
		"  -k, --key-file FILE  event key: 32 raw bytes, 64 hex characters or base64\n"
		"                       of 32 bytes, read from FILE only (repeatable)\n"
		"  -h, --help           show this help\n"
		"\n"
		"Exit status: 0 all lines decrypted, 1 a line failed (wrong key, tampered or\n"
		"malformed value; the error names the line and field), 2 usage error.\n");
}

static json_object *parse_line(const char *line, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *obj;

	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	obj = json_tokener_parse_ex(tok, line, (int)len + 1);	/* with the NUL: see fieldcrypt.c */
	if (obj && json_tokener_get_parse_end(tok) != len) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	return obj;
}

static size_t trim_eol(char *line, size_t len)
{
	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' ||
		       line[len - 1] == ' ' || line[len - 1] == '\t'))
		line[--len] = '\0';
	return len;
}

static int decrypt_stream(const struct tg_keyring *kr, FILE *in, FILE *out)
{
	const int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
	char *line = NULL, err[512];
	size_t cap = 0, lineno = 0, len;
	ssize_t n;
	int ret = TG_EXIT_OK;

	while ((n = getline(&line, &cap, in)) >= 0) {
		json_object *obj;

		lineno++;
		len = trim_eol(line, n);
		if (!len)
			continue;
		if (len >= INT32_MAX || !(obj = parse_line(line, len))) {
			fprintf(stderr, "tlsguard: line %zu: not valid JSON\n", lineno);
			ret = TG_EXIT_FAIL;
			break;
		}
		if (fieldcrypt_reveal(kr, obj, err, sizeof(err))) {
			fprintf(stderr, "tlsguard: line %zu: %s\n", lineno, err);
			json_object_put(obj);
			ret = TG_EXIT_FAIL;
			break;
		}
		fprintf(out, "%s\n", json_object_to_json_string_ext(obj, flags));
		json_object_put(obj);
	}
	if (ret == TG_EXIT_OK && ferror(in)) {
		fprintf(stderr, "tlsguard: reading input: %s\n", strerror(errno));
		ret = TG_EXIT_FAIL;
	}
	free(line);
	return ret;
}

int cmd_decrypt(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "key-file", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *key_files[TG_KEYRING_MAX];
	struct tg_keyring *kr = NULL;
	size_t nkeys = 0;
	const char *in_path = NULL;
	FILE *in = stdin;
	char err[512];
	int c, ret;

	optind = 0;	/* glibc: full re-initialisation, argv[0] is the subcommand */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:k:h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (nkeys == TG_KEYRING_MAX) {
				fprintf(stderr, "tlsguard: decrypt: at most %d --key-file\n",
					TG_KEYRING_MAX);
				return TG_EXIT_USAGE;
			}
			key_files[nkeys++] = optarg;
			break;
		case 'h':
			usage(stdout);
			return TG_EXIT_OK;
		case ':':
			fprintf(stderr, "tlsguard: decrypt: %s needs an argument\n", argv[optind - 1]);
			return TG_EXIT_USAGE;
		default:
			if (optopt)
				fprintf(stderr, "tlsguard: decrypt: unknown option -%c\n", optopt);
			else
				fprintf(stderr, "tlsguard: decrypt: unknown option %s\n",
					argv[optind - 1]);
			usage(stderr);
			return TG_EXIT_USAGE;
		}
	}
	if (!nkeys) {
		fprintf(stderr, "tlsguard: decrypt: --key-file is required\n");
		usage(stderr);
		return TG_EXIT_USAGE;
	}
	if (argc - optind > 1) {
		fprintf(stderr, "tlsguard: decrypt: one input file at most\n");
		return TG_EXIT_USAGE;
	}
	if (optind < argc && strcmp(argv[optind], "-"))
		in_path = argv[optind];

	kr = keyring_load(key_files, nkeys, err, sizeof(err));
	if (!kr) {
		fprintf(stderr, "tlsguard: %s\n", err);
		return TG_EXIT_FAIL;
	}
	if (in_path) {
		in = fopen(in_path, "re");
		if (!in) {
			fprintf(stderr, "tlsguard: %s: %s\n", in_path, strerror(errno));
			keyring_free(kr);
			return TG_EXIT_FAIL;
		}
	}
	ret = decrypt_stream(kr, in, stdout);
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "tlsguard: writing output: %s\n", strerror(errno));
		ret = TG_EXIT_FAIL;
	}
	if (in != stdin)
		fclose(in);
	keyring_free(kr);
	return ret;
}
