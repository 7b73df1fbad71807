// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "clock.h"
#include "dir.h"
#include "handoff.h"
#include "kmaps.h"
#include "log.h"
#include "pins.h"
#include "tlsguard/event.h"
#include "tlsguard/handoff.h"

static const char *const shared_pins[] = {
	TG_HANDOFF_PIN, TG_OWNER_PIN, "dns", TG_HANDOFF_RETIRING, TG_HANDOFF_STAGING,
	TG_HANDOFF_RETIRED,
};

bool handoff_is_shared_pin(const char *name)
{
	for (size_t i = 0; i < sizeof(shared_pins) / sizeof(shared_pins[0]); i++)
		if (!strcmp(name, shared_pins[i]))
			return true;
	return false;
}

enum tg_handoff_plan handoff_plan(const struct tg_pin_state *st, uint32_t layout)
{
	if (st->retiring_layout) {
		/* an upgrade was under way: only an agent of the layout it went to finishes it */
		if (st->retiring_layout == layout)
			return TG_PLAN_REFUSE_BUSY;
		if (st->top_layout && st->top_layout != layout)
			return TG_PLAN_REFUSE_BUSY;
		return TG_PLAN_RESUME;
	}
	if (!st->top_layout)
		/* pins without a marker are a crashed first start of ours: adopt what fits */
		return TG_PLAN_FRESH;
	if (st->top_layout == layout)
		return TG_PLAN_ADOPT;
	return st->has_handoff ? TG_PLAN_UPGRADE : TG_PLAN_REFUSE_OLD;
}

bool handoff_drain_done(bool have_census, uint64_t census_flows, uint64_t elapsed_s)
{
	if (have_census)
		return census_flows == 0;
	return elapsed_s >= TG_HANDOFF_BLIND_DRAIN_S;
}

static bool exists(const char *dir, const char *name)
{
	char path[4096 + 256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return lstat(path, &st) == 0;
}

/* Stops the walk at the first generation pin at the top of the directory. */
static int generation_pin(const char *name, unsigned char type, void *arg)
{
	(void)type;
	(void)arg;
	return !tg_dir_hidden(name) && !handoff_is_shared_pin(name);
}

static int inspect(const char *dir, struct tg_pin_state *st)
{
	char sub[4096 + 32];
	int err;

	memset(st, 0, sizeof(*st));
	err = pins_read_layout(dir, &st->top_layout, NULL);
	if (err && err != -ENOENT)
		return err;
	st->has_handoff = exists(dir, TG_HANDOFF_PIN);
	st->staging = exists(dir, TG_HANDOFF_STAGING);
	st->retired = exists(dir, TG_HANDOFF_RETIRED);
	if (exists(dir, TG_HANDOFF_RETIRING)) {
		snprintf(sub, sizeof(sub), "%s/%s", dir, TG_HANDOFF_RETIRING);
		err = pins_read_layout(sub, &st->retiring_layout, NULL);
		if (err)
			return err == -ENOENT ? -EUCLEAN : err;	/* retiring/ always has its marker */
	}
	err = tg_dir_each(dir, generation_pin, NULL);
	if (err < 0)
		return err;
	st->top_has_pins = err;
	return 0;
}

struct retire {
	const char *dir, *staging;
};

static int retire_pin(const char *name, unsigned char type, void *arg)
{
	const struct retire *r = arg;
	char from[4096 + 256], to[8192 + 256];

	(void)type;
	if (tg_dir_hidden(name) || handoff_is_shared_pin(name))
		return 0;
	snprintf(from, sizeof(from), "%s/%s", r->dir, name);
	snprintf(to, sizeof(to), "%s/%s", r->staging, name);
	return rename(from, to) < 0 ? -errno : 0;
}

/* Move every generation pin at the top of @dir into @dir/retiring_tmp/, then rename that. */
static int retire_top(const char *dir)
{
	char staging[4096 + 32], final[4096 + 32];
	struct retire r = { .dir = dir, .staging = staging };
	int err;

	snprintf(staging, sizeof(staging), "%s/%s", dir, TG_HANDOFF_STAGING);
	if (mkdir(staging, 0700) < 0 && errno != EEXIST)
		return -errno;
	err = tg_dir_each(dir, retire_pin, &r);
	if (err)
		return err;
	snprintf(final, sizeof(final), "%s/%s", dir, TG_HANDOFF_RETIRING);
	return rename(staging, final) < 0 ? -errno : 0;
}

static int remove_sub(const char *dir, const char *name)
{
	char path[4096 + 32];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return pins_remove_tree(path);
}

int handoff_prepare(struct tg_handoff_state *h, const char *pin_dir, uint32_t layout)
{
	struct tg_pin_state st;
	int err;

	memset(h, 0, sizeof(*h));
	h->old_events_fd = h->old_counters_fd = h->old_flows_fd = h->old_census_fd = -1;
	h->layout = layout;
	snprintf(h->dir, sizeof(h->dir), "%s", pin_dir);
	snprintf(h->retiring_dir, sizeof(h->retiring_dir), "%s/%s", pin_dir, TG_HANDOFF_RETIRING);
	err = pins_mkdir_p(pin_dir, 0700);
	if (err) {
		tg_err("cannot create pin directory %s: %s",
		       pin_dir, strerror(-err));
		return err;
	}
	err = inspect(pin_dir, &st);
	if (!err && st.retired) {
		/* drained by a previous agent that died while removing it */
		tg_info("removing %s/%s (a drained generation)", pin_dir, TG_HANDOFF_RETIRED);
		err = remove_sub(pin_dir, TG_HANDOFF_RETIRED);
		if (!err)
			err = inspect(pin_dir, &st);
	}
	if (!err && st.staging && !st.retiring_layout) {
		/* a previous agent died while moving the old generation aside: finish the move */
		tg_info("finishing the move of the previous generation into %s", h->retiring_dir);
		err = retire_top(pin_dir);
		if (!err)
			err = inspect(pin_dir, &st);
	}
	if (err) {
		tg_err("cannot use pin directory %s: %s", pin_dir,
		       err == -EUCLEAN ? "retiring/ has no layout marker" : strerror(-err));
		return err;
	}
	h->plan = handoff_plan(&st, layout);
	switch (h->plan) {
	case TG_PLAN_REFUSE_OLD:
		tg_err("pins in %s have layout %u from a release without the generation handoff, "
		       "this agent uses %u; run 'tlsguard uninstall --pin-path %s' first "
		       "(the workloads are unprotected until this agent is ready)",
		       pin_dir, st.top_layout, layout, pin_dir);
		return -EEXIST;
	case TG_PLAN_REFUSE_BUSY:
		if (st.top_layout)
			tg_err("pins in %s are an unfinished upgrade from layout %u to %u, this agent "
			       "uses %u; start the agent of layout %u to finish it, or run "
			       "'tlsguard uninstall --pin-path %s'",
			       pin_dir, st.retiring_layout, st.top_layout, layout, st.top_layout,
			       pin_dir);
		else
			tg_err("pins in %s are an upgrade away from layout %u that stopped before the "
			       "new layout was loaded; start the newer agent again to finish it, or "
			       "run 'tlsguard uninstall --pin-path %s'",
			       pin_dir, st.retiring_layout, pin_dir);
		return -EEXIST;
	case TG_PLAN_UPGRADE:
		tg_info("pins in %s have layout %u; upgrading to %u without a gap: the old programs "
			"stay attached until their open flows are decided", pin_dir, st.top_layout,
			layout);
		err = retire_top(pin_dir);
		if (err) {
			tg_err("cannot move the layout %u pins into %s: %s", st.top_layout,
			       h->retiring_dir, strerror(-err));
			return err;
		}
		h->retiring_layout = st.top_layout;
		break;
	case TG_PLAN_RESUME:
		tg_info("resuming the upgrade from layout %u (in %s) to %u", st.retiring_layout,
			h->retiring_dir, layout);
		h->retiring_layout = st.retiring_layout;
		break;
	default:
		break;
	}
	return 0;
}

static int open_pin(const char *dir, const char *name)
{
	char path[8192 + 64];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

static int write_handoff(int fd, uint32_t active, uint32_t retiring, int64_t switched_ns)
{
	struct tg_handoff v = { .active_layout = active, .retiring_layout = retiring,
				.switched_ns = (uint64_t)switched_ns };
	__u32 key = 0;

	return bpf_map_update_elem(fd, &key, &v, BPF_ANY) ? -errno : 0;
}

int handoff_switch(struct tg_handoff_state *h, int handoff_fd)
{
	struct tg_handoff cur = { 0 };
	uint32_t old_abi = 0, old_layout = 0;
	__u32 key = 0;
	int err;

	bpf_map_lookup_elem(handoff_fd, &key, &cur);
	h->switched_real_ns = cur.active_layout == h->layout && cur.switched_ns ?
				      (int64_t)cur.switched_ns : tg_real_ns();
	/*
	 * Upgrading: first announce it (retiring_layout, with the active one
	 * unchanged), so that programs that see the switch below also see the
	 * upgrade and keep owner records (tg_gen_claim): a reader racing one
	 * update could otherwise see the new active_layout with the old
	 * retiring_layout.
	 */
	if (h->retiring_layout && cur.retiring_layout != h->retiring_layout) {
		err = write_handoff(handoff_fd, cur.active_layout, h->retiring_layout,
				    (int64_t)cur.switched_ns);
		if (err)
			return err;
	}
	err = write_handoff(handoff_fd, h->layout, h->retiring_layout, h->switched_real_ns);
	if (err || !h->retiring_layout)
		return err;
	/* what the drain needs of the old generation */
	h->drain_started_s = tg_mono_ns() / TG_NS_PER_S;
	if (!pins_read_layout(h->retiring_dir, &old_layout, &old_abi))
		h->old_events_compatible = old_abi == TG_EVENT_ABI;
	h->old_counters_fd = open_pin(h->retiring_dir, "tg_counters");
	h->old_flows_fd = open_pin(h->retiring_dir, "tg_flows");
	h->old_census_fd = open_pin(h->retiring_dir, TG_CENSUS_PIN);
	if (h->old_events_compatible)
		h->old_events_fd = open_pin(h->retiring_dir, "tg_events");
	if (h->old_events_compatible && h->old_events_fd < 0)
		h->old_events_compatible = false;
	if (!h->old_events_compatible)
		tg_warn("layout %u writes events this agent cannot read; its last findings are "
			"counted (upgrade_done event) but not reported one by one", h->retiring_layout);
	if (h->old_census_fd < 0 || h->old_flows_fd < 0)
		tg_warn("layout %u has no census program (kernel without BTF?); it stays attached "
			"for %ds", h->retiring_layout, TG_HANDOFF_BLIND_DRAIN_S);
	return 0;
}

int handoff_census(struct tg_handoff_state *h)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts);
	union bpf_iter_link_info linfo;
	struct tg_census_rec rec[64];
	uint64_t n = 0;
	int link_fd, iter_fd, err = 0;
	ssize_t got;

	h->census_ok = false;
	if (h->old_census_fd < 0 || h->old_flows_fd < 0)
		return -ENOENT;
	memset(&linfo, 0, sizeof(linfo));
	linfo.map.map_fd = h->old_flows_fd;
	opts.iter_info = &linfo;
	opts.iter_info_len = sizeof(linfo);
	link_fd = bpf_link_create(h->old_census_fd, 0, BPF_TRACE_ITER, &opts);
	if (link_fd < 0)
		return -errno;
	iter_fd = bpf_iter_create(link_fd);
	if (iter_fd < 0) {
		err = -errno;
		goto out_link;
	}
	while ((got = read(iter_fd, rec, sizeof(rec))) > 0)
		n += (uint64_t)got / sizeof(rec[0]);
	if (got < 0)
		err = -errno;
	close(iter_fd);
out_link:
	close(link_fd);
	if (!err) {
		h->census_flows = n;
		h->census_ok = true;
	}
	return err;
}

int handoff_old_counters(struct tg_handoff_state *h, uint64_t *out, size_t n)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);

	memset(out, 0, n * sizeof(*out));
	if (h->old_counters_fd < 0)
		return -ENOENT;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(h->old_counters_fd, &info, &len))
		return -errno;
	if (info.value_size != sizeof(uint64_t))
		return -EPROTO;
	/* counter indices are append-only: a slot means the same in every layout */
	return kmaps_percpu_sum(h->old_counters_fd, 0, n < info.max_entries ? n : info.max_entries, out);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int handoff_finish(struct tg_handoff_state *h, int handoff_fd)
{
	char retired[4096 + 32];
	int err;

	close_fd(&h->old_events_fd);
	close_fd(&h->old_counters_fd);
	close_fd(&h->old_flows_fd);
	close_fd(&h->old_census_fd);
	/* one rename marks it drained: a restart from here on only removes it */
	snprintf(retired, sizeof(retired), "%s/%s", h->dir, TG_HANDOFF_RETIRED);
	if (rename(h->retiring_dir, retired) < 0)
		return -errno;
	err = pins_remove_tree(retired);
	if (err)
		return err;
	h->retiring_layout = 0;
	return write_handoff(handoff_fd, h->layout, 0, h->switched_real_ns);
}

void handoff_close(struct tg_handoff_state *h)
{
	close_fd(&h->old_events_fd);
	close_fd(&h->old_counters_fd);
	close_fd(&h->old_flows_fd);
	close_fd(&h->old_census_fd);
}
