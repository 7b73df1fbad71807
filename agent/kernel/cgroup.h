/* SPDX-License-Identifier: MIT */
/* cgroup v2: where it is mounted, what a path's id is, and back again. */
#ifndef TLSGUARD_AGENT_CGROUP_H
#define TLSGUARD_AGENT_CGROUP_H

#include <stddef.h>
#include <stdint.h>

/* The cgroup2 mount point from /proc/mounts; 0 or -ENOENT. */
int cgroup_find_mount(char *out, size_t len);

/*
 * Turn a user-supplied cgroup (absolute under the mount, or relative to it)
 * into an absolute directory path. 0 or -errno (-ENOENT when it does not
 * exist, -ENOTDIR when it is not a cgroup2 directory).
 */
int cgroup_resolve(const char *mount, const char *user_path, char *out, size_t len);

/*
 * cgroup_resolve() for a path that may hold glob(7) wildcards ("/kubepods.slice/
 * kubepods-*.slice"): appends the absolute path of every cgroup2 directory it
 * matches to *v (realloc'd; *n counts). -ENOENT when a pattern matches none.
 */
int cgroup_expand(const char *mount, const char *user_path, char ***v, size_t *n);

struct stat;
typedef int (*cgroup_walk_fn)(const char *path, const struct stat *st, void *arg);

/*
 * Call @fn(path, its lstat, @arg) for the directory @root and every directory
 * below it, parents first, neither following symbolic links nor leaving
 * @root's filesystem (what nftw(FTW_PHYS | FTW_MOUNT) visits, with a user
 * pointer instead of a global). Directories that cannot be read are left
 * out. @fn returning non-zero stops the walk: that value is returned, else
 * 0, or -errno when @root cannot be looked at.
 */
int cgroup_walk(const char *root, cgroup_walk_fn fn, void *arg);

/* The cgroup id (what bpf_get_current_cgroup_id returns) of a cgroup dir. */
int cgroup_id_of(const char *abs_path, uint64_t *id);

/*
 * Cache of cgroup id → path (relative to the mount, "/" for the root).
 * Misses rescan the watched subtrees, bounded.
 */
struct cgroup_names;

struct cgroup_names *cgroup_names_new(const char *mount, char *const *roots, size_t nroots);
const char *cgroup_names_lookup(struct cgroup_names *c, uint64_t id);
void cgroup_names_free(struct cgroup_names *c);

#endif /* TLSGUARD_AGENT_CGROUP_H */
