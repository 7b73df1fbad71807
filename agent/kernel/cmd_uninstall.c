// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <string.h>

#include "cmdline.h"
#include "commands.h"
#include "loader.h"
#include "log.h"
#include "mounts.h"

static void usage(FILE *out)
{
	fprintf(out, "Usage: tlsguard uninstall [--pin-path DIR]\n\n"
		     "Detach every program tlsguard pinned under DIR (default %s) from its\n"
		     "cgroup and remove the pinned maps and links. Stop the agent first.\n",
		TG_DEFAULT_PIN_PATH);
}

int cmd_uninstall(int argc, char **argv)
{
	const char *pin_path = TG_DEFAULT_PIN_PATH;
	bool found;
	int ret, err;

	ret = tg_cmdline_pin_path(argc, argv, usage, &pin_path);
	if (ret != TG_CMDLINE_GO)
		return ret;
	err = loader_uninstall(pin_path, &found);
	if (err) {
		tg_err("cannot uninstall %s: %s", pin_path, strerror(-err));
		return TG_EXIT_FAIL;
	}
	if (found)
		printf("removed %s: programs detached, maps and links unpinned\n", pin_path);
	else if (mounts_on_bpffs(pin_path) != 1)
		printf("nothing to remove: %s does not exist (no bpffs is mounted there, so nothing "
		       "can be pinned)\n", pin_path);
	else
		printf("nothing to remove: %s does not exist\n", pin_path);
	return TG_EXIT_OK;
}
