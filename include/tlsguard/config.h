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
	__u8 fail_open;			/* fail_mode: open */
	__u8 pad[2];
	__u32 fail_open_after_s;	/* heartbeat age after which enforcement degrades */
	__u64 heartbeat_ns;		/* CLOCK_MONOTONIC of the agent's last heartbeat */
};
_Static_assert(sizeof(struct tg_config) == 16, "tg_config layout");

/* Cgroup ids the agent wants left alone (pods outside workloads.kubernetes). */
#define TG_MAX_SKIP_CGROUPS	65536

/*
 * Bump when a pinned map's key, value or meaning changes. Overridable (-D)
 * only so that the tests can build an "older" agent to upgrade from.
 */
#ifndef TG_PIN_LAYOUT_VERSION
#define TG_PIN_LAYOUT_VERSION	4	/* 2: handshake state, names, proxies; 3: heartbeat, skip cgroups;
					 * 4: generation handoff (handoff.h) */
#endif

#endif /* TLSGUARD_CONFIG_H */
