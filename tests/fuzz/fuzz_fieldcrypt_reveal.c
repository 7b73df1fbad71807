// SPDX-License-Identifier: MIT
/*
 * libFuzzer: fieldcrypt_reveal on untrusted JSON (what `tlsguard decrypt`
 * reads): malformed envelopes, wrong key ids, tampered ciphertext, deep
 * nesting. The ring holds one fixed key, so valid values made with it (in
 * the corpus) reach the decryption path.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "fieldcrypt.h"

static struct tg_keyring *ring;

static struct tg_keyring *make_ring(void)
{
	char path[] = "/tmp/tg-fuzz-key-XXXXXX", err[256];
	static const char hex[] =
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";
	struct tg_keyring *kr = NULL;
	int fd = mkstemp(path);

	if (fd < 0)
		abort();
	if (write(fd, hex, sizeof(hex) - 1) == (ssize_t)(sizeof(hex) - 1)) {
		char *paths[] = { path };

		kr = keyring_load(paths, 1, err, sizeof(err));
	}
	close(fd);
	unlink(path);
	if (!kr)
		abort();
	return kr;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_tokener *tok;
	json_object *obj;
	char err[512];

	if (!ring)
		ring = make_ring();
	if (size > 1 << 20)
		return 0;
	tok = json_tokener_new_ex(64);	/* bounded depth, as the CLI's parser */
	if (!tok)
		return 0;
	obj = json_tokener_parse_ex(tok, (const char *)data, (int)size);
	json_tokener_free(tok);
	if (!obj)
		return 0;
	fieldcrypt_reveal(ring, obj, err, sizeof(err));
	json_object_put(obj);
	return 0;
}
