/* SPDX-License-Identifier: MIT */
/*
 * Handshake intelligence, agent side:
 *  - what a destination class tells the kernel about its handshake
 *    (protocol, min_tls_version, SNI binding): handshake_class_fill();
 *  - the host names and forward proxies the kernel compares against
 *    (keyed-hash names map, proxies map): handshake_sync_names(),
 *    handshake_sync_proxies();
 *  - the event's "tls" and "protocol" details from what the kernel saw:
 *    handshake_tls_json(), handshake_protocol_json().
 */
#ifndef TLSGUARD_AGENT_HANDSHAKE_H
#define TLSGUARD_AGENT_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "policy.h"
#include "tlsguard/dest.h"
#include "tlsguard/event.h"
#include "tlsguard/names.h"

/* Fill the handshake part of a class (protocol, min_tls, flags). */
void handshake_class_fill(struct tg_class *c, const struct tg_policy *p,
			  const struct tg_policy_dest *d);

struct tg_dest_table;
struct tg_hosts;

/*
 * Maps the kernel compares host names and proxies with; set by the loader.
 * -1 (the default) makes the syncs below no-ops (unit tests, no kernel).
 */
void handshake_set_maps(int names_fd, int sipkey_fd, int proxies_fd);

/*
 * Write the policy's host names (every class, under the class ids of @t, the
 * table built from @p; a port entry's names are its destination's) into the
 * names map, removing what the previous policy had and this one does not.
 * 0 or -errno.
 */
int handshake_sync_names(const struct tg_policy *p, const struct tg_dest_table *t);

/*
 * The same for the proxies map: a proxy written as an address is that
 * address, a host name has the addresses @hosts resolved for it (no lookup
 * here; prepare.c puts proxy names into the table). 0 or -errno.
 */
int handshake_sync_proxies(const struct tg_policy *p, struct tg_hosts *hosts);

/* Split a proxy's "HOST:PORT" / "[V6]:PORT" (policy.c checked it). 0 or -EINVAL. */
int handshake_proxy_host(const char *spec, char *host, size_t len, uint16_t *port);

/* SipHash of a (lower-cased) host name as the kernel computes it. */
uint64_t handshake_name_hash(const struct tg_sipkey *key, const char *name, size_t len);

/* "1.2" for 0x0303, NULL for 0 / unknown. */
const char *handshake_version_name(unsigned int version);

/* The event's "tls" object, or NULL when the event is not about TLS. */
json_object *handshake_tls_json(const struct tg_event *ev);
struct tg_jout;
/* The same as a member "tls" of @o (null when the event has none). */
void handshake_tls_out(struct tg_jout *o, const struct tg_event *ev);

/*
 * For proxy flows: the host the client asked the proxy for (CONNECT or an
 * absolute-form request), from the event's first bytes. 0 when found.
 */
int handshake_tunnel_host(const struct tg_event *ev, char *host, size_t len, unsigned int *port);

#endif /* TLSGUARD_AGENT_HANDSHAKE_H */
