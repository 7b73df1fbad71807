// SPDX-License-Identifier: MIT
/*
 * Event key ring and field protection (AES-256-GCM, HMAC-SHA256). The format
 * is described in fieldcrypt.h; everything an auditor needs to decrypt without
 * tlsguard is there.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "bytes.h"
#include "fieldcrypt.h"
#include "keypath.h"
#include "secretfile.h"
#include "log.h"

#define KEY_FILE_MAX	1024	/* the longest valid key file is ~70 bytes */
#define HASH_INFO	"tlsguard hash_fields v1"
#define REDACTED	"[redacted: protection failed]"
#define ENC_PREFIX_LEN	(sizeof(TG_ENC_PREFIX) - 1)
#define HMAC_PREFIX_LEN	(sizeof(TG_HMAC_PREFIX) - 1)

struct tg_key {
	uint8_t enc[TG_KEY_LEN];	/* AES-256-GCM key, as read from the file */
	uint8_t mac[TG_KEY_LEN];	/* HKDF-derived HMAC key for hash_fields */
	char id[TG_KEY_ID_LEN + 1];
};

struct tg_keyring {
	struct tg_key keys[TG_KEYRING_MAX];	/* fixed: no realloc leaving copies behind */
	size_t n;
	EVP_CIPHER *gcm;	/* fetched once: implicit fetches cost a lookup per call */
	EVP_MAC *hmac;
	EVP_KDF *hkdf;
};

struct field {
	char *name;		/* dotted name as configured: the associated data */
	char *parts;		/* the same with '.' replaced by '\0' */
	size_t nparts;
};

struct tg_fieldcrypt {
	const struct tg_keyring *kr;
	struct field *enc, *hash;
	size_t nenc, nhash;
	/*
	 * Keyed once with the first key: per value only the nonce changes. Saves
	 * the key schedule and most of OpenSSL 3's parameter lookups, about half
	 * the cost of a value. Why a tg_fieldcrypt belongs to one thread.
	 */
	EVP_CIPHER_CTX *gcm;
	EVP_MAC_CTX *mac;
};

/* ---- encodings ------------------------------------------------------------ */

static int hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int hex_decode(const char *s, size_t len, uint8_t *out)
{
	for (size_t i = 0; i < len / 2; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = hi << 4 | lo;
	}
	return len % 2 ? -EINVAL : 0;
}

static void hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Strict standard base64 (RFC 4648 section 4). Padding is optional unless
 * @need_pad. Returns the decoded length or -EINVAL / -ENOSPC.
 */
static ssize_t b64_decode(const char *s, size_t len, uint8_t *out, size_t cap, bool need_pad)
{
	uint32_t acc = 0;
	size_t bits = 0, n = 0;

	if (len % 4 == 0 && len && s[len - 1] == '=')
		len -= (s[len - 2] == '=') ? 2 : 1;
	else if (need_pad && len % 4)
		return -EINVAL;
	if (len % 4 == 1)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		int v = b64val(s[i]);

		if (v < 0)
			return -EINVAL;
		acc = acc << 6 | v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n == cap)
				return -ENOSPC;
			out[n++] = acc >> bits;
		}
	}
	/* Leftover bits must be zero: one text per byte string. */
	if (acc & ((1u << bits) - 1))
		return -EINVAL;
	return n;
}

/* ---- key ring -------------------------------------------------------------- */

struct tg_keyring *keyring_new(void)
{
	struct tg_keyring *kr = calloc(1, sizeof(*kr));

	if (!kr)
		return NULL;
	kr->gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	kr->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	kr->hkdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	if (!kr->gcm || !kr->hmac || !kr->hkdf) {
		keyring_free(kr);
		errno = ENOSYS;
		return NULL;
	}
	return kr;
}

void keyring_free(struct tg_keyring *kr)
{
	if (!kr)
		return;
	OPENSSL_cleanse(kr->keys, sizeof(kr->keys));
	EVP_CIPHER_free(kr->gcm);
	EVP_MAC_free(kr->hmac);
	EVP_KDF_free(kr->hkdf);
	free(kr);
}

size_t keyring_count(const struct tg_keyring *kr)
{
	return kr ? kr->n : 0;
}

const char *keyring_key_id(const struct tg_keyring *kr, size_t i)
{
	return kr && i < kr->n ? kr->keys[i].id : NULL;
}

static bool all_printable(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (b[i] < 0x20 || b[i] > 0x7e)
			return false;
	}
	return true;
}

/*
 * 32 bytes that are all printable are text (a passphrase, a 128-bit hex key),
 * not a random key: the odds of that for random bytes are about 1e-14.
 */
static int parse_key(const uint8_t *buf, size_t len, uint8_t key[TG_KEY_LEN])
{
	uint8_t tmp[TG_KEY_LEN + 3];
	const char *s = (const char *)buf;
	ssize_t n;

	if (len == TG_KEY_LEN && !all_printable(buf, len)) {
		memcpy(key, buf, TG_KEY_LEN);
		return 0;
	}
	while (len && isspace((unsigned char)*s)) {
		s++;
		len--;
	}
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (len == 2 * TG_KEY_LEN && !hex_decode(s, len, key))
		return 0;
	n = b64_decode(s, len, tmp, sizeof(tmp), false);
	if (n == TG_KEY_LEN)
		memcpy(key, tmp, TG_KEY_LEN);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return n == TG_KEY_LEN ? 0 : -EINVAL;
}

static int read_key_file(const char *path, uint8_t key[TG_KEY_LEN], char *err, size_t errlen)
{
	uint8_t buf[KEY_FILE_MAX + 1];
	size_t got = 0;
	int ret = secret_file_read(path, "key file", buf, sizeof(buf), &got, err, errlen);

	if (!ret && (got > KEY_FILE_MAX || parse_key(buf, got, key)))
		ret = tg_seterr(err, errlen, -EINVAL,
			     "key file %s: expected 32 random bytes, 64 hex characters or base64 of "
			     "32 bytes (e.g. from `openssl rand -base64 32`)", path);
	OPENSSL_cleanse(buf, sizeof(buf));
	return ret;
}

static int derive_key(const struct tg_keyring *kr, struct tg_key *k)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	OSSL_PARAM params[4];
	EVP_KDF_CTX *kctx;
	int ok;

	if (EVP_Digest(k->enc, TG_KEY_LEN, md, &mdlen, EVP_sha256(), NULL) != 1)
		return -EIO;
	hex_encode(md, TG_KEY_ID_LEN / 2, k->id);

	kctx = EVP_KDF_CTX_new(kr->hkdf);
	if (!kctx)
		return -ENOMEM;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, k->enc, TG_KEY_LEN);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (char *)HASH_INFO,
						      strlen(HASH_INFO));
	params[3] = OSSL_PARAM_construct_end();
	ok = EVP_KDF_derive(kctx, k->mac, TG_KEY_LEN, params);
	EVP_KDF_CTX_free(kctx);
	return ok == 1 ? 0 : -EIO;
}

int keyring_add_file(struct tg_keyring *kr, const char *path, char *err, size_t errlen)
{
	struct tg_key *k;
	int ret;

	if (kr->n == TG_KEYRING_MAX)
		return tg_seterr(err, errlen, -ENOSPC, "key file %s: too many keys (at most %d)",
			      path, TG_KEYRING_MAX);
	k = &kr->keys[kr->n];
	ret = read_key_file(path, k->enc, err, errlen);
	if (!ret) {
		ret = derive_key(kr, k);
		if (ret)
			tg_seterr(err, errlen, ret, "key file %s: key derivation failed", path);
	}
	if (ret) {
		OPENSSL_cleanse(k, sizeof(*k));
		return ret;
	}
	kr->n++;
	return 0;
}

struct tg_keyring *keyring_load(char *const *paths, size_t n, char *err, size_t errlen)
{
	struct tg_keyring *kr = keyring_new();
	int ret;

	if (!kr) {
		tg_seterr(err, errlen, -errno, "cannot set up AES-256-GCM/HMAC: %s", strerror(errno));
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		ret = keyring_add_file(kr, paths[i], err, errlen);
		if (ret) {
			keyring_free(kr);
			errno = -ret;
			return NULL;
		}
	}
	return kr;
}

/*
 * Random nonces are drawn NONCE_POOL at a time: one RAND_bytes() call costs
 * about what sealing a short field does (DRBG lock, fork check), and a field
 * protected per event pays it per field. The pool is per thread, and a fork
 * empties every pool (the child must never reuse a nonce its parent drew).
 */
#define NONCE_POOL	32

static unsigned long nonce_forks;

static void nonce_forked(void)
{
	__atomic_add_fetch(&nonce_forks, 1, __ATOMIC_RELAXED);
}

static void nonce_watch_forks(void)
{
	pthread_atfork(NULL, NULL, nonce_forked);
}

int keyring_nonce(uint8_t nonce[TG_GCM_NONCE_LEN])
{
	static __thread uint8_t pool[NONCE_POOL][TG_GCM_NONCE_LEN];
	static __thread unsigned int left;
	static __thread unsigned long drawn_at;
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	unsigned long forks;

	pthread_once(&once, nonce_watch_forks);
	forks = __atomic_load_n(&nonce_forks, __ATOMIC_RELAXED);
	if (!left || drawn_at != forks) {
		if (RAND_bytes(&pool[0][0], sizeof(pool)) != 1) {
			left = 0;
			return -EIO;
		}
		left = NONCE_POOL;
		drawn_at = forks;
	}
	left--;
	memcpy(nonce, pool[left], TG_GCM_NONCE_LEN);
	OPENSSL_cleanse(pool[left], TG_GCM_NONCE_LEN);	/* handed out once */
	return 0;
}

static int gcm_seal(const EVP_CIPHER *gcm, const uint8_t *key, const uint8_t *nonce,
		    const void *aad, size_t aadlen, const void *in, size_t len,
		    uint8_t *out, uint8_t *tag)
{
	uint8_t dummy[16];
	EVP_CIPHER_CTX *ctx;
	int outl = 0, ret = -EIO;

	if (len > INT_MAX || aadlen > INT_MAX)
		return -EMSGSIZE;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (EVP_EncryptInit_ex2(ctx, gcm, key, nonce, NULL) != 1)
		goto out;
	if (aadlen && EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int)aadlen) != 1)
		goto out;
	outl = 0;
	if (len && EVP_EncryptUpdate(ctx, out, &outl, in, (int)len) != 1)
		goto out;
	/* GCM is a stream mode: Update wrote all @len bytes, Final writes none. */
	if (EVP_EncryptFinal_ex(ctx, len ? out + outl : dummy, &outl) != 1)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TG_GCM_TAG_LEN, tag) != 1)
		goto out;
	ret = 0;
out:
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

static int gcm_open(const EVP_CIPHER *gcm, const uint8_t *key, const uint8_t *nonce,
		    const void *aad, size_t aadlen, const void *in, size_t len,
		    const uint8_t *tag, uint8_t *out)
{
	uint8_t dummy[16], tagcopy[TG_GCM_TAG_LEN];
	EVP_CIPHER_CTX *ctx;
	int outl = 0, ret = -EBADMSG;

	if (len > INT_MAX || aadlen > INT_MAX)
		return -EMSGSIZE;
	ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	memcpy(tagcopy, tag, sizeof(tagcopy));
	if (EVP_DecryptInit_ex2(ctx, gcm, key, nonce, NULL) != 1)
		goto out;
	if (aadlen && EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int)aadlen) != 1)
		goto out;
	outl = 0;
	if (len && EVP_DecryptUpdate(ctx, out, &outl, in, (int)len) != 1)
		goto out;
	if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TG_GCM_TAG_LEN, tagcopy) != 1)
		goto out;
	if (EVP_DecryptFinal_ex(ctx, len ? out + outl : dummy, &outl) != 1)
		goto out;
	ret = 0;
out:
	if (ret && len)
		OPENSSL_cleanse(out, len);	/* never hand out unauthenticated plaintext */
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

int keyring_encrypt(const struct tg_keyring *kr, const uint8_t nonce[TG_GCM_NONCE_LEN],
		    const void *aad, size_t aadlen, const void *in, size_t len,
		    void *out, uint8_t tag[TG_GCM_TAG_LEN])
{
	if (!kr || !kr->n)
		return -ENOKEY;
	return gcm_seal(kr->gcm, kr->keys[0].enc, nonce, aad, aadlen, in, len, out, tag);
}

int keyring_decrypt(const struct tg_keyring *kr, const char *key_id,
		    const uint8_t nonce[TG_GCM_NONCE_LEN], const void *aad, size_t aadlen,
		    const void *in, size_t len, const uint8_t tag[TG_GCM_TAG_LEN], void *out)
{
	int ret = -ENOKEY;

	/* Ids are 32 bits: two keys may share one, so try every match. */
	for (size_t i = 0; kr && i < kr->n; i++) {
		if (strncmp(kr->keys[i].id, key_id, TG_KEY_ID_LEN))
			continue;
		ret = gcm_open(kr->gcm, kr->keys[i].enc, nonce, aad, aadlen, in, len, tag, out);
		if (ret != -EBADMSG)
			return ret;
	}
	return ret;
}

/* ---- single values ------------------------------------------------------------ */

/* A GCM context keyed with the first key, nonce still to set. */
static EVP_CIPHER_CTX *gcm_ctx_new(const struct tg_keyring *kr)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	if (ctx && EVP_EncryptInit_ex2(ctx, kr->gcm, kr->keys[0].enc, NULL, NULL) != 1) {
		EVP_CIPHER_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

/* An HMAC-SHA256 context keyed with the first key's hash key. */
static EVP_MAC_CTX *mac_ctx_new(const struct tg_keyring *kr)
{
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(kr->hmac);
	OSSL_PARAM params[2];

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] = OSSL_PARAM_construct_end();
	if (ctx && EVP_MAC_init(ctx, kr->keys[0].mac, TG_KEY_LEN, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

static int seal_value(EVP_CIPHER_CTX *ctx, const char *key_id, const char *field,
		      const void *pt, size_t len, char **out)
{
	size_t bloblen = TG_GCM_NONCE_LEN + len + TG_GCM_TAG_LEN, b64len;
	uint8_t *blob, *ct, *tag;
	int outl = 0, ret = -EIO;
	char *s;

	*out = NULL;
	if (len > INT_MAX / 2)
		return -EMSGSIZE;
	blob = malloc(bloblen);
	if (!blob)
		return -ENOMEM;
	ct = blob + TG_GCM_NONCE_LEN;
	tag = ct + len;
	if (keyring_nonce(blob) ||
	    EVP_EncryptInit_ex2(ctx, NULL, NULL, blob, NULL) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &outl, (const uint8_t *)field, strlen(field)) != 1 ||
	    (len && EVP_EncryptUpdate(ctx, ct, &outl, pt, (int)len) != 1) ||
	    EVP_EncryptFinal_ex(ctx, tag, &outl) != 1 ||	/* GCM: writes nothing */
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TG_GCM_TAG_LEN, tag) != 1)
		goto out;
	b64len = 4 * ((bloblen + 2) / 3);
	s = malloc(ENC_PREFIX_LEN + TG_KEY_ID_LEN + 1 + b64len + 1);
	if (!s) {
		ret = -ENOMEM;
		goto out;
	}
	memcpy(s, TG_ENC_PREFIX, ENC_PREFIX_LEN);
	memcpy(s + ENC_PREFIX_LEN, key_id, TG_KEY_ID_LEN);
	s[ENC_PREFIX_LEN + TG_KEY_ID_LEN] = ':';
	EVP_EncodeBlock((unsigned char *)s + ENC_PREFIX_LEN + TG_KEY_ID_LEN + 1, blob, (int)bloblen);
	*out = s;
	ret = 0;
out:
	free(blob);
	return ret;
}

static int mac_value(EVP_MAC_CTX *ctx, const char *key_id, const char *field,
		     const void *val, size_t len, char **out)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	size_t mdlen = 0;
	char *s;

	*out = NULL;
	/* NULL key: start over with the key already set. The NUL after the name
	 * keeps ("ab","c") and ("a","bc") apart. */
	if (EVP_MAC_init(ctx, NULL, 0, NULL) != 1 ||
	    EVP_MAC_update(ctx, (const uint8_t *)field, strlen(field) + 1) != 1 ||
	    EVP_MAC_update(ctx, val, len) != 1 ||
	    EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) != 1 || mdlen != 32)
		return -EIO;
	s = malloc(HMAC_PREFIX_LEN + TG_KEY_ID_LEN + 1 + 2 * mdlen + 1);
	if (!s)
		return -ENOMEM;
	memcpy(s, TG_HMAC_PREFIX, HMAC_PREFIX_LEN);
	memcpy(s + HMAC_PREFIX_LEN, key_id, TG_KEY_ID_LEN);
	s[HMAC_PREFIX_LEN + TG_KEY_ID_LEN] = ':';
	hex_encode(md, mdlen, s + HMAC_PREFIX_LEN + TG_KEY_ID_LEN + 1);
	*out = s;
	return 0;
}

int fieldcrypt_encrypt_value(const struct tg_keyring *kr, const char *field,
			     const void *pt, size_t len, char **out)
{
	EVP_CIPHER_CTX *ctx;
	int ret;

	*out = NULL;
	if (!kr || !kr->n)
		return -ENOKEY;
	ctx = gcm_ctx_new(kr);
	if (!ctx)
		return -ENOMEM;
	ret = seal_value(ctx, kr->keys[0].id, field, pt, len, out);
	EVP_CIPHER_CTX_free(ctx);
	return ret;
}

struct sealed {
	char id[TG_KEY_ID_LEN + 1];
	uint8_t *blob;		/* nonce | ciphertext | tag */
	size_t len;
};

static int sealed_parse(const char *s, size_t slen, struct sealed *e)
{
	const char *b64 = s + ENC_PREFIX_LEN + TG_KEY_ID_LEN + 1;
	size_t b64len;
	ssize_t n;

	e->blob = NULL;
	if (slen < ENC_PREFIX_LEN + TG_KEY_ID_LEN + 1 || memcmp(s, TG_ENC_PREFIX, ENC_PREFIX_LEN))
		return -EINVAL;
	for (size_t i = 0; i < TG_KEY_ID_LEN; i++) {
		char c = s[ENC_PREFIX_LEN + i];

		if (!isdigit((unsigned char)c) && !(c >= 'a' && c <= 'f'))
			return -EINVAL;
		e->id[i] = c;
	}
	e->id[TG_KEY_ID_LEN] = '\0';
	if (b64[-1] != ':')
		return -EINVAL;
	b64len = slen - (b64 - s);
	if (b64len % 4 || b64len < 4 * ((TG_GCM_NONCE_LEN + TG_GCM_TAG_LEN + 2) / 3))
		return -EINVAL;
	e->blob = malloc(b64len / 4 * 3);
	if (!e->blob)
		return -ENOMEM;
	n = b64_decode(b64, b64len, e->blob, b64len / 4 * 3, true);
	if (n < TG_GCM_NONCE_LEN + TG_GCM_TAG_LEN) {
		free(e->blob);
		e->blob = NULL;
		return -EINVAL;
	}
	e->len = n;
	return 0;
}

static int sealed_open(const struct tg_keyring *kr, const struct sealed *e, const char *aad,
		       char **pt, size_t *ptlen)
{
	size_t ctlen = e->len - TG_GCM_NONCE_LEN - TG_GCM_TAG_LEN;
	char *buf = malloc(ctlen + 1);
	int ret;

	if (!buf)
		return -ENOMEM;
	ret = keyring_decrypt(kr, e->id, e->blob, aad, strlen(aad), e->blob + TG_GCM_NONCE_LEN,
			      ctlen, e->blob + TG_GCM_NONCE_LEN + ctlen, buf);
	if (ret) {
		free(buf);
		return ret;
	}
	buf[ctlen] = '\0';
	*pt = buf;
	*ptlen = ctlen;
	return 0;
}

int fieldcrypt_decrypt_value(const struct tg_keyring *kr, const char *field,
			     const char *value, char **pt, size_t *ptlen)
{
	struct sealed e;
	int ret;

	*pt = NULL;
	*ptlen = 0;
	ret = sealed_parse(value, strlen(value), &e);
	if (ret)
		return ret;
	ret = sealed_open(kr, &e, field, pt, ptlen);
	free(e.blob);
	return ret;
}

int fieldcrypt_hash_value(const struct tg_keyring *kr, const char *field,
			  const void *val, size_t len, char **out)
{
	EVP_MAC_CTX *ctx;
	int ret;

	*out = NULL;
	if (!kr || !kr->n)
		return -ENOKEY;
	ctx = mac_ctx_new(kr);
	if (!ctx)
		return -ENOMEM;
	ret = mac_value(ctx, kr->keys[0].id, field, val, len, out);
	EVP_MAC_CTX_free(ctx);
	return ret;
}

/* ---- whole events -------------------------------------------------------------- */

static int field_init(struct field *f, const char *name)
{
	size_t len = strlen(name);

	if (!len || name[0] == '.' || name[len - 1] == '.' || strstr(name, ".."))
		return -EINVAL;
	f->name = strdup(name);
	f->parts = strdup(name);
	if (!f->name || !f->parts)
		return -ENOMEM;
	f->nparts = 1;
	for (char *p = f->parts; *p; p++) {
		if (*p == '.') {
			*p = '\0';
			f->nparts++;
		}
	}
	return 0;
}

static void fields_free(struct field *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].name);
		free(v[i].parts);
	}
	free(v);
}

void fieldcrypt_free(struct tg_fieldcrypt *fc)
{
	if (!fc)
		return;
	fields_free(fc->enc, fc->nenc);
	fields_free(fc->hash, fc->nhash);
	EVP_CIPHER_CTX_free(fc->gcm);	/* both wipe their key material */
	EVP_MAC_CTX_free(fc->mac);
	free(fc);
}

static bool listed(char *const *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (!strcmp(v[i], name))
			return true;
	}
	return false;
}

static int fields_init(struct field **out, char *const *names, size_t n, const char *what,
		       char *const *other, size_t nother, char *err, size_t errlen)
{
	struct field *v = calloc(n ? n : 1, sizeof(*v));
	int ret;

	if (!v)
		return tg_seterr(err, errlen, -ENOMEM, "out of memory");
	*out = v;
	for (size_t i = 0; i < n; i++) {
		if (listed(names, i, names[i]))
			return tg_seterr(err, errlen, -EINVAL, "%s: \"%s\" is listed twice", what, names[i]);
		if (listed(other, nother, names[i]))
			return tg_seterr(err, errlen, -EINVAL,
				      "\"%s\" is in both encrypt_fields and hash_fields", names[i]);
		ret = field_init(&v[i], names[i]);
		if (ret)
			return tg_seterr(err, errlen, ret, "%s: \"%s\" is not a dotted field name",
				      what, names[i]);
	}
	return 0;
}

struct tg_fieldcrypt *fieldcrypt_new(const struct tg_keyring *kr,
				     char *const *encrypt_fields, size_t nenc,
				     char *const *hash_fields, size_t nhash,
				     char *err, size_t errlen)
{
	struct tg_fieldcrypt *fc;
	int ret;

	if ((nenc || nhash) && !keyring_count(kr)) {
		tg_seterr(err, errlen, -EINVAL,
		       "events.encrypt_fields and events.hash_fields need an event key (events.key_file)");
		errno = EINVAL;
		return NULL;
	}
	fc = calloc(1, sizeof(*fc));
	if (!fc) {
		tg_seterr(err, errlen, -ENOMEM, "out of memory");
		return NULL;
	}
	fc->kr = kr;
	fc->nenc = nenc;
	fc->nhash = nhash;
	ret = fields_init(&fc->enc, encrypt_fields, nenc, "encrypt_fields", NULL, 0, err, errlen);
	if (!ret)
		ret = fields_init(&fc->hash, hash_fields, nhash, "hash_fields",
				  encrypt_fields, nenc, err, errlen);
	if (!ret && nenc && !(fc->gcm = gcm_ctx_new(kr)))
		ret = tg_seterr(err, errlen, -ENOMEM, "cannot set up AES-256-GCM");
	if (!ret && nhash && !(fc->mac = mac_ctx_new(kr)))
		ret = tg_seterr(err, errlen, -ENOMEM, "cannot set up HMAC-SHA256");
	if (ret) {
		fieldcrypt_free(fc);
		errno = -ret;
		return NULL;
	}
	return fc;
}

/* The value at @f in @ev, its parent object and its key there; NULL when absent or null. */
static json_object *lookup(json_object *ev, const struct field *f, json_object **parent,
			   const char **leaf)
{
	const char *part = f->parts;
	json_object *cur = ev, *next;

	for (size_t i = 0; i < f->nparts; i++) {
		if (!json_object_is_type(cur, json_type_object) ||
		    !json_object_object_get_ex(cur, part, &next))
			break;
		if (i + 1 == f->nparts) {
			*parent = cur;
			*leaf = part;
			return next;
		}
		cur = next;
		part += strlen(part) + 1;
	}
	/* Already flattened documents carry "workload.pod" as one key. */
	if (f->nparts > 1 && json_object_is_type(ev, json_type_object) &&
	    json_object_object_get_ex(ev, f->name, &next)) {
		*parent = ev;
		*leaf = f->name;
		return next;
	}
	return NULL;
}

static int protect_value(struct tg_fieldcrypt *fc, const struct field *f, json_object *val,
			 bool encrypt, char **out)
{
	const int flags = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
	const char *txt;
	size_t len;

	/* Encrypt the JSON text so that numbers and objects come back with their type. */
	if (!encrypt && json_object_is_type(val, json_type_string)) {
		txt = json_object_get_string(val);
		len = json_object_get_string_len(val);
	} else {
		txt = json_object_to_json_string_length(val, flags, &len);
		if (!txt)
			return -ENOMEM;
	}
	if (encrypt)
		return seal_value(fc->gcm, fc->kr->keys[0].id, f->name, txt, len, out);
	return mac_value(fc->mac, fc->kr->keys[0].id, f->name, txt, len, out);
}

static int protect_field(struct tg_fieldcrypt *fc, const struct field *f, json_object *ev,
			 bool encrypt)
{
	json_object *parent = NULL, *val, *repl;
	const char *leaf = NULL;
	char *out = NULL;
	int ret;

	val = lookup(ev, f, &parent, &leaf);
	if (!val)
		return 0;
	ret = protect_value(fc, f, val, encrypt, &out);
	repl = json_object_new_string(ret ? REDACTED : out);
	free(out);
	if (!repl || json_object_object_add(parent, leaf, repl)) {
		/* Not even the marker fits in memory: the value must still go. */
		json_object_put(repl);
		json_object_object_del(parent, leaf);
		return -ENOMEM;
	}
	return ret;
}

int fieldcrypt_protect(struct tg_fieldcrypt *fc, json_object *event)
{
	int ret = 0, r;

	for (size_t i = 0; i < fc->nenc; i++) {
		r = protect_field(fc, &fc->enc[i], event, true);
		if (r && !ret)
			ret = r;
	}
	for (size_t i = 0; i < fc->nhash; i++) {
		r = protect_field(fc, &fc->hash[i], event, false);
		if (r && !ret)
			ret = r;
	}
	return ret;
}

/* ---- reveal ------------------------------------------------------------------ */

struct walk {
	const struct tg_keyring *kr;
	struct tg_keypath path;	/* of the value being visited */
	char *err;
	size_t errlen;
};

static json_object *parse_exact(const char *s, size_t len)
{
	json_tokener *tok = json_tokener_new();
	json_object *obj;

	if (!tok || len >= INT_MAX) {
		json_tokener_free(tok);
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	/* Include the NUL: without it json-c cannot tell that a bare number has ended. */
	obj = json_tokener_parse_ex(tok, s, (int)len + 1);
	if (obj && json_tokener_get_parse_end(tok) != len) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	return obj;
}

static int reveal_string(struct walk *w, const char *s, size_t len, json_object **out)
{
	const char *aad = w->path.buf;
	struct sealed e;
	char *pt = NULL;
	size_t ptlen = 0;
	int ret;

	ret = sealed_parse(s, len, &e);
	if (ret == -EINVAL)
		return tg_seterr(w->err, w->errlen, ret, "field \"%s\": malformed encrypted value",
			      w->path.buf);
	if (ret)
		return tg_seterr(w->err, w->errlen, ret, "out of memory");
	/* Longest path first, then ever shorter suffixes: see fieldcrypt.h. */
	for (;;) {
		ret = sealed_open(w->kr, &e, aad, &pt, &ptlen);
		if (ret != -EBADMSG || !strchr(aad, '.'))
			break;
		aad = strchr(aad, '.') + 1;
	}
	free(e.blob);
	if (ret == -ENOKEY)
		return tg_seterr(w->err, w->errlen, ret,
			      "field \"%s\": encrypted with key %s, which is not in the key ring "
			      "(wrong key file?)", w->path.buf, e.id);
	if (ret == -EBADMSG)
		return tg_seterr(w->err, w->errlen, ret,
			      "field \"%s\": authentication failed (wrong key or tampered value)",
			      w->path.buf);
	if (ret)
		return tg_seterr(w->err, w->errlen, ret, "field \"%s\": %s", w->path.buf, strerror(-ret));
	*out = parse_exact(pt, ptlen);
	OPENSSL_cleanse(pt, ptlen);
	free(pt);
	if (!*out)
		return tg_seterr(w->err, w->errlen, -EBADMSG,
			      "field \"%s\": decrypted value is not JSON", w->path.buf);
	return 0;
}

static int reveal_walk(struct walk *w, json_object *obj);

/* Visit @val, which lives in @parent under @key (objects) or at @idx (arrays). */
static int reveal_visit(struct walk *w, json_object *parent, const char *key, size_t idx,
			json_object *val)
{
	json_object *plain = NULL;
	const char *s;
	int ret;

	if (json_object_is_type(val, json_type_object) || json_object_is_type(val, json_type_array))
		return reveal_walk(w, val);
	if (!json_object_is_type(val, json_type_string))
		return 0;
	s = json_object_get_string(val);
	if (strncmp(s, TG_ENC_PREFIX, ENC_PREFIX_LEN))
		return 0;
	ret = reveal_string(w, s, json_object_get_string_len(val), &plain);
	if (ret)
		return ret;
	ret = key ? json_object_object_add(parent, key, plain)
		  : json_object_array_put_idx(parent, idx, plain);
	if (ret) {
		json_object_put(plain);
		return tg_seterr(w->err, w->errlen, -ENOMEM, "out of memory");
	}
	return 0;
}

static int reveal_walk(struct walk *w, json_object *obj)
{
	size_t saved = w->path.len;
	int ret = 0;

	if (json_object_is_type(obj, json_type_array)) {
		/* Elements share the array's path: encrypted fields are never array items. */
		for (size_t i = 0; !ret && i < json_object_array_length(obj); i++)
			ret = reveal_visit(w, obj, NULL, i, json_object_array_get_idx(obj, i));
		return ret;
	}
	if (!json_object_is_type(obj, json_type_object))
		return 0;
	json_object_object_foreach(obj, k, v) {
		ret = tg_keypath_push(&w->path, k);
		if (ret)
			return tg_seterr(w->err, w->errlen, ret, "out of memory");
		ret = reveal_visit(w, obj, k, 0, v);
		tg_keypath_cut(&w->path, saved);
		if (ret)
			return ret;
	}
	return 0;
}

int fieldcrypt_reveal(const struct tg_keyring *kr, json_object *obj, char *err, size_t errlen)
{
	struct walk w = { .kr = kr, .err = err, .errlen = errlen };
	int ret;

	if (tg_keypath_init(&w.path))
		return tg_seterr(err, errlen, -ENOMEM, "out of memory");
	/* A bare top-level string has no field name and cannot be replaced in place. */
	ret = reveal_walk(&w, obj);
	tg_keypath_free(&w.path);
	return ret;
}
