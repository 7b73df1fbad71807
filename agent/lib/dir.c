// SPDX-License-Identifier: MIT
#include <dirent.h>
#include <errno.h>
#include <string.h>

#include "dir.h"

int tg_dir_each(const char *dir, tg_dir_fn fn, void *arg)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int ret = 0;

	if (!d)
		return -errno;
	while (!ret && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		ret = fn(de->d_name, de->d_type, arg);
	}
	closedir(d);
	return ret;
}
