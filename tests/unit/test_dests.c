// SPDX-License-Identifier: MIT
/*
 * Policy → destination table (LPM entries and classes), without a kernel;
 * and dests_apply() against small real BPF maps (root only).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <bpf/bpf.h>
#include <unistd.h>

#include "dests.h"
#include "tlsguard/preface.h"
#include "policy.h"
#include "prepare.h"

static struct tg_policy *load(const char *yaml)
{
	struct tg_diag diag = { 0 };
	struct tg_policy *p = NULL;

	assert_int_equal(policy_load_buffer("t.yaml", yaml, strlen(yaml), &p, &diag), 0);
	diag_free(&diag);
	return p;
}

static const struct tg_dest_entry *find(const struct tg_dest_table *t, const char *addr, unsigned plen)
{
	uint8_t a[16] = { 0 };

	if (strchr(addr, ':')) {
		inet_pton(AF_INET6, addr, a);
	} else {
		a[10] = a[11] = 0xff;
		inet_pton(AF_INET, addr, a + 12);
	}
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].key.prefixlen == plen && !memcmp(t->v[i].key.addr, a, 16))
			return &t->v[i];
	return NULL;
}

static void test_classes_and_prefixes(void **state)
{
	struct tg_policy *p = load("mode: audit\n"
				   "destinations:\n"
				   "  - name: storage\n"
				   "    cidrs: [\"198.51.100.0/24\"]\n"
				   "    ports: [443, \"8000-8100\"]\n"
				   "    mode: enforce\n"
				   "  - name: db\n"
				   "    cidrs: [\"2001:db8::/32\"]\n");
	struct tg_dest_table t;
	const struct tg_dest_entry *e;

	assert_int_equal(dests_build(p, -1, NULL, NULL, &t, NULL, 0), 0);
	assert_int_equal(t.nclasses, 2);
	assert_string_equal(dests_class_name(&t, 1), "storage");
	assert_string_equal(dests_class_name(&t, 2), "db");
	assert_null(dests_class_name(&t, 3));
	assert_int_equal(t.classes[1].mode, TG_MODE_ENFORCE);
	assert_int_equal(t.classes[2].mode, TG_MODE_AUDIT);
	assert_int_equal(t.classes[1].nranges, 2);
	assert_int_equal(t.classes[1].ports[1].lo, 8000);
	assert_int_equal(t.classes[1].ports[1].hi, 8100);
	assert_int_equal(t.classes[2].nranges, 0);
	e = find(&t, "198.51.100.0", 96 + 24);
	assert_non_null(e);
	assert_int_equal(e->val.class_id, 1);
	e = find(&t, "2001:db8::", 32);
	assert_non_null(e);
	assert_int_equal(e->val.class_id, 2);
	dests_free(&t);
	policy_free(p);
}

static void test_mode_override_wins(void **state)
{
	struct tg_policy *p = load("destinations:\n"
				   "  - name: a\n    cidrs: [\"10.0.0.0/8\"]\n    mode: audit\n");
	struct tg_dest_table t;

	assert_int_equal(dests_build(p, TG_MODE_ENFORCE, NULL, NULL, &t, NULL, 0), 0);
	assert_int_equal(t.classes[1].mode, TG_MODE_ENFORCE);
	dests_free(&t);
	policy_free(p);
}

static void test_exception_wins_over_same_prefix(void **state)
{
	struct tg_policy *p = load("destinations:\n"
				   "  - name: a\n    cidrs: [\"169.254.169.254/32\", \"10.0.0.0/8\"]\n"
				   "exceptions:\n  - cidrs: [\"169.254.169.254/32\"]\n");
	struct tg_dest_table t;
	const struct tg_dest_entry *e;

	assert_int_equal(dests_build(p, -1, NULL, NULL, &t, NULL, 0), 0);
	assert_int_equal(t.n, 2);
	e = find(&t, "169.254.169.254", 128);
	assert_non_null(e);
	assert_true(e->val.flags & TG_DEST_EXCEPTION);
	assert_int_equal(e->val.class_id, 0);
	dests_free(&t);
	policy_free(p);
}

static void test_resolved_hosts_become_entries_with_names(void **state)
{
	struct tg_policy *p = load("destinations:\n"
				   "  - name: storage\n    hosts: [\"acct.blob.core.windows.net\"]\n");
	struct tg_host host = { .name = "acct.blob.core.windows.net", .addrs.naddrs = 1 };
	struct tg_host_addrs h = { .v = &host, .n = 1 };
	struct tg_dest_table t;
	uint8_t addr[16] = { [10] = 0xff, [11] = 0xff, [12] = 198, [13] = 51, [14] = 100, [15] = 9 };

	/* addresses given as plain data: resolution itself is exercised in integration */
	memcpy(host.addrs.addrs[0], addr, 16);
	assert_int_equal(dests_build(p, -1, &h, NULL, &t, NULL, 0), 0);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.v[0].key.prefixlen, 128);
	assert_string_equal(dests_name_for(&t, addr), "acct.blob.core.windows.net");
	addr[15] = 10;
	assert_null(dests_name_for(&t, addr));
	dests_free(&t);
	policy_free(p);
}

/* Two classes whose names resolve to one address: the first class named keeps it. */
static void test_shared_address_goes_to_first_class(void **state)
{
	struct tg_policy *p = load("destinations:\n"
				   "  - name: a\n    hosts: [\"one.example\"]\n"
				   "  - name: b\n    hosts: [\"two.example\"]\n");
	uint8_t addr[16] = { [10] = 0xff, [11] = 0xff, [12] = 198, [13] = 51, [14] = 100, [15] = 9 };
	struct tg_dest_table t;
	struct tg_host hosts[2] = { { .name = "one.example" }, { .name = "two.example" } };
	struct tg_host_addrs h = { .v = hosts, .n = 2 };

	for (int i = 0; i < 2; i++) {
		memcpy(hosts[i].addrs.addrs[0], addr, 16);
		hosts[i].addrs.naddrs = 1;
	}
	assert_int_equal(dests_build(p, -1, &h, NULL, &t, NULL, 0), 0);
	assert_int_equal(t.n, 1);
	assert_int_equal(t.v[0].val.class_id, 1);
	dests_free(&t);
	policy_free(p);
}

/* A snapshot is a copy: a refresh that changes the table afterwards does not reach it. */
static void test_host_snapshot_is_a_copy(void **state)
{
	struct tg_host v[2] = { { .name = "a.example", .addrs.naddrs = 1 },
				{ .name = "b.example" } };
	struct tg_hosts h = { .v = v, .n = 2 };
	struct tg_host_addrs s;

	pthread_mutex_init(&h.lock, NULL);
	v[0].addrs.addrs[0][15] = 7;
	assert_int_equal(hosts_snapshot(&h, &s), 0);
	v[0].addrs.addrs[0][15] = 8;	/* the refresh thread's next answer */
	v[1].addrs.naddrs = 1;
	assert_int_equal(s.n, 2);
	assert_ptr_not_equal(s.v, v);
	assert_int_equal(host_addrs_find(&s, "A.Example")->addrs.addrs[0][15], 7);
	assert_int_equal(host_addrs_find(&s, "b.example")->addrs.naddrs, 0);
	assert_null(host_addrs_find(&s, "c.example"));
	host_addrs_free(&s);
	assert_null(s.v);
	assert_int_equal(hosts_snapshot(NULL, &s), 0);	/* no table: nothing resolved */
	assert_int_equal(s.n, 0);
	assert_null(host_addrs_find(&s, "a.example"));
	assert_null(host_addrs_find(NULL, "a.example"));
	pthread_mutex_destroy(&h.lock);
}

#define DATA_DIR TG_TEST_DATA "/servicetags/"

/* Prepare @yaml as the agent would (written to a file first): 0 or -errno, messages in @d. */
static int prepare_text(const char *yaml, struct tg_prepared *out, struct tg_diag *d)
{
	char path[] = "/tmp/tg-dests-policy-XXXXXX";
	int fd = mkstemp(path), ret;
	struct tg_prepare_opts o = { .path = path, .scope = TG_PREP_RELOAD, .mode_override = -1 };

	assert_true(fd >= 0);
	assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
	close(fd);
	ret = prepare_policy(&o, out, d);
	unlink(path);
	return ret;
}

static void test_service_tags_become_prefixes(void **state)
{
	struct tg_prepared prep;
	struct tg_diag d = { 0 };

	assert_int_equal(prepare_text("destinations:\n"
				      "  - name: storage\n"
				      "    service_tags:\n"
				      "      file: \"" DATA_DIR "ServiceTags_Public_small.json\"\n"
				      "      tags: [Storage.WestEurope]\n", &prep, &d), 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(prep.dests.n, 3);
	assert_non_null(find(&prep.dests, "20.60.0.0", 96 + 16));
	assert_non_null(find(&prep.dests, "20.38.108.0", 96 + 23));
	assert_non_null(find(&prep.dests, "2603:1020:206::", 48));
	assert_null(find(&prep.dests, "20.50.201.0", 96 + 26));	/* another tag */
	/* read once, into the policy: later builds (host refreshes) read no file */
	assert_int_equal(prep.policy->dests[0].ntag_cidrs, 3);
	prepared_free(&prep);
}

static void test_service_tag_missing_is_an_error(void **state)
{
	struct tg_prepared prep;
	struct tg_diag d = { 0 };

	assert_int_equal(prepare_text("destinations:\n"
				      "  - name: storage\n"
				      "    service_tags:\n"
				      "      file: \"" DATA_DIR "ServiceTags_Public_small.json\"\n"
				      "      tags: [Storage.MarsNorth]\n", &prep, &d), -ENOENT);
	assert_int_equal(d.n, 1);
	assert_non_null(strstr(d.msgs[0], ":2:5: destination \"storage\": service tag Storage.MarsNorth "
			       "is not in " DATA_DIR "ServiceTags_Public_small.json"));
	diag_free(&d);
	assert_int_equal(prepare_text("destinations:\n"
				      "  - name: storage\n"
				      "    service_tags:\n"
				      "      file: \"" DATA_DIR "no-such-file.json\"\n"
				      "      tags: [Storage.WestEurope]\n", &prep, &d), -ENOENT);
	assert_int_equal(d.n, 1);
	assert_non_null(strstr(d.msgs[0], "cannot read service tags file " DATA_DIR "no-such-file.json: "
			       "No such file or directory"));
	diag_free(&d);
}

/* A reload keeps each class's id (per-class counters keep their meaning). */
static void test_class_ids_survive_reload(void **state)
{
	struct tg_policy *p1 = load("destinations:\n"
				    "  - name: a\n    cidrs: [\"10.1.0.0/16\"]\n"
				    "  - name: b\n    cidrs: [\"10.2.0.0/16\"]\n"
				    "  - name: c\n    cidrs: [\"10.3.0.0/16\"]\n");
	struct tg_policy *p2 = load("destinations:\n"
				    "  - name: new\n    cidrs: [\"10.4.0.0/16\"]\n"
				    "  - name: c\n    cidrs: [\"10.3.0.0/16\"]\n"
				    "  - name: a\n    cidrs: [\"10.1.0.0/16\"]\n");
	struct tg_dest_table t1, t2;

	assert_int_equal(dests_build(p1, -1, NULL, NULL, &t1, NULL, 0), 0);
	assert_int_equal(dests_build(p2, -1, NULL, &t1, &t2, NULL, 0), 0);
	assert_string_equal(dests_class_name(&t2, 1), "a");
	assert_string_equal(dests_class_name(&t2, 3), "c");
	assert_null(dests_class_name(&t2, 2));		/* b's id is not handed to "new" */
	assert_string_equal(dests_class_name(&t2, 4), "new");
	assert_int_equal(find(&t2, "10.3.0.0", 112)->val.class_id, 3);
	dests_free(&t1);
	dests_free(&t2);
	policy_free(p1);
	policy_free(p2);
}

/*
 * A policy of @n /32 prefixes in 10.0.0.0/8 (one class), plus @dup copies of
 * the first prefix and, when @exception, one exception prefix of its own.
 */
static struct tg_policy *load_many(size_t n, size_t dup, bool exception)
{
	size_t len = 200 + (n + dup + 1) * 40, off = 0;
	char *y = malloc(len);
	struct tg_policy *p;

	assert_non_null(y);
	off += snprintf(y + off, len - off, "destinations:\n  - name: big\n    cidrs:\n");
	for (size_t i = 0; i < n + dup; i++) {
		size_t k = i < n ? i : 0;

		off += snprintf(y + off, len - off, "      - \"10.%zu.%zu.%zu/32\"\n",
				(k >> 16) & 0xff, (k >> 8) & 0xff, k & 0xff);
	}
	if (exception)
		off += snprintf(y + off, len - off, "exceptions:\n  - cidrs: [\"192.0.2.99/32\"]\n");
	assert_true(off < len);
	p = load(y);
	free(y);
	return p;
}

/* The destination map's bound (TG_MAX_DESTS): exactly full fits, one more is refused. */
static void test_bound_exactly_full_fits(void **state)
{
	struct tg_policy *p = load_many(TG_MAX_DESTS, 3, false);	/* duplicates are no entries */
	struct tg_dest_table t;

	assert_int_equal(dests_build(p, -1, NULL, NULL, &t, NULL, 0), 0);
	assert_int_equal(t.n, TG_MAX_DESTS);
	assert_non_null(find(&t, "10.0.0.0", 128));
	assert_non_null(find(&t, "10.0.255.255", 128));
	dests_free(&t);
	policy_free(p);
}

static void test_bound_one_more_is_refused(void **state)
{
	struct tg_policy *p = load_many(TG_MAX_DESTS + 1, 0, false);
	struct tg_policy *q = load_many(TG_MAX_DESTS, 0, true);	/* exceptions are entries too */
	struct tg_dest_table t;
	char why[300] = "";

	assert_int_equal(dests_build(p, -1, NULL, NULL, &t, why, sizeof(why)), -E2BIG);
	assert_string_equal(why, "the policy needs 65537 destination map entries (prefixes, resolved "
			    "and learned addresses); the kernel map holds at most 65536: merge "
			    "prefixes or split the policy");
	assert_int_equal(t.n, 0);
	assert_null(t.v);
	assert_int_equal(dests_build(q, -1, NULL, NULL, &t, NULL, 0), -E2BIG);
	policy_free(p);
	policy_free(q);
}

/* The lowest free file descriptor: a builder that opened or kept one would move it. */
static int lowest_free_fd(void)
{
	int fd = dup(0);

	assert_true(fd >= 0);
	close(fd);
	return fd;
}

static bool same_tables(const struct tg_dest_table *a, const struct tg_dest_table *b)
{
	if (a->n != b->n || a->nclasses != b->nclasses ||
	    memcmp(a->classes, b->classes, sizeof(a->classes)) ||
	    memcmp(a->class_names, b->class_names, sizeof(a->class_names)))
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (memcmp(&a->v[i].key, &b->v[i].key, sizeof(a->v[i].key)) ||
		    memcmp(&a->v[i].val, &b->v[i].val, sizeof(a->v[i].val)) || a->v[i].name != b->v[i].name)
			return false;
	return true;
}

/*
 * dests_build() is plain data in, plain data out: the same inputs give the
 * same table, the previous table it reads is left as it was, and it touches
 * no file descriptor (the maps are written by dests_apply() only).
 */
static void test_build_is_pure(void **state)
{
	struct tg_policy *p = load("destinations:\n"
				   "  - {name: a, cidrs: [\"10.0.0.0/8\"], ports: [443]}\n"
				   "  - {name: b, cidrs: [\"2001:db8::/32\"], mode: enforce}\n"
				   "exceptions:\n  - cidrs: [\"10.1.2.3/32\"]\n");
	struct tg_dest_table prev, prev_copy, t1, t2;
	int fd = lowest_free_fd();

	assert_int_equal(dests_build(p, -1, NULL, NULL, &prev, NULL, 0), 0);
	prev_copy = prev;
	prev_copy.v = malloc(prev.n * sizeof(prev.v[0]));
	assert_non_null(prev_copy.v);
	memcpy(prev_copy.v, prev.v, prev.n * sizeof(prev.v[0]));
	assert_int_equal(dests_build(p, -1, NULL, &prev, &t1, NULL, 0), 0);
	assert_int_equal(dests_build(p, -1, NULL, &prev, &t2, NULL, 0), 0);
	assert_true(same_tables(&t1, &t2));
	assert_true(same_tables(&prev, &prev_copy));
	assert_true(same_tables(&prev, &t1));	/* nothing changed: the same ids, the same entries */
	assert_int_equal(lowest_free_fd(), fd);
	free(prev_copy.v);
	dests_free(&prev);
	dests_free(&t1);
	dests_free(&t2);
	policy_free(p);
}

/* ---- dests_apply on real maps: a 4-entry trie ---------------------------------- */

struct maps {
	int dests, classes;
	struct tg_kmaps km;		/* the two, as the agent passes them */
};

static bool make_maps(struct maps *m, unsigned int max_dests)
{
	LIBBPF_OPTS(bpf_map_create_opts, lpm, .map_flags = BPF_F_NO_PREALLOC);

	if (geteuid() != 0)
		return false;
	m->dests = bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "t_dests", sizeof(struct tg_dest_key),
				  sizeof(struct tg_dest_value), max_dests, &lpm);
	/* qemu-user (make ARCH=arm64 cross-test) implements no bpf(2): nothing to test on */
	if (m->dests == -ENOSYS)
		return false;
	m->classes = bpf_map_create(BPF_MAP_TYPE_ARRAY, "t_classes", sizeof(uint32_t),
				    sizeof(struct tg_class), TG_MAX_CLASSES, NULL);
	assert_true(m->dests >= 0 && m->classes >= 0);
	kmaps_none(&m->km);
	m->km.dests = m->dests;
	m->km.classes = m->classes;
	return true;
}

static void close_maps(struct maps *m)
{
	close(m->dests);
	close(m->classes);
}

/* A table of /32 entries 198.51.100.<last>, all of class 1. */
static void table_of(struct tg_dest_table *t, const int *last, size_t n)
{
	memset(t, 0, sizeof(*t));
	t->v = calloc(n, sizeof(t->v[0]));
	assert_non_null(t->v);
	t->n = n;
	t->nclasses = 1;
	t->class_names[1] = "storage";
	t->classes[1].mode = TG_MODE_ENFORCE;
	for (size_t i = 0; i < n; i++) {
		t->v[i].key.prefixlen = 128;
		t->v[i].key.addr[10] = t->v[i].key.addr[11] = 0xff;
		t->v[i].key.addr[12] = 198;
		t->v[i].key.addr[13] = 51;
		t->v[i].key.addr[14] = 100;
		t->v[i].key.addr[15] = last[i];
		t->v[i].val.class_id = 1;
	}
}

/* The last address bytes the map holds, sorted, as "1,2,3". */
static void map_contents(int fd, char *out, size_t len)
{
	struct tg_dest_table t;
	struct tg_kmaps km;
	size_t at = 0;

	kmaps_none(&km);
	km.dests = fd;
	assert_int_equal(dests_read_map(&km, &t), 0);
	out[0] = '\0';
	for (size_t i = 0; i < t.n; i++)
		at += snprintf(out + at, len - at, "%s%d", i ? "," : "", t.v[i].key.addr[15]);
	dests_free(&t);
}

static void test_apply_when_both_policies_do_not_fit(void **state)
{
	static const int a[] = { 1, 2, 3 }, b[] = { 3, 4, 5 };
	struct tg_dest_table old, next;
	struct maps m;
	char got[64];

	if (!make_maps(&m, 4))
		skip();	/* creating BPF maps needs root (and bpf(2), which qemu-user lacks) */
	table_of(&old, a, 3);
	table_of(&next, b, 3);
	assert_int_equal(dests_apply(&m.km, NULL, &old), 0);
	/* 3 + 2 new entries > 4: the dropped ones make room first */
	assert_int_equal(dests_apply(&m.km, &old, &next), 0);
	map_contents(m.dests, got, sizeof(got));
	assert_string_equal(got, "3,4,5");
	dests_free(&old);
	dests_free(&next);
	close_maps(&m);
}

static void test_failed_apply_puts_the_old_policy_back(void **state)
{
	static const int a[] = { 1, 2 }, b[] = { 2, 7, 9 };
	struct tg_dest_table old, next;
	struct maps m;
	char got[64];

	if (!make_maps(&m, 8))
		skip();
	table_of(&old, a, 2);
	table_of(&next, b, 3);
	next.v[2].key.prefixlen = 200;	/* the kernel refuses it (EINVAL) after .7 went in */
	assert_int_equal(dests_apply(&m.km, NULL, &old), 0);
	assert_int_equal(dests_apply(&m.km, &old, &next), -EINVAL);
	map_contents(m.dests, got, sizeof(got));
	assert_string_equal(got, "1,2");
	dests_free(&old);
	dests_free(&next);
	close_maps(&m);
}

/* Port entries are classes of their own that the destination's ranges point at. */
static void test_port_entries_and_overrides(void **state)
{
	struct tg_policy *p = load("mode: enforce\n"
				   "destinations:\n"
				   "  - name: files\n"
				   "    cidrs: [\"198.51.100.0/24\"]\n"
				   "    note: shares\n"
				   "    ports: [443, {port: 445, protocol: smb3}, {port: 2049, name: nfs, mode: audit}]\n"
				   "  - name: db\n"
				   "    cidrs: [\"203.0.113.0/24\"]\n"
				   "overrides:\n"
				   "  - {namespaces: [a], mode: audit, classes: [files]}\n"
				   "  - {namespaces: [b], mode: enforce}\n");
	struct tg_override ov[2];
	struct tg_dest_table t;
	unsigned int files = 0, smb = 0, nfs = 0, db = 0;

	assert_int_equal(dests_build(p, -1, NULL, NULL, &t, NULL, 0), 0);
	for (unsigned int id = 1; id <= t.nclasses; id++) {
		const char *n = dests_class_name(&t, id);

		files = !strcmp(n, "files") ? id : files;
		smb = !strcmp(n, "files:445") ? id : smb;
		nfs = !strcmp(n, "nfs") ? id : nfs;
		db = !strcmp(n, "db") ? id : db;
	}
	assert_true(files && smb && nfs && db);
	assert_int_equal(t.nclasses, 4);
	assert_int_equal(t.n, 2);			/* entries add no addresses */
	assert_int_equal(t.classes[files].nranges, 3);
	assert_int_equal(t.classes[files].port_class[0], 0);
	assert_int_equal(t.classes[files].port_class[1], smb);
	assert_int_equal(t.classes[files].port_class[2], nfs);
	assert_int_equal(t.classes[smb].protocol, TG_L7_SMB3);
	assert_int_equal(t.classes[smb].nranges, 1);
	assert_int_equal(t.classes[smb].ports[0].lo, 445);
	assert_int_equal(t.classes[smb].mode, TG_MODE_ENFORCE);
	assert_int_equal(t.classes[nfs].mode, TG_MODE_AUDIT);
	assert_string_equal(t.class_notes[smb], "shares");
	/* overrides: rule numbers, modes, and the classes each covers */
	dests_override_values(p, &t, ov);
	assert_int_equal(ov[0].rule, 1);
	assert_int_equal(ov[0].mode, TG_MODE_AUDIT);
	assert_true(ov[0].classes[0] & (1ULL << files));
	assert_true(ov[0].classes[0] & (1ULL << smb));	/* unnamed: part of files */
	assert_false(ov[0].classes[0] & (1ULL << nfs));	/* named: its own */
	assert_false(ov[0].classes[0] & (1ULL << db));
	assert_int_equal(ov[1].rule, 2);
	assert_int_equal(ov[1].classes[0], (1ULL << files) | (1ULL << smb) | (1ULL << nfs) | (1ULL << db));
	dests_free(&t);
	policy_free(p);
}

/*
 * A reload's table in slices of one map write (the agent answers its control
 * socket between slices): every entry of the old table stays in until every
 * new one is in, and the end is the same as in one go.
 */
static void test_apply_in_slices(void **state)
{
	static const int a[] = { 1, 2, 3, 4 }, b[] = { 3, 4, 5, 6, 7 };
	static const char *const seen[] = { "1,2,3,4,5", "1,2,3,4,5,6", "1,2,3,4,5,6,7", "2,3,4,5,6,7",
					    "3,4,5,6,7" };
	struct tg_dest_table old, next;
	struct tg_dest_apply ap;
	struct maps m;
	char got[64];
	int steps = 0, ret;

	if (!make_maps(&m, 16))
		skip();
	table_of(&old, a, 4);
	table_of(&next, b, 5);
	assert_int_equal(dests_apply(&m.km, NULL, &old), 0);
	dests_apply_begin(&ap, &m.km, &old, &next);
	while ((ret = dests_apply_step(&ap, 1)) > 0) {
		assert_true(steps < 5);
		map_contents(m.dests, got, sizeof(got));
		assert_string_equal(got, seen[steps]);
		steps++;
	}
	assert_int_equal(ret, 0);
	assert_int_equal(steps, 5);
	map_contents(m.dests, got, sizeof(got));
	assert_string_equal(got, "3,4,5,6,7");
	close_maps(&m);
	/* a trie too small for both, in slices too: the leaving entries first, then the rest */
	assert_true(make_maps(&m, 5));
	assert_int_equal(dests_apply(&m.km, NULL, &old), 0);
	dests_apply_begin(&ap, &m.km, &old, &next);
	while ((ret = dests_apply_step(&ap, 1)) > 0)
		;
	assert_int_equal(ret, 0);
	map_contents(m.dests, got, sizeof(got));
	assert_string_equal(got, "3,4,5,6,7");
	dests_free(&old);
	dests_free(&next);
	close_maps(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_classes_and_prefixes),
		cmocka_unit_test(test_build_is_pure),
		cmocka_unit_test(test_mode_override_wins),
		cmocka_unit_test(test_exception_wins_over_same_prefix),
		cmocka_unit_test(test_resolved_hosts_become_entries_with_names),
		cmocka_unit_test(test_shared_address_goes_to_first_class),
		cmocka_unit_test(test_host_snapshot_is_a_copy),
		cmocka_unit_test(test_service_tags_become_prefixes),
		cmocka_unit_test(test_service_tag_missing_is_an_error),
		cmocka_unit_test(test_class_ids_survive_reload),
		cmocka_unit_test(test_bound_exactly_full_fits),
		cmocka_unit_test(test_bound_one_more_is_refused),
		cmocka_unit_test(test_apply_when_both_policies_do_not_fit),
		cmocka_unit_test(test_failed_apply_puts_the_old_policy_back),
		cmocka_unit_test(test_port_entries_and_overrides),
		cmocka_unit_test(test_apply_in_slices),
	};

	return cmocka_run_group_tests_name("dests", tests, NULL, NULL);
}
