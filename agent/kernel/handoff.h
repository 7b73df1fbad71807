/* SPDX-License-Identifier: MIT */
/*
 * Upgrades between pin layouts (include/tlsguard/handoff.h has the kernel
 * side). The pin directory holds the active generation at its top (as
 * always: layout marker, maps, links/, census), the frozen shared pins
 * (handoff, owner) and, during an upgrade, the previous generation under
 * retiring/. An agent that finds another layout at the top:
 *
 *   1. moves it into retiring_tmp/ and renames that to retiring/ (renaming
 *      pins detaches nothing: the old programs keep enforcing);
 *   2. loads its own generation at the top and attaches it next to the old
 *      one (cgroup multi-attach);
 *   3. switches the handoff map: new connects are tracked by the new
 *      generation from here on, the old one judges only its open flows;
 *   4. drains: reads the old ring buffer (same event ABI) and runs the old
 *      census until no old flow is undecided (or blocked and still open);
 *   5. renames retiring/ to retired/ and removes it (links detached first).
 *
 * Every step leaves a state the next start recognises and finishes, so an
 * agent that dies anywhere in between is replaced without a gap.
 */
#ifndef TLSGUARD_AGENT_HANDOFF_H
#define TLSGUARD_AGENT_HANDOFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TG_HANDOFF_RETIRING	"retiring"
#define TG_HANDOFF_STAGING	"retiring_tmp"	/* bpffs refuses names with a dot */
#define TG_HANDOFF_RETIRED	"retired"

/*
 * Without a census (kernels without BTF or without tracing programs), an old
 * generation drains this long: flows still undecided after it (a connection
 * opened and left idle) are no longer judged.
 */
#define TG_HANDOFF_BLIND_DRAIN_S	30

/* What a pin directory holds, as far as generations go. */
struct tg_pin_state {
	uint32_t top_layout;		/* layout marker at the top, 0: none */
	bool top_has_pins;		/* any generation pin at the top (also without a marker) */
	bool has_handoff;		/* the shared handoff map is pinned */
	bool staging;			/* retiring_tmp/ exists */
	uint32_t retiring_layout;	/* marker of retiring/, 0: no retiring/ */
	bool retired;			/* retired/ exists */
};

enum tg_handoff_plan {
	TG_PLAN_FRESH = 0,		/* nothing of ours pinned at the top */
	TG_PLAN_ADOPT,			/* our layout at the top: adopt, as a restart does */
	TG_PLAN_UPGRADE,		/* another layout at the top: retire it, then as RESUME */
	TG_PLAN_RESUME,			/* retiring/ holds another layout: (re)load ours, switch, drain */
	TG_PLAN_REFUSE_OLD,		/* another layout without the handoff map: a release before it */
	TG_PLAN_REFUSE_BUSY,		/* an upgrade between other layouts is unfinished */
};

/*
 * What an agent of @layout does with @st (after retired/ is removed and a
 * staging move is finished, which the caller always does first). Pure.
 */
enum tg_handoff_plan handoff_plan(const struct tg_pin_state *st, uint32_t layout);

/* Pins at the top of the directory that belong to no generation. Pure. */
bool handoff_is_shared_pin(const char *name);

/*
 * Is the old generation done? With a census: when it reports no flow;
 * without one: after TG_HANDOFF_BLIND_DRAIN_S. Pure.
 */
bool handoff_drain_done(bool have_census, uint64_t census_flows, uint64_t elapsed_s);

/* One agent's side of a handoff between pin layouts (struct tg_handoff is the kernel map's value). */
struct tg_handoff_state {
	char dir[4096];			/* the agent's pin directory */
	char retiring_dir[4096 + 16];
	uint32_t layout;		/* ours */
	enum tg_handoff_plan plan;
	uint32_t retiring_layout;	/* 0: nothing drains */
	bool old_events_compatible;	/* same event ABI: read the old ring buffer */
	int old_events_fd, old_counters_fd, old_flows_fd, old_census_fd;
	uint64_t census_flows;		/* last census */
	bool census_ok;			/* the last census ran */
	bool census_failed_logged;
	int64_t switched_real_ns;
	uint64_t drain_started_s;	/* CLOCK_MONOTONIC seconds */
};

/*
 * Before the loader: look at @pin_dir, finish what a previous agent left
 * half done, refuse what cannot be done (logged, -EEXIST), and move another
 * layout's generation into retiring/. 0 or -errno.
 */
int handoff_prepare(struct tg_handoff_state *h, const char *pin_dir, uint32_t layout);

/*
 * After our programs are attached everywhere: make our generation the one
 * that tracks new connects (@handoff_fd: the shared map) and open what the
 * drain needs of the old one. 0 or -errno.
 */
int handoff_switch(struct tg_handoff_state *h, int handoff_fd);

/* Run the old generation's census: h->census_flows. 0 or -errno. */
int handoff_census(struct tg_handoff_state *h);

/* The old generation's kernel counters, summed over CPUs (n slots). 0 or -errno. */
int handoff_old_counters(struct tg_handoff_state *h, uint64_t *out, size_t n);

/*
 * Drained: detach and remove the old generation, and tell the handoff map.
 * 0 or -errno (the next start finishes it then).
 */
int handoff_finish(struct tg_handoff_state *h, int handoff_fd);

void handoff_close(struct tg_handoff_state *h);

#endif /* TLSGUARD_AGENT_HANDOFF_H */
