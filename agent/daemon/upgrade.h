/* SPDX-License-Identifier: MIT */
/*
 * The daemon's side of an upgrade from another pin layout (upgrade.c): the
 * retiring layout's ring buffer read on the loop while it drains, its census,
 * the upgrade events. Borrows the handoff state (kernel/handoff.h), the
 * loader, the loop and the pipeline; owns the old ring buffer.
 */
#ifndef TLSGUARD_DAEMON_UPGRADE_H
#define TLSGUARD_DAEMON_UPGRADE_H

#include <stdint.h>

#include "loop.h"

struct ring_buffer;
struct tg_loader;
struct tg_pipeline;
struct tg_handoff_state;

struct upgrade_drain {
	struct tg_handoff_state *h;
	const struct tg_loader *loader;
	struct tg_loop *loop;
	struct tg_pipeline *pipe;
	struct ring_buffer *old_rb;	/* the draining generation's events, NULL: none */
	struct tg_watch w_old_ring;
};

/* Read the retiring layout's ring buffer on the loop while it drains. 0 or -errno. */
int upgrade_open_old_ring(struct upgrade_drain *u);
/* What the old ring buffer holds now, into the pipeline (at stop). */
void upgrade_consume_old_ring(struct upgrade_drain *u);
/* Its last findings read, then no longer watched. */
void upgrade_close_old_ring(struct upgrade_drain *u);
/* The `upgrade` agent event, when a layout is retiring. */
void upgrade_started(struct upgrade_drain *u);
/*
 * Once a second (@now_s: CLOCK_MONOTONIC seconds): is the old layout drained?
 * Then remove it and say so (`upgrade_done`).
 */
void upgrade_tick(struct upgrade_drain *u, uint64_t now_s);

#endif /* TLSGUARD_DAEMON_UPGRADE_H */
