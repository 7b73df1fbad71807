// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "kernel_features.h"

/* Both helpers must be there for the flag to be on; unknown beats absent. */
static int probe_both(int a, int b)
{
	if (a == 1 && b == 1)
		return 1;
	if (a == 0 || b == 0)
		return 0;
	return a < 0 ? a : b;
}

/* kfuncs are not helpers: the only way to ask is the kernel's own BTF. */
static int probe_kfunc(const char *name)
{
	struct btf *btf = btf__load_vmlinux_btf();
	int ret;

	if (!btf)
		return -errno;
	ret = btf__find_by_name_kind(btf, name, BTF_KIND_FUNC) >= 0;
	btf__free(btf);
	return ret;
}

/*
 * Can a program with a BPF-to-BPF call also tail-call? The verifier says so
 * per architecture (x86-64 from 5.10, arm64 from 6.0), so ask it: a
 * cgroup_skb program that calls a subprogram, then tail-calls into an empty
 * program array. 1, 0 (refused) or -errno (could not ask).
 */
static int probe_tail_call_in_subprogs(void)
{
	int map_fd = bpf_map_create(BPF_MAP_TYPE_PROG_ARRAY, NULL, sizeof(__u32), sizeof(__u32), 1,
				    NULL);
	int fd, ret;

	if (map_fd < 0)
		return -errno;
	{
		const struct bpf_insn insns[] = {
			/* r6 = ctx; call subprog (insn 9); r1 = r6; r2 = map; r3 = 0 */
			{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_6, .src_reg = BPF_REG_1 },
			{ .code = BPF_JMP | BPF_CALL, .src_reg = BPF_PSEUDO_CALL, .imm = 7 },
			{ .code = BPF_ALU64 | BPF_MOV | BPF_X, .dst_reg = BPF_REG_1, .src_reg = BPF_REG_6 },
			{ .code = BPF_LD | BPF_DW | BPF_IMM, .dst_reg = BPF_REG_2,
			  .src_reg = BPF_PSEUDO_MAP_FD, .imm = map_fd },
			{ 0 },
			{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_3, .imm = 0 },
			/* tail_call(ctx, map, 0); return 1 */
			{ .code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_tail_call },
			{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
			{ .code = BPF_JMP | BPF_EXIT },
			/* the subprogram: return 1 */
			{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
			{ .code = BPF_JMP | BPF_EXIT },
		};

		fd = bpf_prog_load(BPF_PROG_TYPE_CGROUP_SKB, NULL, "GPL", insns,
				   sizeof(insns) / sizeof(insns[0]), NULL);
	}
	ret = fd >= 0 ? 1 : errno == EINVAL || errno == EACCES ? 0 : -errno;
	if (fd >= 0)
		close(fd);
	close(map_fd);
	return ret;
}

int features_parse_release(const char *release)
{
	unsigned int major, minor;

	if (!release || sscanf(release, "%u.%u", &major, &minor) != 2 || major > 255 ||
	    minor > 255)
		return -1;
	return TG_KERNEL_VERSION((int)major, (int)minor);
}

void features_probe(struct tg_features *f)
{
	struct utsname u;

	memset(f, 0, sizeof(*f));
	f->kernel_version = uname(&u) == 0 ? features_parse_release(u.release) : -1;
	f->prog_cgroup_sock_addr = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, NULL);
	f->prog_cgroup_skb = libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_CGROUP_SKB, NULL);
	f->map_sk_storage = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SK_STORAGE, NULL);
	f->map_ringbuf = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL);
	f->map_lpm_trie = libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LPM_TRIE, NULL);
	f->sock_storage = libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK, BPF_FUNC_sk_storage_get, NULL);
	f->vmlinux_btf = access("/sys/kernel/btf/vmlinux", R_OK) == 0 ? 1 :
			 errno == ENOENT ? 0 : -errno;
	f->current_task =
		probe_both(libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
						   BPF_FUNC_get_current_pid_tgid, NULL),
			   libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
						   BPF_FUNC_get_current_comm, NULL));
	f->current_cgroup = libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
						    BPF_FUNC_get_current_cgroup_id, NULL);
	f->sock_destroy_kfunc = f->vmlinux_btf == 1 ? probe_kfunc("bpf_sock_destroy") : 0;
	f->tail_call_in_subprogs = probe_tail_call_in_subprogs();
}

const char *features_str(int probe)
{
	return probe == 1 ? "yes" : probe == 0 ? "no" : "unknown";
}

/* The required features, in the order a message should name the first missing one. */
static const struct {
	size_t offset;
	const char *what;
	const char *since;
} required[] = {
	{ offsetof(struct tg_features, prog_cgroup_sock_addr), "cgroup/connect BPF programs", "4.17" },
	{ offsetof(struct tg_features, prog_cgroup_skb), "cgroup_skb BPF programs", "4.10" },
	{ offsetof(struct tg_features, map_lpm_trie), "LPM trie maps", "4.11" },
	{ offsetof(struct tg_features, map_sk_storage), "socket local storage (sk_storage) maps", "5.2" },
	{ offsetof(struct tg_features, map_ringbuf), "BPF ring buffer maps", "5.8" },
	{ offsetof(struct tg_features, sock_storage), "sk_storage in cgroup/sock programs", "5.11" },
};

int features_check_required(const struct tg_features *f, char *msg, size_t len)
{
	/* unknown (an odd release string) is left to the feature probes */
	if (f->kernel_version >= 0 && f->kernel_version < TG_MIN_KERNEL_VERSION) {
		snprintf(msg, len, "this kernel is Linux %d.%d; tlsguard needs Linux %s or newer "
			 "(AKS node images ship 5.15+), see docs/troubleshooting.md",
			 f->kernel_version / 256, f->kernel_version % 256, TG_MIN_KERNEL);
		return -ENOTSUP;
	}
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		int v = *(const int *)((const char *)f + required[i].offset);

		if (v == 1)
			continue;
		if (v == 0)
			snprintf(msg, len, "this kernel lacks %s (Linux %s+); tlsguard needs Linux %s or newer "
				 "(AKS node images ship 5.15+), see docs/troubleshooting.md",
				 required[i].what, required[i].since, TG_MIN_KERNEL);
		else
			snprintf(msg, len, "cannot probe the kernel for %s: %s (is tlsguard running as root, "
				 "with CAP_BPF or CAP_SYS_ADMIN?)", required[i].what, strerror(-v));
		return -ENOTSUP;
	}
	return 0;
}
