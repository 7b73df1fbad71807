/* SPDX-License-Identifier: MIT */
/*
 * What the kernel saw of a handshake, for the event: its "tls" details
 * (versions, SNI, ALPN, the SNI check) and, for proxy flows, the host the
 * client asked the proxy for. What the policy tells the kernel about
 * handshakes is in policy/handshake_policy.h.
 */
#ifndef TLSGUARD_AGENT_HANDSHAKE_H
#define TLSGUARD_AGENT_HANDSHAKE_H

#include <stddef.h>

#include <json-c/json.h>

#include "tlsguard/event.h"

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
