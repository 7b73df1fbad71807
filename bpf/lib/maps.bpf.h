/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Maps shared by the entry programs (and by the BPF unit-test programs). */
#ifndef TLSGUARD_MAPS_BPF_H
#define TLSGUARD_MAPS_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "tlsguard/config.h"
#include "tlsguard/counters.h"
#include "tlsguard/dest.h"
#include "tlsguard/event.h"
#include "tlsguard/flow.h"
#include "tlsguard/handoff.h"
#include "tlsguard/names.h"
#include "shared_maps.bpf.h"

#define TG_RINGBUF_BYTES	(1 << 20)

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, TG_MAX_DESTS);
	__uint(map_flags, BPF_F_NO_PREALLOC);	/* required for LPM tries */
	__type(key, struct tg_dest_key);
	__type(value, struct tg_dest_value);
} tg_dests SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TG_MAX_CLASSES);
	__type(key, __u32);
	__type(value, struct tg_class);
} tg_classes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);	/* required for sk_storage */
	__type(key, int);
	__type(value, struct tg_flow);
} tg_flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, TG_RINGBUF_BYTES);
} tg_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TG_CNT_SLOTS);	/* room for new counters: the pin stays */
	__type(key, __u32);
	__type(value, __u64);
} tg_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TG_MAX_CLASSES * TG_CS_STRIDE);
	__type(key, __u32);
	__type(value, __u64);
} tg_class_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tg_config);
} tg_config SEC(".maps");

/*
 * Tracked flows whose sockets are still open: the gauge limits.max_tracked_flows
 * (tg_config.max_flows) is checked against. Added to at connect(), taken from at
 * sock_release, with atomic adds (one slot shared by every CPU); the agent only
 * reads it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tg_live_flows SEC(".maps");

/*
 * Cgroups whose connects are not tracked: the pods outside the policy's
 * workloads.kubernetes selector, written by the agent (workload.c). Programs
 * stay attached to the parent cgroup so new pods are covered at once; this
 * map only takes known-unselected ones out. Key: cgroup id; value unused.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TG_MAX_SKIP_CGROUPS);
	__type(key, __u64);
	__type(value, __u8);
} tg_skip_cgroups SEC(".maps");

/* Mode overrides by cgroup (see dest.h), written by the agent (workload.c). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TG_MAX_OVERRIDE_CGROUPS);
	__uint(map_flags, BPF_F_NO_PREALLOC);	/* usually empty or small: no 2.6 MiB up front */
	__type(key, __u64);
	__type(value, struct tg_override);
} tg_overrides SEC(".maps");

/* Handshake state kept between segments while a hello is incomplete (flow.h, hsstate.bpf.h). */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);	/* required for sk_storage */
	__type(key, int);
	__type(value, struct tg_hs);
} tg_hs_map SEC(".maps");

/*
 * The per-CPU handshake scratch (hsstate.bpf.h): TG_HS_SCRATCH_SLOTS slots
 * per CPU, so a softirq (or, on preemptible kernels, another task) that
 * judges a hello while one is being judged on this CPU gets its own; a
 * slot's user count says whether it is taken.
 */
#define TG_HS_SCRATCH_SLOTS	2

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TG_HS_SCRATCH_SLOTS);
	__type(key, __u32);
	__type(value, struct tg_hs);
} tg_hs_scratch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TG_HS_SCRATCH_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} tg_hs_scratch_users SEC(".maps");

/*
 * What a good ClientHello said (SNI, ALPN, versions), for the events of the
 * flow until its verdict: in slot cookie % TG_MAX_HELLO_SUMS, which
 * tg_hello_sum_owner says whose it is. Arrays, not a hash: keeping one is a
 * copy, with no allocation, no lock and nothing to delete at the verdict or
 * when a flow closes before one (an LRU hash cost about half of tg_egress's
 * time per short connection, once full of such flows: every hello paid an
 * eviction). Socket cookies count up, so a slot is taken again only
 * TG_MAX_HELLO_SUMS connections later, as an LRU of that size would push
 * the summary out; that event then goes without it (counted:
 * hello_summary_lost). No flow waits for room.
 */
#define TG_MAX_HELLO_SUMS	8192	/* a power of two: the slot is a mask */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TG_MAX_HELLO_SUMS);
	__type(key, __u32);
	__type(value, struct tg_tls_summary);
} tg_hello_sums SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TG_MAX_HELLO_SUMS);
	__type(key, __u32);
	__type(value, __u64);		/* the cookie of the flow whose summary the slot holds */
} tg_hello_sum_owner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TG_MAX_PROXIES);
	__type(key, struct tg_proxy_key);
	__type(value, __u32);
} tg_proxies SEC(".maps");

/*
 * Shared by every generation of programs, pinned at fixed names in the pin
 * directory; frozen (see handoff.h).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tg_handoff);
} tg_handoff SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);	/* required for sk_storage */
	__type(key, int);
	__type(value, struct tg_owner);
} tg_owner SEC(".maps");

#endif /* TLSGUARD_MAPS_BPF_H */
