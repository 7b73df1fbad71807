/* SPDX-License-Identifier: MIT */
/*
 * The kernel's destination table as plain data (what dests_build() makes
 * from a policy) and its writing into the destination and class maps. The
 * agent keeps what it last wrote; a new table is applied by writing every
 * new or changed entry first and deleting stale ones after, so the maps
 * never pass through an emptier state than either policy.
 */
#ifndef TLSGUARD_AGENT_DEST_TABLE_H
#define TLSGUARD_AGENT_DEST_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "kmaps.h"
#include "tlsguard/dest.h"

struct tg_policy_override;

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

/* Entries are sorted by (prefix length, address): the order of this compare. */
int dests_entry_cmp(const void *a, const void *b);
/* Zero the bits of @addr past @prefixlen. */
void dests_mask_prefix(uint8_t addr[16], unsigned int prefixlen);
/* Append an entry (masked to its prefix; *cap grows t->v). 0 or -ENOMEM. */
int dests_push(struct tg_dest_table *t, size_t *cap, const uint8_t addr[16], unsigned int prefixlen,
	       uint16_t class_id, uint8_t flags, const char *name);
/* @e's key in the sorted table @t (may be NULL), or NULL. */
const struct tg_dest_entry *dests_find(const struct tg_dest_table *t, const struct tg_dest_entry *e);

/*
 * Turn the kernel maps from @old (NULL: empty) into @next: additions first
 * (nothing that stays protected is ever missing), deletions after, unless the
 * trie is full, then the dropped entries go first. 0, or -errno with @old put
 * back as far as the kernel allows.
 */
int dests_apply(const struct tg_kmaps *km, const struct tg_dest_table *old,
		const struct tg_dest_table *next);

/*
 * dests_apply() in slices: begin, then step until it returns 0 (done) or
 * -errno (failed, @old put back as dests_apply() does). Each step makes at
 * most @budget map writes and looks at most at 8 * @budget entries (those
 * that need no write), and returns 1 while more remain. Both tables must
 * stay as they are until then.
 */
struct tg_dest_apply {
	int dests_fd, classes_fd;	/* from the kmaps */
	const struct tg_dest_table *old, *next;
	int phase;
	size_t i;
};

void dests_apply_begin(struct tg_dest_apply *ap, const struct tg_kmaps *km,
		       const struct tg_dest_table *old, const struct tg_dest_table *next);
int dests_apply_step(struct tg_dest_apply *ap, size_t budget);
void dests_free(struct tg_dest_table *t);

/* The host name a destination address was resolved from, or NULL. */
const char *dests_name_for(const struct tg_dest_table *t, const uint8_t addr[16]);
const char *dests_class_name(const struct tg_dest_table *t, unsigned int class_id);

/* Read what a map holds now (after adopting pins from an earlier agent). */
int dests_read_map(const struct tg_kmaps *km, struct tg_dest_table *out);

#endif /* TLSGUARD_AGENT_DEST_TABLE_H */
