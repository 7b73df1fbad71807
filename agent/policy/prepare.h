/* SPDX-License-Identifier: MIT */
/*
 * From a policy file to what the agent applies, with every check the agent
 * makes of its configuration before it touches the kernel. One function for
 * `tlsguard agent` at start, for its reloads (on a thread of their own) and
 * for `tlsguard policy check`, so the three cannot disagree about a policy,
 * nor word a refusal differently.
 *
 * It reads files (the policy, service tags, event keys, the connection
 * string) and resolves host names, so it may take a while; it writes no
 * kernel map and keeps no global state: safe off the event loop.
 */
#ifndef TLSGUARD_AGENT_PREPARE_H
#define TLSGUARD_AGENT_PREPARE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "dests.h"
#include "hosts.h"
#include "policy.h"

/* How much of the agent's start a preparation stands for. */
enum tg_prepare_scope {
	/*
	 * The file alone: syntax, schema, bounds, and whether its prefixes
	 * alone already exceed the destination map (`policy check --offline`).
	 */
	TG_PREP_FILE,
	/*
	 * What a reload applies: service tags read from their files, host and
	 * proxy names resolved, the destination map capacity with all of them.
	 */
	TG_PREP_RELOAD,
	/*
	 * What a start also uses, on this host: the cgroups to attach to,
	 * control.group, event keys and field protection, the connection
	 * string file. A reload does not apply these (docs/policy.md), and
	 * after the start the agent has given up the privileges some need.
	 */
	TG_PREP_START,
};

struct tg_prepare_opts {
	const char *path;		/* NULL: the built-in policy */
	const char *name;		/* for messages and policy.source; NULL: @path */
	enum tg_prepare_scope scope;
	char *const *cgroups;		/* --cgroup: replaces workloads.cgroups */
	size_t ncgroups;
	int mode_override;		/* -1, or the enum tg_mode of --mode */
	/* not NULL: -EALREADY, and nothing else done, when the file's sha256 is
	 * this one or the file is gone for the moment (an inotify-driven reload) */
	const char *unless_sha256;
	/* class ids to keep (a reload: the table in force); NULL: none */
	const struct tg_dest_table *prev;
};

struct tg_prepared {
	struct tg_policy *policy;
	char sha256[65];		/* hex, of the bytes parsed */
	char cg_mount[PATH_MAX];	/* TG_PREP_START */
	char **cg_paths;		/* TG_PREP_START: absolute, globs expanded */
	size_t ncg;
	struct tg_hosts *hosts;		/* exact host and proxy names, resolved once */
	struct tg_dest_table dests;	/* without learned addresses; classes keep @prev's ids */
};

/*
 * Returns 0 with @out filled (free with prepared_free()), or with every
 * problem found as one message in @diag (printed by the caller, also for
 * the start and reload messages) one of:
 *   -EIO       the policy file cannot be read
 *   -EINVAL    the file is not a valid policy (FILE:LINE:COL messages)
 *   -E2BIG     its destinations do not fit the kernel maps
 *   -ENOENT    it names something this host does not have or the agent
 *              cannot use: a cgroup, a service tag or its file, a group, a
 *              key or connection string file
 *   -EALREADY  see unless_sha256
 *   -ENOMEM
 * @out needs no cleanup on failure.
 */
int prepare_policy(const struct tg_prepare_opts *o, struct tg_prepared *out, struct tg_diag *diag);
void prepared_free(struct tg_prepared *p);

/* Hex sha256 of @len bytes. */
void prepare_sha256_hex(const void *buf, size_t len, char out[65]);

#endif /* TLSGUARD_AGENT_PREPARE_H */
