/* SPDX-License-Identifier: MIT */
/*
 * The files the event protection and the App Insights sink are configured
 * with (events.key_file[s], encrypt_fields/hash_fields, the connection string
 * file), as plain data: the policy fills it (policy_ai_config()), the agent
 * loads keys from it, and `tlsguard policy check` / a start check it before
 * the kernel is touched.
 */
#ifndef TLSGUARD_AI_CONFIG_H
#define TLSGUARD_AI_CONFIG_H

#include <stddef.h>

struct tg_fieldcrypt;
struct tg_keyring;

struct tg_ai_config {
	char *const *key_files;		/* events.key_file (one) or events.key_files */
	size_t nkey_files;
	char *const *encrypt_fields;	/* events.encrypt_fields */
	size_t nencrypt_fields;
	char *const *hash_fields;	/* events.hash_fields */
	size_t nhash_fields;
	const char *connection_string_file;	/* NULL: no App Insights sink */
};

/*
 * The key ring and field protection of @c: 0 (*keys, *fc NULL when not
 * configured), or -EINVAL / -ENOMEM with the reason in @err.
 */
int ai_config_load_keys(const struct tg_ai_config *c, struct tg_keyring **keys,
			struct tg_fieldcrypt **fc, char *err, size_t errlen);

/*
 * What the agent would refuse about @c's files, without starting anything:
 * the keys and field protection, the connection string file. 0, or -EINVAL
 * with @report called once per problem ("events.key_file: ..."), or -ENOMEM.
 */
int ai_config_check(const struct tg_ai_config *c, void (*report)(void *arg, const char *msg),
		    void *arg);

#endif /* TLSGUARD_AI_CONFIG_H */
