/* SPDX-License-Identifier: MIT */
/*
 * bpffs pin directories, shared by every BPF object the agent loads (the
 * verdict programs in loader.c, DNS learning in dnslearn.c). One directory
 * per object: a "layout" marker map, the pinned maps, and links/ holding one
 * pinned cgroup link per (cgroup id, hook). Links are adopted by
 * bpf_link_update so a restarted agent never detaches and never attaches
 * twice.
 */
#ifndef TLSGUARD_AGENT_PINS_H
#define TLSGUARD_AGENT_PINS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct bpf_program;

#define TG_PINS_LAYOUT	"layout"
#define TG_PINS_LINKS	"links"

/* mkdir -p. 0 or -errno. */
int pins_mkdir_p(const char *path, mode_t mode);

/* out = dir/name; -ENAMETOOLONG when it does not fit. */
int pins_path(char *out, size_t len, const char *dir, const char *name);

/*
 * The layout marker of @dir: an array map holding @version (entry 0) and
 * @event_abi (entry 1; releases before the generation handoff made a
 * one-entry map). Made when missing (*adopted = false); when present and
 * equal, *adopted = true; a different version is -EEXIST, logged with the
 * uninstall command for @top_dir (the agent's pin directory).
 */
int pins_check_layout(const char *dir, uint32_t version, uint32_t event_abi, const char *top_dir,
		      bool *adopted);

/* Read the marker of @dir; *event_abi (optional) is 0 when it has none. 0, -ENOENT or -errno. */
int pins_read_layout(const char *dir, uint32_t *layout, uint32_t *event_abi);

/* Switch the link pinned at @path to @prog_fd: its fd, or -ENOENT (none, or stale and removed). */
int pins_adopt_link(const char *path, int prog_fd);

/* Attach @prog to the cgroup @cg_fd through a new link pinned at @path: its fd or -errno. */
int pins_attach_new(struct bpf_program *prog, int cg_fd, const char *path);

/* "links/<cgroup id>_<hook>" of @dir: the link's pin path. */
int pins_link_path(char *out, size_t len, const char *dir, uint64_t cgroup_id, const char *hook);

/*
 * Detach and unpin every link under @dir/links whose cgroup id is not one of
 * the @n at @keep, @stride bytes apart: the cgroup_id member of an array of
 * attachments (&atts[0].cgroup_id, sizeof(atts[0])). 0 or -errno.
 */
int pins_prune_links(const char *dir, const uint64_t *keep, size_t n, size_t stride);

/*
 * Detach every pinned link under @dir (and its subdirectories), unpin
 * everything and remove the directories. *found: @dir existed.
 */
int pins_remove_dir(const char *dir, bool *found);

/* The same for a directory that must exist. 0 or -errno. */
int pins_remove_tree(const char *dir);

/*
 * Every entry of map @from into map @to (same type, key and value size; not
 * per-CPU), for carrying a map's contents into one of a new layout:
 * *copied of them. 0; -EINVAL when the two differ in form; or -errno of the
 * first entry @to refused (-E2BIG when full: what was copied stays).
 */
int pins_copy_map(int from, int to, size_t *copied);

#endif /* TLSGUARD_AGENT_PINS_H */
