/* SPDX-License-Identifier: MIT */
/*
 * What the running kernel offers tlsguard, probed once before the BPF object
 * is loaded. The loader sets rodata flags from it so the programs load on
 * kernels without the optional helpers; `tlsguard version` and the kernel
 * matrix (tests/kernel/) print it. Each field is 1 (present), 0 (absent) or
 * a negative errno when the probe itself could not run. (Not named features.h:
 * agent/ is on the include path and that would shadow glibc's <features.h>.)
 */
#ifndef TLSGUARD_AGENT_KERNEL_FEATURES_H
#define TLSGUARD_AGENT_KERNEL_FEATURES_H

#include <stddef.h>

struct tg_features {
	int kernel_version;		/* TG_KERNEL_VERSION(major, minor) of uname -r; -1: unknown */
	/* required: the agent cannot enforce anything without these */
	int prog_cgroup_sock_addr;	/* cgroup/connect4, connect6 */
	int prog_cgroup_skb;		/* cgroup_skb/egress */
	int map_sk_storage;		/* per-socket flow state */
	int map_ringbuf;		/* events */
	int map_lpm_trie;		/* destinations */
	int sock_storage;		/* sk_storage from cgroup/sock_release (the flow cap) */
	int vmlinux_btf;		/* /sys/kernel/btf/vmlinux */
	/* optional: a fallback is picked when absent */
	int current_task;		/* pid_tgid and comm helpers in cgroup/connect */
	int current_cgroup;		/* current_cgroup_id helper in cgroup/connect */
	int sock_destroy_kfunc;		/* bpf_sock_destroy (6.5+), else sock_diag */
	int tail_call_in_subprogs;	/* DNS learning chained behind the skb programs, else attached beside */
};

/* Fill *f. Never fails: a probe that cannot run leaves its -errno. */
void features_probe(struct tg_features *f);

/*
 * The oldest kernel tlsguard supports: AKS node images start at 5.15. What
 * the programs need is older (sk_storage in cgroup/sock_release: 5.11; global
 * BPF functions with pointer arguments: 5.12), but 5.15 is the floor the project targets;
 * tests/kernel runs 6.1 and the host's kernel (docs/kernel-matrix.md).
 */
#define TG_MIN_KERNEL		"5.15"
#define TG_KERNEL_VERSION(major, minor)	((major) * 256 + (minor))
#define TG_MIN_KERNEL_VERSION	TG_KERNEL_VERSION(5, 15)

/* TG_KERNEL_VERSION of a release string ("6.1.0-56-cloud-amd64"), or -1. */
int features_parse_release(const char *release);

/*
 * 0 when every required feature is there; else -ENOTSUP and one line in @msg
 * naming the first missing feature and what to do (no verifier dump).
 */
int features_check_required(const struct tg_features *f, char *msg, size_t len);

/* "yes", "no" or "unknown" for one field. */
const char *features_str(int probe);

#endif /* TLSGUARD_AGENT_KERNEL_FEATURES_H */
