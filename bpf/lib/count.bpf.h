/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef TLSGUARD_COUNT_BPF_H
#define TLSGUARD_COUNT_BPF_H

#include "maps.bpf.h"

/* The one place every verdict and failure reason is counted. */
static __always_inline void tg_count(enum tg_counter c)
{
	__u32 key = c;
	__u64 *v = bpf_map_lookup_elem(&tg_counters, &key);

	if (v)	/* always true for an in-range index; the verifier needs the check */
		*v += 1;
}

/* Per-class, per-flow outcome (metrics by class and verdict). */
static __always_inline void tg_count_class(__u32 class_id, enum tg_class_stat stat)
{
	__u32 key = class_id * TG_CS_STRIDE + stat;
	__u64 *v = bpf_map_lookup_elem(&tg_class_stats, &key);

	if (v)	/* out-of-range class ids simply miss */
		*v += 1;
}

static __always_inline const struct tg_config *tg_get_config(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&tg_config, &key);
}

#endif /* TLSGUARD_COUNT_BPF_H */
