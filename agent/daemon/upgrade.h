/* SPDX-License-Identifier: MIT */
/* The daemon's side of an upgrade from another pin layout (upgrade.c). */
#ifndef TLSGUARD_DAEMON_UPGRADE_H
#define TLSGUARD_DAEMON_UPGRADE_H

struct agent;

/* Read the retiring layout's ring buffer on the loop while it drains. 0 or -errno. */
int upgrade_open_old_ring(struct agent *a);
/* Its last findings read, then no longer watched. */
void upgrade_close_old_ring(struct agent *a);
/* The `upgrade` agent event, when a layout is retiring. */
void upgrade_started(struct agent *a);
/* Once a second: is the old layout drained? Then remove it and say so (`upgrade_done`). */
void upgrade_tick(struct agent *a);

#endif /* TLSGUARD_DAEMON_UPGRADE_H */
