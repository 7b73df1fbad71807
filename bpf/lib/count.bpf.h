/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TLSGUARD_COUNT_BPF_H
#define TLSGUARD_COUNT_BPF_H

#include "common.bpf.h"
#include "maps.bpf.h"

/* The one place every verdict and failure reason is counted (@delta: tg_slot_add()). */
static __always_inline void tg_count_by(enum tg_counter c, __s64 delta)
{
	tg_slot_add(&tg_counters, c, delta);
}

static __always_inline void tg_count(enum tg_counter c)
{
	tg_count_by(c, 1);
}

/* Per-class, per-flow outcome (metrics by class and verdict). */
static __always_inline void tg_count_class_by(__u32 class_id, enum tg_class_stat stat, __s64 delta)
{
	/* out-of-range class ids simply miss */
	tg_slot_add(&tg_class_stats, class_id * TG_CS_STRIDE + stat, delta);
}

static __always_inline void tg_count_class(__u32 class_id, enum tg_class_stat stat)
{
	tg_count_class_by(class_id, stat, 1);
}

static __always_inline const struct tg_config *tg_get_config(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&tg_config, &key);
}

/*
 * fail_mode open: with the agent's heartbeat older than fail_open_after, an
 * enforce verdict degrades to pass-and-count; it returns the moment the
 * agent writes a fresh heartbeat. fail_mode closed never degrades.
 * Called only on violations, never on the per-packet path.
 */
static __always_inline int tg_failing_open(void)
{
	const struct tg_config *cfg = tg_get_config();
	__u64 now;

	if (!cfg || !cfg->fail_open || !cfg->heartbeat_ns)
		return 0;
	now = bpf_ktime_get_ns();
	if (now - cfg->heartbeat_ns <= (__u64)cfg->fail_open_after_s * 1000000000ULL)
		return 0;
	tg_count(TG_CNT_FAIL_OPEN_PASSED);
	return 1;
}

#endif /* TLSGUARD_COUNT_BPF_H */
