// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "cgroup.h"
#include "dir.h"
#include "log.h"
#include "mounts.h"
#include "pins.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

static int copy_path(char *out, size_t len, const char *path)
{
	size_t n = strlen(path);

	if (!n)
		return -EINVAL;
	if (n >= len)
		return -ENAMETOOLONG;
	memcpy(out, path, n + 1);
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';	/* "dir/" and "dir" are one directory */
	return 0;
}

/* Cut the last component: "/a/b" → "/a", "/a" → "/", "a" → ".". */
static void cut_last(char *path)
{
	char *slash = strrchr(path, '/');

	if (!slash)
		strcpy(path, ".");
	else if (slash == path)
		path[1] = '\0';
	else
		*slash = '\0';
}

int mounts_bpffs_point(const char *pin_path, char *out, size_t len)
{
	static const char def[] = TG_BPFFS_DEFAULT;
	int err = copy_path(out, len, pin_path);

	if (err)
		return err;
	if (!strncmp(out, def, sizeof(def) - 1) && (!out[sizeof(def) - 1] || out[sizeof(def) - 1] == '/')) {
		if (len < sizeof(def))
			return -ENAMETOOLONG;
		strcpy(out, def);
		return 0;
	}
	cut_last(out);
	return 0;
}

int mounts_on_bpffs(const char *path)
{
	char p[4096];
	struct statfs sfs;
	int err = copy_path(p, sizeof(p), path);

	if (err)
		return err;
	/* a pin directory made later lands on the file system of its closest ancestor */
	while (statfs(p, &sfs) < 0) {
		if (errno != ENOENT)
			return -errno;
		if (!strcmp(p, "/") || !strcmp(p, "."))
			return -ENOENT;
		cut_last(p);
	}
	return sfs.f_type == BPF_FS_MAGIC;
}

/* 1 when @dir is missing or empty, 0 when it holds something, -errno. */
static int any_entry(const char *name, unsigned char type, void *arg)
{
	(void)name;
	(void)type;
	(void)arg;
	return 1;
}

static int dir_is_empty(const char *dir)
{
	int found = tg_dir_each(dir, any_entry, NULL);

	if (found == -ENOENT)
		return 1;
	return found < 0 ? found : !found;
}

static void log_mount_failure(const char *what, const char *type, const char *point, int err)
{
	const char *hint;

	switch (err) {
	case -EPERM:
	case -EACCES:
		hint = "the agent needs CAP_SYS_ADMIN to mount it";
		break;
	case -EROFS:
		hint = "the file system is read-only here (a container?); mount it on the host and pass it in";
		break;
	default:
		hint = "mount it before starting the agent";
		break;
	}
	tg_err("%s is not mounted and mounting it at %s failed: %s; %s (mount -t %s %s %s)", what,
	       point, strerror(-err), hint, type, type, point);
}

/*
 * Is this process in another mount namespace than PID 1 (a container, a
 * unit with PrivateMounts, unshare -m)? A mount made here is then not the
 * host's, and dies with the namespace. Unreadable /proc/1: taken as yes.
 */
static bool in_private_mount_ns(void)
{
	char self[64], init[64];
	ssize_t a = readlink("/proc/self/ns/mnt", self, sizeof(self) - 1);
	ssize_t b = readlink("/proc/1/ns/mnt", init, sizeof(init) - 1);

	if (a < 0 || b < 0)
		return true;
	self[a] = init[b] = '\0';
	return strcmp(self, init) != 0;
}

/*
 * Whether the topmost mount at @point propagates to a peer group ("shared:N"
 * in /proc/self/mountinfo): a container's Bidirectional mount does, so the
 * host has it too (the DaemonSet's mount-bpffs init container).
 */
static bool mount_is_shared(const char *point)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096], mnt[4096];
	bool shared = false;

	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char *sep = strstr(line, " - ");

		if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 || strcmp(mnt, point))
			continue;
		*sep = '\0';
		shared = strstr(line, " shared:") != NULL;	/* the last one is the topmost */
	}
	fclose(f);
	return shared;
}

int mounts_ensure_bpffs(const char *pin_path, bool *mounted)
{
	char point[4096];
	int err, empty;

	if (mounted)
		*mounted = false;
	err = mounts_on_bpffs(pin_path);
	if (err == 1)
		return 0;
	if (err < 0 && err != -ENOENT) {
		tg_err("cannot tell the file system of pin path %s: %s", pin_path, strerror(-err));
		return err;
	}
	err = mounts_bpffs_point(pin_path, point, sizeof(point));
	if (err) {
		tg_err("invalid pin path %s: %s", pin_path, strerror(-err));
		return err;
	}
	/* anywhere but its usual place, never hide what a directory holds */
	empty = strcmp(point, TG_BPFFS_DEFAULT) ? dir_is_empty(point) : 1;
	if (empty <= 0) {
		tg_err("pin path %s is not on bpffs and %s is not an empty directory%s%s; mount bpffs "
		       "there first (mount -t bpf bpf DIR) or use a pin path under %s",
		       pin_path, point, empty < 0 ? ": " : "", empty < 0 ? strerror(-empty) : "",
		       TG_BPFFS_DEFAULT);
		return empty < 0 ? empty : -ENOTEMPTY;
	}
	err = pins_mkdir_p(point, 0700);
	if (!err && mount("bpf", point, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") < 0)
		err = -errno;
	if (err) {
		log_mount_failure("bpffs", "bpf", point, err);
		return err;
	}
	tg_info("mounted bpffs at %s: none was mounted there, and pins must live on bpffs "
		"(it stays mounted so the pins outlive the agent)", point);
	if (mount_is_shared(point))
		tg_info("the bpffs mount at %s is shared with its peers (the host, for a "
			"container's Bidirectional mount)", point);
	else if (in_private_mount_ns())
		tg_warn("this process is in a mount namespace of its own (a container?): the bpffs "
			"mount, and the pins on it, last only as long as that namespace; mount bpffs "
			"on the host to keep enforcing across restarts (docs/troubleshooting.md)");
	if (mounted)
		*mounted = true;
	return 0;
}

int mounts_ensure_cgroup2(char *out, size_t len)
{
	int err = cgroup_find_mount(out, len);

	if (err != -ENOENT) {
		if (err)
			tg_err("cannot read /proc/mounts for the cgroup2 mount: %s", strerror(-err));
		return err;
	}
	if (len <= strlen(TG_PRIVATE_CGROUP2))
		return -ENAMETOOLONG;
	err = pins_mkdir_p(TG_PRIVATE_CGROUP2, 0700);
	if (!err && mount("cgroup2", TG_PRIVATE_CGROUP2, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC,
			  NULL) < 0)
		err = -errno;
	if (err) {
		log_mount_failure("the unified cgroup hierarchy (cgroup2)", "cgroup2", TG_PRIVATE_CGROUP2,
				  err);
		return err;
	}
	strcpy(out, TG_PRIVATE_CGROUP2);
	tg_info("mounted cgroup2 at %s: no cgroup2 file system was mounted (see /proc/mounts); "
		"workload cgroups are named relative to it", TG_PRIVATE_CGROUP2);
	return 0;
}
