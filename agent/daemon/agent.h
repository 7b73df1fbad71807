/* SPDX-License-Identifier: MIT */
/* The daemon: one epoll loop over the event ring, signals and DNS refreshes. */
#ifndef TLSGUARD_AGENT_AGENT_H
#define TLSGUARD_AGENT_AGENT_H

#include <stddef.h>

#include "loader.h"	/* enum tg_dns_hooks */

#define TG_DEFAULT_CONFIG "/etc/tlsguard/tlsguard.yaml"

struct tg_agent_opts {
	const char *config;		/* NULL: TG_DEFAULT_CONFIG if present, else built-in */
	char **cgroups;			/* --cgroup, overrides workloads.cgroups */
	size_t ncgroups;
	int mode_override;		/* -1 or enum tg_mode */
	const char *events_file;	/* overrides events.file */
	const char *pin_path;
	const char *socket_path;	/* --socket, overrides control.socket */
	enum tg_dns_hooks dns_hooks;	/* --dns-hooks (loader.h) */
};

/* Runs until SIGINT/SIGTERM. Returns a process exit code (commands.h). */
int agent_run(const struct tg_agent_opts *opts);

#endif /* TLSGUARD_AGENT_AGENT_H */
