// SPDX-License-Identifier: MIT
#include "cmdline.h"
#include "commands.h"

int tg_cmdline_parse(int argc, char **argv, const char *shortopts, const struct option *longopts,
		     void (*usage)(FILE *out), bool operands,
		     int (*opt)(int c, char *arg, void *ctx), void *ctx)
{
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return TG_EXIT_OK;
		case '?':
			usage(stderr);
			return TG_EXIT_USAGE;
		default:
			ret = opt(c, optarg, ctx);
			if (ret)
				return ret;
		}
	}
	if (!operands && optind < argc) {
		usage(stderr);
		return TG_EXIT_USAGE;
	}
	return TG_CMDLINE_GO;
}

static int pin_path_opt(int c, char *arg, void *ctx)
{
	*(const char **)ctx = arg;
	return 0;
}

int tg_cmdline_pin_path(int argc, char **argv, void (*usage)(FILE *out), const char **pin_path)
{
	static const struct option longopts[] = {
		{ "pin-path", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};

	return tg_cmdline_parse(argc, argv, "p:h", longopts, usage, false, pin_path_opt, pin_path);
}
