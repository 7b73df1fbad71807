// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/client.h"
#include "commands.h"
#include "control_proto.h"
#include "log.h"

static const char *hint(int err)
{
	switch (err) {
	case ENOENT:
	case ECONNREFUSED:
		return "is the agent running? (systemctl status tlsguard, or pass --socket PATH)";
	case EACCES:
	case EPERM:
		return "the socket is root-only; run as root or join the group named in control.group";
	default:
		return "check the path and that the agent is running";
	}
}

int client_parse_options(int argc, char **argv, const struct tg_cmdline_opt *opts,
			 void (*usage)(FILE *out), void *args, const char *const *fmt)
{
	int ret = tg_cmdline_parse(argc, argv, opts, usage, false, args);

	if (ret != TG_CMDLINE_GO || !strcmp(*fmt, "text") || !strcmp(*fmt, "json"))
		return ret;
	usage(stderr);
	return TG_EXIT_USAGE;
}

FILE *client_request(const char *socket_path, json_object *req)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	const char *line = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	FILE *f;
	int fd;

	if (strlen(socket_path) >= sizeof(addr.sun_path)) {
		tg_err("socket path too long: %s", socket_path);
		return NULL;
	}
	strcpy(addr.sun_path, socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int err = errno;

		tg_err("cannot reach the agent at %s: %s; %s", socket_path, strerror(err), hint(err));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	if (send(fd, line, strlen(line), MSG_NOSIGNAL) < 0 || send(fd, "\n", 1, MSG_NOSIGNAL) < 0) {
		tg_err("the agent at %s closed the connection: %s (it answers only root and the "
		       "group named in control.group)", socket_path, strerror(errno));
		close(fd);
		return NULL;
	}
	f = fdopen(fd, "r");
	if (!f)
		close(fd);
	return f;
}

json_object *client_read(FILE *f, int *bad)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, f);
	json_object *o = NULL;

	*bad = 0;
	if (n > 0) {
		o = json_tokener_parse(line);
		*bad = o == NULL;
	}
	free(line);
	return o;
}
