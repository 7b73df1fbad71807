// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "enum_name.h"
#include "kernel_features.h"
#include "handoff.h"
#include "loader.h"
#include "log.h"
#include "pins.h"
#include "tlsguard/config.h"
#include "tlsguard/dns.h"
#include "tlsguard/event.h"
#include "tlsguard/handoff.h"
#include "tlsguard.skel.h"

static const char *const hook_names[TG_HOOK__MAX] = {
	[TG_HOOK_CONNECT4] = "connect4",
	[TG_HOOK_CONNECT6] = "connect6",
	[TG_HOOK_EGRESS] = "egress",
	[TG_HOOK_INGRESS] = "ingress",
	[TG_HOOK_RELEASE] = "release",
	[TG_HOOK_SENDMSG4] = "sendmsg4",
	[TG_HOOK_SENDMSG6] = "sendmsg6",
	[TG_HOOK_SOCK_CREATE] = "sock_create",
};

const char *loader_hook_name(enum tg_hook h)
{
	return TG_ENUM_NAME(hook_names, h, "?");
}

static struct bpf_program *hook_prog(struct tg_loader *l, enum tg_hook h)
{
	struct bpf_program *const progs[TG_HOOK__MAX] = {
		[TG_HOOK_CONNECT4] = l->skel->progs.tg_connect4,
		[TG_HOOK_CONNECT6] = l->skel->progs.tg_connect6,
		[TG_HOOK_EGRESS] = l->skel->progs.tg_egress,
		[TG_HOOK_INGRESS] = l->skel->progs.tg_ingress,
		[TG_HOOK_RELEASE] = l->skel->progs.tg_release,
		[TG_HOOK_SENDMSG4] = l->skel->progs.tg_sendmsg4,
		[TG_HOOK_SENDMSG6] = l->skel->progs.tg_sendmsg6,
		[TG_HOOK_SOCK_CREATE] = l->skel->progs.tg_sock_create,
	};

	return h < TG_HOOK__MAX ? progs[h] : NULL;
}

/* Pins from another layout (TG_PIN_LAYOUT_VERSION) are not adopted. */
static int check_layout(struct tg_loader *l)
{
	return pins_check_layout(l->pin_dir, TG_PIN_LAYOUT_VERSION, TG_EVENT_ABI, l->pin_dir,
				 &l->adopted_maps);
}

/*
 * The generation's pinned maps, by name: what a new agent of the same
 * TG_PIN_LAYOUT_VERSION adopts, so their definitions are the layout
 * (tests/unit/test_pin_layout.c holds them to it).
 */
static const char *const pinned_maps[] = {
	"tg_dests", "tg_classes", "tg_flows", "tg_events", "tg_counters", "tg_config",
	"tg_class_stats", "tg_hs_map", "tg_names", "tg_skip_cgroups", "tg_live_flows",
	"tg_sipkey", "tg_proxies", "tg_overrides",
	/* the dns object opens these too (bpf/lib/shared_maps.bpf.h) */
	"tg_dns_pending", "tg_dns_caught_up", "tg_dns_klearned", "tg_dns_newest",
};

const char *const *loader_pinned_maps(size_t *n)
{
	*n = sizeof(pinned_maps) / sizeof(pinned_maps[0]);
	return pinned_maps;
}

static int pin_map(struct tg_loader *l, struct bpf_map *m, const char *name)
{
	char path[4096];
	int err = pins_path(path, sizeof(path), l->pin_dir, name);

	return err ? err : bpf_map__set_pin_path(m, path);
}

static int set_map_pins(struct tg_loader *l)
{
	const struct {
		struct bpf_map *map;
		const char *name;
	} outside_layout[] = {
		/* the generation's, not in its layout: made when absent (tlsguard.bpf.c) */
		{ l->skel->maps.tg_dns_chain_ingress, TG_DNS_CHAIN_PIN_INGRESS },
		{ l->skel->maps.tg_dns_chain_egress, TG_DNS_CHAIN_PIN_EGRESS },
		/* shared by every generation, under fixed names (handoff.h) */
		{ l->skel->maps.tg_handoff, TG_HANDOFF_PIN },
		{ l->skel->maps.tg_owner, TG_OWNER_PIN },
	};
	int err;

	for (size_t i = 0; i < sizeof(pinned_maps) / sizeof(pinned_maps[0]); i++) {
		struct bpf_map *m = bpf_object__find_map_by_name(l->skel->obj, pinned_maps[i]);

		if (!m)
			return -ENOENT;	/* a name this object lost: the table above is wrong */
		err = pin_map(l, m, pinned_maps[i]);
		if (err)
			return err;
	}
	for (size_t i = 0; i < sizeof(outside_layout) / sizeof(outside_layout[0]); i++) {
		err = pin_map(l, outside_layout[i].map, outside_layout[i].name);
		if (err)
			return err;
	}
	return 0;
}

const char *loader_dns_chain_pin(const struct tg_loader *l, enum tg_hook host_hook)
{
	const char *path;

	if (!l->skel)
		return "";
	path = bpf_map__pin_path(host_hook == TG_HOOK_INGRESS ? l->skel->maps.tg_dns_chain_ingress
							      : l->skel->maps.tg_dns_chain_egress);
	return path ? path : "";
}

/*
 * Can this kernel load the census iterator (a tracing program: it needs the
 * kernel's BTF, and some kernels refuse tracing programs altogether)? Probed
 * with an empty one; without it an upgrade away from this generation drains
 * by time (handoff.h).
 */
static bool probe_census(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_ITER);
	struct btf *vmlinux = btf__load_vmlinux_btf();
	int id, fd;

	if (!vmlinux)
		return false;
	id = btf__find_by_name_kind(vmlinux, "bpf_iter_bpf_sk_storage_map", BTF_KIND_FUNC);
	btf__free(vmlinux);
	if (id <= 0)
		return false;
	opts.attach_btf_id = id;
	fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "tg_census_probe", "Dual BSD/GPL", insns, 2, &opts);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Pinned with the generation, so that its successor can run it (handoff.h). */
static int pin_census(struct tg_loader *l)
{
	char path[4096];
	int err;

	if (!l->have_census)
		return 0;
	err = pins_path(path, sizeof(path), l->pin_dir, TG_CENSUS_PIN);
	if (err)
		return err;
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	return bpf_program__pin(l->skel->progs.tg_census, path);
}

/* Chained DNS hooks: as asked, where the kernel can. 0 or -ENOTSUP (logged). */
static int pick_dns_hooks(struct tg_loader *l, int tail_call_in_subprogs)
{
	l->dns_chained = l->dns_hooks != TG_DNS_HOOKS_SEPARATE && tail_call_in_subprogs == 1;
	if (l->dns_hooks == TG_DNS_HOOKS_CHAINED && !l->dns_chained) {
		tg_err("--dns-hooks chained: this kernel does not allow tail calls from programs "
		       "with BPF-to-BPF calls (x86-64 needs Linux 5.10+, arm64 6.0+); "
		       "use --dns-hooks auto or separate");
		return -ENOTSUP;
	}
	if (l->dns_hooks == TG_DNS_HOOKS_AUTO && !l->dns_chained)
		tg_info("DNS learning runs as programs of its own: this kernel does not allow "
			"tail calls from programs with BPF-to-BPF calls");
	return 0;
}

static int probe_features(struct tg_loader *l)
{
	struct tg_features f;

	features_probe(&f);
	l->have_current_task = f.current_task == 1;
	l->have_current_cgroup = f.current_cgroup == 1;
	if (!l->have_current_task)
		tg_warn("kernel does not give cgroup/connect programs the caller's pid and comm; "
			"events will not name the process");
	return pick_dns_hooks(l, f.tail_call_in_subprogs);
}

/*
 * Open and load the object, with the census or without. -EAGAIN: the load
 * failed with the census and may work without it.
 */
static int open_and_load(struct tg_loader *l, bool census)
{
	int err;

	l->skel = tlsguard_bpf__open();
	if (!l->skel) {
		err = -errno;
		tg_err("cannot open BPF object: %s", strerror(-err));
		return err;
	}
	err = probe_features(l);
	if (err)
		return err;
	l->skel->rodata->tg_have_current_task = l->have_current_task;
	l->skel->rodata->tg_have_current_cgroup = l->have_current_cgroup;
	l->skel->rodata->tg_dns_chained = l->dns_chained;
	l->have_census = census;
	bpf_program__set_autoload(l->skel->progs.tg_census, census);
	err = set_map_pins(l);
	if (err) {
		tg_err("cannot set pin paths under %s: %s", l->pin_dir, strerror(-err));
		return err;
	}
	err = tlsguard_bpf__load(l->skel);
	if (err && census)
		return -EAGAIN;
	if (err) {
		tg_err("cannot load BPF programs: %s (run with -v for the verifier log; "
		       "pins in %s from another build? try 'tlsguard uninstall --pin-path %s')",
		       strerror(-err), l->pin_dir, l->pin_dir);
		return err;
	}
	return 0;
}

/* The maps the agent reads and writes, for whoever it hands them to (kmaps.h). */
static void fill_kmaps(struct tg_loader *l)
{
	const struct tlsguard_bpf *s = l->skel;

	l->maps = (struct tg_kmaps){
		.dests = bpf_map__fd(s->maps.tg_dests),
		.classes = bpf_map__fd(s->maps.tg_classes),
		.names = bpf_map__fd(s->maps.tg_names),
		.sipkey = bpf_map__fd(s->maps.tg_sipkey),
		.proxies = bpf_map__fd(s->maps.tg_proxies),
		.config = bpf_map__fd(s->maps.tg_config),
		.counters = bpf_map__fd(s->maps.tg_counters),
		.class_stats = bpf_map__fd(s->maps.tg_class_stats),
		.live_flows = bpf_map__fd(s->maps.tg_live_flows),
		.handoff = bpf_map__fd(s->maps.tg_handoff),
		.skip_cgroups = bpf_map__fd(s->maps.tg_skip_cgroups),
		.overrides = bpf_map__fd(s->maps.tg_overrides),
		.dns_chain_ingress = l->dns_chained ? bpf_map__fd(s->maps.tg_dns_chain_ingress) : -1,
		.dns_chain_egress = l->dns_chained ? bpf_map__fd(s->maps.tg_dns_chain_egress) : -1,
	};
}

int loader_load(struct tg_loader *l, const char *pin_dir, enum tg_dns_hooks dns_hooks)
{
	bool census;
	int err;

	memset(l, 0, sizeof(*l));
	l->dns_hooks = dns_hooks;
	kmaps_none(&l->maps);
	if (snprintf(l->pin_dir, sizeof(l->pin_dir), "%s", pin_dir) >= (int)sizeof(l->pin_dir))
		return -ENAMETOOLONG;
	err = pins_mkdir_p(l->pin_dir, 0700);
	if (err) {
		tg_err("cannot create pin directory %s: %s",
		       l->pin_dir, strerror(-err));
		return err;
	}
	err = check_layout(l);
	if (err) {
		if (err != -EEXIST)
			tg_err("cannot use pin directory %s: %s", l->pin_dir, strerror(-err));
		return err;
	}
	census = probe_census();
	if (!census)
		tg_info("this kernel cannot run the census iterator; an upgrade away from this "
			"agent's layout keeps its programs attached for %ds", TG_HANDOFF_BLIND_DRAIN_S);
	err = open_and_load(l, census);
	if (err == -EAGAIN) {
		/* only the census failed to verify: enforcement must not depend on it */
		tg_warn("the census iterator does not load on this kernel; an upgrade away from "
			"this agent's layout keeps its programs attached for %ds",
			TG_HANDOFF_BLIND_DRAIN_S);
		tlsguard_bpf__destroy(l->skel);
		l->skel = NULL;
		err = open_and_load(l, false);
	}
	if (err)
		return err;
	err = pin_census(l);
	if (err) {
		tg_err("cannot pin the census program under %s: %s", l->pin_dir, strerror(-err));
		return err;
	}
	fill_kmaps(l);
	return 0;
}

int loader_attach_cgroup(struct tg_loader *l, const char *abs_cgroup_path)
{
	struct tg_attachment *att, *grown;
	char path[4096];
	struct stat st;
	int cg_fd, err = 0;

	if (stat(abs_cgroup_path, &st) < 0)
		return -errno;
	for (size_t i = 0; i < l->natts; i++)
		if (l->atts[i].cgroup_id == (uint64_t)st.st_ino)
			return 0;	/* named twice: attach once */
	grown = realloc(l->atts, (l->natts + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	l->atts = grown;
	att = &l->atts[l->natts];
	memset(att, 0, sizeof(*att));
	snprintf(att->path, sizeof(att->path), "%s", abs_cgroup_path);
	att->cgroup_id = st.st_ino;
	for (int h = 0; h < TG_HOOK__MAX; h++)
		att->link_fd[h] = -1;
	l->natts++;

	err = pins_path(path, sizeof(path), l->pin_dir, TG_PINS_LINKS);
	if (!err)
		err = pins_mkdir_p(path, 0700);
	if (err)
		return err;
	cg_fd = open(abs_cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0)
		return -errno;
	for (int h = 0; h < TG_HOOK__MAX && !err; h++) {
		int prog_fd = bpf_program__fd(hook_prog(l, h));
		int fd;

		err = pins_link_path(path, sizeof(path), l->pin_dir, att->cgroup_id, hook_names[h]);
		if (err)
			break;
		fd = pins_adopt_link(path, prog_fd);
		if (fd >= 0) {
			att->adopted[h] = true;
		} else {
			fd = pins_attach_new(hook_prog(l, h), cg_fd, path);
		}
		if (fd < 0)
			err = fd;
		else
			att->link_fd[h] = fd;
	}
	close(cg_fd);
	return err;
}

int loader_prune_links(struct tg_loader *l)
{
	return pins_prune_links(l->pin_dir, l->natts ? &l->atts[0].cgroup_id : NULL, l->natts,
				sizeof(l->atts[0]));
}

void loader_close(struct tg_loader *l)
{
	for (size_t i = 0; i < l->natts; i++)
		for (int h = 0; h < TG_HOOK__MAX; h++)
			if (l->atts[i].link_fd[h] >= 0)
				close(l->atts[i].link_fd[h]);
	free(l->atts);
	l->atts = NULL;
	l->natts = 0;
	kmaps_none(&l->maps);
	tlsguard_bpf__destroy(l->skel);
	l->skel = NULL;
}

/* Also the pins of the other objects (dns/): they live in subdirectories. */
int loader_uninstall(const char *pin_dir, bool *found)
{
	return pins_remove_dir(pin_dir, found);
}
