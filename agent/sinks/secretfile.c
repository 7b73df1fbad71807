// SPDX-License-Identifier: MIT
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"
#include "log.h"
#include "secretfile.h"

static int fail(char *err, size_t errlen, int ret, const char *what, const char *path, const char *why)
{
	snprintf(err, errlen, "%s%s%s: %s", what ? what : "", what ? " " : "", path, why);
	return ret;
}

int secret_file_read(const char *path, const char *what, void *buf, size_t cap, size_t *len,
		     char *err, size_t errlen)
{
	struct stat st;
	size_t got;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return fail(err, errlen, -errno, what, path, strerror(errno));
	if (fstat(fd, &st)) {
		ret = fail(err, errlen, -errno, what, path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = fail(err, errlen, -EINVAL, what, path, "not a regular file");
		goto out;
	}
	if (st.st_mode & S_IROTH)
		tg_warn("%s%s%s is readable by every user; make it readable by tlsguard only "
			"(mode 0600, or defaultMode 0400 on the Kubernetes Secret volume)",
			what ? what : "", what ? " " : "", path);
	ret = tg_read_full(fd, buf, cap, -1, &got);
	if (ret) {
		ret = fail(err, errlen, ret, what, path, strerror(-ret));
		goto out;
	}
	*len = got;
out:
	close(fd);
	return ret;
}
