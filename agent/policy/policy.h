/* SPDX-License-Identifier: MIT */
/*
 * The policy file (YAML, see DESIGN.md and docs/policy.md) as the agent holds
 * it after validation. Everything here is plain data: turning it into kernel
 * map entries is loader/dest code's job.
 */
#ifndef TLSGUARD_AGENT_POLICY_H
#define TLSGUARD_AGENT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tlsguard/config.h"
#include "tlsguard/dest.h"

enum tg_fail_mode {
	TG_FAIL_CLOSED = 0,
	TG_FAIL_OPEN = 1,
};

enum tg_protocol {
	TG_PROTO_TLS = 0,		/* TLS from the first byte (default) */
	TG_PROTO_POSTGRES,
	TG_PROTO_MYSQL,
	TG_PROTO_TDS,
	TG_PROTO_SMB3,			/* SMB 3 encryption (port 445), not TLS */
};

/* TLS versions as their wire minor number: 1.0 → 1 ... 1.3 → 4 (0x0301..0x0304). */
#define TG_TLS_1_0 1
#define TG_TLS_1_1 2
#define TG_TLS_1_2 3
#define TG_TLS_1_3 4

struct tg_cidr {
	uint8_t addr[16];		/* v4-mapped for IPv4, network byte order */
	uint8_t prefixlen;		/* of the 128-bit form: IPv4 /24 is 120 */
	uint8_t family;			/* AF_INET or AF_INET6 as written */
};

struct tg_strlist {
	char **v;
	size_t n;
};

struct tg_label {
	char *key;
	char *value;			/* "*" matches any value */
};

struct tg_policy_dest {
	char *name;
	struct tg_strlist hosts;	/* exact names and "*.suffix" wildcards */
	struct tg_cidr *cidrs;
	size_t ncidrs;
	struct tg_port_range ports[TG_MAX_PORT_RANGES];
	size_t nports;			/* 0: every port */
	int mode;			/* enum tg_mode, or -1 to inherit the policy's */
	int protocol;			/* enum tg_protocol */
	int min_tls_version;		/* 0: inherit */
	int require_sni;		/* -1 inherit (false), 0, 1 */
	char *service_tags_file;	/* NULL when absent */
	struct tg_strlist service_tags;
	char *note;			/* `note`: said in every event of the class; NULL: none */
	/*
	 * Port entries (`ports:` items that are mappings) become classes of their
	 * own, appended after the destinations: parent is the destination they
	 * belong to (-1 for a destination), and port_dest[i] says which entry
	 * judges the destination's range i (-1: the destination itself). An
	 * entry has no hosts, cidrs or tags: its addresses are its parent's.
	 */
	int parent;
	int port_dest[TG_MAX_PORT_RANGES];
	bool own_name;			/* a port entry named by `name:` (else "<parent>:<port>") */
	struct tg_cidr *tag_cidrs;	/* the tags' prefixes, read from the file by prepare.c */
	size_t ntag_cidrs;
	int line, col;			/* where the entry starts, for messages */
};

/*
 * `overrides:` one rule of a staged rollout: connects from the workloads it
 * selects (pods of namespaces with labels, and/or cgroups and everything
 * below them) get @mode for @classes (every class when empty). The first
 * rule that selects a workload decides.
 */
struct tg_policy_override {
	char *name;			/* optional, for status and events */
	struct tg_strlist namespaces;	/* pods of these namespaces */
	struct tg_label *labels;	/* pods with these labels ("*": any value) */
	size_t nlabels;
	struct tg_strlist cgroups;	/* cgroup v2 paths relative to the mount, and below */
	struct tg_strlist classes;	/* destination (or port entry) names; empty: all */
	int mode;			/* enum tg_mode */
	int line, col;
};

struct tg_policy_exception {
	char *name;			/* optional */
	struct tg_cidr *cidrs;
	size_t ncidrs;
	struct tg_strlist hosts;
	int line, col;
};

struct tg_policy {
	char *source;			/* file path, or "built-in" */
	int mode;			/* enum tg_mode, default audit */
	int fail_mode;			/* enum tg_fail_mode, default closed */
	unsigned int fail_open_after_s;	/* default 10 */
	int min_tls_version;		/* default TG_TLS_1_2 */

	struct tg_strlist cgroups;	/* workloads.cgroups, relative to the cgroup2 mount */
	struct tg_strlist k8s_namespaces;
	struct tg_label *k8s_labels;
	size_t nk8s_labels;
	char *k8s_node_name;		/* workloads.kubernetes.node_name; NULL: $NODE_NAME, hostname */
	char *k8s_api_server;		/* .api.server (https://...); NULL: in-cluster env */
	char *k8s_token_file;		/* .api.token_file; NULL: service account default */
	char *k8s_ca_file;		/* .api.ca_file; NULL: service account default */
	char *k8s_log_dir;		/* .log_dir (pods/, containers/); NULL: /var/log */

	struct tg_policy_dest *dests;
	size_t ndests;
	struct tg_policy_exception *exceptions;
	size_t nexceptions;
	struct tg_policy_override *overrides;
	size_t noverrides;
	struct tg_strlist proxies;	/* "host:port" of forward proxies */

	char *events_file;		/* NULL: stdout; "-" also stdout */
	bool log_tls_flows;
	char *ai_connection_string_file;/* events.application_insights.* */
	char *ai_ca_file;
	struct tg_strlist encrypt_fields;
	struct tg_strlist hash_fields;
	struct tg_strlist key_files;	/* events.key_file (one) or events.key_files */
	char *spool_dir;
	uint64_t spool_max_bytes;
	unsigned int spool_max_age_s;
	bool spool_journal;		/* events.spool.journal, default true (journal.h) */
	/* events.application_insights tuning; 0 means the sink's default unless noted */
	unsigned int ai_batch_items;
	uint64_t ai_batch_bytes;
	unsigned int ai_batch_age_s;
	unsigned int ai_queue_max;
	unsigned int ai_timeout_s;
	unsigned int ai_retry_base_s;
	unsigned int ai_retry_max_s;
	unsigned int ai_metrics_interval_s;	/* default 60; 0: no metrics */
	unsigned int ai_flood_window_s;		/* default 60; 0: no folding */
	int ai_auth;				/* enum tg_ai_auth_mode (ai_auth.h), default auto */
	char *ai_client_id;			/* user-assigned managed identity */
	char *ai_imds_url;			/* NULL: the IMDS address */
	/* tests only (docs/policy.md says so): stand-ins named like Azure Monitor hosts */
	struct tg_strlist ai_test_redirect_suffixes;	/* more allowed redirect suffixes */
	struct tg_strlist ai_test_resolve;		/* "host:port:address" */

	char *control_socket;
	char *control_group;
	char *metrics_listen;		/* NULL: metrics off */

	unsigned int dns_grace_s;	/* dns.grace: learned addresses outlive their TTL by this */
	unsigned int dns_max_learned;	/* dns.max_learned: addresses learned from DNS, at most */
	unsigned int dns_max_per_cgroup; /* dns.max_learned_per_cgroup; 0: a quarter of max_learned */
	/*
	 * service_tags: the ServiceTags_*.json file of destinations that name tags
	 * without one of their own; optional: a missing file is "not loaded", not
	 * an error (the built-in policy's backstop). Filled by prepare: whether it
	 * was loaded, why not, its mtime and the prefixes it gave.
	 */
	char *service_tags_file;
	bool service_tags_optional;
	bool service_tags_loaded;
	char service_tags_why[160];
	int64_t service_tags_mtime;
	size_t service_tags_prefixes;

	unsigned int max_tracked_flows;	/* limits.max_tracked_flows: open tracked sockets, at most */
};

#define TG_MAX_OVERRIDES	TG_MAX_OVERRIDE_RULES	/* dest.h: the kernel's rule numbers */

/* Defaults the loader fills in when the file says nothing. */
#define TG_FAIL_OPEN_AFTER_DEFAULT	10			/* seconds */
#define TG_SPOOL_MAX_BYTES_DEFAULT	(50ULL << 20)		/* 50 MiB */
#define TG_SPOOL_MAX_AGE_DEFAULT	(7U * 24 * 3600)	/* 7 days */
#define TG_AI_METRICS_INTERVAL_DEFAULT	60			/* seconds */
#define TG_AI_FLOOD_WINDOW_DEFAULT	60			/* seconds */
#define TG_DNS_GRACE_DEFAULT		60			/* seconds */
#define TG_DNS_MAX_LEARNED_DEFAULT	16384
#define TG_MAX_TRACKED_FLOWS_MAX	16777216	/* 88 B of flow state each: 1.4 GiB */

/*
 * Bounds on a policy file (docs/policy.md, "Limits"): past any of them the
 * file is refused with FILE:LINE:COL of where it was crossed, and loading
 * stops there, so a hostile file costs time linear in its size.
 */
#define TG_POLICY_MAX_BYTES	(16 << 20)	/* the file */
#define TG_POLICY_MAX_DEPTH	32		/* lists and mappings nested */
#define TG_POLICY_MAX_KEYS	1024		/* keys of one mapping */
#define TG_POLICY_MAX_ITEMS	131072		/* entries of one list: twice the destination map */
#define TG_POLICY_MAX_SCALAR	8192		/* bytes of one key or value */
#define TG_POLICY_MAX_NODES	262144		/* values, lists and mappings in all */
#define TG_POLICY_MAX_ALIASED	262144		/* nodes aliases make a reader visit again */
#define TG_POLICY_MAX_HOSTS	4096		/* host names of destinations and exceptions */

/* Diagnostics collected while loading: "FILE:LINE:COL: message" each. */
struct tg_diag {
	char **msgs;
	size_t n;
};

/*
 * Parse and validate. On success returns 0 and *out owns a policy; on failure
 * returns -EINVAL (invalid policy; every problem found is in @diag),
 * or another -errno (file unreadable, out of memory; also described in @diag).
 */
int policy_load_file(const char *path, struct tg_policy **out, struct tg_diag *diag);
/*
 * The bytes policy_load_file() parses: the whole file, or its first
 * TG_POLICY_MAX_BYTES + 1 (more is refused by the loader anyway). malloc'd.
 * 0 or -errno.
 */
int policy_read_file(const char *path, char **buf, size_t *len);
int policy_load_buffer(const char *name, const char *yaml, size_t len,
		       struct tg_policy **out, struct tg_diag *diag);
void policy_free(struct tg_policy *p);
void diag_free(struct tg_diag *d);
/* Append one message. 0 or -ENOMEM. */
int diag_addf(struct tg_diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Effective per-destination settings after inheritance. */
int policy_dest_mode(const struct tg_policy *p, const struct tg_policy_dest *d);

/* The destination whose addresses and host names a class has: itself, or a port entry's parent. */
const struct tg_policy_dest *policy_dest_owner(const struct tg_policy *p, const struct tg_policy_dest *d);

/* Does override @o name class @d (by its name, or a port entry by its parent's when unnamed)? */
bool policy_override_covers(const struct tg_policy *p, const struct tg_policy_override *o,
			    const struct tg_policy_dest *d);

struct tg_ai_config;
/* The event protection and App Insights files of @p, for the sinks (ai_config.h); points into @p. */
void policy_ai_config(const struct tg_policy *p, struct tg_ai_config *out);

/* Parse "10.0.0.0/8", "2001:db8::/32" or a bare address (full-length prefix). */
int policy_parse_cidr(const char *text, struct tg_cidr *out);

/*
 * Additions to the API above.
 *
 * policy_parse_cidr() returns 0, -EINVAL when @text is not an address with an
 * optional prefix length that fits its family, or -ERANGE when bits past the
 * prefix are set ("10.0.0.1/8"); then @out holds the masked network so the
 * caller can suggest it.
 *
 * Diagnostics are appended: pass a zeroed struct tg_diag (or one already in
 * use) and free it with diag_free() whatever the result.
 *
 * An empty file (or one holding only comments) is a valid policy with every
 * default and no destinations: YAML reads it as null, and refusing it would
 * only make "start from nothing" harder.
 */

/* The built-in policy (Azure Machine Learning endpoints), as YAML. */
extern const char tg_default_policy_yaml[];

/* policy_load_buffer("built-in", tg_default_policy_yaml, ...). */
int policy_load_default(struct tg_policy **out, struct tg_diag *diag);

int policy_dest_min_tls_version(const struct tg_policy *p, const struct tg_policy_dest *d);
bool policy_dest_require_sni(const struct tg_policy *p, const struct tg_policy_dest *d);

/*
 * Host name syntax: LDH labels of 1..63 characters, at most 253 in all, an
 * optional single leading "*." wildcard label and no other '*'. Returns 0 or
 * -EINVAL with the reason in @why (may be NULL).
 */
int policy_check_host(const char *name, char *why, size_t whylen);

#endif /* TLSGUARD_AGENT_POLICY_H */
