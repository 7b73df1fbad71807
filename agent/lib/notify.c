// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

static struct {
	struct sockaddr_un addr;
	socklen_t addr_len;		/* 0: not run by systemd (or not Type=notify) */
	unsigned long long watchdog_usec;
} notify;

static void read_watchdog(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	char *end;

	/* WATCHDOG_PID, when set, names the process meant (not a child of it) */
	if (usec && (!pid || strtol(pid, NULL, 10) == (long)getpid())) {
		notify.watchdog_usec = strtoull(usec, &end, 10);
		if (*end)
			notify.watchdog_usec = 0;
	}
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

void notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t n;

	read_watchdog();
	if (!path)
		return;
	n = strlen(path);
	if ((path[0] == '/' || path[0] == '@') && n >= 2 && n < sizeof(notify.addr.sun_path)) {
		notify.addr.sun_family = AF_UNIX;
		memcpy(notify.addr.sun_path, path, n);
		if (path[0] == '@')
			notify.addr.sun_path[0] = '\0';	/* abstract namespace */
		notify.addr_len = offsetof(struct sockaddr_un, sun_path) + n;
	} else {
		tg_warn("NOTIFY_SOCKET=%s is not a socket path; not notifying systemd", path);
	}
	unsetenv("NOTIFY_SOCKET");
}

int notify_send(const char *state)
{
	int fd, err = 0;

	if (!notify.addr_len)
		return 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || sendto(fd, state, strlen(state), MSG_NOSIGNAL,
			     (struct sockaddr *)&notify.addr, notify.addr_len) < 0) {
		err = -errno;
		tg_debug("cannot notify systemd: %s", strerror(-err));
	}
	if (fd >= 0)
		close(fd);
	return err;
}

bool notify_watchdog(unsigned long long *usec)
{
	if (usec)
		*usec = notify.watchdog_usec;
	return notify.watchdog_usec != 0;
}
