/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Protected destinations as the kernel sees them: one LPM trie keyed by
 * IPv6 address (IPv4 stored v4-mapped, ::ffff:a.b.c.d/96+n) so connect4,
 * connect6 and v4-mapped connects on AF_INET6 sockets share one lookup,
 * and one array of classes indexed by class id.
 */
#ifndef TLSGUARD_DEST_H
#define TLSGUARD_DEST_H

#include <linux/types.h>

#define TG_MAX_DESTS		65536	/* LPM entries (prefixes + resolved IPs) */
#define TG_MAX_CLASSES		256	/* class id 0 is "no class" */
#define TG_MAX_PORT_RANGES	16
#define TG_V4_MAPPED_PREFIX	96	/* prefixlen of ::ffff:0.0.0.0 */

enum tg_mode {
	TG_MODE_AUDIT = 0,
	TG_MODE_ENFORCE = 1,
};

enum tg_dest_flags {
	TG_DEST_EXCEPTION = 1 << 0,	/* never tracked (IMDS and friends) */
};

struct tg_dest_key {
	__u32 prefixlen;		/* LPM trie convention: bits of addr that count */
	__u8 addr[16];			/* network byte order, v4-mapped for IPv4 */
};
_Static_assert(sizeof(struct tg_dest_key) == 20, "tg_dest_key layout");

struct tg_dest_value {
	__u16 class_id;			/* index into the classes map, 0 for exceptions */
	__u8 flags;			/* enum tg_dest_flags */
	__u8 pad;
};
_Static_assert(sizeof(struct tg_dest_value) == 4, "tg_dest_value layout");

struct tg_port_range {
	__u16 lo;			/* host byte order, inclusive */
	__u16 hi;
};

enum tg_class_flags {
	TG_CLS_SNI_BIND = 1 << 0,	/* the class names hosts: a TLS flow's SNI must be one */
	TG_CLS_REQUIRE_SNI = 1 << 1,	/* a ClientHello without SNI is an sni_mismatch */
};

struct tg_class {
	__u8 mode;			/* enum tg_mode */
	__u8 nranges;			/* 0: every port is allowed */
	__u8 protocol;			/* enum tg_l7 (tlsguard/preface.h) */
	__u8 min_tls;			/* lowest TLS minor allowed: 1 = 1.0 .. 4 = 1.3; 0 none */
	__u32 flags;			/* enum tg_class_flags */
	struct tg_port_range ports[TG_MAX_PORT_RANGES];
	/*
	 * Per range: the class that judges it (a port entry of the policy with
	 * its own protocol, mode or note: SMB on 445 of a TLS class), 0: this one.
	 */
	__u8 port_class[TG_MAX_PORT_RANGES];
};
_Static_assert(sizeof(struct tg_class) == 88, "tg_class layout");

/*
 * Mode overrides (policy `overrides:`): cgroup id → the rule that selects
 * the workload, written by the agent for the cgroups of the pods and
 * cgroups a rule selects (the path that writes tg_skip_cgroups). connect()
 * looks the connecting task's cgroup up once, for protected destinations
 * only: the rule's mode replaces the class's when the rule names the class.
 */
#define TG_MAX_OVERRIDE_RULES	64
#define TG_MAX_OVERRIDE_CGROUPS	65536

struct tg_override {
	__u8 rule;			/* 1 + the rule's index in the policy */
	__u8 mode;			/* enum tg_mode */
	__u8 pad[6];
	__u64 classes[TG_MAX_CLASSES / 64];	/* bit per class id it applies to */
};
_Static_assert(sizeof(struct tg_override) == 40, "tg_override layout");

/*
 * Forward proxies (policy `proxies:`): connects to one of these get a flow
 * whose class comes from the host its CONNECT names.
 */
#define TG_MAX_PROXIES		64

struct tg_proxy_key {
	__u8 addr[16];			/* v4-mapped for IPv4 */
	__u16 port;			/* host byte order */
	__u8 pad[2];
};
_Static_assert(sizeof(struct tg_proxy_key) == 20, "tg_proxy_key layout");

#endif /* TLSGUARD_DEST_H */
