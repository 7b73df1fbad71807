/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Host names the kernel can compare: SipHash-2-4 of the lower-cased name
 * under a random key kept in a pinned map, so a workload cannot craft a
 * server name that collides with a protected one. Used for SNI binding (is
 * this SNI one of the class's names?) and for HTTP CONNECT (which class does
 * the tunnelled host belong to?).
 *
 * A wildcard "*.blob.core.windows.net" is stored as the hash of
 * ".blob.core.windows.net" with TG_NAME_WILDCARD; a name matches it when the
 * part from one of its dots hashes the same (one or more labels in place of
 * the star, as for DNS learning: "x.westus.data.azurecr.io" is under
 * "*.azurecr.io").
 */
#ifndef TLSGUARD_NAMES_H
#define TLSGUARD_NAMES_H

#include <linux/types.h>
#include "tlsguard/opaque.h"

#ifndef TG_INLINE
#define TG_INLINE static inline __attribute__((always_inline))
#endif

#define TG_MAX_NAMES		8192	/* entries in the names map */
#define TG_NAME_BUF		264	/* 255 name bytes, zero padding to a whole word */
#define TG_NAME_ANY_CLASS	0	/* key.class_id of the name → class entries */

enum tg_name_flags {
	TG_NAME_WILDCARD = 1 << 0,
};

struct tg_name_key {
	__u64 hash;			/* tg_siphash() of the lower-cased name */
	__u16 class_id;			/* the class, or TG_NAME_ANY_CLASS */
	__u8 flags;			/* enum tg_name_flags */
	__u8 pad[5];
};
_Static_assert(sizeof(struct tg_name_key) == 16, "tg_name_key layout");

struct tg_name_value {
	__u16 class_id;			/* for TG_NAME_ANY_CLASS keys: the first class naming it */
	__u8 pad[2];
};
_Static_assert(sizeof(struct tg_name_value) == 4, "tg_name_value layout");

struct tg_sipkey {
	__u64 k0, k1;			/* 0, 0 until the agent writes a random key */
};
_Static_assert(sizeof(struct tg_sipkey) == 16, "tg_sipkey layout");

#define TG_ROTL64(x, b)	(((x) << (b)) | ((x) >> (64 - (b))))
#define TG_SIPROUND(v0, v1, v2, v3)				\
	do {							\
		v0 += v1; v1 = TG_ROTL64(v1, 13); v1 ^= v0;	\
		v0 = TG_ROTL64(v0, 32);				\
		v2 += v3; v3 = TG_ROTL64(v3, 16); v3 ^= v2;	\
		v0 += v3; v3 = TG_ROTL64(v3, 21); v3 ^= v0;	\
		v2 += v1; v1 = TG_ROTL64(v1, 17); v1 ^= v2;	\
		v2 = TG_ROTL64(v2, 32);				\
	} while (0)

/* Little-endian 64-bit word of a zero-padded name buffer. */
TG_INLINE __u64 tg_name_word(const __u8 *b, __u32 i)
{
	__u32 o = TG_OPAQUE(i * 8) & 255;	/* mask for the verifier: i <= 31 */
	__u64 w = 0;
	int k;

	for (k = 7; k >= 0; k--)
		w = (w << 8) | b[o + k];
	return w;
}

/*
 * SipHash-2-4 of b[0 .. len), len <= 255. b must hold TG_NAME_BUF bytes with
 * zeros from len on: the final word is read whole and its padding is zero.
 */
TG_INLINE __u64 tg_siphash(const struct tg_sipkey *key, const __u8 *b, __u32 len)
{
	__u64 v0 = 0x736f6d6570736575ULL ^ key->k0;
	__u64 v1 = 0x646f72616e646f6dULL ^ key->k1;
	__u64 v2 = 0x6c7967656e657261ULL ^ key->k0;
	__u64 v3 = 0x7465646279746573ULL ^ key->k1;
	/* opaque: clang would drop "i < 32" below, and old verifiers need it */
	__u32 words = TG_OPAQUE((len & 255) / 8), i;

	for (i = 0; i < 32 && i <= words; i++) {
		__u64 m = tg_name_word(b, i);

		if (i == words)
			m |= (__u64)(len & 255) << 56;
		v3 ^= m;
		TG_SIPROUND(v0, v1, v2, v3);
		TG_SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	v2 ^= 0xff;
	TG_SIPROUND(v0, v1, v2, v3);
	TG_SIPROUND(v0, v1, v2, v3);
	TG_SIPROUND(v0, v1, v2, v3);
	TG_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

#endif /* TLSGUARD_NAMES_H */
