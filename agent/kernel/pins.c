// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dir.h"
#include "log.h"
#include "pins.h"

int pins_mkdir_p(const char *path, mode_t mode)
{
	char tmp[4096];

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int pins_path(char *out, size_t len, const char *dir, const char *name)
{
	int n = snprintf(out, len, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int pins_read_layout(const char *dir, uint32_t *layout, uint32_t *event_abi)
{
	char path[4096];
	__u32 key = 0, v = 0;
	int fd, err;

	err = pins_path(path, sizeof(path), dir, TG_PINS_LAYOUT);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	err = bpf_map_lookup_elem(fd, &key, &v) ? -errno : 0;
	*layout = v;
	if (event_abi) {
		/* markers of releases before the handoff have no second entry */
		key = 1;
		v = 0;
		bpf_map_lookup_elem(fd, &key, &v);
		*event_abi = v;
	}
	close(fd);
	return err;
}

/* A new marker at @path: an array of the layout version and the event ABI. */
static int pin_layout(const char *path, uint32_t version, uint32_t event_abi)
{
	__u32 key = 0;
	int fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "tg_layout", sizeof(key), sizeof(version), 2,
				NULL), err;

	if (fd < 0)
		return -errno;
	err = bpf_map_update_elem(fd, &key, &version, BPF_ANY) ? -errno : 0;
	key = 1;
	if (!err && bpf_map_update_elem(fd, &key, &event_abi, BPF_ANY))
		err = -errno;
	if (!err && bpf_obj_pin(fd, path))
		err = -errno;
	close(fd);
	return err;
}

int pins_check_layout(const char *dir, uint32_t version, uint32_t event_abi, const char *top_dir,
		      bool *adopted)
{
	char path[4096];
	uint32_t have = 0;
	int err;

	*adopted = false;
	err = pins_read_layout(dir, &have, NULL);
	if (err == -ENOENT) {
		err = pins_path(path, sizeof(path), dir, TG_PINS_LAYOUT);
		return err ? err : pin_layout(path, version, event_abi);
	}
	if (err)
		return err;
	if (have != version) {
		tg_err("pins in %s have layout %u, this agent uses %u; "
		       "run 'tlsguard uninstall --pin-path %s' first",
		       dir, have, version, top_dir);
		return -EEXIST;
	}
	*adopted = true;
	return 0;
}

int pins_adopt_link(const char *path, int prog_fd)
{
	int fd = bpf_obj_get(path);

	if (fd < 0)
		return -errno;
	if (bpf_link_update(fd, prog_fd, NULL)) {
		int err = -errno;

		/* a link whose cgroup went away cannot be revived: replace it */
		close(fd);
		unlink(path);
		tg_warn("pinned link %s is stale (%s); attaching anew", path, strerror(-err));
		return -ENOENT;
	}
	return fd;
}

int pins_attach_new(struct bpf_program *prog, int cg_fd, const char *path)
{
	struct bpf_link *link = bpf_program__attach_cgroup(prog, cg_fd);
	int fd, err;

	if (!link)
		return -errno;
	err = bpf_link__pin(link, path);
	if (err) {
		bpf_link__destroy(link);
		return err;
	}
	fd = dup(bpf_link__fd(link));
	/* the pin keeps it attached; our dup keeps a handle for status */
	bpf_link__disconnect(link);
	bpf_link__destroy(link);
	return fd < 0 ? -errno : fd;
}

int pins_link_path(char *out, size_t len, const char *dir, uint64_t cgroup_id, const char *hook)
{
	int n = snprintf(out, len, "%s/%s/%" PRIu64 "_%s", dir, TG_PINS_LINKS, cgroup_id, hook);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Unpinning alone would leave a link that was also held open elsewhere; detach it first. */
static int detach_pinned_link(const char *path)
{
	int fd = bpf_obj_get(path);

	if (fd >= 0) {
		bpf_link_detach(fd);
		close(fd);
	}
	return unlink(path) ? -errno : 0;
}

static bool wanted_link(const char *name, const uint64_t *keep, size_t n, size_t stride)
{
	char *end;
	uint64_t id = strtoull(name, &end, 10);

	if (*end != '_')
		return false;
	for (size_t i = 0; i < n; i++)
		if (*(const uint64_t *)((const char *)keep + i * stride) == id)
			return true;
	return false;
}

struct prune {
	const char *links;
	const uint64_t *keep;
	size_t n, stride;
};

static int prune_link(const char *name, unsigned char type, void *arg)
{
	const struct prune *p = arg;
	char path[4096 + 256];

	(void)type;
	if (tg_dir_hidden(name) || wanted_link(name, p->keep, p->n, p->stride))
		return 0;
	snprintf(path, sizeof(path), "%s/%s", p->links, name);
	tg_info("detaching %s: its cgroup is no longer watched", path);
	return detach_pinned_link(path);
}

int pins_prune_links(const char *dir, const uint64_t *keep, size_t n, size_t stride)
{
	char links[4096];
	struct prune p = { .links = links, .keep = keep, .n = n, .stride = stride };
	int err;

	if (pins_path(links, sizeof(links), dir, TG_PINS_LINKS))
		return -ENAMETOOLONG;
	err = tg_dir_each(links, prune_link, &p);
	return err == -ENOENT ? 0 : err;	/* no links/ yet, or a link gone before its unlink */
}

/*
 * Links first (detached, not just unpinned: every program off its cgroup
 * before any map goes), then maps and subdirectories, then the directory.
 */
static int remove_tree(const char *dir, bool links, int depth)
{
	char path[4096 + 256];
	struct dirent *de;
	struct stat st;
	DIR *d;
	int err = 0;

	if (depth > 4)
		return -ELOOP;
	if (!links && !pins_path(path, sizeof(path), dir, TG_PINS_LINKS) && !lstat(path, &st) &&
	    S_ISDIR(st.st_mode)) {
		err = remove_tree(path, true, depth + 1);
		if (err)
			return err;
	}
	d = opendir(dir);
	if (!d)
		return -errno;
	while (!err && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) < 0) {
			err = errno == ENOENT ? 0 : -errno;
			continue;
		}
		if (S_ISDIR(st.st_mode))
			err = remove_tree(path, false, depth + 1);
		else if (links)
			err = detach_pinned_link(path);
		else if (unlink(path) < 0 && errno != ENOENT)
			err = -errno;
	}
	closedir(d);
	if (!err && rmdir(dir) < 0)
		err = -errno;
	return err;
}

int pins_remove_tree(const char *dir)
{
	return remove_tree(dir, false, 0);
}

int pins_remove_dir(const char *dir, bool *found)
{
	struct stat st;

	*found = false;
	if (stat(dir, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	*found = true;
	return remove_tree(dir, false, 0);
}

/* The type, key and value sizes of map @fd: 0 or -errno. */
static int map_shape(int fd, struct bpf_map_info *info)
{
	__u32 len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	return bpf_obj_get_info_by_fd(fd, info, &len) ? -errno : 0;
}

static bool map_is_per_cpu(__u32 type)
{
	return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
	       type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
}

int pins_copy_map(int from, int to, size_t *copied)
{
	struct bpf_map_info a, b;
	char *buf;
	void *prev = NULL, *next, *cur, *val;
	int err;

	*copied = 0;
	err = map_shape(from, &a);
	if (!err)
		err = map_shape(to, &b);
	if (err)
		return err;
	if (a.type != b.type || a.key_size != b.key_size || a.value_size != b.value_size ||
	    map_is_per_cpu(a.type) || !a.key_size)
		return -EINVAL;
	buf = malloc(2 * (size_t)a.key_size + a.value_size);
	if (!buf)
		return -ENOMEM;
	cur = buf;
	next = buf + a.key_size;
	val = buf + 2 * (size_t)a.key_size;
	while (!bpf_map_get_next_key(from, prev, next)) {
		memcpy(cur, next, a.key_size);
		prev = cur;
		if (bpf_map_lookup_elem(from, cur, val))
			continue;	/* deleted meanwhile */
		if (bpf_map_update_elem(to, cur, val, BPF_ANY)) {
			err = -errno;	/* full: what was copied stays */
			break;
		}
		(*copied)++;
	}
	free(buf);
	return err;
}
