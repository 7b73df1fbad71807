// SPDX-License-Identifier: MIT
/* tlsguard: one binary, subcommands behind a dispatch table. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static const struct {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *description;
} subcommands[] = {
	{ "agent", cmd_agent, "run the enforcement daemon (foreground)" },
	{ "decrypt", cmd_decrypt, "decrypt protected event fields for an authorised reader" },
	{ "status", cmd_status, "show what the agent is doing (--check for probes)" },
	{ "events", cmd_events, "print recent and (--follow) live events" },
	{ "mount", cmd_mount, "mount bpffs for the pins where none is (init containers)" },
	{ "policy", cmd_policy, "check a policy file or print the built-in one" },
	{ "uninstall", cmd_uninstall, "detach and remove pinned programs and maps" },
	{ "version", cmd_version, "print version, libbpf version and kernel features" },
};

static void usage(FILE *out, const char *prog)
{
	fprintf(out, "Usage: %s <command> [options]\n\n", prog);
	fprintf(out, "tlsguard flags or blocks outbound connections to protected destinations\n"
		     "that are not TLS, deciding in the kernel on the first payload.\n\n");
	fprintf(out, "Commands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].description);
	fprintf(out, "\nRun '%s <command> --help' for the options of a command.\n", prog);
}

int main(int argc, char **argv)
{
	const char *prog = "tlsguard";

	if (argc < 2) {
		usage(stderr, prog);
		return TG_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout, prog);
		return TG_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version"))
		return cmd_version(1, argv + 1);
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "tlsguard: unknown command '%s'\n", argv[1]);
	usage(stderr, prog);
	return TG_EXIT_USAGE;
}
