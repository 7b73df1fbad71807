/* SPDX-License-Identifier: MIT */
/*
 * Resolve exact host names of the policy, with the TTL the DNS answer gave.
 * Names only the local hosts database knows (/etc/hosts) have no TTL; they
 * are looked at again every TG_RESOLVE_DEFAULT_TTL seconds.
 */
#ifndef TLSGUARD_AGENT_RESOLVE_H
#define TLSGUARD_AGENT_RESOLVE_H

#include <stddef.h>
#include <stdint.h>

#define TG_RESOLVE_DEFAULT_TTL	60
#define TG_RESOLVE_MIN_TTL	5
#define TG_RESOLVE_MAX_TTL	3600
#define TG_RESOLVE_MAX_ADDRS	32

struct tg_resolved {
	uint8_t addrs[TG_RESOLVE_MAX_ADDRS][16];	/* v4-mapped for IPv4 */
	size_t naddrs;
	unsigned int ttl_s;
};

/* 0 with at least one address, -ENOENT when the name has none, -errno otherwise. */
int resolve_host(const char *name, struct tg_resolved *out);

#endif /* TLSGUARD_AGENT_RESOLVE_H */
