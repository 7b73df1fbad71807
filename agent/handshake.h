/* SPDX-License-Identifier: MIT */
/*
 * Handshake intelligence, agent side:
 *  - what a destination class tells the kernel about its handshake
 *    (protocol, min_tls_version, SNI binding): handshake_class_fill();
 *  - the host names and forward proxies the kernel compares against
 *    (keyed-hash names map, proxies map): handshake_sync();
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

/*
 * Maps the kernel compares host names and proxies with; set by the loader.
 * -1 (the default) makes handshake_sync() a no-op (unit tests, no kernel).
 */
void handshake_set_maps(int names_fd, int sipkey_fd, int proxies_fd);

/*
 * Write the policy's host names (every class; a port entry's are its
 * destination's) and proxies into the maps, removing what the previous
 * policy had and this one does not. @class_ids: the kernel class id of
 * each p->dests[i] (dests_build). 0 or -errno.
 */
int handshake_sync(const struct tg_policy *p, const uint16_t *class_ids);

/* SipHash of a (lower-cased) host name as the kernel computes it. */
uint64_t handshake_name_hash(const struct tg_sipkey *key, const char *name, size_t len);

/* "1.2" for 0x0303, NULL for 0 / unknown. */
const char *handshake_version_name(unsigned int version);

/* The event's "tls" object, or NULL when the event is not about TLS. */
json_object *handshake_tls_json(const struct tg_event *ev);

/*
 * For proxy flows: the host the client asked the proxy for (CONNECT or an
 * absolute-form request), from the event's first bytes. 0 when found.
 */
int handshake_tunnel_host(const struct tg_event *ev, char *host, size_t len, unsigned int *port);

#endif /* TLSGUARD_AGENT_HANDSHAKE_H */
