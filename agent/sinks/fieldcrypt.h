/* SPDX-License-Identifier: MIT */
/*
 * Event field protection and the event key ring.
 *
 * Key ring: keys loaded from files only (never argv or the environment), each
 * 32 raw bytes, 64 hex characters or base64 of 32 bytes. The first key
 * encrypts; every key decrypts, so keys can be rotated by prepending a new
 * file. A key is named by its id: the first 8 hex characters of SHA-256(key).
 *
 * encrypt_fields: the value (its JSON text, so numbers and objects come back
 * with their type) is replaced by
 *	enc:v1:<key-id>:<base64(nonce[12] | ciphertext | tag[16])>
 * AES-256-GCM with the key itself, a fresh random 96-bit nonce per value and
 * the dotted field name ("workload.pod") as associated data, so a value moved
 * to another field no longer authenticates.
 *
 * hash_fields: the value is replaced by
 *	hmac:v1:<key-id>:<hex HMAC-SHA256(hkey, field-name | 0x00 | value)>
 * where value is the string itself for JSON strings and the JSON text for
 * anything else, and hkey = HKDF-SHA256(ikm = key, salt = none,
 * info = "tlsguard hash_fields v1", 32 bytes): a separate key so that one key
 * is never used for two algorithms.
 *
 * The key ring is read-only after loading and may be shared between threads.
 */
#ifndef TLSGUARD_FIELDCRYPT_H
#define TLSGUARD_FIELDCRYPT_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#define TG_KEY_LEN		32
#define TG_KEY_ID_LEN		8	/* hex characters */
#define TG_GCM_NONCE_LEN	12
#define TG_GCM_TAG_LEN		16
#define TG_KEYRING_MAX		16
#define TG_ENC_PREFIX		"enc:v1:"
#define TG_HMAC_PREFIX		"hmac:v1:"

struct tg_keyring;
struct tg_fieldcrypt;

/* ---- key ring ------------------------------------------------------------ */

/* An empty ring. NULL + errno on failure. */
struct tg_keyring *keyring_new(void);

/*
 * Append the key in regular file @path. -EINVAL (bad format, message in @err),
 * -ENOSPC (ring full), or -errno from open/read. Warns when the file is
 * readable by every user.
 */
int keyring_add_file(struct tg_keyring *kr, const char *path, char *err, size_t errlen);

/* keyring_new() + keyring_add_file() for each path, in order. NULL + errno. */
struct tg_keyring *keyring_load(char *const *paths, size_t n, char *err, size_t errlen);

/* Wipes every key before freeing. NULL is fine. */
void keyring_free(struct tg_keyring *kr);

size_t keyring_count(const struct tg_keyring *kr);

/* Id of key @i (0 is the one that encrypts): 8 hex characters, or NULL. */
const char *keyring_key_id(const struct tg_keyring *kr, size_t i);

/*
 * AES-256-GCM with the first key. @out receives @len bytes, @tag 16 bytes.
 * The caller provides the nonce (from keyring_nonce()) because formats such
 * as the spool header authenticate it. Returns 0 or -errno.
 */
int keyring_encrypt(const struct tg_keyring *kr, const uint8_t nonce[TG_GCM_NONCE_LEN],
		    const void *aad, size_t aadlen, const void *in, size_t len,
		    void *out, uint8_t tag[TG_GCM_TAG_LEN]);

/*
 * Decrypt with the key(s) whose id is @key_id. -ENOKEY when no key has that
 * id, -EBADMSG when authentication fails (wrong key, tampered data); @out is
 * wiped then, never left with unauthenticated plaintext.
 */
int keyring_decrypt(const struct tg_keyring *kr, const char *key_id,
		    const uint8_t nonce[TG_GCM_NONCE_LEN], const void *aad, size_t aadlen,
		    const void *in, size_t len, const uint8_t tag[TG_GCM_TAG_LEN], void *out);

/* A fresh random nonce. 0 or -EIO. */
int keyring_nonce(uint8_t nonce[TG_GCM_NONCE_LEN]);

/* ---- single values --------------------------------------------------------- */

/* "enc:v1:..." for @len bytes at @pt bound to @field. *out is malloc'd. */
int fieldcrypt_encrypt_value(const struct tg_keyring *kr, const char *field,
			     const void *pt, size_t len, char **out);

/*
 * Open an "enc:v1:..." value for @field. *pt is malloc'd and NUL-terminated
 * (*ptlen excludes the NUL). -EINVAL malformed value, -ENOKEY key id not in
 * the ring, -EBADMSG authentication failed.
 */
int fieldcrypt_decrypt_value(const struct tg_keyring *kr, const char *field,
			     const char *value, char **pt, size_t *ptlen);

/* "hmac:v1:..." for @len bytes at @val under @field. *out is malloc'd. */
int fieldcrypt_hash_value(const struct tg_keyring *kr, const char *field,
			  const void *val, size_t len, char **out);

/* ---- whole events ------------------------------------------------------------ */

/*
 * A protector for the dotted field lists of the policy (events.encrypt_fields,
 * events.hash_fields). @kr is borrowed and must outlive the result; it must
 * hold a key when either list is non-empty. NULL + errno, message in @err.
 * Not shared between threads: see fieldcrypt_protect().
 */
struct tg_fieldcrypt *fieldcrypt_new(const struct tg_keyring *kr,
				     char *const *encrypt_fields, size_t nenc,
				     char *const *hash_fields, size_t nhash,
				     char *err, size_t errlen);
void fieldcrypt_free(struct tg_fieldcrypt *fc);

/*
 * Protect @event in place. Fields that are absent or null are left alone.
 * Fails closed: if a value cannot be protected it is replaced by
 * "[redacted: protection failed]" and the error is returned, so the event can
 * still be emitted without leaking the value. A tg_fieldcrypt keeps keyed
 * OpenSSL contexts: use one per thread (the key ring itself can be shared).
 */
int fieldcrypt_protect(struct tg_fieldcrypt *fc, json_object *event);

/*
 * Restore every "enc:v1:" string anywhere in @obj in place (objects and
 * arrays are walked). The associated data tried for a value at path
 * "a.b.c" is "a.b.c", then "b.c", then "c", so events wrapped in another
 * document (an Application Insights envelope, a Log Analytics export with
 * flattened "workload.pod" keys) decrypt too. On failure returns -EINVAL,
 * -ENOKEY or -EBADMSG with a message naming the field in @err, e.g.
 *	field "workload.pod": authentication failed (wrong key or tampered value)
 * and @obj is partly restored: discard it.
 */
int fieldcrypt_reveal(const struct tg_keyring *kr, json_object *obj, char *err, size_t errlen);

#endif /* TLSGUARD_FIELDCRYPT_H */
