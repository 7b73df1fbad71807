/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Maps both BPF objects use: the verdict object (tlsguard.bpf.c) owns and
 * pins them in the agent's pin directory, the dns object (dns.bpf.c) opens
 * the same pins. One definition here, so the two can never disagree on a
 * key, a value or a size (libbpf refuses a pin that does not fit).
 */
#ifndef TLSGUARD_SHARED_MAPS_BPF_H
#define TLSGUARD_SHARED_MAPS_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "tlsguard/dns.h"
#include "tlsguard/names.h"

/* Host names of the classes, as keyed hashes (see names.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TG_MAX_NAMES);
	__type(key, struct tg_name_key);
	__type(value, struct tg_name_value);
} tg_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tg_sipkey);
} tg_sipkey SEC(".maps");

/*
 * The hold (tlsguard/dns.h): cgroup id → bpf_ktime_get_ns() of the last
 * answer it received that may name a policy host. Written by the dns
 * program; LRU so that cgroups long gone make room by themselves.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, TG_DNS_PENDING_MAX);
	__type(key, __u64);
	__type(value, __u64);
} tg_dns_pending SEC(".maps");

/* [0]: every answer stamped up to this bpf_ktime_get_ns() is learned; written by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} tg_dns_caught_up SEC(".maps");

/* [0]: the newest answer the dns program acted on (struct tg_dns_newest); written by it. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tg_dns_newest);
} tg_dns_newest SEC(".maps");

/* Addresses the dns program learned, until the agent has them (tlsguard/dns.h). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, TG_DNS_KLEARNED_MAX);
	__type(key, struct tg_dns_klearned_key);
	__type(value, struct tg_dns_klearned_val);
} tg_dns_klearned SEC(".maps");

#endif /* TLSGUARD_SHARED_MAPS_BPF_H */
