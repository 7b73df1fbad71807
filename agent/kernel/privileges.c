// SPDX-License-Identifier: MIT
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "privileges.h"

#ifndef CAP_BPF
#define CAP_BPF 39	/* Linux 5.8 */
#endif

#define CAP_BIT(c)	((uint64_t)1 << (c))

/* glibc has no capget/capset wrappers; libcap would be a dependency for two syscalls */
static int caps_get(uint64_t *effective, uint64_t *permitted)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	/* zeroed: valgrind only knows the one-word (version 1) layout of capget */
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return -errno;
	*effective = data[0].effective | (uint64_t)data[1].effective << 32;
	*permitted = data[0].permitted | (uint64_t)data[1].permitted << 32;
	return 0;
}

static int caps_set(uint64_t keep)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	data[0].effective = data[0].permitted = (uint32_t)keep;
	data[1].effective = data[1].permitted = (uint32_t)(keep >> 32);
	return syscall(SYS_capset, &hdr, data) < 0 ? -errno : 0;
}

/* The highest capability this kernel knows; the bounding set ends there. */
static int last_cap(void)
{
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	int last = 40;

	if (f) {
		if (fscanf(f, "%d", &last) != 1 || last < 0 || last > 63)
			last = 40;
		fclose(f);
	}
	return last;
}

/*
 * Best effort: without CAP_SETPCAP (a systemd unit or a pod whose bounding
 * set already holds only the kept ones) there is nothing left to drop, and
 * with no_new_privs an exec could not regain a capability anyway.
 */
static void bounding_drop(uint64_t keep)
{
	int last = last_cap();

	for (int c = 0; c <= last; c++)
		if (!(keep & CAP_BIT(c)) && prctl(PR_CAPBSET_READ, c, 0, 0, 0) == 1)
			prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
}

/*
 * What the agent cannot work without, in the order a message names the first
 * one missing. No CAP_BPF or CAP_PERFMON row: the kernel's bpf_capable() and
 * perfmon_capable() accept CAP_SYS_ADMIN as well, which the agent needs
 * anyway (setns), so with it they add nothing (tests/image shows it).
 */
static const struct {
	uint64_t cap;
	const char *name;
	const char *why;
} required[] = {
	{ CAP_BIT(CAP_SYS_ADMIN), "CAP_SYS_ADMIN",
	  "it loads the programs (bpf(2) and the verifier accept it in place of CAP_BPF and CAP_PERFMON), "
	  "mounts bpffs where none is, and enters a workload's network namespace to destroy its "
	  "blocked socket (setns)" },
	{ CAP_BIT(CAP_NET_ADMIN), "CAP_NET_ADMIN",
	  "it destroys blocked sockets (sock_diag SOCK_DESTROY) and attaches cgroup_skb programs" },
	{ CAP_BIT(CAP_SYS_PTRACE), "CAP_SYS_PTRACE",
	  "it opens /proc/PID/ns/net of workloads that run as another user or hold other capabilities" },
};

/* What it needs is what it keeps: the rows above are used after attach too. */
uint64_t privileges_kept_mask(void)
{
	uint64_t keep = 0;

	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		keep |= required[i].cap;
	return keep;
}

int privileges_missing(uint64_t effective, char *msg, size_t len)
{
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
		if (effective & required[i].cap)
			continue;
		snprintf(msg, len, "the agent lacks %s: %s; grant it (docs/install-aks.md, \"Capabilities\")",
			 required[i].name, required[i].why);
		return -EPERM;
	}
	return 0;
}

int privileges_check(char *msg, size_t len)
{
	uint64_t eff = 0, prm = 0;
	int err = caps_get(&eff, &prm);

	if (err) {
		snprintf(msg, len, "cannot read the agent's capabilities: %s", strerror(-err));
		return err;
	}
	return privileges_missing(eff, msg, len);
}

int privileges_drop(char *msg, size_t len)
{
	uint64_t keep = privileges_kept_mask(), eff = 0, prm = 0;
	int err;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		err = -errno;
		snprintf(msg, len, "cannot set no_new_privs: %s", strerror(-err));
		return err;
	}
	err = caps_get(&eff, &prm);
	if (err) {
		snprintf(msg, len, "cannot read the agent's capabilities: %s", strerror(-err));
		return err;
	}
	/* before capset: PR_CAPBSET_DROP itself needs CAP_SETPCAP */
	bounding_drop(keep);
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	err = caps_set(prm & keep);
	if (err) {
		snprintf(msg, len, "cannot drop capabilities: %s", strerror(-err));
		return err;
	}
	snprintf(msg, len, "programs attached: dropped %d capabilities, kept %s%s%s(no_new_privs)",
		 __builtin_popcountll(prm & ~keep), prm & CAP_BIT(CAP_NET_ADMIN) ? "CAP_NET_ADMIN " : "",
		 prm & CAP_BIT(CAP_SYS_ADMIN) ? "CAP_SYS_ADMIN " : "",
		 prm & CAP_BIT(CAP_SYS_PTRACE) ? "CAP_SYS_PTRACE " : "");
	return 0;
}
