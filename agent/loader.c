// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "loader.h"
#include "log.h"
#include "tlsguard/config.h"
#include "tlsguard.skel.h"

#define LAYOUT_PIN	"layout"
#define LINKS_DIR	"links"

static const char *const hook_names[TG_HOOK__MAX] = {
	[TG_HOOK_CONNECT4] = "connect4",
	[TG_HOOK_CONNECT6] = "connect6",
	[TG_HOOK_EGRESS] = "egress",
};

const char *loader_hook_name(enum tg_hook h)
{
	return h < TG_HOOK__MAX ? hook_names[h] : "?";
}

static struct bpf_program *hook_prog(struct tg_loader *l, enum tg_hook h)
{
	switch (h) {
	case TG_HOOK_CONNECT4:
		return l->skel->progs.tg_connect4;
	case TG_HOOK_CONNECT6:
		return l->skel->progs.tg_connect6;
	case TG_HOOK_EGRESS:
		return l->skel->progs.tg_egress;
	default:
		return NULL;
	}
}

static int mkdir_p(const char *path, mode_t mode)
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

static int pin_file(char *out, size_t len, const char *dir, const char *name)
{
	int n = snprintf(out, len, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/*
 * The layout marker: a one-entry array map pinned next to the maps, holding
 * TG_PIN_LAYOUT_VERSION. Pins from another layout are not adopted.
 */
static int check_layout(struct tg_loader *l)
{
	char path[4096];
	__u32 key = 0, version = 0, want = TG_PIN_LAYOUT_VERSION;
	int fd, err;

	err = pin_file(path, sizeof(path), l->pin_dir, LAYOUT_PIN);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		err = bpf_map_lookup_elem(fd, &key, &version) ? -errno : 0;
		close(fd);
		if (err)
			return err;
		if (version != want) {
			tg_err("pins in %s have layout %u, this agent uses %u; "
			       "run 'tlsguard uninstall --pin-path %s' first",
			       l->pin_dir, version, want, l->pin_dir);
			return -EEXIST;
		}
		l->adopted_maps = true;
		return 0;
	}
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "tg_layout", sizeof(key), sizeof(version), 1, NULL);
	if (fd < 0)
		return -errno;
	err = bpf_map_update_elem(fd, &key, &want, BPF_ANY) ? -errno : 0;
	if (!err && bpf_obj_pin(fd, path))
		err = -errno;
	close(fd);
	return err;
}

static int set_map_pins(struct tg_loader *l)
{
	struct bpf_map *maps[] = {
		l->skel->maps.tg_dests, l->skel->maps.tg_classes, l->skel->maps.tg_flows,
		l->skel->maps.tg_events, l->skel->maps.tg_counters, l->skel->maps.tg_config,
		l->skel->maps.tg_class_stats,
	};
	char path[4096];
	int err;

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		err = pin_file(path, sizeof(path), l->pin_dir, bpf_map__name(maps[i]));
		if (err)
			return err;
		err = bpf_map__set_pin_path(maps[i], path);
		if (err)
			return err;
	}
	return 0;
}

static void probe_features(struct tg_loader *l)
{
	l->have_current_task =
		libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
					BPF_FUNC_get_current_pid_tgid, NULL) == 1 &&
		libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
					BPF_FUNC_get_current_comm, NULL) == 1;
	l->have_current_cgroup =
		libbpf_probe_bpf_helper(BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
					BPF_FUNC_get_current_cgroup_id, NULL) == 1;
	if (!l->have_current_task)
		tg_warn("kernel does not give cgroup/connect programs the caller's pid and comm; "
			"events will not name the process");
}

int loader_load(struct tg_loader *l, const char *pin_dir)
{
	int err;

	memset(l, 0, sizeof(*l));
	if (snprintf(l->pin_dir, sizeof(l->pin_dir), "%s", pin_dir) >= (int)sizeof(l->pin_dir))
		return -ENAMETOOLONG;
	err = mkdir_p(l->pin_dir, 0700);
	if (err) {
		tg_err("cannot create pin directory %s: %s (is bpffs mounted at /sys/fs/bpf?)",
		       l->pin_dir, strerror(-err));
		return err;
	}
	err = check_layout(l);
	if (err) {
		if (err != -EEXIST)
			tg_err("cannot use pin directory %s: %s", l->pin_dir, strerror(-err));
		return err;
	}
	l->skel = tlsguard_bpf__open();
	if (!l->skel) {
		err = -errno;
		tg_err("cannot open BPF object: %s", strerror(-err));
		return err;
	}
	probe_features(l);
	l->skel->rodata->tg_have_current_task = l->have_current_task;
	l->skel->rodata->tg_have_current_cgroup = l->have_current_cgroup;
	err = set_map_pins(l);
	if (err) {
		tg_err("cannot set pin paths under %s: %s", l->pin_dir, strerror(-err));
		return err;
	}
	err = tlsguard_bpf__load(l->skel);
	if (err) {
		tg_err("cannot load BPF programs: %s (run with -v for the verifier log; "
		       "pins in %s from another build? try 'tlsguard uninstall --pin-path %s')",
		       strerror(-err), l->pin_dir, l->pin_dir);
		return err;
	}
	return 0;
}

static int link_pin_path(struct tg_loader *l, uint64_t cgid, enum tg_hook h, char *out, size_t len)
{
	int n = snprintf(out, len, "%s/%s/%" PRIu64 "_%s", l->pin_dir, LINKS_DIR, cgid, hook_names[h]);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Switch a pinned link to this agent's program; -ENOENT when there is none. */
static int adopt_link(const char *path, int prog_fd)
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

static int attach_new(struct bpf_program *prog, int cg_fd, const char *path)
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

	if (snprintf(path, sizeof(path), "%s/%s", l->pin_dir, LINKS_DIR) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	err = mkdir_p(path, 0700);
	if (err)
		return err;
	cg_fd = open(abs_cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0)
		return -errno;
	for (int h = 0; h < TG_HOOK__MAX && !err; h++) {
		int prog_fd = bpf_program__fd(hook_prog(l, h));
		int fd;

		err = link_pin_path(l, att->cgroup_id, h, path, sizeof(path));
		if (err)
			break;
		fd = adopt_link(path, prog_fd);
		if (fd >= 0) {
			att->adopted[h] = true;
		} else {
			fd = attach_new(hook_prog(l, h), cg_fd, path);
		}
		if (fd < 0)
			err = fd;
		else
			att->link_fd[h] = fd;
	}
	close(cg_fd);
	return err;
}

static bool wanted_link(struct tg_loader *l, const char *name)
{
	char *end;
	uint64_t id = strtoull(name, &end, 10);

	if (*end != '_')
		return false;
	for (size_t i = 0; i < l->natts; i++)
		if (l->atts[i].cgroup_id == id)
			return true;
	return false;
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

static int for_each_link(const char *pin_dir, int (*fn)(const char *path, const char *name, void *arg),
			 void *arg)
{
	char dir[4096], path[4096 + 256];
	struct dirent *de;
	DIR *d;
	int err = 0;

	snprintf(dir, sizeof(dir), "%s/%s", pin_dir, LINKS_DIR);
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		err = fn(path, de->d_name, arg);
		if (err)
			break;
	}
	closedir(d);
	return err;
}

static int prune_one(const char *path, const char *name, void *arg)
{
	struct tg_loader *l = arg;

	if (wanted_link(l, name))
		return 0;
	tg_info("detaching %s: its cgroup is no longer watched", name);
	return detach_pinned_link(path);
}

int loader_prune_links(struct tg_loader *l)
{
	return for_each_link(l->pin_dir, prune_one, l);
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
	tlsguard_bpf__destroy(l->skel);
	l->skel = NULL;
}

static int uninstall_link(const char *path, const char *name, void *arg)
{
	return detach_pinned_link(path);
}

int loader_uninstall(const char *pin_dir, bool *found)
{
	char path[4096 + 256];
	struct dirent *de;
	DIR *d;
	int err;

	*found = false;
	d = opendir(pin_dir);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	*found = true;
	err = for_each_link(pin_dir, uninstall_link, NULL);
	if (err) {
		closedir(d);
		return err;
	}
	snprintf(path, sizeof(path), "%s/%s", pin_dir, LINKS_DIR);
	rmdir(path);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || !strcmp(de->d_name, LINKS_DIR))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, de->d_name);
		if (unlink(path) < 0 && errno != ENOENT) {
			err = -errno;
			break;
		}
	}
	closedir(d);
	if (!err && rmdir(pin_dir) < 0)
		err = -errno;
	return err;
}
