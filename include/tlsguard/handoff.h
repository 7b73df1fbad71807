/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Generation handoff: how programs of two pin layouts share a cgroup during
 * an upgrade (docs/operations.md, "Upgrades").
 *
 * FROZEN: everything in this file is read by programs and agents of every
 * release from the one that introduced it on. Never change a size, an offset,
 * a pin name or a meaning; add new pins instead. TG_PIN_LAYOUT_VERSION
 * (config.h) versions everything else.
 *
 *  - "handoff" (pin in the agent's pin directory): a one-entry array. Exactly
 *    one generation, active_layout, tracks new connects; every other one only
 *    judges the flows it already tracks.
 *  - "owner" (pin): sk_storage with the layout of the generation that tracked
 *    the socket last, made while retiring_layout is set (an agent sets it
 *    before it switches active_layout); outside an upgrade only an existing
 *    record is updated, and a socket without one belongs to whoever tracks
 *    it. A connect() that straddles the switch is tracked by both
 *    generations; at the first payload the one that is not the owner lets
 *    go of it (and takes back its count), so exactly one judges it.
 *  - "census" (pin, one per generation): an iterator program over the
 *    generation's own flow map that writes one struct tg_census_rec per flow
 *    that may still need its programs: undecided, or blocked and still open.
 *    The old generation is detached only when it writes none.
 *  - the layout marker map ("layout") has a second entry, the event ABI
 *    (TG_EVENT_ABI): equal ABIs let the new agent read the old ring buffer.
 */
#ifndef TLSGUARD_HANDOFF_H
#define TLSGUARD_HANDOFF_H

#include <linux/types.h>

#define TG_HANDOFF_PIN		"handoff"
#define TG_OWNER_PIN		"owner"
#define TG_CENSUS_PIN		"census"

/* Entries of the layout marker map. */
#define TG_LAYOUT_KEY_LAYOUT	0
#define TG_LAYOUT_KEY_EVENT_ABI	1

struct tg_handoff {
	__u32 active_layout;		/* 0: none written yet (programs then track) */
	__u32 retiring_layout;		/* a generation still draining, 0: none */
	__u64 switched_ns;		/* CLOCK_REALTIME of the last switch */
	__u32 reserved[4];
};
_Static_assert(sizeof(struct tg_handoff) == 32, "tg_handoff is frozen");

struct tg_owner {
	__u32 layout;
	__u32 reserved;
};
_Static_assert(sizeof(struct tg_owner) == 8, "tg_owner is frozen");

struct tg_census_rec {
	__u64 cookie;			/* socket cookie */
	__u8 state;			/* the generation's flow state, for logs only */
	__u8 reserved[7];
};
_Static_assert(sizeof(struct tg_census_rec) == 16, "tg_census_rec is frozen");

#endif /* TLSGUARD_HANDOFF_H */
