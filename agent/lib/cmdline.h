/* SPDX-License-Identifier: MIT */
/*
 * The option loop every subcommand has, written once: getopt_long over
 * argv (argv[0] the subcommand), -h/--help and unknown options answered the
 * same way everywhere.
 */
#ifndef TLSGUARD_CMDLINE_H
#define TLSGUARD_CMDLINE_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#define TG_CMDLINE_GO	(-1)	/* options parsed: run the command */

/*
 * Parse the options of a subcommand. @opt gets every option but 'h' and
 * unknown ones, with its argument (NULL for none) and @ctx; it returns 0 to go
 * on or an exit code (commands.h) to stop with. 'h' prints @usage to stdout
 * and returns TG_EXIT_OK; an unknown option, or an operand when @operands is
 * false, prints @usage to stderr and returns TG_EXIT_USAGE. Otherwise returns
 * TG_CMDLINE_GO, with optind at the first operand.
 */
int tg_cmdline_parse(int argc, char **argv, const char *shortopts, const struct option *longopts,
		     void (*usage)(FILE *out), bool operands,
		     int (*opt)(int c, char *arg, void *ctx), void *ctx);

/* A command whose one option is -p/--pin-path DIR (*pin_path keeps its default without). */
int tg_cmdline_pin_path(int argc, char **argv, void (*usage)(FILE *out), const char **pin_path);

#endif /* TLSGUARD_CMDLINE_H */
