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
		"                      [--events-file FILE|-] [--pin-path DIR] [--socket PATH]\n"
		"                      [--dns-hooks auto|chained|separate] [-v]\n\n"
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
		"      --dns-hooks HOW     how DNS answer learning's programs run: 'chained' behind\n"
		"                          the egress and ingress programs (one program run per\n"
		"                          packet), 'separate' as programs of their own, 'auto'\n"
		"                          (default) chained where the kernel allows it\n"
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

static int add_cgroup(void *args, char *arg)
{
	struct tg_agent_opts *opts = args;

	opts->cgroups[opts->ncgroups++] = arg;	/* sized for argc */
	return 0;
}

static int set_mode(void *args, char *arg)
{
	struct tg_agent_opts *opts = args;

	if (!strcmp(arg, "audit")) {
		opts->mode_override = TG_MODE_AUDIT;
	} else if (!strcmp(arg, "enforce")) {
		opts->mode_override = TG_MODE_ENFORCE;
	} else {
		tg_err("--mode must be audit or enforce, not '%s'", arg);
		return TG_EXIT_USAGE;
	}
	return 0;
}

static int set_dns_hooks(void *args, char *arg)
{
	static const char *const names[] = {
		[TG_DNS_HOOKS_AUTO] = "auto",
		[TG_DNS_HOOKS_CHAINED] = "chained",
		[TG_DNS_HOOKS_SEPARATE] = "separate",
	};
	struct tg_agent_opts *opts = args;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(arg, names[i])) {
			opts->dns_hooks = (enum tg_dns_hooks)i;
			return 0;
		}
	}
	tg_err("--dns-hooks must be auto, chained or separate, not '%s'", arg);
	return TG_EXIT_USAGE;
}

static int set_verbose(void *args, char *arg)
{
	tg_verbose = true;
	return 0;
}

int cmd_agent(int argc, char **argv)
{
	static const struct tg_cmdline_opt options[] = {
		TG_OPT_STR("config", 'c', struct tg_agent_opts, config),
		TG_OPT_FN("cgroup", 'g', add_cgroup),
		TG_OPT_FN("mode", 'm', set_mode),
		TG_OPT_STR("events-file", 'e', struct tg_agent_opts, events_file),
		TG_OPT_STR("pin-path", 'p', struct tg_agent_opts, pin_path),
		TG_OPT_STR("socket", 's', struct tg_agent_opts, socket_path),
		TG_OPT_FN("dns-hooks", 0, set_dns_hooks),
		TG_OPT_ACTION("verbose", 'v', set_verbose),
		{ 0 },
	};
	struct tg_agent_opts opts = { .mode_override = -1, .pin_path = TG_DEFAULT_PIN_PATH };
	int ret;

	opts.cgroups = calloc(argc, sizeof(char *));
	if (!opts.cgroups)
		return TG_EXIT_FAIL;
	ret = tg_cmdline_parse(argc, argv, options, usage, true, &opts);
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
