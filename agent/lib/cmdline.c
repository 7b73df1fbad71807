// SPDX-License-Identifier: MIT
#include "cmdline.h"
#include "commands.h"

/*
 * getopt_long's view of @opts: every long option returns 256 + its index (a
 * short one its letter), and -h/--help is added. The number of options, or -1
 * when there are more than TG_CMDLINE_MAX.
 */
static int getopt_tables(const struct tg_cmdline_opt *opts, struct option *longopts,
			 char *shortopts)
{
	int n;

	for (n = 0; opts[n].name; n++) {
		int has_arg = opts[n].kind == TG_CMDLINE_STR || opts[n].kind == TG_CMDLINE_FN ?
			      required_argument : no_argument;

		if (n == TG_CMDLINE_MAX)
			return -1;
		longopts[n] = (struct option){ opts[n].name, has_arg, NULL, 256 + n };
		if (opts[n].key) {
			*shortopts++ = (char)opts[n].key;
			if (has_arg == required_argument)
				*shortopts++ = ':';
		}
	}
	longopts[n] = (struct option){ "help", no_argument, NULL, 'h' };
	longopts[n + 1] = (struct option){ 0 };
	*shortopts++ = 'h';
	*shortopts = '\0';
	return n;
}

/* The option getopt_long returned as @c: its index in the table, or -1. */
static int opt_index(const struct tg_cmdline_opt *opts, int n, int c)
{
	if (c >= 256 && c < 256 + n)
		return c - 256;
	for (int i = 0; i < n; i++)
		if (opts[i].key && opts[i].key == c)
			return i;
	return -1;
}

static int apply(const struct tg_cmdline_opt *o, char *arg, void *args)
{
	switch (o->kind) {
	case TG_CMDLINE_STR:
		*(const char **)((char *)args + o->off) = arg;
		return 0;
	case TG_CMDLINE_FLAG:
		*(bool *)((char *)args + o->off) = true;
		return 0;
	case TG_CMDLINE_FN:
	case TG_CMDLINE_ACTION:
		return o->fn(args, arg);
	}
	return 0;
}

int tg_cmdline_parse(int argc, char **argv, const struct tg_cmdline_opt *opts,
		     void (*usage)(FILE *out), bool operands, void *args)
{
	struct option longopts[TG_CMDLINE_MAX + 2];
	char shortopts[2 * TG_CMDLINE_MAX + 2];
	int c, i, n = getopt_tables(opts, longopts, shortopts), ret;

	if (n < 0)
		return TG_EXIT_FAIL;	/* a table too long: the program's bug, not the user's */
	optind = 1;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return TG_EXIT_OK;
		}
		i = opt_index(opts, n, c);
		if (i < 0) {
			usage(stderr);
			return TG_EXIT_USAGE;
		}
		ret = apply(&opts[i], optarg, args);
		if (ret)
			return ret;
	}
	if (!operands && optind < argc) {
		usage(stderr);
		return TG_EXIT_USAGE;
	}
	return TG_CMDLINE_GO;
}

int tg_cmdline_pin_path(int argc, char **argv, void (*usage)(FILE *out), const char **pin_path)
{
	/* the argument struct is the one const char * */
	static const struct tg_cmdline_opt opts[] = {
		{ "pin-path", 'p', TG_CMDLINE_STR, 0, NULL },
		{ 0 },
	};

	return tg_cmdline_parse(argc, argv, opts, usage, false, pin_path);
}
