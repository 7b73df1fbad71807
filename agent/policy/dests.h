/* SPDX-License-Identifier: MIT */
/*
 * From policy (+ resolved host names) to the kernel's destination maps.
 * The agent keeps what it last wrote; a new table is applied by writing
 * every new or changed entry first and deleting stale ones after, so the
 * maps never pass through an emptier state than either policy.
 */
#ifndef TLSGUARD_AGENT_DESTS_H
#define TLSGUARD_AGENT_DESTS_H

#include <stddef.h>
#include <stdint.h>

#include "hosts.h"
#include "policy.h"
#include "tlsguard/dest.h"

struct tg_dest_entry {
	struct tg_dest_key key;
	struct tg_dest_value val;
	const char *name;		/* host name the address came from, or NULL */
};

struct tg_dest_table {
	struct tg_dest_entry *v;
	size_t n;
	struct tg_class classes[TG_MAX_CLASSES];
	const char *class_names[TG_MAX_CLASSES];	/* point into the policy; NULL: id unused */
	const char *class_notes[TG_MAX_CLASSES];	/* the class's `note`, NULL: none */
	const struct tg_policy_override *overrides;	/* the policy's, for events' "rule" */
	size_t noverrides;
	size_t nclasses;		/* highest class id in use */
	char *learned_names;		/* names of the learned entries (dests_add_learned) */
	size_t learned;			/* entries from DNS answers */
	size_t learned_left_out;	/* learned addresses the map had no room for */
};

/*
 * Build the table: no I/O, no kernel map. mode_override is -1 or an enum
 * tg_mode that replaces every class's mode (the --mode flag). Host names are
 * resolved addresses from @hosts (may be NULL); service tags are the
 * prefixes prepare.c read into the policy. Class ids of names already in
 * @prev (may be NULL) are kept. 0, -ENOMEM, or -E2BIG with the reason in
 * @why (may be NULL) when the table does not fit the kernel maps.
 */
int dests_build(const struct tg_policy *p, int mode_override, struct tg_hosts *hosts,
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
 * Turn the kernel maps from @old (NULL: empty) into @next: additions first
 * (nothing that stays protected is ever missing), deletions after, unless the
 * trie is full, then the dropped entries go first. 0, or -errno with @old put
 * back as far as the kernel allows.
 */
int dests_apply(int dests_fd, int classes_fd, const struct tg_dest_table *old,
		const struct tg_dest_table *next);

/*
 * dests_apply() in slices: begin, then step until it returns 0 (done) or
 * -errno (failed, @old put back as dests_apply() does). Each step makes at
 * most @budget map writes and looks at most at 8 * @budget entries (those
 * that need no write), and returns 1 while more remain. Both tables must
 * stay as they are until then.
 */
struct tg_dest_apply {
	int dests_fd, classes_fd;
	const struct tg_dest_table *old, *next;
	int phase;
	size_t i;
};

void dests_apply_begin(struct tg_dest_apply *ap, int dests_fd, int classes_fd,
		       const struct tg_dest_table *old, const struct tg_dest_table *next);
int dests_apply_step(struct tg_dest_apply *ap, size_t budget);
void dests_free(struct tg_dest_table *t);

/*
 * What the kernel's override map holds for the cgroups of each of the
 * policy's overrides (out[i] for p->overrides[i]): rule number, mode and the
 * class ids of @t it covers (policy_override_covers).
 */
void dests_override_values(const struct tg_policy *p, const struct tg_dest_table *t,
			   struct tg_override *out);

/* The host name a destination address was resolved from, or NULL. */
const char *dests_name_for(const struct tg_dest_table *t, const uint8_t addr[16]);
const char *dests_class_name(const struct tg_dest_table *t, unsigned int class_id);

/* Read what a map holds now (after adopting pins from an earlier agent). */
int dests_read_map(int dests_fd, struct tg_dest_table *out);
#endif /* TLSGUARD_AGENT_DESTS_H */
