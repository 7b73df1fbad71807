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
	__u8 any_enforce;		/* some class is in enforce mode (proxy flows at the flow cap) */
	__u8 overrides;			/* the policy has mode overrides: connect() looks them up */
	__u32 fail_open_after_s;	/* heartbeat age after which enforcement degrades */
	__u64 heartbeat_ns;		/* CLOCK_MONOTONIC of the agent's last heartbeat */
	__u32 max_flows;		/* limits.max_tracked_flows; 0 (before the agent wrote it): no cap */
	/*
	 * The policy selects Kubernetes workloads, so tg_skip_cgroups may list
	 * cgroups: connect() looks it up only then. 0 (before the agent wrote
	 * it) means "look nothing up": every cgroup judged, the stricter side.
	 * The agent writes it before it attaches the programs.
	 */
	__u8 skip_cgroups;
	__u8 pad2[3];
};
_Static_assert(sizeof(struct tg_config) == 24, "tg_config layout");

/* limits.max_tracked_flows when the policy does not say (112 B of flow state each: 28 MiB) */
#define TG_MAX_FLOWS_DEFAULT	262144

/* Cgroup ids the agent wants left alone (pods outside workloads.kubernetes). */
#define TG_MAX_SKIP_CGROUPS	65536

/*
 * Bump when a pinned map's key, value or meaning changes (tests/unit/
 * test_pin_layout.c fails on a changed definition until the new version's
 * description is recorded). Overridable (-D) only so that the tests can
 * build an "older" agent to upgrade from.
 */
#ifndef TG_PIN_LAYOUT_VERSION
#define TG_PIN_LAYOUT_VERSION	10	/* 2: handshake state, names, proxies; 3: heartbeat, skip cgroups;
					 * 4: flow cap (tg_config.max_flows, tg_live_flows,
					 * tg_flow.counted, the sock_release hook);
					 * 5: generation handoff (handoff.h);
					 * 6: whole-handshake verdict (tg_flow record walks),
					 * port entries (tg_class.port_class), mode
					 * overrides (tg_overrides, tg_flow.rule);
					 * 7: the DNS hold (TG_FLOW_DNS_WAIT, tg_dns_pending,
					 * tg_dns_caught_up, counters);
					 * 8: tg_counters sized TG_CNT_SLOTS (it grew with
					 * each counter: a layout 7 agent's pin cannot be
					 * adopted by one with more counters);
					 * 9: tg_dns_newest (the hold's one-look pass);
					 * 10: tg_config.skip_cgroups (connect() looks
					 * tg_skip_cgroups up only when it is set) */
#endif

#endif /* TLSGUARD_CONFIG_H */
