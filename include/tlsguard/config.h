/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Settings the agent can change while programs run (one-entry array map).
 * Settings fixed at load time are `const volatile` rodata in the BPF object.
 */
#ifndef TLSGUARD_CONFIG_H
#define TLSGUARD_CONFIG_H

#include <linux/types.h>

struct tg_config {
	__u8 log_tls_flows;		/* also emit an event for compliant TLS flows */
	__u8 pad[7];
};
_Static_assert(sizeof(struct tg_config) == 8, "tg_config layout");

/* Bump when a pinned map's key, value or meaning changes. */
#define TG_PIN_LAYOUT_VERSION	2	/* 2: handshake state, names, proxies */

#endif /* TLSGUARD_CONFIG_H */
