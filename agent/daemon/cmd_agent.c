// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "cmdline.h"
#include "commands.h"
#include "control_proto.h"
#include "loader.h"
#include "log.h"
#include "tlsguard/dest.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: tlsguard agent [--config FILE] [--cgroup PATH]... [--mode audit|enforce]\n"
		"                      [--events-file FILE|-] [--pin-path DIR] [--socket PATH] [-v]\n\n"
		"Run the enforcement daemon in the foreground.\n\n"
		"  -c, --config FILE       policy file (default %s if present, else the\n"
		"                          built-in policy: 'tlsguard policy show-default')\n"
		"  -g, --cgroup PATH       cgroup v2 directory to watch, absolute or relative to\n"
		"                          the cgroup2 mount; repeatable; overrides workloads.cgroups\n"
		"                          (default: the whole host)\n"
		"  -m, --mode MODE         audit or enforce for every destination, overriding the policy\n"
		"                          (its overrides: included)\n"
		"  -e, --events-file FILE  where events go as JSON lines; '-' is stdout (default)\n"
		"  -p, --pin-path DIR      bpffs directory for pinned maps and links (default %s)\n"
		"  -s, --socket PATH       control socket for 'tlsguard status' and 'tlsguard events'\n"
		"                          (default control.socket, else %s)\n"
		"  -v, --verbose           debug output, including the BPF verifier log\n"
		"  -h, --help              this text\n\n"
		"Before loading anything the agent checks its configuration as 'tlsguard policy\n"
		"check' does, and exits 2 with the same messages when it is not usable.\n"
		"SIGHUP (or a change of the file) reloads the policy: it is prepared off the event\n"
		"loop, and a file the agent cannot use is refused, the old policy staying\n"
		"in force. SIGINT/SIGTERM stop the agent. Programs stay attached after it stops,\n"
		"so enforcement continues; 'tlsguard uninstall' removes them.\n",
		TG_DEFAULT_CONFIG, TG_DEFAULT_PIN_PATH, TG_DEFAULT_SOCKET);
}

static int agent_opt(int c, char *arg, void *ctx)
{
	struct tg_agent_opts *opts = ctx;

	switch (c) {
	case 'c':
		opts->config = arg;
		break;
	case 'g':
		opts->cgroups[opts->ncgroups++] = arg;
		break;
	case 'm':
		if (!strcmp(arg, "audit")) {
			opts->mode_override = TG_MODE_AUDIT;
		} else if (!strcmp(arg, "enforce")) {
			opts->mode_override = TG_MODE_ENFORCE;
		} else {
			tg_err("--mode must be audit or enforce, not '%s'", arg);
			return TG_EXIT_USAGE;
		}
		break;
	case 'e':
		opts->events_file = arg;
		break;
	case 'p':
		opts->pin_path = arg;
		break;
	case 's':
		opts->socket_path = arg;
		break;
	case 'v':
		tg_verbose = true;
		break;
	}
	return 0;
}

int cmd_agent(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "cgroup", required_argument, NULL, 'g' },
		{ "mode", required_argument, NULL, 'm' },
		{ "events-file", required_argument, NULL, 'e' },
		{ "pin-path", required_argument, NULL, 'p' },
		{ "socket", required_argument, NULL, 's' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct tg_agent_opts opts = { .mode_override = -1, .pin_path = TG_DEFAULT_PIN_PATH };
	int ret;

	opts.cgroups = calloc(argc, sizeof(char *));
	if (!opts.cgroups)
		return TG_EXIT_FAIL;
	ret = tg_cmdline_parse(argc, argv, "c:g:m:e:p:s:vh", longopts, usage, true, agent_opt, &opts);
	if (ret == TG_CMDLINE_GO && optind < argc) {
		tg_err("unexpected argument '%s'", argv[optind]);
		usage(stderr);
		ret = TG_EXIT_USAGE;
	}
	if (ret == TG_CMDLINE_GO)
		ret = agent_run(&opts);
	free(opts.cgroups);
	return ret;
}
