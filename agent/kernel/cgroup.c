// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>

#include "cgroup.h"
#include "clock.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

#define CGROUP_CACHE_MAX	4096
#define CGROUP_RESCAN_MIN_NS	(1000ULL * 1000 * 1000)	/* at most one rescan a second */

int cgroup_find_mount(char *out, size_t len)
{
	struct mntent *m;
	FILE *f = setmntent("/proc/mounts", "r");
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while ((m = getmntent(f))) {
		if (strcmp(m->mnt_type, "cgroup2"))
			continue;
		if (strlen(m->mnt_dir) >= len) {
			ret = -ENAMETOOLONG;
			break;
		}
		strcpy(out, m->mnt_dir);
		ret = 0;
		break;
	}
	endmntent(f);
	return ret;
}

static int is_cgroup2_dir(const char *path)
{
	struct statfs sfs;
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (statfs(path, &sfs) < 0)
		return -errno;
	return sfs.f_type == CGROUP2_SUPER_MAGIC ? 0 : -ENOTDIR;
}

int cgroup_resolve(const char *mount, const char *user_path, char *out, size_t len)
{
	size_t mlen = strlen(mount);
	int n;

	/* an absolute path already under the mount is taken as it is */
	if (!strncmp(user_path, mount, mlen) && (user_path[mlen] == '/' || !user_path[mlen]))
		n = snprintf(out, len, "%s", user_path);
	else
		n = snprintf(out, len, "%s/%s", mount, user_path[0] == '/' ? user_path + 1 : user_path);
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	/* "mount/" and "mount" are the same cgroup; keep the shorter spelling */
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
	return is_cgroup2_dir(out);
}

static int push_path(char ***v, size_t *n, const char *path)
{
	char **grown, *copy;

	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*v)[i], path))
			return 0;	/* two patterns, one cgroup */
	copy = strdup(path);
	grown = copy ? realloc(*v, (*n + 1) * sizeof(char *)) : NULL;
	if (!grown) {
		free(copy);
		return -ENOMEM;
	}
	grown[(*n)++] = copy;
	*v = grown;
	return 0;
}

int cgroup_expand(const char *mount, const char *user_path, char ***v, size_t *n)
{
	char abs[PATH_MAX], pattern[PATH_MAX];
	size_t found = 0;
	glob_t g;
	int err;

	if (!strpbrk(user_path, "*?[")) {
		err = cgroup_resolve(mount, user_path, abs, sizeof(abs));
		return err ? err : push_path(v, n, abs);
	}
	/* cgroup_resolve's joining, then glob(3) over the result */
	if (!strncmp(user_path, mount, strlen(mount)) && user_path[strlen(mount)] == '/')
		err = snprintf(pattern, sizeof(pattern), "%s", user_path);
	else
		err = snprintf(pattern, sizeof(pattern), "%s/%s", mount,
			       user_path[0] == '/' ? user_path + 1 : user_path);
	if (err < 0 || (size_t)err >= sizeof(pattern))
		return -ENAMETOOLONG;
	err = glob(pattern, GLOB_ONLYDIR, NULL, &g);
	if (err == GLOB_NOMATCH)
		return -ENOENT;
	if (err)
		return err == GLOB_NOSPACE ? -ENOMEM : -EIO;
	for (size_t i = 0; i < g.gl_pathc && !err; i++) {
		/* cgroup.* files match "*" too: only cgroup directories count */
		if (cgroup_resolve(mount, g.gl_pathv[i], abs, sizeof(abs)))
			continue;
		err = push_path(v, n, abs);
		found++;
	}
	globfree(&g);
	return err ? err : found ? 0 : -ENOENT;
}

int cgroup_id_of(const char *abs_path, uint64_t *id)
{
	struct stat st;

	/* on cgroup2 the kernfs inode number is the cgroup id (64-bit kernels) */
	if (stat(abs_path, &st) < 0)
		return -errno;
	*id = st.st_ino;
	return 0;
}

/* One directory of the walk (@path has room for PATH_MAX), then the ones below it. */
static int walk_dir(char *path, size_t len, dev_t dev, cgroup_walk_fn fn, void *arg)
{
	struct dirent *de;
	struct stat st;
	DIR *d;
	int ret;

	/* as nftw(FTW_PHYS | FTW_MOUNT): no symbolic link followed, no other filesystem */
	if (lstat(path, &st) || !S_ISDIR(st.st_mode) || st.st_dev != dev)
		return 0;
	d = opendir(path);
	if (!d)
		return 0;	/* unreadable: not reported, as nftw's FTW_DNR */
	ret = fn(path, &st, arg);
	while (!ret && (de = readdir(d))) {
		size_t n = strlen(de->d_name), at = len;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (path[at - 1] != '/')
			path[at++] = '/';
		if (at + n >= PATH_MAX) {
			path[len] = '\0';
			continue;
		}
		memcpy(path + at, de->d_name, n + 1);
		ret = walk_dir(path, at + n, dev, fn, arg);
		path[len] = '\0';
	}
	closedir(d);
	return ret;
}

int cgroup_walk(const char *root, cgroup_walk_fn fn, void *arg)
{
	char path[PATH_MAX];
	size_t len = strlen(root);
	struct stat st;

	if (!len || len >= sizeof(path))
		return -ENAMETOOLONG;
	if (lstat(root, &st))
		return -errno;
	memcpy(path, root, len + 1);
	return walk_dir(path, len, st.st_dev, fn, arg);
}

struct cgroup_name {
	uint64_t id;
	char *path;
};

struct cgroup_names {
	char mount[PATH_MAX];
	char **roots;
	size_t nroots;
	struct cgroup_name *v;
	size_t n;
	unsigned long long last_rescan_ns;
};

static void cache_put(struct cgroup_names *c, uint64_t id, const char *rel)
{
	char *copy;

	for (size_t i = 0; i < c->n; i++)
		if (c->v[i].id == id)
			return;
	if (c->n >= CGROUP_CACHE_MAX)
		return;	/* bounded: uncached ids are reported by id */
	copy = strdup(rel[0] ? rel : "/");
	if (!copy)
		return;
	c->v[c->n].id = id;
	c->v[c->n].path = copy;
	c->n++;
}

static int walk_one(const char *path, const struct stat *st, void *arg)
{
	struct cgroup_names *c = arg;

	cache_put(c, st->st_ino, path + strlen(c->mount));
	return 0;
}

static void rescan(struct cgroup_names *c)
{
	for (size_t i = 0; i < c->nroots; i++)
		cgroup_walk(c->roots[i], walk_one, c);
	c->last_rescan_ns = tg_mono_ns();
}

struct cgroup_names *cgroup_names_new(const char *mount, char *const *roots, size_t nroots)
{
	struct cgroup_names *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	snprintf(c->mount, sizeof(c->mount), "%s", mount);
	c->v = calloc(CGROUP_CACHE_MAX, sizeof(*c->v));
	c->roots = calloc(nroots ? nroots : 1, sizeof(char *));
	if (!c->v || !c->roots) {
		cgroup_names_free(c);
		return NULL;
	}
	for (size_t i = 0; i < nroots; i++) {
		c->roots[i] = strdup(roots[i]);
		if (!c->roots[i]) {
			cgroup_names_free(c);
			return NULL;
		}
		c->nroots++;
	}
	rescan(c);
	return c;
}

const char *cgroup_names_lookup(struct cgroup_names *c, uint64_t id)
{
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < c->n; i++)
			if (c->v[i].id == id)
				return c->v[i].path;
		/* a cgroup made after the last scan: look again, rate-limited */
		if (pass || tg_mono_ns() - c->last_rescan_ns < CGROUP_RESCAN_MIN_NS)
			break;
		rescan(c);
	}
	return NULL;
}

void cgroup_names_free(struct cgroup_names *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].path);
	for (size_t i = 0; i < c->nroots; i++)
		free(c->roots[i]);
	free(c->roots);
	free(c->v);
	free(c);
}
