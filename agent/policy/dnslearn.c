// SPDX-License-Identifier: MIT
/*
 * DNS answer learning: the learned table (first half, no kernel) and the
 * dns BPF object, its ring buffer and timer (second half). See dnslearn.h.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "clock.h"
#include "dnslearn.h"
#include "enum_name.h"
#include "kmaps.h"
#include "log.h"
#include "pins.h"
#include "tlsguard/dns.h"
#include "dns.skel.h"

#define NS_PER_S	1000000000ULL

/* ---- the learned table ------------------------------------------------------ */

struct pattern {
	char *host;			/* lower case, as the policy holds it */
	const char *suffix;		/* wildcards: ".suffix" (points into host) */
	size_t suffix_len;
	size_t cls;			/* index into classes */
};

struct class {
	char *name;
	int mode;			/* enum tg_mode, the destination's own */
};

struct entry {
	struct tg_learned_entry pub;
	uint64_t owner;			/* the cgroup whose answer first taught it (0: unknown) */
	struct entry *hnext;		/* hash chain */
	struct entry *newer, *older;	/* LRU list: head is the most recently learned */
	size_t cls;
	char *strs;			/* qname, matched, host: NUL-separated, one allocation */
};

/* How many entries one cgroup's answers hold (the quota, see dnslearn.h). */
struct owner_count {
	uint64_t cgroup_id;
	size_t n;
};

struct tg_learned {
	struct pattern *pats;
	size_t npats;
	struct class *classes;
	size_t nclasses;
	uint64_t grace_ns;
	size_t max;

	struct entry **buckets;
	size_t nbuckets;		/* a power of 2 */
	struct entry *head, *tail;
	size_t n;
	uint64_t next_expiry;
	struct tg_learned_stats stats;
	size_t quota;			/* entries one cgroup's answers may hold */
	struct owner_count *owners;	/* cgroups holding entries, unordered */
	size_t nowners, owners_cap;

	void (*observer)(void *ctx, const struct tg_learned_entry *e, bool removed);
	void *observer_ctx;
};

bool dns_host_matches(const char *host, const char *name)
{
	size_t hl, nl = strlen(name);

	/* names with escapes (a '.' or odd byte inside a label) are not LDH host names */
	if (strchr(name, '\\'))
		return false;
	if (host[0] != '*')
		return !strcmp(host, name);
	/* "*.suffix": one or more labels, then ".suffix" */
	hl = strlen(host) - 1;
	return nl > hl && !strcmp(name + nl - hl, host + 1) && name[nl - hl - 1] != '.';
}

/* The policy host that best matches @name: exact first, then the longest wildcard. */
static const struct pattern *best_pattern(const struct tg_learned *t, const char *name)
{
	const struct pattern *best = NULL;

	for (size_t i = 0; i < t->npats; i++) {
		const struct pattern *p = &t->pats[i];

		if (!dns_host_matches(p->host, name))
			continue;
		if (!p->suffix)
			return p;
		if (!best || p->suffix_len > best->suffix_len)
			best = p;
	}
	return best;
}

static uint64_t hash_addr(const uint8_t addr[16])
{
	uint64_t h = 14695981039346656037ULL;

	for (int i = 0; i < 16; i++) {
		h ^= addr[i];
		h *= 1099511628211ULL;
	}
	return h;
}

static struct entry **bucket(const struct tg_learned *t, const uint8_t addr[16])
{
	return &t->buckets[hash_addr(addr) & (t->nbuckets - 1)];
}

static struct entry *find(const struct tg_learned *t, const uint8_t addr[16])
{
	if (!t->nbuckets)
		return NULL;
	for (struct entry *e = *bucket(t, addr); e; e = e->hnext)
		if (!memcmp(e->pub.addr, addr, 16))
			return e;
	return NULL;
}

const struct tg_learned_entry *learned_find(const struct tg_learned *t, const uint8_t addr[16])
{
	struct entry *e = find(t, addr);

	return e ? &e->pub : NULL;
}

static void lru_unlink(struct tg_learned *t, struct entry *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		t->head = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		t->tail = e->newer;
	e->newer = e->older = NULL;
}

static void lru_push_head(struct tg_learned *t, struct entry *e)
{
	e->newer = NULL;
	e->older = t->head;
	if (t->head)
		t->head->newer = e;
	t->head = e;
	if (!t->tail)
		t->tail = e;
}

static void notify(struct tg_learned *t, const struct entry *e, bool removed)
{
	if (t->observer)
		t->observer(t->observer_ctx, &e->pub, removed);
}

static struct owner_count *owner_find(struct tg_learned *t, uint64_t cgroup_id)
{
	for (size_t i = 0; i < t->nowners; i++)
		if (t->owners[i].cgroup_id == cgroup_id)
			return &t->owners[i];
	return NULL;
}

static size_t owner_held(struct tg_learned *t, uint64_t cgroup_id)
{
	struct owner_count *o = cgroup_id ? owner_find(t, cgroup_id) : NULL;

	return o ? o->n : 0;
}

static int owner_add(struct tg_learned *t, uint64_t cgroup_id)
{
	struct owner_count *o;

	if (!cgroup_id)
		return 0;
	o = owner_find(t, cgroup_id);
	if (!o) {
		if (t->nowners == t->owners_cap) {
			size_t cap = t->owners_cap ? 2 * t->owners_cap : 16;
			struct owner_count *grown = realloc(t->owners, cap * sizeof(*grown));

			if (!grown)
				return -ENOMEM;
			t->owners = grown;
			t->owners_cap = cap;
		}
		o = &t->owners[t->nowners++];
		*o = (struct owner_count){ .cgroup_id = cgroup_id };
	}
	o->n++;
	return 0;
}

static void owner_put(struct tg_learned *t, uint64_t cgroup_id)
{
	struct owner_count *o = cgroup_id ? owner_find(t, cgroup_id) : NULL;

	if (o && --o->n == 0)
		*o = t->owners[--t->nowners];
}

static void remove_entry(struct tg_learned *t, struct entry *e)
{
	struct entry **pp = bucket(t, e->pub.addr);

	notify(t, e, true);
	owner_put(t, e->owner);
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	lru_unlink(t, e);
	t->n--;
	free(e->strs);
	free(e);
}

/* qname, matched and host into one allocation; the public pointers follow. */
static int set_names(struct tg_learned *t, struct entry *e, size_t cls, const char *qname,
		     const char *matched, const char *host)
{
	size_t lq = strlen(qname) + 1, lm = strlen(matched) + 1, lh = strlen(host) + 1;
	char *s = malloc(lq + lm + lh);

	if (!s)
		return -ENOMEM;
	memcpy(s, qname, lq);
	memcpy(s + lq, matched, lm);
	memcpy(s + lq + lm, host, lh);
	free(e->strs);
	e->strs = s;
	e->pub.qname = s;
	e->pub.matched = s + lq;
	e->pub.host = s + lq + lm;
	e->cls = cls;
	e->pub.class_name = t->classes[cls].name;
	return 0;
}

static void evict_to(struct tg_learned *t, size_t max)
{
	while (t->n > max && t->tail) {
		t->stats.evicted++;
		remove_entry(t, t->tail);
	}
}

static int resize_buckets(struct tg_learned *t, size_t max)
{
	size_t nb = 64;
	struct entry **b;

	while (nb < max && nb < (1U << 20))
		nb *= 2;
	if (nb == t->nbuckets)
		return 0;
	b = calloc(nb, sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct entry *e = t->buckets[i], *next;

		for (; e; e = next) {
			struct entry **pp = &b[hash_addr(e->pub.addr) & (nb - 1)];

			next = e->hnext;
			e->hnext = *pp;
			*pp = e;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = nb;
	return 0;
}

struct tg_learned *learned_new(void)
{
	struct tg_learned *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->max = TG_DNS_MAX_LEARNED_DEFAULT;
	t->quota = t->max;
	t->grace_ns = TG_DNS_GRACE_DEFAULT * NS_PER_S;
	t->next_expiry = UINT64_MAX;
	if (resize_buckets(t, t->max)) {
		free(t);
		return NULL;
	}
	return t;
}

static void free_policy_copy(struct pattern *pats, size_t npats, struct class *classes, size_t nclasses)
{
	for (size_t i = 0; i < npats; i++)
		free(pats[i].host);
	free(pats);
	for (size_t i = 0; i < nclasses; i++)
		free(classes[i].name);
	free(classes);
}

void learned_free(struct tg_learned *t)
{
	if (!t)
		return;
	t->observer = NULL;	/* freeing is not forgetting: the pinned copy stays */
	while (t->head)
		remove_entry(t, t->head);
	free(t->buckets);
	free(t->owners);
	free_policy_copy(t->pats, t->npats, t->classes, t->nclasses);
	free(t);
}

int learned_set_policy(struct tg_learned *t, const struct tg_policy *p)
{
	struct pattern *pats = NULL;
	struct class *classes = calloc(p->ndests ? p->ndests : 1, sizeof(*classes));
	size_t npats = 0, total = 0, old_nclasses = t->nclasses;
	struct class *old_classes = t->classes;
	struct pattern *old_pats = t->pats;
	size_t old_npats = t->npats;
	int changed = 0;
	struct entry *e, *older;

	for (size_t i = 0; i < p->ndests; i++)
		total += p->dests[i].hosts.n;
	pats = calloc(total ? total : 1, sizeof(*pats));
	if (!classes || !pats)
		goto nomem;
	for (size_t i = 0; i < p->ndests; i++) {
		const struct tg_policy_dest *d = &p->dests[i];

		classes[i].name = strdup(d->name);
		classes[i].mode = policy_dest_mode(p, d);
		if (!classes[i].name)
			goto nomem;
		for (size_t j = 0; j < d->hosts.n; j++) {
			struct pattern *pt = &pats[npats];

			pt->host = strdup(d->hosts.v[j]);
			if (!pt->host)
				goto nomem;
			npats++;
			pt->cls = i;
			if (pt->host[0] == '*') {
				pt->suffix = pt->host + 1;
				pt->suffix_len = strlen(pt->suffix);
			}
		}
	}
	if (resize_buckets(t, p->dns_max_learned))
		goto nomem;
	t->pats = pats;
	t->npats = npats;
	t->classes = classes;
	t->nclasses = p->ndests;
	t->grace_ns = (uint64_t)p->dns_grace_s * NS_PER_S;
	t->max = p->dns_max_learned;
	t->quota = p->dns_max_per_cgroup ? p->dns_max_per_cgroup : (t->max + 3) / 4;

	/* what was learned under the old policy: matched again, or dropped */
	for (e = t->head; e; e = older) {
		const struct pattern *pt = best_pattern(t, e->pub.matched);
		const char *old_class = e->pub.class_name;

		older = e->older;
		if (!pt) {
			remove_entry(t, e);
			changed++;
			continue;
		}
		if (strcmp(old_class, classes[pt->cls].name))
			changed++;
		e->cls = pt->cls;
		e->pub.class_name = classes[pt->cls].name;
		if (strcmp(e->pub.host, pt->host)) {
			char *qname = strdup(e->pub.qname), *matched = strdup(e->pub.matched);

			if (!qname || !matched || set_names(t, e, pt->cls, qname, matched, pt->host)) {
				free(qname);
				free(matched);
				remove_entry(t, e);	/* cannot keep it right: forget it */
				changed++;
				continue;
			}
			free(qname);
			free(matched);
			notify(t, e, false);
		}
	}
	if (t->n > t->max) {
		changed += t->n - t->max;
		evict_to(t, t->max);
	}
	free_policy_copy(old_pats, old_npats, old_classes, old_nclasses);
	return changed;

nomem:
	free_policy_copy(pats, npats, classes, p->ndests);
	return -ENOMEM;
}

static uint64_t expiry_for(const struct tg_learned *t, uint32_t ttl, uint64_t now_ns)
{
	if (ttl > TG_DNS_TTL_MAX_S)
		ttl = TG_DNS_TTL_MAX_S;
	return now_ns + ttl * NS_PER_S + t->grace_ns;
}

/*
 * Room for one more entry from @cgroup_id? Never by dropping one that has
 * not expired: a workload that answers itself could otherwise push a
 * victim's protection out (docs/policy.md, "Bounds").
 */
static bool room_for(struct tg_learned *t, uint64_t cgroup_id, uint64_t now_ns)
{
	if (t->n >= t->max && t->next_expiry <= now_ns)
		learned_expire(t, now_ns);
	if (t->n >= t->max) {
		t->stats.refused_full++;
		return false;
	}
	if (cgroup_id && owner_held(t, cgroup_id) >= t->quota) {
		t->stats.refused_quota++;
		return false;
	}
	return true;
}

/* Learn (or refresh) one address. 1 when the destination table must change. */
static int learn_one(struct tg_learned *t, const uint8_t addr[16], const struct pattern *pt,
		     const char *qname, const char *matched, uint64_t expires_ns,
		     uint64_t cgroup_id, uint64_t now_ns)
{
	struct entry *e = find(t, addr);
	int changed = 0;

	if (e) {
		t->stats.refreshed++;
		if (e->cls != pt->cls) {
			/*
			 * One address, names of two classes (shared front ends, or an answer
			 * a workload forged to itself): the stricter class keeps it, and
			 * among equals the one learned first. Never a downgrade.
			 */
			t->stats.class_conflicts++;
			if (t->classes[pt->cls].mode > t->classes[e->cls].mode) {
				if (set_names(t, e, pt->cls, qname, matched, pt->host))
					return -ENOMEM;
				changed = 1;
			}
		} else if (strcmp(e->pub.qname, qname) || strcmp(e->pub.host, pt->host)) {
			/* the name the last client asked for is the one its events should show */
			if (set_names(t, e, pt->cls, qname, matched, pt->host))
				return -ENOMEM;
			changed = 1;
		}
		if (expires_ns > e->pub.expires_ns)
			e->pub.expires_ns = expires_ns;
		lru_unlink(t, e);
		lru_push_head(t, e);
		notify(t, e, false);
		return changed;
	}
	if (!room_for(t, cgroup_id, now_ns))
		return 0;
	e = calloc(1, sizeof(*e));
	if (!e || owner_add(t, cgroup_id)) {
		free(e);
		return -ENOMEM;
	}
	e->owner = cgroup_id;
	memcpy(e->pub.addr, addr, 16);
	e->pub.expires_ns = expires_ns;
	if (set_names(t, e, pt->cls, qname, matched, pt->host)) {
		owner_put(t, cgroup_id);
		free(e);
		return -ENOMEM;
	}
	e->hnext = *bucket(t, addr);
	*bucket(t, addr) = e;
	lru_push_head(t, e);
	t->n++;
	t->stats.learned++;
	if (expires_ns < t->next_expiry)
		t->next_expiry = expires_ns;
	notify(t, e, false);
	return 1;
}

int learned_add_answer(struct tg_learned *t, const struct tg_dns_answer *a, uint64_t now_ns)
{
	return learned_add_answer_from(t, a, 0, now_ns);
}

int learned_add_answer_from(struct tg_learned *t, const struct tg_dns_answer *a,
			    uint64_t cgroup_id, uint64_t now_ns)
{
	const struct pattern *pt = NULL;
	size_t m;
	int changed = 0;

	t->stats.answers++;
	for (m = 0; m < a->nchain && !pt; m++)
		pt = best_pattern(t, a->chain[m]);
	if (!pt)
		return 0;
	m--;
	t->stats.answers_matched++;
	for (size_t i = 0; i < a->naddrs; i++) {
		int r = learn_one(t, a->addrs[i].addr, pt, a->chain[0], a->chain[m],
				  expiry_for(t, a->addrs[i].ttl, now_ns), cgroup_id, now_ns);

		if (r < 0)
			return r;
		changed += r;
	}
	return changed;
}

int learned_restore(struct tg_learned *t, const uint8_t addr[16], const char *qname,
		    const char *matched, uint64_t expires_ns, uint64_t now_ns)
{
	const struct pattern *pt = best_pattern(t, matched);

	if (!pt || expires_ns <= now_ns || find(t, addr))
		return 0;
	return learn_one(t, addr, pt, qname, matched, expires_ns, 0, now_ns);
}

int learned_expire(struct tg_learned *t, uint64_t now_ns)
{
	uint64_t next = UINT64_MAX;
	struct entry *e, *older;
	int n = 0;

	for (e = t->head; e; e = older) {
		older = e->older;
		if (e->pub.expires_ns <= now_ns) {
			t->stats.expired++;
			remove_entry(t, e);
			n++;
		} else if (e->pub.expires_ns < next) {
			next = e->pub.expires_ns;
		}
	}
	t->next_expiry = next;
	return n;
}

uint64_t learned_next_expiry(const struct tg_learned *t)
{
	return t->n ? t->next_expiry : UINT64_MAX;
}

size_t learned_count(const struct tg_learned *t)
{
	return t->n;
}

size_t learned_max(const struct tg_learned *t)
{
	return t->max;
}

void learned_get_stats(const struct tg_learned *t, struct tg_learned_stats *out)
{
	*out = t->stats;
}

int learned_for_each(const struct tg_learned *t,
		     int (*fn)(void *ctx, const struct tg_learned_entry *e), void *ctx)
{
	for (const struct entry *e = t ? t->head : NULL; e; e = e->older) {
		int r = fn(ctx, &e->pub);

		if (r)
			return r;
	}
	return 0;
}

void learned_set_observer(struct tg_learned *t,
			  void (*fn)(void *ctx, const struct tg_learned_entry *e, bool removed),
			  void *ctx)
{
	t->observer = fn;
	t->observer_ctx = ctx;
}

/* ---- the kernel side -------------------------------------------------------- */

#define DNS_PIN_SUBDIR		"dns"
/* The dns object's programs on each cgroup: answers in, queries out. */
static const char *const dns_hook_names[TG_DNS_HOOK__MAX] = { "dns_ingress", "dns_egress" };
#define STREAM_IDLE_NS		(30 * NS_PER_S)
#define MIN_SCAN_INTERVAL_NS	NS_PER_S	/* expiry scans: at most one a second */
#define QUERY_SWEEP_NS		(10 * NS_PER_S)
/*
 * Answers the kernel learned itself, or that teach nothing, do not wake the
 * agent (bpf/dns.bpf.c): it reads them at least this often, and whenever it is
 * woken for anything else (events first read the answers).
 */
#define LAZY_READ_NS		(100 * 1000 * 1000ULL)

static const char *const kernel_counter_names[] = {
	[TG_DNS_CNT_COPIED] = "copied",
	[TG_DNS_CNT_RECORDS] = "records",
	[TG_DNS_CNT_SKIP_NOT_DNS] = "skip_not_dns",
	[TG_DNS_CNT_SKIP_L3] = "skip_l3",
	[TG_DNS_CNT_SKIP_L4] = "skip_l4",
	[TG_DNS_CNT_SKIP_EMPTY] = "skip_empty",
	[TG_DNS_CNT_TRUNCATED] = "truncated",
	[TG_DNS_CNT_ERR_HEADER] = "err_header",
	[TG_DNS_CNT_ERR_LOAD] = "err_load",
	[TG_DNS_CNT_ERR_RINGBUF] = "err_ringbuf",
	[TG_DNS_CNT_ANS_POLICY] = "answers_policy",
	[TG_DNS_CNT_ANS_OTHER] = "answers_other",
	[TG_DNS_CNT_ANS_UNREAD] = "answers_unread",
	[TG_DNS_CNT_ERR_STAMP] = "err_stamp",
	[TG_DNS_CNT_KLEARNED] = "learned_in_kernel",
	[TG_DNS_CNT_ERR_KLEARN] = "err_learn_in_kernel",
	[TG_DNS_CNT_QUERIES] = "queries",
	[TG_DNS_CNT_ERR_QUERY] = "err_query",
	[TG_DNS_CNT_UNSOLICITED] = "unsolicited",
	[TG_DNS_CNT_QUERY_SCRATCH_BUSY] = "query_scratch_busy",
};
_Static_assert(sizeof(kernel_counter_names) / sizeof(kernel_counter_names[0]) == TG_DNS_CNT__MAX,
	       "every dns counter has a name");
_Static_assert(TG_DNS_CNT__MAX <= 24, "dns counters fit the stats");

struct dns_att {
	uint64_t cgroup_id;
	int link_fd[TG_DNS_HOOK__MAX];
	bool adopted[TG_DNS_HOOK__MAX];
};

struct tg_dnslearn {
	struct dns_bpf *skel;
	char top[4096], dir[4200];
	bool adopted;
	int chain_fd[TG_DNS_HOOK__MAX];	/* dnslearn_chain()'s program arrays (not ours), else -1 */
	struct dns_att *atts;
	size_t natts;
	struct ring_buffer *rb;
	int epfd, timerfd;
	int learned_fd;			/* the pinned copy of the table */
	struct tg_learned *table;
	struct tg_dns_streams streams;
	struct tg_dns_answer *ans;	/* scratch, ~40 KiB */
	uint64_t now_ns;		/* while consuming */
	uint64_t cur_cgroup;		/* while consuming: the record's cgroup */
	int changed;			/* while consuming */
	int err;			/* while consuming */
	uint64_t last_scan_ns;
	uint64_t records, udp_truncated, parsed[TG_DNSP__MAX], persist_failed;
	bool warned_full;
	/* the hold (tlsguard/dns.h) */
	int catchup_timerfd;		/* a read of the ring again, so caught_up passes records just read */
	int lazy_timerfd;		/* reads what the kernel did not wake us for (LAZY_READ_NS) */
	int caught_up_fd;		/* tg_dns_caught_up */
	int klearned_fd;		/* tg_dns_klearned: what the kernel learned before us */
	uint64_t klearned_dropped;	/* entries removed once the maps had their answers */
	int queries_fd;			/* tg_dns_queries: unanswered ones are swept */
	uint64_t unsolicited, queries_swept;
	uint64_t read_start_ns;		/* CLOCK_MONOTONIC when the last read of the ring began */
	uint64_t published_ns;		/* the last caught_up written */
	bool publish_due;		/* records read, or the catch-up read came, since */
	uint64_t publishes;
	/* pins of another dns layout being replaced (replace_other_layout()) */
	uint32_t old_layout;		/* 0: none */
	int old_learned_fd, old_queries_fd;
};

uint64_t dnslearn_now_ns(void)
{
	return tg_boot_ns();
}

static void persist(void *ctx, const struct tg_learned_entry *e, bool removed)
{
	struct tg_dnslearn *l = ctx;
	struct tg_dns_learned_key key;
	struct tg_dns_learned_val val = { .expires_ns = e->expires_ns };

	memcpy(key.addr, e->addr, 16);
	if (removed) {
		bpf_map_delete_elem(l->learned_fd, &key);
		return;
	}
	if (strlen(e->qname) >= sizeof(val.qname) || strlen(e->matched) >= sizeof(val.matched)) {
		/* kept in memory all the same; only a restart forgets it */
		bpf_map_delete_elem(l->learned_fd, &key);
		l->persist_failed++;
		return;
	}
	strcpy(val.qname, e->qname);
	strcpy(val.matched, e->matched);
	if (bpf_map_update_elem(l->learned_fd, &key, &val, BPF_ANY))
		l->persist_failed++;
}

static void learn_msg(void *ctx, const uint8_t *msg, size_t len)
{
	struct tg_dnslearn *l = ctx;
	enum tg_dns_parse_result r = dns_parse_answer(msg, len, l->ans);
	uint64_t refused;
	int n;

	l->parsed[r]++;
	if (r != TG_DNSP_OK)
		return;
	refused = l->table->stats.refused_full;
	n = learned_add_answer_from(l->table, l->ans, l->cur_cgroup, l->now_ns);
	if (n < 0) {
		l->err = n;
		return;
	}
	l->changed += n;
	if (l->table->stats.refused_full != refused && !l->warned_full) {
		tg_warn("dns: %zu learned addresses, the most dns.max_learned allows: new answers "
			"are not learned until some expire (status: policy.dns.refused_full)",
			l->table->max);
		l->warned_full = true;
	}
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct tg_dnslearn *l = ctx;
	const struct tg_dns_rec *rec = data;
	const uint8_t *payload = (const uint8_t *)(rec + 1);
	int err;

	if (size < sizeof(*rec) || size < sizeof(*rec) + rec->len)
		return 0;	/* from an incompatible build; ignored */
	l->records++;
	l->cur_cgroup = rec->cgroup_id;
	if (!(rec->flags & TG_DNS_REC_SOLICITED)) {
		/* nobody on this socket asked (the kernel counts it): teaches nothing */
		l->unsolicited++;
		return 0;
	}
	if (rec->proto == IPPROTO_UDP) {
		if (rec->wire_len > rec->len) {
			l->udp_truncated++;
			return 0;
		}
		learn_msg(l, payload, rec->len);
		return 0;
	}
	err = dns_streams_feed(&l->streams, rec->cookie, rec->seq, rec->tcp_flags, payload, rec->len,
			       l->now_ns, learn_msg, l);
	if (err)
		l->err = err;
	return 0;
}

/*
 * Queries nobody answered (a timeout, a resolver that gave up) go after
 * TG_DNS_QUERY_MAX_AGE_NS, so the map keeps room for the ones in flight.
 */
static void sweep_queries(struct tg_dnslearn *l, uint64_t mono_now_ns)
{
	struct tg_dns_query_key kept, next;
	bool have_kept = false;
	uint64_t ts;

	while (!bpf_map_get_next_key(l->queries_fd, have_kept ? &kept : NULL, &next)) {
		if (!bpf_map_lookup_elem(l->queries_fd, &next, &ts) &&
		    ts + TG_DNS_QUERY_MAX_AGE_NS < mono_now_ns &&
		    !bpf_map_delete_elem(l->queries_fd, &next)) {
			l->queries_swept++;
			continue;
		}
		kept = next;
		have_kept = true;
	}
}

/*
 * The next wake-up: the earliest expiry, but never sooner than a second after
 * the last scan, and never later than QUERY_SWEEP_NS (the unanswered queries).
 */
static void arm_timer(struct tg_dnslearn *l)
{
	uint64_t next = learned_next_expiry(l->table), now = dnslearn_now_ns();
	struct itimerspec its = { 0 };

	if (dns_streams_active(&l->streams) && now + STREAM_IDLE_NS < next)
		next = now + STREAM_IDLE_NS;
	if (now + QUERY_SWEEP_NS < next)
		next = now + QUERY_SWEEP_NS;
	if (next != UINT64_MAX) {
		if (next < l->last_scan_ns + MIN_SCAN_INTERVAL_NS)
			next = l->last_scan_ns + MIN_SCAN_INTERVAL_NS;
		if (next <= now)
			next = now + 1;
		its.it_value.tv_sec = next / NS_PER_S;
		its.it_value.tv_nsec = next % NS_PER_S;
	}
	timerfd_settime(l->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/*
 * Records were read: read once more shortly, so that a record stamped
 * within the slack of this read is covered by a caught_up too (it would
 * otherwise wait for the next answer, or the hold's bound).
 */
static void arm_catchup(struct tg_dnslearn *l)
{
	struct itimerspec its = { .it_value.tv_nsec = 2 * TG_DNS_CATCHUP_SLACK_NS };

	timerfd_settime(l->catchup_timerfd, 0, &its, NULL);
}

/*
 * What the kernel learned from answers this agent has now processed: the
 * destination map holds the agent's verdict on them (learned, or refused:
 * an exception, a quota, a full table), so the kernel's entries go.
 */
static void drop_klearned(struct tg_dnslearn *l, uint64_t upto_ns)
{
	struct tg_dns_klearned_key kept, next;
	struct tg_dns_klearned_val val;
	bool have_kept = false;

	while (!bpf_map_get_next_key(l->klearned_fd, have_kept ? &kept : NULL, &next)) {
		if (!bpf_map_lookup_elem(l->klearned_fd, &next, &val) && val.ts_ns <= upto_ns &&
		    !bpf_map_delete_elem(l->klearned_fd, &next)) {
			l->klearned_dropped++;
			continue;	/* gone: the key after the last one kept is the next one */
		}
		kept = next;
		have_kept = true;
	}
}

int dnslearn_publish(struct tg_dnslearn *l)
{
	uint32_t key = 0;
	uint64_t v;

	if (!l || !l->publish_due || l->read_start_ns <= TG_DNS_CATCHUP_SLACK_NS)
		return 0;
	l->publish_due = false;
	v = l->read_start_ns - TG_DNS_CATCHUP_SLACK_NS;
	if (v <= l->published_ns)
		return 0;
	if (bpf_map_update_elem(l->caught_up_fd, &key, &v, BPF_ANY))
		return -errno;
	l->published_ns = v;
	l->publishes++;
	drop_klearned(l, v);
	return 0;
}

int dnslearn_poll(struct tg_dnslearn *l)
{
	uint64_t ticks, records = l->records;
	int err;

	l->changed = 0;
	l->err = 0;
	l->now_ns = dnslearn_now_ns();
	if (read(l->catchup_timerfd, &ticks, sizeof(ticks)) == sizeof(ticks))
		l->publish_due = true;	/* what the last read had within the slack is covered now */
	else if (errno != EAGAIN)
		return -errno;
	if (read(l->lazy_timerfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return -errno;
	/* before the read: what was stamped before this moment is read by it */
	l->read_start_ns = tg_mono_ns();
	err = ring_buffer__consume(l->rb);
	if (err < 0)
		return err;
	if (l->records != records) {
		l->publish_due = true;
		arm_catchup(l);
	}
	if (read(l->timerfd, &ticks, sizeof(ticks)) == sizeof(ticks) ||
	    learned_next_expiry(l->table) <= l->now_ns) {
		l->last_scan_ns = l->now_ns;
		l->changed += learned_expire(l->table, l->now_ns);
		dns_streams_expire(&l->streams, l->now_ns - STREAM_IDLE_NS);
		sweep_queries(l, l->read_start_ns);
	}
	arm_timer(l);
	if (l->err)
		return l->err;
	return l->changed;
}

int dnslearn_read_answers(struct tg_dnslearn *l)
{
	uint64_t records = l->records, read_start = tg_mono_ns();
	int err;

	l->changed = 0;
	l->err = 0;
	l->now_ns = dnslearn_now_ns();
	err = ring_buffer__consume(l->rb);
	if (err < 0)
		return err;
	if (l->records == records)
		return 0;	/* nothing new: no syscall spent (the timers are dnslearn_poll's) */
	l->read_start_ns = read_start;
	l->publish_due = true;
	arm_catchup(l);
	return l->err ? l->err : l->changed;
}

int dnslearn_fd(const struct tg_dnslearn *l)
{
	return l->epfd;
}

const struct tg_learned *dnslearn_table(const struct tg_dnslearn *l)
{
	return l ? l->table : NULL;
}

int dnslearn_set_policy(struct tg_dnslearn *l, const struct tg_policy *p)
{
	int n = learned_set_policy(l->table, p);

	if (n >= 0)
		arm_timer(l);
	return n;
}

/* Pin each of the @n maps under @dir by its name (at load: created, or reused when there). */
static int pin_maps_under(struct bpf_map *const *maps, size_t n, const char *dir)
{
	char path[4400];
	int err;

	for (size_t i = 0; i < n; i++) {
		err = pins_path(path, sizeof(path), dir, bpf_map__name(maps[i]));
		if (!err)
			err = bpf_map__set_pin_path(maps[i], path);
		if (err)
			return err;
	}
	return 0;
}

/* The dns object's own pinned maps (TG_DNS_PIN_LAYOUT_VERSION; tests/unit/test_pin_layout.c). */
static const char *const own_pinned_maps[] = {
	"tg_dns_ring", "tg_dns_counters", "tg_dns_learned",
	"tg_dns_queries",	/* queries in flight outlive an agent restart */
};

const char *const *dnslearn_pinned_maps(size_t *n)
{
	*n = sizeof(own_pinned_maps) / sizeof(own_pinned_maps[0]);
	return own_pinned_maps;
}

static int set_map_pins(struct tg_dnslearn *l)
{
	struct bpf_map *maps[sizeof(own_pinned_maps) / sizeof(own_pinned_maps[0])];

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		maps[i] = bpf_object__find_map_by_name(l->skel->obj, own_pinned_maps[i]);
		if (!maps[i])
			return -ENOENT;	/* a name this object lost: the table above is wrong */
	}

	/* the verdict object's, pinned at the top by the loader (bpf/lib/shared_maps.bpf.h) */
	struct bpf_map *shared[] = {
		l->skel->maps.tg_names, l->skel->maps.tg_sipkey, l->skel->maps.tg_dns_pending,
		l->skel->maps.tg_dns_caught_up, l->skel->maps.tg_dns_klearned,
		l->skel->maps.tg_dns_newest,
	};
	int err = pin_maps_under(maps, sizeof(maps) / sizeof(maps[0]), l->dir);

	return err ? err : pin_maps_under(shared, sizeof(shared) / sizeof(shared[0]), l->top);
}

/* What the previous agent learned and has not expired: learned again, re-matched. */
static int restore(struct tg_dnslearn *l)
{
	struct tg_dns_learned_key key, next;
	struct tg_dns_learned_val val;
	uint64_t now = dnslearn_now_ns();
	void *prev = NULL;
	size_t n = 0, dropped = 0;
	int err;

	while (!bpf_map_get_next_key(l->learned_fd, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(l->learned_fd, &key, &val))
			continue;
		val.qname[sizeof(val.qname) - 1] = '\0';
		val.matched[sizeof(val.matched) - 1] = '\0';
		err = learned_restore(l->table, key.addr, val.qname, val.matched, val.expires_ns, now);
		if (err < 0)
			return err;
		if (err)
			n++;
		else
			dropped++;
	}
	/* the table's observer keeps the map in step from here on; clear what it did not take */
	if (dropped) {
		prev = NULL;
		while (!bpf_map_get_next_key(l->learned_fd, prev, &next)) {
			key = next;
			if (!learned_find(l->table, key.addr)) {
				bpf_map_delete_elem(l->learned_fd, &key);
				prev = NULL;	/* deleting invalidates the walk: start over */
				continue;
			}
			prev = &key;
		}
	}
	if (n || dropped)
		tg_info("dns: kept %zu learned address(es) from the previous agent, %zu expired or "
			"no longer in the policy", n, dropped);
	return 0;
}

/* The map pinned as @name in @dir: its fd, or -1 (none, or not openable: nothing to carry). */
static int open_pinned_map(const char *dir, const char *name)
{
	char path[4400];

	if (pins_path(path, sizeof(path), dir, name))
		return -1;
	return bpf_obj_get(path);
}

/* Remove the pin @name of @dir (gone already is fine). 0 or -errno. */
static int unpin(const char *dir, const char *name)
{
	char path[4400];
	int err = pins_path(path, sizeof(path), dir, name);

	if (!err && unlink(path) < 0 && errno != ENOENT)
		err = -errno;
	return err;
}

/*
 * Pins of another dns layout (a release that changed one of own_pinned_maps)
 * are replaced, not refused: the dns object has no generation to drain (it
 * only observes answers), so its maps are made anew. The old learned
 * addresses and queries in flight stay open here until what fits is copied
 * into the new maps (carry_over()); the old programs keep observing until the
 * pinned links switch to the new ones (attach_hook(): bpf_link_update), so no
 * answer goes unobserved. The old ring's unread answers and its counters are
 * not carried: the addresses of those answers are in the shared
 * tg_dns_klearned map already.
 */
static int replace_other_layout(struct tg_dnslearn *l)
{
	uint32_t have = 0;
	int err = pins_read_layout(l->dir, &have, NULL);

	if (err == -ENOENT || (!err && have == TG_DNS_PIN_LAYOUT_VERSION))
		return 0;
	if (err)
		return err;
	l->old_layout = have;
	l->old_learned_fd = open_pinned_map(l->dir, "tg_dns_learned");
	l->old_queries_fd = open_pinned_map(l->dir, "tg_dns_queries");
	for (size_t i = 0; i < sizeof(own_pinned_maps) / sizeof(own_pinned_maps[0]) && !err; i++)
		err = unpin(l->dir, own_pinned_maps[i]);
	if (!err)
		err = unpin(l->dir, TG_PINS_LAYOUT);	/* last: pins_check_layout() makes the new one */
	if (err)
		tg_err("dns: cannot replace the pins of layout %u in %s: %s", have, l->dir,
		       strerror(-err));
	return err;
}

/* One old map into its new one; a note of what did not come over. */
static size_t carry_map(const struct tg_dnslearn *l, int old_fd, int new_fd, const char *what)
{
	size_t n = 0;
	int err = old_fd < 0 ? -ENOENT : pins_copy_map(old_fd, new_fd, &n);

	if (err == -EINVAL)
		tg_warn("dns: the %s of dns layout %u do not fit layout %u's map: not carried over",
			what, l->old_layout, TG_DNS_PIN_LAYOUT_VERSION);
	else if (err && err != -ENOENT)
		tg_warn("dns: carried %zu of the %s over, then: %s", n, what, strerror(-err));
	if (old_fd >= 0)
		close(old_fd);
	return n;
}

/* What the new maps hold of an old layout's (replace_other_layout()), before restore() reads them. */
static void carry_over(struct tg_dnslearn *l)
{
	size_t learned, queries;

	learned = carry_map(l, l->old_learned_fd, l->learned_fd, "learned addresses");
	queries = carry_map(l, l->old_queries_fd, l->queries_fd, "queries in flight");
	l->old_learned_fd = l->old_queries_fd = -1;
	tg_info("dns: pins of layout %u replaced by layout %u: %zu learned address(es) and %zu "
		"queries in flight carried over", l->old_layout, TG_DNS_PIN_LAYOUT_VERSION, learned,
		queries);
}

static int setup_events(struct tg_dnslearn *l)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct itimerspec lazy = { .it_value.tv_nsec = LAZY_READ_NS, .it_interval.tv_nsec = LAZY_READ_NS };

	l->rb = ring_buffer__new(bpf_map__fd(l->skel->maps.tg_dns_ring), on_record, l, NULL);
	if (!l->rb)
		return -errno;
	l->timerfd = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	l->catchup_timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	l->lazy_timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->timerfd < 0 || l->catchup_timerfd < 0 || l->lazy_timerfd < 0 || l->epfd < 0)
		return -errno;
	if (timerfd_settime(l->lazy_timerfd, 0, &lazy, NULL) < 0 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(l->rb), &ev) < 0 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->timerfd, &ev) < 0 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->catchup_timerfd, &ev) < 0 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->lazy_timerfd, &ev) < 0)
		return -errno;
	return 0;
}

int dnslearn_open(struct tg_dnslearn **out, const char *pin_dir, const struct tg_policy *p)
{
	struct tg_dnslearn *l = calloc(1, sizeof(*l));
	int err;

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->epfd = l->timerfd = l->learned_fd = l->catchup_timerfd = l->lazy_timerfd = -1;
	l->old_learned_fd = l->old_queries_fd = -1;
	l->chain_fd[TG_DNS_HOOK_INGRESS] = l->chain_fd[TG_DNS_HOOK_EGRESS] = -1;
	l->table = learned_new();
	l->ans = malloc(sizeof(*l->ans));
	if (!l->table || !l->ans) {
		err = -ENOMEM;
		goto fail;
	}
	snprintf(l->top, sizeof(l->top), "%s", pin_dir);
	snprintf(l->dir, sizeof(l->dir), "%s/%s", pin_dir, DNS_PIN_SUBDIR);
	err = pins_mkdir_p(l->dir, 0700);
	if (err) {
		tg_err("dns: cannot create pin directory %s: %s", l->dir, strerror(-err));
		goto fail;
	}
	err = replace_other_layout(l);
	if (!err)
		err = pins_check_layout(l->dir, TG_DNS_PIN_LAYOUT_VERSION, 0, l->top, &l->adopted);
	if (err) {
		if (err != -EEXIST)
			tg_err("dns: cannot use pin directory %s: %s", l->dir, strerror(-err));
		goto fail;
	}
	l->skel = dns_bpf__open();
	if (!l->skel) {
		err = -errno;
		tg_err("dns: cannot open BPF object: %s", strerror(-err));
		goto fail;
	}
	err = set_map_pins(l);
	if (!err)
		err = dns_bpf__load(l->skel);
	if (err) {
		tg_err("dns: cannot load the DNS answer program: %s (run with -v for the verifier "
		       "log; pins in %s from another build? try 'tlsguard uninstall --pin-path %s')",
		       strerror(-err), l->dir, l->top);
		goto fail;
	}
	l->learned_fd = bpf_map__fd(l->skel->maps.tg_dns_learned);
	l->caught_up_fd = bpf_map__fd(l->skel->maps.tg_dns_caught_up);
	l->klearned_fd = bpf_map__fd(l->skel->maps.tg_dns_klearned);
	l->queries_fd = bpf_map__fd(l->skel->maps.tg_dns_queries);
	err = learned_set_policy(l->table, p);
	if (err < 0)
		goto fail;
	if (l->old_layout)
		carry_over(l);
	err = l->adopted || l->old_layout ? restore(l) : 0;	/* fresh pins are empty */
	if (err)
		goto fail;
	learned_set_observer(l->table, persist, l);
	err = setup_events(l);
	if (err) {
		tg_err("dns: cannot set up the answer ring buffer: %s", strerror(-err));
		goto fail;
	}
	l->last_scan_ns = dnslearn_now_ns();
	l->publish_due = true;	/* the first read covers what came while no agent ran */
	arm_timer(l);
	*out = l;
	return 0;
fail:
	dnslearn_close(l);
	return err;
}

static struct bpf_program *hook_prog(const struct tg_dnslearn *l, enum tg_dns_hook h)
{
	return h == TG_DNS_HOOK_INGRESS ? l->skel->progs.tg_dns_ingress : l->skel->progs.tg_dns_egress;
}

/*
 * A failure after the ingress slot was filled leaves it filled, on purpose:
 * over adopted pins the attached verdict programs go on learning through it
 * while the failed start is looked into, and the next start overwrites it.
 */
int dnslearn_chain(struct tg_dnslearn *l, int ingress_fd, int egress_fd)
{
	const int fds[TG_DNS_HOOK__MAX] = { [TG_DNS_HOOK_INGRESS] = ingress_fd, [TG_DNS_HOOK_EGRESS] = egress_fd };
	__u32 slot = 0;

	for (int h = 0; h < TG_DNS_HOOK__MAX; h++) {
		int prog_fd = bpf_program__fd(hook_prog(l, h));

		if (bpf_map_update_elem(fds[h], &slot, &prog_fd, BPF_ANY) < 0) {
			int err = -errno;

			tg_err("dns: cannot chain %s behind the verdict's program: %s",
			       dns_hook_names[h], strerror(-err));
			return err;
		}
		l->chain_fd[h] = fds[h];
	}
	return 0;
}

void dnslearn_unchain_dir(const char *gen_dir)
{
	static const char *const pins[] = { TG_DNS_CHAIN_PIN_INGRESS, TG_DNS_CHAIN_PIN_EGRESS };
	__u32 slot = 0;

	for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
		int fd = open_pinned_map(gen_dir, pins[i]);

		if (fd < 0)
			continue;
		if (bpf_map_delete_elem(fd, &slot) < 0 && errno != ENOENT)
			tg_warn("dns: cannot empty %s/%s: %s (answers are learned twice while "
				"that generation drains)", gen_dir, pins[i], strerror(errno));
		close(fd);
	}
}

bool dnslearn_chained(const struct tg_dnslearn *l)
{
	return l && l->chain_fd[TG_DNS_HOOK_INGRESS] >= 0;
}

int dnslearn_chained_prog(const struct tg_dnslearn *l, int hook, bool *in_slot)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info), slot = 0, id = 0;
	int fd;

	*in_slot = false;
	if (!dnslearn_chained(l) || hook < 0 || hook >= TG_DNS_HOOK__MAX)
		return -1;
	fd = bpf_program__fd(hook_prog(l, hook));
	/* from user space a program array's slot reads back as its program's id */
	if (!bpf_map_lookup_elem(l->chain_fd[hook], &slot, &id) &&
	    !bpf_obj_get_info_by_fd(fd, &info, &len))
		*in_slot = id == info.id;
	return fd;
}

/* One hook's link on the cgroup: the pinned one adopted, or a new one pinned. */
static int attach_hook(struct tg_dnslearn *l, struct dns_att *att, enum tg_dns_hook h,
		       const char *abs_cgroup_path)
{
	char path[4400];
	int cg_fd, fd, err;

	err = pins_link_path(path, sizeof(path), l->dir, att->cgroup_id, dns_hook_names[h]);
	if (err)
		return err;
	fd = pins_adopt_link(path, bpf_program__fd(hook_prog(l, h)));
	att->adopted[h] = fd >= 0;
	if (fd < 0) {
		cg_fd = open(abs_cgroup_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (cg_fd < 0)
			return -errno;
		fd = pins_attach_new(hook_prog(l, h), cg_fd, path);
		close(cg_fd);
		if (fd < 0)
			return fd;
	}
	att->link_fd[h] = fd;
	return 0;
}

int dnslearn_attach_cgroup(struct tg_dnslearn *l, const char *abs_cgroup_path)
{
	struct dns_att att = { .link_fd = { -1, -1 } }, *grown;
	char path[4400];
	struct stat st;
	int err;

	if (stat(abs_cgroup_path, &st) < 0)
		return -errno;
	for (size_t i = 0; i < l->natts; i++)
		if (l->atts[i].cgroup_id == (uint64_t)st.st_ino)
			return 0;	/* named twice: attach once */
	err = pins_path(path, sizeof(path), l->dir, TG_PINS_LINKS);
	if (!err)
		err = pins_mkdir_p(path, 0700);
	if (err)
		return err;
	grown = realloc(l->atts, (l->natts + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	l->atts = grown;
	att.cgroup_id = st.st_ino;
	for (int h = 0; h < TG_DNS_HOOK__MAX && !err && !dnslearn_chained(l); h++)
		err = attach_hook(l, &att, h, abs_cgroup_path);
	if (err) {
		for (int h = 0; h < TG_DNS_HOOK__MAX; h++)
			if (att.link_fd[h] >= 0)
				close(att.link_fd[h]);
		return err;
	}
	l->atts[l->natts++] = att;
	return 0;
}

const char *dnslearn_hook_name(int hook)
{
	return TG_ENUM_NAME(dns_hook_names, hook, NULL);
}

int dnslearn_link(const struct tg_dnslearn *l, uint64_t cgroup_id, int hook, char *pin, size_t len,
		  bool *adopted)
{
	for (size_t i = 0; l && hook >= 0 && hook < TG_DNS_HOOK__MAX && i < l->natts; i++) {
		if (l->atts[i].cgroup_id != cgroup_id)
			continue;
		pins_link_path(pin, len, l->dir, cgroup_id, dns_hook_names[hook]);
		*adopted = l->atts[i].adopted[hook];
		return l->atts[i].link_fd[hook];
	}
	return -1;
}

int dnslearn_prune_links(struct tg_dnslearn *l)
{
	size_t keep = dnslearn_chained(l) ? 0 : l->natts;

	return pins_prune_links(l->dir, keep ? &l->atts[0].cgroup_id : NULL, keep,
				sizeof(l->atts[0]));
}

void dnslearn_get_stats(struct tg_dnslearn *l, struct tg_dnslearn_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!l)
		return;
	learned_get_stats(l->table, &out->table);
	out->learned_ips = learned_count(l->table);
	out->max_learned = learned_max(l->table);
	out->records = l->records;
	out->udp_truncated = l->udp_truncated;
	memcpy(out->parsed, l->parsed, sizeof(out->parsed));
	out->tcp = l->streams.stats;
	out->hold_publishes = l->publishes;
	out->klearned_dropped = l->klearned_dropped;
	out->unsolicited = l->unsolicited;
	out->queries_swept = l->queries_swept;
	out->caught_up_ns = l->published_ns;
	out->nkernel = TG_DNS_CNT__MAX;
	out->kernel_names = kernel_counter_names;
	kmaps_percpu_sum(bpf_map__fd(l->skel->maps.tg_dns_counters), 0, TG_DNS_CNT__MAX, out->kernel);
}

void dnslearn_close(struct tg_dnslearn *l)
{
	if (!l)
		return;
	ring_buffer__free(l->rb);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->timerfd >= 0)
		close(l->timerfd);
	if (l->catchup_timerfd >= 0)
		close(l->catchup_timerfd);
	if (l->lazy_timerfd >= 0)
		close(l->lazy_timerfd);
	if (l->old_learned_fd >= 0)
		close(l->old_learned_fd);
	if (l->old_queries_fd >= 0)
		close(l->old_queries_fd);
	for (size_t i = 0; i < l->natts; i++)
		for (int h = 0; h < TG_DNS_HOOK__MAX; h++)
			if (l->atts[i].link_fd[h] >= 0)
				close(l->atts[i].link_fd[h]);
	free(l->atts);
	learned_free(l->table);
	dns_streams_free(&l->streams);
	free(l->ans);
	dns_bpf__destroy(l->skel);
	free(l);
}
