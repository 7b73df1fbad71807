/* SPDX-License-Identifier: MIT */
/*
 * Policy reloads off the event loop. A reload reads and parses the file,
 * reads the service tags it names and resolves its host names: seconds for a
 * large file or a slow DNS server. Here that runs on a thread of its own
 * (prepare_policy(), the same function as at start and in `tlsguard policy
 * check`) while the loop keeps serving with the policy in force; the loop is
 * told through an eventfd and then applies the result (agent.c), in slices.
 *
 * One reload at a time. A request while one is under way is remembered and
 * run after it, once however many arrived: the file is read again then, so
 * the last change always wins.
 */
#ifndef TLSGUARD_AGENT_RELOAD_H
#define TLSGUARD_AGENT_RELOAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "prepare.h"

/* Map writes per slice of an apply (about 2 us each): the loop's longest stall. */
#define TG_RELOAD_SLICE	2048
/* The reload thread's nice value: the event loop (0) gets about ten times its CPU. */
#define TG_RELOAD_NICE	10

struct tg_reload {
	int efd;			/* readable when the thread is done */
	pthread_t thread;
	bool running;			/* a thread was started and not yet collected */
	bool forced;			/* SIGHUP: also when the file did not change */
	bool pending, pending_forced;	/* another request arrived meanwhile */

	/* the job, owned by the thread while it runs */
	struct tg_prepare_opts opts;
	char *path;			/* NULL: the built-in policy */
	char unless_sha256[65];
	struct tg_dest_table prev;	/* class names in force when it started (copies) */

	/* its result, for the loop once collected */
	int result;			/* prepare_policy()'s */
	struct tg_prepared prep;
	struct tg_diag diag;

	/* the loop's apply of a successful result (agent.c) */
	bool applying;
	struct tg_dest_apply ap;
	struct tg_dest_table next;	/* prep.dests with the learned addresses */
	bool dests_dirty;		/* addresses changed while applying: sync after */
	unsigned int slices;		/* of this apply */
	uint64_t longest_ns;		/* the longest of them, and the commit after */
};

int reload_init(struct tg_reload *r);

/*
 * Start preparing @path (NULL: the built-in policy) on the thread, with
 * @mode_override (-1 or the --mode flag's enum tg_mode). @in_force
 * is the table in force (its class names are copied: the new table keeps
 * their ids); @sha256 not NULL: nothing to do when the file still has it.
 * 0 or -errno.
 */
int reload_start(struct tg_reload *r, const char *path, int mode_override,
		 const struct tg_dest_table *in_force, const char *sha256);

/* Once efd is readable: join the thread; its result is in r->result, r->prep, r->diag. */
void reload_collect(struct tg_reload *r);

/* Forget a collected result (what the loop did not take from r->prep). */
void reload_release(struct tg_reload *r);

/* Wait for a thread still running, and free everything. */
void reload_close(struct tg_reload *r);

#endif /* TLSGUARD_AGENT_RELOAD_H */
