// SPDX-License-Identifier: MIT
#include <getopt.h>
#include <stdio.h>

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
	static const struct option longopts[] = {
		{ "pin-path", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *pin_path = TG_DEFAULT_PIN_PATH;
	bool mounted;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
			pin_path = optarg;
			break;
		case 'h':
			usage(stdout);
			return TG_EXIT_OK;
		default:
			usage(stderr);
			return TG_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return TG_EXIT_USAGE;
	}
	if (mounts_ensure_bpffs(pin_path, &mounted))
		return TG_EXIT_FAIL;
	if (!mounted)
		printf("%s is on bpffs already: nothing to mount\n", pin_path);
	return TG_EXIT_OK;
}
