/* SPDX-License-Identifier: MIT */
/*
 * What the policy tells the kernel's handshake checks besides the classes
 * (dests.c fills those): the host names a ClientHello's SNI is compared
 * with (a keyed-hash names map) and the forward proxies (proxies map).
 * Building them is plain data in, plain data out; the sync functions write
 * the result through the kmaps (kmaps.h).
 */
#ifndef TLSGUARD_AGENT_HANDSHAKE_POLICY_H
#define TLSGUARD_AGENT_HANDSHAKE_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "dest_table.h"
#include "hosts.h"
#include "kmaps.h"
#include "policy.h"

/* SipHash of a (lower-cased) host name as the kernel computes it. */
uint64_t handshake_name_hash(const struct tg_sipkey *key, const char *name, size_t len);

/*
 * The names map entries of the policy's host names (every class, under the
 * class ids of @t, the table built from @p; a port entry's names are its
 * destination's), hashed with @key, sorted, the first class naming a key
 * keeping it. 0 or -ENOMEM (@out freed).
 */
int handshake_names_build(const struct tg_policy *p, const struct tg_dest_table *t,
			  const struct tg_sipkey *key, struct tg_name_set *out);

/*
 * The proxies map keys: a proxy written as an address is that address, a
 * host name has the addresses @resolved (may be NULL) has for it (no lookup,
 * no lock here; prepare.c puts proxy names into the host table). How many, at most
 * TG_MAX_PROXIES.
 */
size_t handshake_proxies_build(const struct tg_policy *p, const struct tg_host_addrs *resolved,
			       struct tg_proxy_key out[TG_MAX_PROXIES]);

/*
 * Build and write: the names map, removing what the previous policy had and
 * this one does not (a no-op without the names or sipkey map); the same for
 * the proxies map. 0 or -errno.
 */
int handshake_sync_names(const struct tg_kmaps *km, const struct tg_policy *p,
			 const struct tg_dest_table *t);
int handshake_sync_proxies(const struct tg_kmaps *km, const struct tg_policy *p,
			   const struct tg_host_addrs *resolved);

/* Split a proxy's "HOST:PORT" / "[V6]:PORT" (policy.c checked it). 0 or -EINVAL. */
int handshake_proxy_host(const char *spec, char *host, size_t len, uint16_t *port);

#endif /* TLSGUARD_AGENT_HANDSHAKE_POLICY_H */
