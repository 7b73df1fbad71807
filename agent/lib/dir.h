/* SPDX-License-Identifier: MIT */
/*
 * One directory walk for the agent's flat directories (pins, the kubelet's
 * log directories, a mount point): the opendir/readdir/closedir loop once,
 * the body a function of each caller's.
 */
#ifndef TLSGUARD_DIR_H
#define TLSGUARD_DIR_H

/* Called for an entry of the directory: its name and dirent d_type (DT_UNKNOWN on some filesystems). */
typedef int (*tg_dir_fn)(const char *name, unsigned char type, void *arg);

/*
 * fn(name, type, arg) for every entry of @dir but "." and "..", in readdir
 * order, until fn returns nonzero. Returns that value, 0 when every entry
 * was seen, or -errno when @dir cannot be opened (-ENOENT: it does not exist).
 */
int tg_dir_each(const char *dir, tg_dir_fn fn, void *arg);

/* A name starting with '.': "." and "..", and the hidden files a walk leaves alone. */
static inline int tg_dir_hidden(const char *name)
{
	return name[0] == '.';
}

#endif /* TLSGUARD_DIR_H */
