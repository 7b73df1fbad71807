/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What both BPF objects (tlsguard.bpf.c and dns.bpf.c) build on, without
 * the maps of either: the address families (no libc headers in BPF) and
 * the one way a per-CPU counter slot is bumped.
 */
#ifndef TLSGUARD_COMMON_BPF_H
#define TLSGUARD_COMMON_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

/*
 * Slot @key of the per-CPU array @map += @delta. @delta is negative only to
 * take a count back (handoff.bpf.h): per-CPU slots may then go below zero,
 * their sum cannot.
 */
static __always_inline void tg_slot_add(void *map, __u32 key, __s64 delta)
{
	__u64 *v = bpf_map_lookup_elem(map, &key);

	if (v)	/* always true for an in-range index; the verifier needs the check */
		*v += delta;
}

#endif /* TLSGUARD_COMMON_BPF_H */
