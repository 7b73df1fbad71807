/* SPDX-License-Identifier: MIT */
/*
 * Azure service tags (the published ServiceTags_*.json download): the address
 * prefixes of the tags a destination names, e.g. Storage.WestEurope, from
 * values[].properties.addressPrefixes.
 */
#ifndef TLSGUARD_AGENT_SERVICETAGS_H
#define TLSGUARD_AGENT_SERVICETAGS_H

#include <stddef.h>

#include "policy.h"

/*
 * Call @fn for every prefix of every tag in @tags. Returns 0, or -errno with a
 * one-line reason in @err (file unreadable, not the service tags format, a
 * tag not in the file, a prefix that does not parse).
 */
int servicetags_load(const char *file, const struct tg_strlist *tags,
		     int (*fn)(const struct tg_cidr *cidr, void *arg), void *arg, char *err,
		     size_t errlen);

#endif /* TLSGUARD_AGENT_SERVICETAGS_H */
