/* SPDX-License-Identifier: MIT */
/*
 * The option loop every subcommand has, written once: a table says what each
 * option sets in the command's argument struct (git's parse-options style),
 * getopt_long runs over argv (argv[0] the subcommand), and -h/--help and
 * unknown options are answered the same way everywhere.
 */
#ifndef TLSGUARD_CMDLINE_H
#define TLSGUARD_CMDLINE_H

#include <getopt.h>	/* optind */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define TG_CMDLINE_GO	(-1)	/* options parsed: run the command */
#define TG_CMDLINE_MAX	16	/* options in one table, -h/--help not counted */

enum tg_cmdline_kind {
	TG_CMDLINE_STR,		/* const char * at .off = the argument */
	TG_CMDLINE_FLAG,	/* bool at .off = true; no argument */
	TG_CMDLINE_FN,		/* .fn(args, argument) */
	TG_CMDLINE_ACTION,	/* .fn(args, NULL); no argument */
};

struct tg_cmdline_opt {
	const char *name;	/* --name */
	int key;		/* -key, or 0 for a long option only */
	enum tg_cmdline_kind kind;
	size_t off;		/* STR, FLAG: where in the argument struct */
	/* FN, ACTION: 0 to go on or an exit code (commands.h) to stop with */
	int (*fn)(void *args, char *arg);
};

#define TG_OPT_STR(name, key, type, member) \
	{ (name), (key), TG_CMDLINE_STR, offsetof(type, member), NULL }
#define TG_OPT_FLAG(name, key, type, member) \
	{ (name), (key), TG_CMDLINE_FLAG, offsetof(type, member), NULL }
#define TG_OPT_FN(name, key, fn) \
	{ (name), (key), TG_CMDLINE_FN, 0, (fn) }
#define TG_OPT_ACTION(name, key, fn) \
	{ (name), (key), TG_CMDLINE_ACTION, 0, (fn) }

/*
 * Parse the options of a subcommand into @args by @opts (ended by an entry
 * without a name). -h/--help prints @usage to stdout and returns TG_EXIT_OK;
 * an unknown option, a missing argument, or an operand when @operands is false
 * prints @usage to stderr and returns TG_EXIT_USAGE; a FN or ACTION option's
 * exit code is returned as it is. Otherwise returns TG_CMDLINE_GO, with optind
 * at the first operand.
 */
int tg_cmdline_parse(int argc, char **argv, const struct tg_cmdline_opt *opts,
		     void (*usage)(FILE *out), bool operands, void *args);

/* A command whose one option is -p/--pin-path DIR (*pin_path keeps its default without). */
int tg_cmdline_pin_path(int argc, char **argv, void (*usage)(FILE *out), const char **pin_path);

#endif /* TLSGUARD_CMDLINE_H */
