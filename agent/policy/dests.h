/* SPDX-License-Identifier: MIT */
/*
 * From policy (+ resolved host names, learned addresses) to the kernel's
 * destination table: plain data in, plain data out. dest_table.h holds the
 * table's type and writes it into the maps (dests_apply).
 */
#ifndef TLSGUARD_AGENT_DESTS_H
#define TLSGUARD_AGENT_DESTS_H

#include <stddef.h>
#include <stdint.h>

#include "dest_table.h"
#include "hosts.h"
#include "policy.h"
#include "tlsguard/dest.h"

/*
 * Build the table: no I/O, no kernel map. mode_override is -1 or an enum
 * tg_mode that replaces every class's mode (the --mode flag). Host names get
 * the addresses in @resolved (may be NULL: none; hosts_snapshot() takes them
 * from the refreshed table), so no lock is taken here; service tags are the
 * prefixes prepare.c read into the policy. Class ids of names already in
 * @prev (may be NULL) are kept. 0, -ENOMEM, or -E2BIG with the reason in
 * @why (may be NULL) when the table does not fit the kernel maps.
 */
int dests_build(const struct tg_policy *p, int mode_override, const struct tg_host_addrs *resolved,
		const struct tg_dest_table *prev, struct tg_dest_table *out, char *why, size_t whylen);

struct tg_learned;

/*
 * Add what was learned from DNS answers (dnslearn.h) to a built table: one
 * /128 per address, named by the name the client asked for. What the policy
 * itself says about an address wins: an address inside an exception is left
 * out, one the policy already lists exactly (/128) keeps the policy's entry,
 * and one inside a class's prefix keeps that class (the entry adds the
 * name). Entries of classes the policy no longer has are left out, and so
 * is what does not fit the map (counted in learned_left_out). 0 or -ENOMEM.
 */
int dests_add_learned(struct tg_dest_table *t, const struct tg_learned *learned);

/*
 * What the kernel's override map holds for the cgroups of each of the
 * policy's overrides (out[i] for p->overrides[i]): rule number, mode and the
 * class ids of @t it covers (policy_override_covers).
 */
void dests_override_values(const struct tg_policy *p, const struct tg_dest_table *t,
			   struct tg_override *out);

#endif /* TLSGUARD_AGENT_DESTS_H */
