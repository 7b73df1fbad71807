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

#ifndef TG_READ_ONCE
#define TG_READ_ONCE(x)	(*(volatile typeof(x) *)&(x))
#endif

/*
 * The index of a free per-CPU scratch slot, now taken, or -1: @users is a
 * per-CPU array of @n user counts, one per slot. Add first, then look:
 * whoever sees the count at 1 owns the slot; a user that interrupted one (a
 * softirq, or another task on a preemptible kernel: cgroup programs run with
 * migration disabled, not always preemption) sees 2, gives its add back and
 * tries the next. Atomic add is in every BPF instruction set; a fetching
 * atomic would need -mcpu=v3, under which tg_egress no longer verifies.
 * Called from a global function each, so that its result is a number the
 * verifier does not know and the code after it is walked once, not once per
 * slot. Give a slot back with tg_scratch_give().
 */
static __always_inline int tg_scratch_take(void *users, __u32 n)
{
	__u32 i;

	for (i = 0; i < n; i++) {
		__u32 key = i;
		__u64 *u = bpf_map_lookup_elem(users, &key);

		if (!u)
			break;
		__sync_fetch_and_add(u, 1);
		if (TG_READ_ONCE(*u) == 1)
			return i;
		__sync_fetch_and_add(u, -1);
	}
	return -1;
}

static __always_inline void tg_scratch_give(void *users, __u32 slot)
{
	__u32 key = slot;
	__u64 *u = bpf_map_lookup_elem(users, &key);

	if (u)
		__sync_fetch_and_add(u, -1);
}

#endif /* TLSGUARD_COMMON_BPF_H */
