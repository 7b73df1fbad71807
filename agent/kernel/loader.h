/* SPDX-License-Identifier: MIT */
/*
 * Load the BPF object, pin its maps and links under a bpffs directory, and
 * attach to cgroups. Over existing pins of the same layout it adopts: maps
 * are reused (flow state and unread events survive) and each pinned link is
 * switched to the new program atomically (bpf_link_update), so enforcement
 * never stops and nothing is attached twice.
 */
#ifndef TLSGUARD_AGENT_LOADER_H
#define TLSGUARD_AGENT_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kmaps.h"

#define TG_DEFAULT_PIN_PATH "/sys/fs/bpf/tlsguard"

struct tlsguard_bpf;

enum tg_hook {
	TG_HOOK_CONNECT4 = 0,
	TG_HOOK_CONNECT6,
	TG_HOOK_EGRESS,
	TG_HOOK_INGRESS,		/* ServerHello and server prefaces */
	TG_HOOK_RELEASE,		/* cgroup/sock_release: tracked flows give back their slot */
	TG_HOOK_SENDMSG4,		/* unconnected UDP to protected destinations */
	TG_HOOK_SENDMSG6,
	TG_HOOK_SOCK_CREATE,		/* raw sockets are marked for judging */
	TG_HOOK__MAX,
};

struct tg_attachment {
	char path[4096];		/* absolute cgroup directory */
	uint64_t cgroup_id;
	int link_fd[TG_HOOK__MAX];
	bool adopted[TG_HOOK__MAX];	/* was pinned before this agent started */
};

/* How DNS answer learning's programs run beside the verdict's (tlsguard.bpf.c). */
enum tg_dns_hooks {
	TG_DNS_HOOKS_AUTO = 0,		/* chained where the kernel allows it, else separate */
	TG_DNS_HOOKS_CHAINED,		/* tail-called from egress/ingress: one program run per packet */
	TG_DNS_HOOKS_SEPARATE,		/* attached as programs of their own */
};

struct tg_loader {
	struct tlsguard_bpf *skel;
	enum tg_dns_hooks dns_hooks;	/* asked for */
	bool dns_chained;		/* the outcome: maps.dns_chain_* are the slots */
	char pin_dir[4096];
	bool adopted_maps;		/* maps came from existing pins */
	struct tg_attachment *atts;
	size_t natts;
	bool have_current_task;		/* kernel feature probes */
	bool have_current_cgroup;
	bool have_census;		/* the census iterator is loaded and pinned */
	struct tg_kmaps maps;		/* the loaded object's maps; all -1 before the load */
};

/*
 * Open, probe, pin maps, load, fill l->maps. 0 or -errno, with the reason
 * logged (-ENOTSUP: chained DNS hooks asked for on a kernel without them).
 */
int loader_load(struct tg_loader *l, const char *pin_dir, enum tg_dns_hooks dns_hooks);

/* Attach (or adopt) all hooks on one cgroup directory. */
int loader_attach_cgroup(struct tg_loader *l, const char *abs_cgroup_path);

/* Detach pinned links of cgroups this agent was not asked to watch. */
int loader_prune_links(struct tg_loader *l);

/* Close fds; pins stay, so the kernel keeps enforcing. */
void loader_close(struct tg_loader *l);

/* Detach every pinned link and remove the pin directory. */
int loader_uninstall(const char *pin_dir, bool *found);

const char *loader_hook_name(enum tg_hook h);

/* Where the DNS program run from @host_hook's program is pinned (its 1-slot program array). */
const char *loader_dns_chain_pin(const struct tg_loader *l, enum tg_hook host_hook);

/* The names of the maps a generation pins (its layout, with TG_PIN_LAYOUT_VERSION); *n of them. */
const char *const *loader_pinned_maps(size_t *n);

#endif /* TLSGUARD_AGENT_LOADER_H */
