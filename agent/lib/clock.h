/* SPDX-License-Identifier: MIT */
/*
 * The agent's clocks in nanoseconds. CLOCK_MONOTONIC is what
 * bpf_ktime_get_ns() reads (timestamps in events, the heartbeat),
 * CLOCK_BOOTTIME what bpf_ktime_get_boot_ns() reads (learned DNS answers
 * survive a suspend), CLOCK_REALTIME what events print.
 */
#ifndef TLSGUARD_AGENT_CLOCK_H
#define TLSGUARD_AGENT_CLOCK_H

#include <stdint.h>
#include <time.h>

#define TG_NS_PER_S 1000000000ULL

static inline uint64_t tg_clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * TG_NS_PER_S + (uint64_t)ts.tv_nsec;
}

static inline uint64_t tg_mono_ns(void)
{
	return tg_clock_ns(CLOCK_MONOTONIC);
}

static inline uint64_t tg_boot_ns(void)
{
	return tg_clock_ns(CLOCK_BOOTTIME);
}

/* UTC, signed as events_format_time() takes it. */
static inline int64_t tg_real_ns(void)
{
	return (int64_t)tg_clock_ns(CLOCK_REALTIME);
}

#endif /* TLSGUARD_AGENT_CLOCK_H */
