/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Mode overrides (policy `overrides:`): the one place a flow's mode is resolved. */
#ifndef TLSGUARD_OVERRIDE_BPF_H
#define TLSGUARD_OVERRIDE_BPF_H

#include "count.bpf.h"

/*
 * Is @cgid one of the cgroups the agent wants left alone (pods outside the
 * policy's workloads.kubernetes selector, maps.bpf.h)? Looked up only when
 * the policy selects workloads: elsewhere the map is empty, and the lookup
 * was 5.9 % of tg_connect4's perf samples on a protected connect().
 */
static __always_inline int tg_cgroup_skipped(__u64 *cgid)
{
	const struct tg_config *cfg = tg_get_config();

	return cfg && cfg->skip_cgroups && bpf_map_lookup_elem(&tg_skip_cgroups, cgid);
}

/*
 * The mode of a flow of class @class_id from cgroup @cgid: the class's,
 * unless a policy override (`overrides:`, one rule per selected cgroup,
 * see dest.h) names the class. *rule: 1 + the rule's index, 0 for none.
 * One lookup, and only when the policy has overrides.
 */
static __always_inline __u8 tg_flow_mode(const struct tg_class *cls, __u32 class_id, __u64 cgid,
					 __u8 *rule)
{
	const struct tg_config *cfg = tg_get_config();
	const struct tg_override *o;

	*rule = 0;
	if (!cfg || !cfg->overrides || !cgid)
		return cls->mode;
	o = bpf_map_lookup_elem(&tg_overrides, &cgid);
	if (!o || !(o->classes[(class_id / 64) & 3] & (1ULL << (class_id & 63))))
		return cls->mode;
	tg_count(TG_CNT_OVERRIDE_HIT);
	*rule = o->rule;
	return o->mode;
}

#endif /* TLSGUARD_OVERRIDE_BPF_H */
