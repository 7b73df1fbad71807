// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdio.h>

#include "ai_config.h"
#include "connstr.h"
#include "fieldcrypt.h"

int ai_config_load_keys(const struct tg_ai_config *c, struct tg_keyring **keys,
			struct tg_fieldcrypt **fc, char *err, size_t errlen)
{
	char why[512] = "";

	*keys = NULL;
	*fc = NULL;
	if (c->nkey_files) {
		*keys = keyring_load(c->key_files, c->nkey_files, why, sizeof(why));
		if (!*keys) {
			snprintf(err, errlen, "events.key_file: %s", why);
			return errno == ENOMEM ? -ENOMEM : -EINVAL;
		}
	}
	if (!c->nencrypt_fields && !c->nhash_fields)
		return 0;
	if (!*keys) {
		snprintf(err, errlen, "events.encrypt_fields/hash_fields are set but no key is given "
			 "(events.key_file); refusing to write events unprotected");
		return -EINVAL;
	}
	*fc = fieldcrypt_new(*keys, c->encrypt_fields, c->nencrypt_fields, c->hash_fields,
			     c->nhash_fields, why, sizeof(why));
	if (!*fc) {
		snprintf(err, errlen, "events.encrypt_fields/hash_fields: %s", why);
		keyring_free(*keys);
		*keys = NULL;
		return -EINVAL;
	}
	return 0;
}

int ai_config_check(const struct tg_ai_config *c, void (*report)(void *arg, const char *msg),
		    void *arg)
{
	struct tg_keyring *keys;
	struct tg_fieldcrypt *fc;
	struct tg_connstr cs;
	char why[600], msg[700];
	int ret = ai_config_load_keys(c, &keys, &fc, why, sizeof(why)), cret;

	fieldcrypt_free(fc);
	keyring_free(keys);
	if (ret == -ENOMEM)
		return ret;
	if (ret)
		report(arg, why);
	if (!c->connection_string_file)
		return ret;
	cret = connstr_read_file(c->connection_string_file, &cs, why, sizeof(why));
	if (cret == -ENOMEM)
		return cret;
	if (cret) {
		/* as ai_sink_new() says it */
		snprintf(msg, sizeof(msg), "application_insights.connection_string_file: %s", why);
		report(arg, msg);
		return -EINVAL;
	}
	connstr_free(&cs);
	return ret;
}
