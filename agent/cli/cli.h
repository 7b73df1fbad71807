/* SPDX-License-Identifier: MIT */
/*
 * Subcommands of the one tlsguard binary, wireguard-tools style: one file per
 * subcommand, each `int cmd_X(int argc, char **argv)` where argv[0] is the
 * subcommand name. Return the process exit code: 0 ok, 1 runtime failure,
 * 2 usage or invalid config.
 */
#ifndef TLSGUARD_CLI_H
#define TLSGUARD_CLI_H

#define TG_EXIT_OK	0
#define TG_EXIT_FAIL	1
#define TG_EXIT_USAGE	2

int cmd_agent(int argc, char **argv);
int cmd_decrypt(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_policy(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_events(int argc, char **argv);
int cmd_uninstall(int argc, char **argv);
int cmd_version(int argc, char **argv);

#endif /* TLSGUARD_CLI_H */
