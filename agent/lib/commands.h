/* SPDX-License-Identifier: MIT */
/*
 * Subcommands of the one tlsguard binary, wireguard-tools style (git's
 * builtin.h: one header names them all, each lives in the layer whose code it
 * runs). Each is `int cmd_X(int argc, char **argv)` where argv[0] is the
 * subcommand name, and returns the process exit code: TG_EXIT_OK, TG_EXIT_FAIL
 * (runtime failure) or TG_EXIT_USAGE (usage or invalid config).
 * agent/main.c holds the dispatch table.
 */
#ifndef TLSGUARD_COMMANDS_H
#define TLSGUARD_COMMANDS_H

#define TG_EXIT_OK	0
#define TG_EXIT_FAIL	1
#define TG_EXIT_USAGE	2

int cmd_agent(int argc, char **argv);		/* daemon/cmd_agent.c */
int cmd_decrypt(int argc, char **argv);		/* sinks/cmd_decrypt.c */
int cmd_mount(int argc, char **argv);		/* kernel/cmd_mount.c */
int cmd_policy(int argc, char **argv);		/* policy/cmd_policy.c */
int cmd_status(int argc, char **argv);		/* cli/status.c */
int cmd_events(int argc, char **argv);		/* cli/events.c */
int cmd_uninstall(int argc, char **argv);	/* kernel/cmd_uninstall.c */
int cmd_version(int argc, char **argv);		/* kernel/cmd_version.c */

#endif /* TLSGUARD_COMMANDS_H */
