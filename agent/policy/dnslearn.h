/* SPDX-License-Identifier: MIT */
/*
 * Host names learned from the DNS answers watched workloads receive.
 *
 * The kernel side (bpf/dns.bpf.c) copies every packet a watched socket
 * receives from port 53; here the answers are parsed (dnsparse.h), each name
 * of the CNAME chain is matched against the policy's host names, and every
 * address of a matching answer is learned:
 *
 *   address → class, the name asked (destination.name), the chain name and
 *             policy host that matched, expiry = now + TTL + dns.grace
 *
 * Matching: an exact host matches that name; "*.suffix" matches any name
 * with one or more labels before ".suffix" (acct.blob.core.windows.net and
 * acct.privatelink.blob.core.windows.net both match *.blob.core.windows.net;
 * blob.core.windows.net itself does not). The chain is walked from the name
 * asked on; the first name that matches decides, and for that name an exact
 * host beats a wildcard, a longer suffix beats a shorter one. Exception
 * hosts are never learned (an answer a workload can forge must not exempt
 * an address).
 *
 * The table is bounded (dns.max_learned), and so is what one cgroup's
 * answers may hold in it (dns.max_learned_per_cgroup). An entry is never
 * dropped before it expires to make room: when full, new addresses are not
 * learned and a counter says so (a workload that answers itself must not be
 * able to push another's protection out). Entries expire on a timer.
 * The destination builder (dests.c) reads the table; dnslearn_poll() says
 * when it changed.
 */
#ifndef TLSGUARD_AGENT_DNSLEARN_H
#define TLSGUARD_AGENT_DNSLEARN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsparse.h"
#include "policy.h"

#define TG_DNS_TTL_MAX_S	86400	/* a TTL longer than a day counts as a day */

/* ---- the learned table (no kernel: unit-tested on its own) --------------- */

struct tg_learned;

struct tg_learned_entry {
	uint8_t addr[16];		/* v4-mapped for IPv4 */
	uint64_t expires_ns;		/* CLOCK_BOOTTIME */
	const char *class_name;		/* the policy destination (class) */
	const char *qname;		/* the name asked: destination.name */
	const char *matched;		/* the chain name that matched */
	const char *host;		/* the policy host it matched */
};

struct tg_learned_stats {
	uint64_t answers;		/* answers looked at */
	uint64_t answers_matched;	/* ... with a name the policy knows */
	uint64_t learned;		/* addresses added */
	uint64_t refreshed;		/* addresses learned again before they expired */
	uint64_t expired;
	uint64_t evicted;		/* dropped because a new policy's dns.max_learned is smaller */
	uint64_t refused_full;		/* not learned: the table is full of live entries */
	uint64_t refused_quota;		/* not learned: the cgroup holds dns.max_learned_per_cgroup */
	uint64_t class_conflicts;	/* one address, names of two classes: the stricter kept */
};

struct tg_learned *learned_new(void);
void learned_free(struct tg_learned *t);

/*
 * Take the policy's host names, dns.grace and dns.max_learned (copied: the
 * policy may be freed afterwards). Entries whose names no longer match are
 * dropped, the others follow their class. Returns how many entries were
 * dropped or changed class (> 0: the destination table must be rebuilt),
 * or -ENOMEM.
 */
int learned_set_policy(struct tg_learned *t, const struct tg_policy *p);

/*
 * Learn from one parsed answer at @now_ns. Returns how many entries were
 * added or changed in what the destination table shows (class, name); a
 * refreshed expiry alone is not counted. -ENOMEM.
 */
int learned_add_answer(struct tg_learned *t, const struct tg_dns_answer *a, uint64_t now_ns);

/* The same, for an answer a cgroup received (its quota; 0: no quota). */
int learned_add_answer_from(struct tg_learned *t, const struct tg_dns_answer *a,
			    uint64_t cgroup_id, uint64_t now_ns);

/* Restore an entry a previous agent learned (re-matched against the policy). 1, 0 or -ENOMEM. */
int learned_restore(struct tg_learned *t, const uint8_t addr[16], const char *qname,
		    const char *matched, uint64_t expires_ns, uint64_t now_ns);

/* Remove what expired by @now_ns; returns how many. */
int learned_expire(struct tg_learned *t, uint64_t now_ns);

/* The earliest expiry, UINT64_MAX when empty. */
uint64_t learned_next_expiry(const struct tg_learned *t);

size_t learned_count(const struct tg_learned *t);
size_t learned_max(const struct tg_learned *t);
void learned_get_stats(const struct tg_learned *t, struct tg_learned_stats *out);

/* Visit every entry (most recently learned first); stop when @fn returns non-zero. */
int learned_for_each(const struct tg_learned *t,
		     int (*fn)(void *ctx, const struct tg_learned_entry *e), void *ctx);

/* Look one address up; NULL when not learned. */
const struct tg_learned_entry *learned_find(const struct tg_learned *t, const uint8_t addr[16]);

/*
 * Called for every entry added, changed (also only its expiry) or removed
 * (@removed), before a removed entry is freed. dnslearn uses it to keep the
 * pinned copy in step.
 */
void learned_set_observer(struct tg_learned *t,
			  void (*fn)(void *ctx, const struct tg_learned_entry *e, bool removed),
			  void *ctx);

/* Policy host matching, as described above. @name lower case, no trailing dot. */
bool dns_host_matches(const char *host, const char *name);

/* ---- the kernel side and the event loop ----------------------------------- */

struct tg_dnslearn;

struct tg_dnslearn_stats {
	struct tg_learned_stats table;
	size_t learned_ips, max_learned;
	uint64_t records;			/* ring records read */
	uint64_t udp_truncated;			/* datagrams longer than the kernel copies */
	uint64_t parsed[TG_DNSP__MAX];		/* messages by parse result */
	struct tg_dns_streams_stats tcp;
	uint64_t hold_publishes;		/* caught_up written for the hold */
	uint64_t caught_up_ns;			/* the last one (bpf_ktime_get_ns clock) */
	uint64_t klearned_dropped;		/* kernel-learned entries handed over to the maps */
	uint64_t unsolicited;			/* answer records no query asked for: not learned */
	uint64_t queries_swept;			/* queries never answered, removed */
	uint64_t kernel[24];			/* enum tg_dns_counter, summed over CPUs */
	size_t nkernel;
	const char *const *kernel_names;
};

/*
 * Load (or adopt) the dns object pinned under @pin_dir/dns, restore what a
 * previous agent learned and take @p's host names. 0 or -errno, logged.
 */
int dnslearn_open(struct tg_dnslearn **out, const char *pin_dir, const struct tg_policy *p);

/*
 * Run the programs from the verdict's egress and ingress programs instead of
 * attaching them (tlsguard.bpf.c, tg_dns_chain_*): each goes into slot 0 of
 * the program array @ingress_fd / @egress_fd. Call before
 * dnslearn_attach_cgroup(). 0 or -errno.
 */
int dnslearn_chain(struct tg_dnslearn *l, int ingress_fd, int egress_fd);

/*
 * Empty the slots of the program arrays pinned in @gen_dir (a retiring
 * generation's): its programs would run the dns programs a second time on
 * every answer while it drains. Missing pins are fine.
 */
void dnslearn_unchain_dir(const char *gen_dir);

/* Were the programs chained (dnslearn_chain())? */
bool dnslearn_chained(const struct tg_dnslearn *l);

/*
 * Attach (or adopt) the ingress (answers) and egress (queries) programs on
 * one cgroup directory; chained, only remember the cgroup (for status).
 */
int dnslearn_attach_cgroup(struct tg_dnslearn *l, const char *abs_cgroup_path);

/*
 * Detach pinned links of cgroups not attached through this agent; chained,
 * every pinned link (an earlier agent's, which ran the programs separately).
 */
int dnslearn_prune_links(struct tg_dnslearn *l);

/* The names of the maps the dns object pins under its own directory (its layout); *n of them. */
const char *const *dnslearn_pinned_maps(size_t *n);

/* The programs' hooks: answers in, queries out. */
enum tg_dns_hook { TG_DNS_HOOK_INGRESS, TG_DNS_HOOK_EGRESS, TG_DNS_HOOK__MAX };

/* The programs' hooks, 0 .. n-1: their names in status ("dns_ingress", "dns_egress"), NULL past. */
const char *dnslearn_hook_name(int hook);

/* A hook's link on a cgroup (-1: none, or chained) and its pin path; for status. */
int dnslearn_link(const struct tg_dnslearn *l, uint64_t cgroup_id, int hook, char *pin, size_t len,
		  bool *adopted);

/*
 * Chained: the hook's program (its fd; -1 when not chained) and whether
 * the slot it was put in still holds it (*in_slot), for status.
 */
int dnslearn_chained_prog(const struct tg_dnslearn *l, int hook, bool *in_slot);

/* Readable when there is something for dnslearn_poll(): records or an expiry. */
int dnslearn_fd(const struct tg_dnslearn *l);

/*
 * Read the records, learn, expire. Returns > 0 when the destination table
 * must be rebuilt, 0 when nothing it shows changed, -errno.
 */
int dnslearn_poll(struct tg_dnslearn *l);

/*
 * Only the answers waiting in the ring, as dnslearn_poll() reads them, and
 * nothing else (no timers): cheap enough to call before every batch of
 * events. The same return values.
 */
int dnslearn_read_answers(struct tg_dnslearn *l);

/*
 * Tell the kernel the agent has caught up (the hold, tlsguard/dns.h): every
 * answer stamped before the last dnslearn_poll() began, less the slack, is
 * learned. Call once the destination maps hold what that poll learned.
 */
int dnslearn_publish(struct tg_dnslearn *l);

/* A new policy: see learned_set_policy(). */
int dnslearn_set_policy(struct tg_dnslearn *l, const struct tg_policy *p);

const struct tg_learned *dnslearn_table(const struct tg_dnslearn *l);
void dnslearn_get_stats(struct tg_dnslearn *l, struct tg_dnslearn_stats *out);

/* Close fds; the pins stay. NULL is fine. */
void dnslearn_close(struct tg_dnslearn *l);

/* CLOCK_BOOTTIME in ns: the clock of every expiry. */
uint64_t dnslearn_now_ns(void);

#endif /* TLSGUARD_AGENT_DNSLEARN_H */
