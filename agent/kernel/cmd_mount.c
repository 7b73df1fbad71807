// SPDX-License-Identifier: MIT
#include <stdio.h>

#include "cmdline.h"
#include "commands.h"
#include "loader.h"
#include "mounts.h"

static void usage(FILE *out)
{
	fprintf(out, "Usage: tlsguard mount [--pin-path DIR]\n\n"
		     "Mount what the agent needs where it is missing, as the agent does when it\n"
		     "starts, then exit: bpffs for DIR (default %s) at %s, or at\n"
		     "DIR's parent for a pin path elsewhere. For an init container that mounts\n"
		     "bpffs on the node (mount propagation Bidirectional), so that pins made\n"
		     "inside the agent's container outlive it. Exit 0 when DIR is on bpffs.\n",
		TG_DEFAULT_PIN_PATH, TG_BPFFS_DEFAULT);
}

int cmd_mount(int argc, char **argv)
{
	const char *pin_path = TG_DEFAULT_PIN_PATH;
	bool mounted;
	int ret;

	ret = tg_cmdline_pin_path(argc, argv, usage, &pin_path);
	if (ret != TG_CMDLINE_GO)
		return ret;
	if (mounts_ensure_bpffs(pin_path, &mounted))
		return TG_EXIT_FAIL;
	if (!mounted)
		printf("%s is on bpffs already: nothing to mount\n", pin_path);
	return TG_EXIT_OK;
}
