/* SPDX-License-Identifier: MIT */
/*
 * The file systems the agent needs, made when they are missing, the way
 * Cilium and Tetragon do: a machine without systemd as PID 1 (CI runners,
 * containers, minimal cloud images) has no bpffs at /sys/fs/bpf, and may
 * have no cgroup2 mount at all.
 *
 *  - bpffs: pins live on it. When the pin path's file system is not bpffs,
 *    one is mounted at /sys/fs/bpf (a pin path under it) or at the pin
 *    path's parent (anywhere else, only when that directory is empty, so
 *    nothing is hidden), and one log line says so. It stays mounted when
 *    the agent exits: the pins must outlive it.
 *  - cgroup2: the first cgroup2 mount in /proc/mounts; with none, one is
 *    mounted at TG_PRIVATE_CGROUP2 (the same hierarchy the kernel keeps;
 *    only the agent uses the path).
 *
 * Where a mount is refused (no CAP_SYS_ADMIN, read-only /sys), the error
 * says what to do, once.
 */
#ifndef TLSGUARD_AGENT_MOUNTS_H
#define TLSGUARD_AGENT_MOUNTS_H

#include <stdbool.h>
#include <stddef.h>

#define TG_BPFFS_DEFAULT	"/sys/fs/bpf"
#define TG_PRIVATE_CGROUP2	"/run/tlsguard/cgroup2"

/*
 * Where bpffs would have to be mounted for @pin_path: "/sys/fs/bpf" for a
 * path under it, else the path's parent. 0 or -ENAMETOOLONG / -EINVAL.
 */
int mounts_bpffs_point(const char *pin_path, char *out, size_t len);

/*
 * Is the file system that holds @path (or its closest existing ancestor)
 * bpffs? 1, 0, or -errno.
 */
int mounts_on_bpffs(const char *path);

/*
 * Make sure @pin_path can live on bpffs: mount one when it cannot.
 * *mounted (optional) tells whether this call mounted it. 0 or -errno,
 * logged with what to do.
 */
int mounts_ensure_bpffs(const char *pin_path, bool *mounted);

/*
 * The cgroup2 mount point (from /proc/mounts, else mounted at
 * TG_PRIVATE_CGROUP2). 0 or -errno, logged.
 */
int mounts_ensure_cgroup2(char *out, size_t len);

#endif /* TLSGUARD_AGENT_MOUNTS_H */
