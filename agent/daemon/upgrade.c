// SPDX-License-Identifier: MIT
/*
 * An upgrade from another pin layout (handoff.h), on the daemon's side: the
 * old generation's ring buffer read like ours while it drains, the census
 * once a second, and the upgrade / upgrade_done agent events.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>

#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "handoff.h"
#include "loader.h"
#include "log.h"
#include "pipeline.h"
#include "status.h"
#include "upgrade.h"

void upgrade_consume_old_ring(struct upgrade_drain *u)
{
	if (!u->old_rb)
		return;
	ring_buffer__consume(u->old_rb);
	pipeline_flush(u->pipe);
}

static void on_old_ring(void *ctx, uint32_t events)
{
	upgrade_consume_old_ring(ctx);
}

/* The old generation's ring buffer, read like ours while it drains (same event ABI). */
int upgrade_open_old_ring(struct upgrade_drain *u)
{
	if (!u->h->retiring_layout || !u->h->old_events_compatible)
		return 0;
	u->old_rb = ring_buffer__new(u->h->old_events_fd, pipeline_record, u->pipe, NULL);
	if (!u->old_rb) {
		int err = -errno;

		tg_err("cannot open the ring buffer of layout %u: %s", u->h->retiring_layout,
		       strerror(-err));
		return err;
	}
	u->w_old_ring = (struct tg_watch){ .fd = ring_buffer__epoll_fd(u->old_rb),
					   .handle = on_old_ring, .ctx = u };
	return tg_loop_add(u->loop, &u->w_old_ring, EPOLLIN);
}

void upgrade_close_old_ring(struct upgrade_drain *u)
{
	if (!u->old_rb)
		return;
	upgrade_consume_old_ring(u);	/* its last findings */
	tg_loop_remove(u->loop, &u->w_old_ring);
	ring_buffer__free(u->old_rb);
	u->old_rb = NULL;
}

/* An old generation's counters as status names them, for the upgrade_done event. */
static json_object *old_counters_json(const uint64_t *c)
{
	json_object *o = status_verdict_counters_json(c);

	json_object_object_add(o, "events_lost", json_object_new_uint64(c[TG_CNT_ERR_RINGBUF]));
	return o;
}

static json_object *upgrade_json(const struct upgrade_drain *u, uint32_t from,
				 const uint64_t *old_counters)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "from_layout", json_object_new_int64(from));
	json_object_object_add(o, "to_layout", json_object_new_int64(u->h->layout));
	json_object_object_add(o, "old_events_read",
			       json_object_new_boolean(u->h->old_events_compatible));
	if (old_counters)
		json_object_object_add(o, "old_counters", old_counters_json(old_counters));
	return o;
}

void upgrade_started(struct upgrade_drain *u)
{
	char msg[256];

	if (!u->h->retiring_layout)
		return;
	snprintf(msg, sizeof(msg), "new connects are tracked by layout %u; layout %u stays attached "
		 "until its open flows are decided", u->h->layout, u->h->retiring_layout);
	tg_info("upgrade: %s", msg);
	pipeline_agent_event_with(u->pipe, "upgrade", msg, "upgrade",
				  upgrade_json(u, u->h->retiring_layout, NULL));
}

/*
 * Once a second while an old generation drains: is any of its flows still
 * undecided (or blocked and open)? The first census waits a second after the
 * switch, for connect() calls that read the handoff map just before it.
 */
void upgrade_tick(struct upgrade_drain *u, uint64_t now_s)
{
	struct tg_handoff_state *h = u->h;
	uint64_t old[TG_CNT__MAX], elapsed;
	uint32_t from = h->retiring_layout;
	int handoff_fd, err, cerr;
	char msg[256];

	if (!from)
		return;
	elapsed = now_s - h->drain_started_s;
	if (elapsed < 1)
		return;
	cerr = handoff_census(h);
	if (cerr && cerr != -ENOENT && !h->census_failed_logged) {
		tg_warn("upgrade: cannot run the census of layout %u: %s; it stays attached for %ds",
			from, strerror(-cerr), TG_HANDOFF_BLIND_DRAIN_S);
		h->census_failed_logged = true;
	}
	if (!handoff_drain_done(!cerr, h->census_flows, elapsed)) {
		if (elapsed % 60 == 0)
			tg_warn("upgrade: layout %u still judges %llu open flow(s); it stays attached "
				"until they are decided or closed", from,
				(unsigned long long)h->census_flows);
		return;
	}
	upgrade_close_old_ring(u);
	err = handoff_old_counters(h, old, TG_CNT__MAX);
	handoff_fd = u->loader->maps.handoff;
	cerr = handoff_finish(h, handoff_fd);
	if (cerr) {
		tg_err("upgrade: cannot remove the drained layout %u pins under %s: %s; the next "
		       "start removes them", from, u->loader->pin_dir, strerror(-cerr));
		h->retiring_layout = 0;	/* its programs are off the cgroups or will be */
	}
	snprintf(msg, sizeof(msg), "layout %u drained and removed after %llus; its counters are "
		 "reported here once", from, (unsigned long long)elapsed);
	tg_info("upgrade: %s", msg);
	pipeline_agent_event_with(u->pipe, "upgrade_done", msg, "upgrade",
				  upgrade_json(u, from, err ? NULL : old));
}
