// SPDX-License-Identifier: MIT
/*
 * Policy loader: every error class with its exact FILE:LINE:COL message,
 * the full schema, the built-in policy, CIDR/port/duration/size parsing,
 * malformed YAML and the `tlsguard policy` subcommand. Built with ASan and
 * LSan, so a leak on any error path fails the run.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "commands.h"
#include "policy.h"

/* ---- helpers ------------------------------------------------------------ */

static int load(const char *yaml, struct tg_policy **p, struct tg_diag *d)
{
	return policy_load_buffer("t.yaml", yaml, strlen(yaml), p, d);
}

/* Load @len bytes of @yaml expecting them valid; fails the test with the messages if not. */
static struct tg_policy *load_ok_len(const char *yaml, size_t len)
{
	struct tg_diag d = { 0 };
	struct tg_policy *p = NULL;
	int ret = policy_load_buffer("t.yaml", yaml, len, &p, &d);

	for (size_t i = 0; i < d.n; i++)
		print_error("unexpected: %s\n", d.msgs[i]);
	assert_int_equal(ret, 0);
	assert_int_equal(d.n, 0);
	assert_non_null(p);
	diag_free(&d);
	return p;
}

static struct tg_policy *load_ok(const char *yaml)
{
	return load_ok_len(yaml, strlen(yaml));
}

/*
 * Load @yaml expecting exactly the messages in @want (NULL-terminated), in
 * order. Compares before asserting so that a failure does not leak @d.
 */
static void check_errors(const char *yaml, const char *const *want)
{
	struct tg_diag d = { 0 };
	struct tg_policy *p = (struct tg_policy *)1;
	size_t n = 0, got;
	bool same = true, none;
	int ret;

	ret = load(yaml, &p, &d);
	while (want[n])
		n++;
	for (size_t i = 0; i < d.n || i < n; i++) {
		if (i < d.n && i < n && !strcmp(d.msgs[i], want[i]))
			continue;
		same = false;
		print_error("got[%zu]:  %s\nwant[%zu]: %s\n", i, i < d.n ? d.msgs[i] : "(none)",
			    i, i < n ? want[i] : "(none)");
	}
	got = d.n;
	none = !p;		/* the loader sets *out even on failure */
	diag_free(&d);
	policy_free(p);
	assert_int_equal(ret, -EINVAL);
	assert_true(none);
	assert_int_equal(got, n);
	assert_true(same);
}

#define EXPECT_ERRORS(yaml, ...) check_errors(yaml, (const char *const[]){ __VA_ARGS__, NULL })

static bool has(const struct tg_strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], s))
			return true;
	return false;
}

static const struct tg_policy_dest *dest(const struct tg_policy *p, const char *name)
{
	for (size_t i = 0; i < p->ndests; i++)
		if (!strcmp(p->dests[i].name, name))
			return &p->dests[i];
	fail_msg("no destination \"%s\"", name);
	return NULL;
}

static void assert_cidr4(const struct tg_cidr *c, const char *addr, int plen)
{
	uint8_t want[16] = { [10] = 0xff, [11] = 0xff };

	assert_int_equal(inet_pton(AF_INET, addr, want + 12), 1);
	assert_memory_equal(c->addr, want, 16);
	assert_int_equal(c->prefixlen, plen + 96);
	assert_int_equal(c->family, AF_INET);
}

/* ---- valid policies ----------------------------------------------------- */

/* The example from DESIGN.md, verbatim. */
static const char design_example[] =
	"mode: audit                 # audit | enforce (default for every class)\n"
	"fail_mode: closed           # closed | open: behaviour when the agent is gone\n"
	"min_tls_version: \"1.2\"\n"
	"workloads:\n"
	"  cgroups: [\"/kubepods.slice\"]      # cgroup v2 paths relative to the cgroup2 mount\n"
	"  kubernetes:                        # optional pod selection on AKS\n"
	"    namespaces: [\"azureml\"]\n"
	"    labels: {\"ml.azure.com/compute\": \"*\"}\n"
	"destinations:\n"
	"  - name: storage\n"
	"    hosts: [\"*.blob.core.windows.net\", \"*.dfs.core.windows.net\"]\n"
	"    cidrs: []\n"
	"    ports: [443]                     # other ports to these hosts: blocked at connect() in enforce\n"
	"    mode: enforce                    # per-class override\n"
	"  - name: database\n"
	"    hosts: [\"*.postgres.database.azure.com\"]\n"
	"    ports: [5432]\n"
	"    protocol: postgres               # STARTTLS-style: SSLRequest then TLS is compliant\n"
	"exceptions:\n"
	"  - cidrs: [\"169.254.169.254/32\"]    # IMDS is plain HTTP by design\n"
	"events:\n"
	"  file: \"-\"\n"
	"  application_insights:\n"
	"    connection_string_file: /etc/tlsguard/secrets/appinsights-connection-string\n"
	"  encrypt_fields: [\"workload.pod\", \"workload.namespace\", \"destination.name\"]\n"
	"  key_file: /etc/tlsguard/secrets/event-key\n";

static void test_design_example(void **state)
{
	struct tg_policy *p = load_ok(design_example);
	const struct tg_policy_dest *s, *db;

	assert_string_equal(p->source, "t.yaml");
	assert_int_equal(p->mode, TG_MODE_AUDIT);
	assert_int_equal(p->fail_mode, TG_FAIL_CLOSED);
	assert_int_equal(p->fail_open_after_s, 10);
	assert_int_equal(p->min_tls_version, TG_TLS_1_2);
	assert_int_equal(p->cgroups.n, 1);
	assert_string_equal(p->cgroups.v[0], "/kubepods.slice");
	assert_int_equal(p->k8s_namespaces.n, 1);
	assert_string_equal(p->k8s_namespaces.v[0], "azureml");
	assert_int_equal(p->nk8s_labels, 1);
	assert_string_equal(p->k8s_labels[0].key, "ml.azure.com/compute");
	assert_string_equal(p->k8s_labels[0].value, "*");

	assert_int_equal(p->ndests, 2);
	s = &p->dests[0];
	assert_string_equal(s->name, "storage");
	assert_int_equal(s->hosts.n, 2);
	assert_string_equal(s->hosts.v[0], "*.blob.core.windows.net");
	assert_string_equal(s->hosts.v[1], "*.dfs.core.windows.net");
	assert_int_equal(s->ncidrs, 0);
	assert_int_equal(s->nports, 1);
	assert_int_equal(s->ports[0].lo, 443);
	assert_int_equal(s->ports[0].hi, 443);
	assert_int_equal(s->mode, TG_MODE_ENFORCE);
	assert_int_equal(s->protocol, TG_PROTO_TLS);
	assert_int_equal(s->min_tls_version, 0);
	assert_int_equal(s->require_sni, -1);
	assert_int_equal(s->line, 10);
	assert_int_equal(s->col, 5);
	assert_int_equal(policy_dest_mode(p, s), TG_MODE_ENFORCE);

	db = &p->dests[1];
	assert_string_equal(db->name, "database");
	assert_int_equal(db->protocol, TG_PROTO_POSTGRES);
	assert_int_equal(db->mode, -1);
	assert_int_equal(policy_dest_mode(p, db), TG_MODE_AUDIT);
	assert_int_equal(policy_dest_min_tls_version(p, db), TG_TLS_1_2);
	assert_false(policy_dest_require_sni(p, db));
	assert_int_equal(db->ports[0].lo, 5432);

	assert_int_equal(p->nexceptions, 1);
	assert_null(p->exceptions[0].name);
	assert_int_equal(p->exceptions[0].ncidrs, 1);
	assert_cidr4(&p->exceptions[0].cidrs[0], "169.254.169.254", 32);
	assert_int_equal(p->exceptions[0].line, 20);
	assert_int_equal(p->exceptions[0].col, 5);

	assert_string_equal(p->events_file, "-");
	assert_string_equal(p->ai_connection_string_file,
			    "/etc/tlsguard/secrets/appinsights-connection-string");
	assert_null(p->ai_ca_file);
	assert_int_equal(p->encrypt_fields.n, 3);
	assert_string_equal(p->encrypt_fields.v[2], "destination.name");
	assert_int_equal(p->key_files.n, 1);
	assert_string_equal(p->key_files.v[0], "/etc/tlsguard/secrets/event-key");
	assert_false(p->log_tls_flows);
	assert_null(p->metrics_listen);
	policy_free(p);
}

/* Every key of the schema, in its less common spellings. */
static void test_full_schema(void **state)
{
	struct tg_policy *p = load_ok(
		"mode: enforce\n"
		"fail_mode: open\n"
		"fail_open_after: 2m\n"
		"min_tls_version: 1.3\n"
		"workloads:\n"
		"  cgroups: [/a.slice, /b.slice/c.scope]\n"
		"destinations:\n"
		"  - name: db\n"
		"    hosts: [\"DB.Example.COM\", \"*.x-y.example.com\"]\n"
		"    cidrs: [10.1.0.0/16, \"2001:db8::/32\", 192.0.2.7]\n"
		"    ports: [1433, \"11000-11999\", 1-1]\n"
		"    mode: audit\n"
		"    protocol: tds\n"
		"    min_tls_version: \"1.0\"\n"
		"    require_sni: true\n"
		"  - name: tagged\n"
		"    service_tags: {file: /etc/tlsguard/ServiceTags.json, tags: [Storage.WestEurope]}\n"
		"    require_sni: False\n"
		"    protocol: mysql\n"
		"exceptions:\n"
		"  - name: imds\n"
		"    cidrs: [169.254.169.254/32]\n"
		"    hosts: [metadata.internal]\n"
		"proxies: [\"proxy.corp:3128\", \"10.0.0.1:8080\", \"[2001:db8::1]:3128\"]\n"
		"events:\n"
		"  file: /var/log/tlsguard/events.json\n"
		"  log_tls_flows: true\n"
		"  application_insights: {connection_string_file: /s/cs, ca_file: /s/ca.pem}\n"
		"  hash_fields: [workload.pod]\n"
		"  key_file: /k/1\n"
		"  key_files: [/k/2, /k/3]\n"
		"  spool: {dir: /var/spool/tlsguard, max_bytes: 50MiB, max_age: 48h}\n"
		"control: {socket: /run/t.sock, group: tlsguard}\n"
		"metrics: {listen: \"127.0.0.1:9090\"}\n");
	const struct tg_policy_dest *db = dest(p, "db"), *tg = dest(p, "tagged");

	assert_int_equal(p->mode, TG_MODE_ENFORCE);
	assert_int_equal(p->fail_mode, TG_FAIL_OPEN);
	assert_int_equal(p->fail_open_after_s, 120);
	assert_int_equal(p->min_tls_version, TG_TLS_1_3);
	assert_int_equal(p->cgroups.n, 2);
	assert_string_equal(p->cgroups.v[1], "/b.slice/c.scope");

	/* host names are stored lower-cased */
	assert_true(has(&db->hosts, "db.example.com"));
	assert_true(has(&db->hosts, "*.x-y.example.com"));
	assert_int_equal(db->ncidrs, 3);
	assert_cidr4(&db->cidrs[0], "10.1.0.0", 16);
	assert_int_equal(db->cidrs[1].family, AF_INET6);
	assert_int_equal(db->cidrs[1].prefixlen, 32);
	assert_cidr4(&db->cidrs[2], "192.0.2.7", 32);
	assert_int_equal(db->nports, 3);
	assert_int_equal(db->ports[1].lo, 11000);
	assert_int_equal(db->ports[1].hi, 11999);
	assert_int_equal(db->ports[2].lo, 1);
	assert_int_equal(db->ports[2].hi, 1);
	assert_int_equal(db->mode, TG_MODE_AUDIT);
	assert_int_equal(policy_dest_mode(p, db), TG_MODE_AUDIT);
	assert_int_equal(db->protocol, TG_PROTO_TDS);
	assert_int_equal(db->min_tls_version, TG_TLS_1_0);
	assert_int_equal(policy_dest_min_tls_version(p, db), TG_TLS_1_0);
	assert_int_equal(db->require_sni, 1);
	assert_true(policy_dest_require_sni(p, db));

	assert_int_equal(tg->hosts.n, 0);
	assert_string_equal(tg->service_tags_file, "/etc/tlsguard/ServiceTags.json");
	assert_int_equal(tg->service_tags.n, 1);
	assert_string_equal(tg->service_tags.v[0], "Storage.WestEurope");
	assert_int_equal(tg->require_sni, 0);
	assert_int_equal(tg->protocol, TG_PROTO_MYSQL);
	assert_int_equal(tg->nports, 0);
	assert_int_equal(policy_dest_mode(p, tg), TG_MODE_ENFORCE);
	assert_int_equal(policy_dest_min_tls_version(p, tg), TG_TLS_1_3);

	assert_int_equal(p->nexceptions, 1);
	assert_string_equal(p->exceptions[0].name, "imds");
	assert_true(has(&p->exceptions[0].hosts, "metadata.internal"));
	assert_int_equal(p->proxies.n, 3);
	assert_string_equal(p->proxies.v[2], "[2001:db8::1]:3128");

	assert_string_equal(p->events_file, "/var/log/tlsguard/events.json");
	assert_true(p->log_tls_flows);
	assert_string_equal(p->ai_connection_string_file, "/s/cs");
	assert_string_equal(p->ai_ca_file, "/s/ca.pem");
	assert_int_equal(p->hash_fields.n, 1);
	/* key_file and key_files land in one list, in file order */
	assert_int_equal(p->key_files.n, 3);
	assert_string_equal(p->key_files.v[0], "/k/1");
	assert_string_equal(p->key_files.v[2], "/k/3");
	assert_string_equal(p->spool_dir, "/var/spool/tlsguard");
	assert_int_equal(p->spool_max_bytes, 50ULL << 20);
	assert_int_equal(p->spool_max_age_s, 48 * 3600);
	assert_string_equal(p->control_socket, "/run/t.sock");
	assert_string_equal(p->control_group, "tlsguard");
	assert_string_equal(p->metrics_listen, "127.0.0.1:9090");
	policy_free(p);
}

/* Nothing set: every default. */
static void test_defaults(void **state)
{
	struct tg_policy *p = load_ok("destinations: []\n");

	assert_int_equal(p->mode, TG_MODE_AUDIT);
	assert_int_equal(p->fail_mode, TG_FAIL_CLOSED);
	assert_int_equal(p->fail_open_after_s, 10);
	assert_int_equal(p->min_tls_version, TG_TLS_1_2);
	assert_int_equal(p->spool_max_bytes, TG_SPOOL_MAX_BYTES_DEFAULT);
	assert_int_equal(p->spool_max_age_s, TG_SPOOL_MAX_AGE_DEFAULT);
	assert_int_equal(p->ndests, 0);
	assert_null(p->events_file);
	assert_null(p->control_socket);
	policy_free(p);
}

/* events.application_insights tuning, Entra ID and flood control keys. */
static void test_appinsights_keys(void **state)
{
	struct tg_policy *p = load_ok(
		"events:\n"
		"  application_insights:\n"
		"    connection_string_file: /s/cs\n"
		"    batch_items: 250\n"
		"    batch_bytes: 2MiB\n"
		"    batch_age: 10s\n"
		"    queue_max: 20000\n"
		"    timeout: 1m\n"
		"    retry_base: 5s\n"
		"    retry_max: 1h\n"
		"    metrics_interval: 0\n"
		"    flood_window: 2m\n"
		"    auth: workload_identity\n"
		"    client_id: 00000000-0000-0000-0000-000000000001\n"
		"    imds_url: http://127.0.0.1:8080/token\n");

	assert_int_equal(p->ai_batch_items, 250);
	assert_int_equal(p->ai_batch_bytes, 2ULL << 20);
	assert_int_equal(p->ai_batch_age_s, 10);
	assert_int_equal(p->ai_queue_max, 20000);
	assert_int_equal(p->ai_timeout_s, 60);
	assert_int_equal(p->ai_retry_base_s, 5);
	assert_int_equal(p->ai_retry_max_s, 3600);
	assert_int_equal(p->ai_metrics_interval_s, 0);	/* 0 turns metrics off */
	assert_int_equal(p->ai_flood_window_s, 120);
	assert_int_equal(p->ai_auth, 3);			/* TG_AI_AUTH_WORKLOAD_IDENTITY */
	assert_string_equal(p->ai_client_id, "00000000-0000-0000-0000-000000000001");
	assert_string_equal(p->ai_imds_url, "http://127.0.0.1:8080/token");
	policy_free(p);

	p = load_ok("destinations: []\n");
	assert_int_equal(p->ai_batch_items, 0);	/* 0: the sink's default */
	assert_int_equal(p->ai_metrics_interval_s, TG_AI_METRICS_INTERVAL_DEFAULT);
	assert_int_equal(p->ai_flood_window_s, TG_AI_FLOOD_WINDOW_DEFAULT);
	assert_int_equal(p->ai_auth, 0);		/* auto */
	assert_null(p->ai_imds_url);
	policy_free(p);

	EXPECT_ERRORS("events: {application_insights: {batch_items: many}}\n",
		      "t.yaml:1:46: \"batch_items\" must be a whole number");
	EXPECT_ERRORS("events: {application_insights: {queue_max: -1}}\n",
		      "t.yaml:1:44: \"queue_max\" must be a whole number");
	EXPECT_ERRORS("events: {application_insights: {auth: kerberos}}\n",
		      "t.yaml:1:39: \"auth\" must be one of auto, none, managed_identity, workload_identity");
	EXPECT_ERRORS("events: {application_insights: {batch_age: soon}}\n",
		      "t.yaml:1:44: invalid duration \"soon\" (seconds, or a number with s, m, h or d)");
	EXPECT_ERRORS("events:\n  hash_fields: [workload.pod]\n",
		      "t.yaml:2:3: \"hash_fields\" needs a key: set \"key_file\" or \"key_files\"");
}

/* `key:` with nothing, `~` and `null` mean "not set", not an empty string. */
static void test_null_is_absent(void **state)
{
	struct tg_policy *p = load_ok(
		"mode:\n"
		"fail_mode: ~\n"
		"events:\n"
		"  file: null\n"
		"destinations:\n"
		"  - name: x\n"
		"    hosts: [x.example]\n"
		"    ports:\n"
		"    mode: ~\n");

	assert_int_equal(p->mode, TG_MODE_AUDIT);
	assert_int_equal(p->fail_mode, TG_FAIL_CLOSED);
	assert_null(p->events_file);
	assert_int_equal(p->dests[0].nports, 0);
	assert_int_equal(p->dests[0].mode, -1);
	policy_free(p);
}

static void test_tls_versions(void **state)
{
	static const struct { const char *text; int want; } cases[] = {
		{ "1.0", TG_TLS_1_0 }, { "1.1", TG_TLS_1_1 },
		{ "\"1.2\"", TG_TLS_1_2 }, { "'1.3'", TG_TLS_1_3 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char yaml[64];
		struct tg_policy *p;

		snprintf(yaml, sizeof(yaml), "min_tls_version: %s\n", cases[i].text);
		p = load_ok(yaml);
		assert_int_equal(p->min_tls_version, cases[i].want);
		policy_free(p);
	}
	EXPECT_ERRORS("min_tls_version: 1.4\n",
		      "t.yaml:1:18: \"min_tls_version\" must be one of 1.0, 1.1, 1.2, 1.3");
	EXPECT_ERRORS("min_tls_version: 1\n",
		      "t.yaml:1:18: \"min_tls_version\" must be one of 1.0, 1.1, 1.2, 1.3");
}

/* ---- the built-in policy ------------------------------------------------ */

static void test_default_policy(void **state)
{
	static const char *const names[] = {
		"storage", "files", "storage_tag", "registry", "scoring", "workspace", "batch",
		"keyvault", "identity", "sql", "sql_tag", "postgres", "mysql", "cosmos", "monitoring",
		/* port entries, after the destinations */
		"blob_nfs", "files_smb", "files_nfs", "storage_tag_smb", "storage_tag_nfs",
		"storage_tag_blob_nfs", "workspace_udp", "identity_http",
	};
	struct tg_diag d = { 0 };
	struct tg_policy *p = NULL;
	const struct tg_policy_dest *x;
	const char *line;

	assert_int_equal(policy_load_default(&p, &d), 0);
	assert_int_equal(d.n, 0);
	assert_string_equal(p->source, "built-in");
	assert_int_equal(p->mode, TG_MODE_AUDIT);
	assert_int_equal(p->ndests, sizeof(names) / sizeof(names[0]));
	for (size_t i = 0; i < p->ndests; i++) {
		assert_string_equal(p->dests[i].name, names[i]);
		const struct tg_policy_dest *owner = policy_dest_owner(p, &p->dests[i]);

		/* a port entry's hosts are its destination's; the backstop classes have tags */
		assert_true(owner->hosts.n > 0 || owner->service_tags.n > 0);
		assert_true(p->dests[i].nports > 0);
		assert_int_equal(policy_dest_mode(p, &p->dests[i]), TG_MODE_AUDIT);
	}
	/* the service tags backstop: the policy-wide file, optional */
	assert_string_equal(p->service_tags_file, "/etc/tlsguard/ServiceTags_Public.json");
	assert_true(p->service_tags_optional);
	x = dest(p, "storage_tag");
	assert_null(x->service_tags_file);
	assert_string_equal(x->service_tags.v[0], "Storage");
	assert_int_equal(x->nports, 5);	/* 443, 445 smb3, 2049, and Blob NFS's 111 and 2048 */
	assert_int_equal(dest(p, "storage_tag_smb")->protocol, TG_PROTO_SMB3);
	assert_int_equal(dest(p, "storage_tag_blob_nfs")->mode, TG_MODE_AUDIT);
	assert_string_equal(dest(p, "sql_tag")->service_tags.v[0], "Sql");
	assert_int_equal(dest(p, "sql_tag")->protocol, TG_PROTO_TDS);
	x = dest(p, "storage");
	assert_int_equal(x->hosts.n, 12);
	assert_int_equal(x->nports, 3);		/* 443, and blob_nfs's 111 and 2048 */
	assert_int_equal(x->port_dest[0], -1);
	assert_string_equal(p->dests[x->port_dest[1]].name, "blob_nfs");
	assert_int_equal(x->port_dest[2], x->port_dest[1]);
	x = dest(p, "blob_nfs");
	assert_int_equal(x->mode, TG_MODE_AUDIT);	/* its own: audit even when storage enforces */
	assert_non_null(strstr(x->note, "no encryption in transit possible"));
	assert_int_equal(x->nports, 2);
	x = dest(p, "files");
	assert_true(has(&x->hosts, "*.file.core.windows.net"));
	assert_int_equal(x->ports[0].lo, 443);
	x = dest(p, "files_smb");
	assert_int_equal(x->protocol, TG_PROTO_SMB3);
	assert_int_equal(x->ports[0].lo, 445);
	assert_string_equal(policy_dest_owner(p, x)->name, "files");
	x = dest(p, "files_nfs");
	assert_int_equal(x->protocol, TG_PROTO_TLS);
	assert_int_equal(x->ports[0].lo, 2049);
	assert_non_null(strstr(x->note, "aznfs"));
	assert_true(has(&dest(p, "cosmos")->hosts, "*.mongo.cosmos.azure.com"));
	assert_true(has(&dest(p, "keyvault")->hosts, "*.managedhsm.azure.net"));
	x = dest(p, "storage");
	assert_true(has(&x->hosts, "*.blob.core.windows.net"));
	assert_true(has(&x->hosts, "*.dfs.core.chinacloudapi.cn"));
	assert_true(has(&x->hosts, "*.table.core.usgovcloudapi.net"));
	assert_int_equal(x->ports[0].lo, 443);
	x = dest(p, "registry");
	assert_true(has(&x->hosts, "*.azurecr.io"));
	assert_true(has(&x->hosts, "mcr.microsoft.com"));
	assert_true(has(&x->hosts, "*.data.mcr.microsoft.com"));
	assert_true(has(&dest(p, "scoring")->hosts, "*.inference.ml.azure.com"));
	assert_true(has(&dest(p, "workspace")->hosts, "*.api.azureml.ms"));
	assert_true(has(&dest(p, "workspace")->hosts, "*.ml.azure.com"));
	assert_true(has(&dest(p, "keyvault")->hosts, "*.vault.azure.net"));
	x = dest(p, "sql");
	assert_true(has(&x->hosts, "*.database.windows.net"));
	assert_int_equal(x->protocol, TG_PROTO_TDS);
	assert_int_equal(x->ports[0].lo, 1433);
	x = dest(p, "postgres");
	assert_int_equal(x->protocol, TG_PROTO_POSTGRES);
	assert_int_equal(x->ports[0].lo, 5432);
	x = dest(p, "mysql");
	assert_int_equal(x->protocol, TG_PROTO_MYSQL);
	assert_int_equal(x->ports[0].lo, 3306);
	x = dest(p, "cosmos");
	assert_int_equal(x->protocol, TG_PROTO_TLS);
	assert_int_equal(x->ports[0].lo, 443);
	assert_true(has(&dest(p, "monitoring")->hosts, "dc.services.visualstudio.com"));
	assert_int_equal(p->nexceptions, 2);
	assert_cidr4(&p->exceptions[0].cidrs[0], "169.254.169.254", 32);
	assert_cidr4(&p->exceptions[1].cidrs[0], "168.63.129.16", 32);
	policy_free(p);
	diag_free(&d);

	/* every host line says which Azure page it comes from */
	for (line = tg_default_policy_yaml; line; line = strchr(line, '\n')) {
		const char *eol;

		line += *line == '\n';
		eol = strchrnul(line, '\n');
		if (!strncmp(line, "      - \"", 9))
			assert_non_null(memchr(line, '#', eol - line));
	}
}

static void test_port_entries(void **state)
{
	struct tg_policy *p = load_ok(
		"mode: enforce\n"
		"destinations:\n"
		"  - name: files\n"
		"    hosts: [\"*.file.example\"]\n"
		"    min_tls_version: \"1.3\"\n"
		"    note: shares\n"
		"    ports:\n"
		"      - 443\n"
		"      - {port: 445, protocol: smb3}\n"
		"      - {ports: [2048, \"111\"], name: nfs3, mode: audit, note: none possible}\n"
		"    protocol: tls\n");
	const struct tg_policy_dest *f = dest(p, "files"), *smb = dest(p, "files:445"),
				    *nfs = dest(p, "nfs3");
	struct tg_policy_override o = { 0 };
	char *names[] = { "files" };

	assert_int_equal(p->ndests, 3);
	assert_int_equal(f->nports, 4);
	assert_int_equal(f->port_dest[0], -1);
	assert_ptr_equal(&p->dests[f->port_dest[1]], smb);
	assert_ptr_equal(&p->dests[f->port_dest[2]], nfs);
	assert_ptr_equal(&p->dests[f->port_dest[3]], nfs);
	assert_int_equal(smb->protocol, TG_PROTO_SMB3);
	assert_int_equal(policy_dest_mode(p, smb), TG_MODE_ENFORCE);	/* inherited */
	assert_int_equal(smb->min_tls_version, TG_TLS_1_3);
	assert_string_equal(smb->note, "shares");
	assert_false(smb->own_name);
	assert_int_equal(nfs->protocol, TG_PROTO_TLS);
	assert_int_equal(policy_dest_mode(p, nfs), TG_MODE_AUDIT);
	assert_string_equal(nfs->note, "none possible");
	assert_true(nfs->own_name);
	assert_int_equal(smb->hosts.n, 0);
	assert_ptr_equal(policy_dest_owner(p, nfs), f);
	/* an override naming "files" covers its unnamed entry, not the named one */
	o.classes.v = names;
	o.classes.n = 1;
	assert_true(policy_override_covers(p, &o, f));
	assert_true(policy_override_covers(p, &o, smb));
	assert_false(policy_override_covers(p, &o, nfs));
	o.classes.n = 0;
	assert_true(policy_override_covers(p, &o, nfs));
	policy_free(p);
}

static void test_err_port_entries(void **state)
{
	EXPECT_ERRORS("destinations:\n"
		      "  - name: x\n"
		      "    hosts: [a.example]\n"
		      "    ports: [{protocol: smb3}, {port: 445, prots: 1}, {port: [445]}, {port: 1, name: x}]\n",
		      "t.yaml:4:13: port entry has no \"port\" or \"ports\"",
		      "t.yaml:4:43: unknown key \"prots\" (did you mean \"ports\")",
		      "t.yaml:4:61: \"port\" entries must be port numbers or \"lo-hi\" ranges",
		      "t.yaml:4:69: duplicate destination name \"x\" (a port entry's name; first defined at 2:5)");
}

static void test_overrides(void **state)
{
	struct tg_policy *p = load_ok(
		"destinations:\n"
		"  - {name: storage, hosts: [a.example], ports: [443]}\n"
		"overrides:\n"
		"  - name: team-a\n"
		"    namespaces: [team-a]\n"
		"    labels: {app: \"*\"}\n"
		"    mode: enforce\n"
		"    classes: [storage]\n"
		"  - cgroups: [/system.slice/trainer.service]\n"
		"    mode: audit\n");

	assert_int_equal(p->noverrides, 2);
	assert_string_equal(p->overrides[0].name, "team-a");
	assert_true(has(&p->overrides[0].namespaces, "team-a"));
	assert_int_equal(p->overrides[0].nlabels, 1);
	assert_string_equal(p->overrides[0].labels[0].value, "*");
	assert_int_equal(p->overrides[0].mode, TG_MODE_ENFORCE);
	assert_true(has(&p->overrides[0].classes, "storage"));
	assert_null(p->overrides[1].name);
	assert_true(has(&p->overrides[1].cgroups, "/system.slice/trainer.service"));
	assert_int_equal(p->overrides[1].mode, TG_MODE_AUDIT);
	assert_int_equal(p->overrides[1].classes.n, 0);
	policy_free(p);
}

static void test_err_overrides(void **state)
{
	EXPECT_ERRORS("destinations:\n"
		      "  - {name: storage, hosts: [a.example]}\n"
		      "overrides:\n"
		      "  - {namespaces: [a], mode: enforce, classes: [storage, stroage]}\n"
		      "  - {namespaces: [a]}\n"
		      "  - {mode: audit}\n"
		      "  - {cgroups: [../x], mode: on}\n",
		      "t.yaml:4:57: override names class \"stroage\", which no destination or port entry is",
		      "t.yaml:5:5: override has no \"mode\" (audit or enforce)",
		      "t.yaml:6:5: override selects nothing: give \"namespaces\", \"labels\" or \"cgroups\"",
		      "t.yaml:7:16: invalid cgroup path \"../x\": \"..\" is not allowed",
		      "t.yaml:7:29: \"mode\" must be one of audit, enforce");
}

/* ---- error classes: the exact message and position ---------------------- */

static void test_err_unknown_key(void **state)
{
	EXPECT_ERRORS("destinations:\n"
		      "  - name: x\n"
		      "    hosts: [a.example]\n"
		      "    prots: [443]\n",
		      "t.yaml:4:5: unknown key \"prots\" (did you mean \"ports\")");
	EXPECT_ERRORS("foo: 1\n", "t.yaml:1:1: unknown key \"foo\"");
	/* the largest table (application_insights, 21 keys): an unknown key there too (fuzz_policy) */
	EXPECT_ERRORS("events:\n  application_insights:\n    zzz: 1\n",
		      "t.yaml:3:5: unknown key \"zzz\"");
	EXPECT_ERRORS("events:\n  key_flie: /k\n",
		      "t.yaml:2:3: unknown key \"key_flie\" (did you mean \"key_file\")");
	EXPECT_ERRORS("mdoe: audit\n", "t.yaml:1:1: unknown key \"mdoe\" (did you mean \"mode\")");
	/* a key only valid elsewhere is unknown here */
	EXPECT_ERRORS("key_file: /k\n", "t.yaml:1:1: unknown key \"key_file\"");
	EXPECT_ERRORS("? [a]\n: 1\n", "t.yaml:1:3: keys must be strings");
}

static void test_err_duplicate_key(void **state)
{
	EXPECT_ERRORS("mode: audit\nfail_mode: open\nmode: enforce\n",
		      "t.yaml:3:1: duplicate key \"mode\" (first defined at 1:1)");
}

static void test_err_wrong_type(void **state)
{
	EXPECT_ERRORS("destinations:\n"
		      "  - name: x\n"
		      "    hosts: [a.example]\n"
		      "    ports: 443\n",
		      "t.yaml:4:12: \"ports\" must be a list");
	EXPECT_ERRORS("mode: block\n", "t.yaml:1:7: \"mode\" must be one of audit, enforce");
	EXPECT_ERRORS("fail_mode: [open]\n", "t.yaml:1:12: \"fail_mode\" must be one of closed, open");
	EXPECT_ERRORS("destinations: {name: x}\n", "t.yaml:1:15: \"destinations\" must be a list");
	EXPECT_ERRORS("destinations: [x]\n", "t.yaml:1:16: \"destinations\" entries must be mappings");
	EXPECT_ERRORS("events: x\n", "t.yaml:1:9: \"events\" must be a mapping");
	EXPECT_ERRORS("events: {log_tls_flows: yes}\n",
		      "t.yaml:1:25: \"log_tls_flows\" must be true or false");
	EXPECT_ERRORS("events: {file: [a]}\n", "t.yaml:1:16: \"file\" must be a string");
	EXPECT_ERRORS("workloads: {cgroups: [[a]]}\n",
		      "t.yaml:1:23: \"cgroups\" entries must be strings");
	EXPECT_ERRORS("destinations:\n  - name: x\n    hosts: [a.example]\n    protocol: http\n",
		      "t.yaml:4:15: \"protocol\" must be one of tls, postgres, mysql, tds, smb3");
	EXPECT_ERRORS("events: {encrypt_fields: [\"\"], key_file: /k}\n",
		      "t.yaml:1:27: \"encrypt_fields\" entries must not be empty");
	EXPECT_ERRORS("events: {file: \"a\\0b\"}\n",
		      "t.yaml:1:16: \"file\" must not contain NUL bytes");
	EXPECT_ERRORS("workloads: {kubernetes: {labels: {app: [x]}}}\n",
		      "t.yaml:1:40: label \"app\" must have a string value (\"*\" for any)");
	EXPECT_ERRORS("- mode\n", "t.yaml:1:1: the policy must be a mapping of settings");
	EXPECT_ERRORS("just words\n", "t.yaml:1:1: the policy must be a mapping of settings");
}

static void test_err_bad_cidr(void **state)
{
	EXPECT_ERRORS("exceptions:\n"
		      "  - cidrs: [10.0.0.0/33, 10.0.0.1/8, \"fe80::1/64\", nonsense, \"\"]\n",
		      "t.yaml:2:13: invalid CIDR \"10.0.0.0/33\"",
		      "t.yaml:2:26: invalid CIDR \"10.0.0.1/8\": host bits set (did you mean \"10.0.0.0/8\")",
		      "t.yaml:2:38: invalid CIDR \"fe80::1/64\": host bits set (did you mean \"fe80::/64\")",
		      "t.yaml:2:52: invalid CIDR \"nonsense\"",
		      "t.yaml:2:62: invalid CIDR \"\"");
}

static void test_err_bad_port(void **state)
{
	EXPECT_ERRORS("destinations:\n"
		      "  - name: x\n"
		      "    hosts: [a.example]\n"
		      "    ports: [70000, \"90-80\", 0, \"0-10\", http, 0443, \"1-\", [1]]\n",
		      "t.yaml:4:13: invalid port \"70000\"",
		      "t.yaml:4:20: invalid port range \"90-80\"",
		      "t.yaml:4:29: invalid port \"0\"",
		      "t.yaml:4:32: invalid port range \"0-10\"",
		      "t.yaml:4:40: invalid port \"http\"",
		      "t.yaml:4:46: invalid port \"0443\"",
		      "t.yaml:4:52: invalid port range \"1-\"",
		      "t.yaml:4:58: \"ports\" entries must be port numbers, \"lo-hi\" ranges or port entries (mappings with \"port\" or \"ports\")");
	EXPECT_ERRORS("destinations:\n"
		      "  - name: x\n"
		      "    hosts: [a.example]\n"
		      "    ports: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]\n",
		      "t.yaml:4:12: too many \"ports\" entries (at most 16)");
}

static void test_err_duplicate_name(void **state)
{
	EXPECT_ERRORS("destinations:\n"
		      "  - name: storage\n"
		      "    hosts: [a.example]\n"
		      "  - name: other\n"
		      "    hosts: [b.example]\n"
		      "  - hosts: [c.example]\n"
		      "    name: storage\n",
		      "t.yaml:7:11: duplicate destination name \"storage\" (first defined at 2:11)");
}

static void test_err_no_targets(void **state)
{
	EXPECT_ERRORS("destinations:\n"
		      "  - name: x\n"
		      "    ports: [443]\n"
		      "  - name: y\n"
		      "    hosts: []\n"
		      "    cidrs: []\n",
		      "t.yaml:2:5: destination \"x\" has no hosts, cidrs or service_tags",
		      "t.yaml:4:5: destination \"y\" has no hosts, cidrs or service_tags");
	EXPECT_ERRORS("destinations:\n"
		      "  - name: x\n"
		      "    service_tags: {file: /f}\n",
		      "t.yaml:3:19: \"service_tags\" has no \"tags\"");
	EXPECT_ERRORS("exceptions:\n  - name: e\n  - {}\n",
		      "t.yaml:2:5: exception \"e\" has no cidrs or hosts",
		      "t.yaml:3:5: exception has no cidrs or hosts");
}

static void test_err_missing_name(void **state)
{
	EXPECT_ERRORS("destinations:\n"
		      "  - hosts: [a.example]\n"
		      "  - name: \"\"\n"
		      "    hosts: [b.example]\n",
		      "t.yaml:2:5: destination has no \"name\"",
		      "t.yaml:3:11: \"name\" must not be empty");
	EXPECT_ERRORS("destinations:\n  - ports: [1]\n",
		      "t.yaml:2:5: destination has no \"name\"",
		      "t.yaml:2:5: destination has no hosts, cidrs or service_tags");
}

/* A per-destination mode must itself be a mode: it overrides the policy's. */
static void test_err_dest_mode(void **state)
{
	EXPECT_ERRORS("mode: enforce\n"
		      "destinations:\n"
		      "  - name: x\n"
		      "    hosts: [a.example]\n"
		      "    mode: monitor\n",
		      "t.yaml:5:11: \"mode\" must be one of audit, enforce");
}

static void test_err_host_names(void **state)
{
	EXPECT_ERRORS("exceptions:\n"
		      "  - hosts:\n"
		      "      - \"a*.example.com\"\n"
		      "      - \"*.*.example.com\"\n"
		      "      - \"*\"\n"
		      "      - \"a..b\"\n"
		      "      - \"-a.example\"\n"
		      "      - \"a_b.example\"\n"
		      "      - \"10.0.0.1\"\n"
		      "      - \"b\\u00fccher.de\"\n"
		      "      - \"example.com.\"\n"
		      "      - \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com\"\n",
		      "t.yaml:3:9: invalid host name \"a*.example.com\": '*' is only allowed as a whole first label (\"*.example.com\")",
		      "t.yaml:4:9: invalid host name \"*.*.example.com\": '*' is only allowed as a whole first label (\"*.example.com\")",
		      "t.yaml:5:9: invalid host name \"*\": '*' is only allowed as a whole first label (\"*.example.com\")",
		      "t.yaml:6:9: invalid host name \"a..b\": empty label",
		      "t.yaml:7:9: invalid host name \"-a.example\": label starts or ends with '-'",
		      "t.yaml:8:9: invalid host name \"a_b.example\": invalid character '_'",
		      "t.yaml:9:9: invalid host name \"10.0.0.1\": an IP address belongs under \"cidrs\"",
		      "t.yaml:10:9: invalid host name \"b\u00fccher.de\": non-ASCII character (write the xn-- form of the name)",
		      "t.yaml:11:9: invalid host name \"example.com.\": empty label",
		      "t.yaml:12:9: invalid host name \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com\": label longer than 63 characters");
}

static void test_err_other_values(void **state)
{
	EXPECT_ERRORS("proxies: [\"http://proxy:3128\", proxy, \"p:0\"]\n"
		      "metrics: {listen: \"localhost\"}\n"
		      "workloads: {cgroups: [\"/a/../../b\"]}\n",
		      "t.yaml:1:11: invalid proxy \"http://proxy:3128\" (expected HOST:PORT)",
		      "t.yaml:1:32: invalid proxy \"proxy\" (expected HOST:PORT)",
		      "t.yaml:1:39: invalid proxy \"p:0\" (expected HOST:PORT)",
		      "t.yaml:2:19: invalid listen address \"localhost\" (expected [HOST]:PORT)",
		      "t.yaml:3:23: invalid cgroup path \"/a/../../b\": \"..\" is not allowed");
	EXPECT_ERRORS("events:\n  encrypt_fields: [workload.pod]\n",
		      "t.yaml:2:3: \"encrypt_fields\" needs a key: set \"key_file\" or \"key_files\"");
}

/* dns: learning from DNS answers (grace, bound), defaults and bad values. */
static void test_dns_keys(void **state)
{
	struct tg_policy *p = load_ok("dns: {grace: 2m, max_learned: 1000}\n");

	assert_int_equal(p->dns_grace_s, 120);
	assert_int_equal(p->dns_max_learned, 1000);
	policy_free(p);
	p = load_ok("destinations: []\n");
	assert_int_equal(p->dns_grace_s, TG_DNS_GRACE_DEFAULT);
	assert_int_equal(p->dns_max_learned, TG_DNS_MAX_LEARNED_DEFAULT);
	policy_free(p);
	EXPECT_ERRORS("dns:\n  grace: soon\n  max_learned: 0\n  max_leanred: 5\n",
		      "t.yaml:2:10: invalid duration \"soon\" (seconds, or a number with s, m, h or d)",
		      "t.yaml:3:16: invalid max_learned \"0\" (1 to 65536)",
		      "t.yaml:4:3: unknown key \"max_leanred\" (did you mean \"max_learned\")");
	EXPECT_ERRORS("dns: {max_learned: 65537}\n",
		      "t.yaml:1:20: invalid max_learned \"65537\" (1 to 65536)");
}

/* limits: the tracked-flow cap, its default and bad values. */
static void test_limits_keys(void **state)
{
	struct tg_policy *p = load_ok("limits: {max_tracked_flows: 4}\n");

	assert_int_equal(p->max_tracked_flows, 4);
	policy_free(p);
	p = load_ok("limits:\n  max_tracked_flows: 16777216\n");
	assert_int_equal(p->max_tracked_flows, TG_MAX_TRACKED_FLOWS_MAX);
	policy_free(p);
	p = load_ok("destinations: []\n");
	assert_int_equal(p->max_tracked_flows, TG_MAX_FLOWS_DEFAULT);
	assert_int_equal(p->max_tracked_flows, 262144);
	policy_free(p);
	EXPECT_ERRORS("limits:\n  max_tracked_flows: 0\n  max_traked_flows: 5\n",
		      "t.yaml:2:22: invalid max_tracked_flows \"0\" (1 to 16777216)",
		      "t.yaml:3:3: unknown key \"max_traked_flows\" (did you mean \"max_tracked_flows\")");
	EXPECT_ERRORS("limits: {max_tracked_flows: 16777217}\n",
		      "t.yaml:1:29: invalid max_tracked_flows \"16777217\" (1 to 16777216)");
	EXPECT_ERRORS("limits: {max_tracked_flows: lots}\n",
		      "t.yaml:1:29: invalid max_tracked_flows \"lots\" (1 to 16777216)");
	EXPECT_ERRORS("limits: {max_tracked_flows: [1]}\n",
		      "t.yaml:1:29: \"max_tracked_flows\" must be a number");
	EXPECT_ERRORS("limts: {max_tracked_flows: 4}\n",
		      "t.yaml:1:1: unknown key \"limts\" (did you mean \"limits\")");
}

/* The kernel maps an address to one class: a host in two destinations is ambiguous. */
static void test_err_overlap(void **state)
{
	EXPECT_ERRORS("destinations:\n"
		      "  - name: a\n"
		      "    hosts: [x.example, Y.example]\n"
		      "    cidrs: [10.0.0.0/8]\n"
		      "  - name: b\n"
		      "    hosts: [y.example]\n"
		      "    cidrs: [10.0.0.0/8, 10.0.0.0/16]\n",
		      "t.yaml:5:5: host \"y.example\" is already in destination \"a\"",
		      "t.yaml:5:5: CIDR 10.0.0.0/8 is already in destination \"a\"");
}

/* Every problem in one run, in file order, not only the first. */
static void test_err_all_collected(void **state)
{
	EXPECT_ERRORS("mode: strict\n"
		      "destinations:\n"
		      "  - name: s\n"
		      "    hosts: [a.example]\n"
		      "  - name: s\n"
		      "    cidrs: [1.2.3.4/40]\n"
		      "    prots: [443]\n"
		      "fail_open_after: soon\n"
		      "events: {spool: {max_bytes: lots}}\n",
		      "t.yaml:1:7: \"mode\" must be one of audit, enforce",
		      "t.yaml:5:11: duplicate destination name \"s\" (first defined at 3:11)",
		      "t.yaml:6:13: invalid CIDR \"1.2.3.4/40\"",
		      "t.yaml:7:5: unknown key \"prots\" (did you mean \"ports\")",
		      "t.yaml:8:18: invalid duration \"soon\" (seconds, or a number with s, m, h or d)",
		      "t.yaml:9:29: invalid size \"lots\" (bytes, or a number with KB, MB, GB, TB, KiB, MiB, GiB or TiB)");
}

/* Past 100 errors the rest are counted, not printed. */
static void test_err_too_many(void **state)
{
	struct tg_diag d = { 0 };
	struct tg_policy *p = NULL;
	char *yaml = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&yaml, &len);

	assert_non_null(f);
	fputs("proxies:\n", f);
	for (int i = 0; i < 150; i++)
		fputs("  - bad\n", f);
	fclose(f);
	assert_int_equal(policy_load_buffer("t.yaml", yaml, len, &p, &d), -EINVAL);
	assert_null(p);
	assert_int_equal(d.n, 101);
	assert_string_equal(d.msgs[0], "t.yaml:2:5: invalid proxy \"bad\" (expected HOST:PORT)");
	assert_string_equal(d.msgs[100], "t.yaml: too many errors; only the first 100 are shown");
	diag_free(&d);
	free(yaml);
}

/* ---- malformed YAML ----------------------------------------------------- */

static void test_yaml_syntax(void **state)
{
	EXPECT_ERRORS("mode: audit\ndestinations:\n\t- name: x\n",
		      "t.yaml:3:1: YAML syntax error: found character that cannot start any token"
		      " (while scanning for the next token); YAML does not allow tabs for indentation, use spaces");
	EXPECT_ERRORS("destinations:\n  - name: x\n    ports: [443\n",
		      "t.yaml:4:1: YAML syntax error: did not find expected ',' or ']'"
		      " (while parsing a flow sequence at 3:12)");
	EXPECT_ERRORS("mode: audit\n  fail_mode: open\n",
		      "t.yaml:2:12: YAML syntax error: mapping values are not allowed in this context");
	EXPECT_ERRORS("mode: \"audit\n",
		      "t.yaml:2:1: YAML syntax error: found unexpected end of stream"
		      " (while scanning a quoted scalar at 1:7)");
	EXPECT_ERRORS("hosts: *nope\n", "t.yaml:1:8: alias *nope has no anchor &nope before it");
	EXPECT_ERRORS("mode: audit\n---\nmode: enforce\n",
		      "t.yaml:2:1: a policy is one YAML document; found another here");
}

static void test_yaml_binary(void **state)
{
	static const char junk[] = "mode: audit\n\x01\x02\x03\xff\xfe\x00zz";
	static const char bad_utf8[] = "mode: \"\xc3\x28\"\n";
	struct tg_diag d = { 0 };
	struct tg_policy *p = NULL;

	assert_int_equal(policy_load_buffer("t.yaml", junk, sizeof(junk) - 1, &p, &d), -EINVAL);
	assert_null(p);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.msgs[0], "t.yaml:2:1: YAML syntax error: control characters are not allowed");
	diag_free(&d);

	assert_int_equal(policy_load_buffer("t.yaml", bad_utf8, sizeof(bad_utf8) - 1, &p, &d),
			 -EINVAL);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.msgs[0], "t.yaml:1:9: YAML syntax error: invalid trailing UTF-8 octet");
	diag_free(&d);
}

/*
 * An empty file, one with only comments, or an explicit null document is a
 * valid policy with every default and no destinations: YAML reads all three
 * as null, and an operator starting from nothing should get "ok (0 ...)"
 * rather than an error that has no line to point at.
 */
static void test_yaml_empty(void **state)
{
	static const char *const empties[] = { "", "\n\n", "# nothing yet\n", "---\n", "~\n" };
	struct tg_diag d = { 0 };
	struct tg_policy *p = NULL;

	for (size_t i = 0; i < sizeof(empties) / sizeof(empties[0]); i++) {
		p = load_ok(empties[i]);
		assert_int_equal(p->ndests, 0);
		assert_int_equal(p->nexceptions, 0);
		assert_int_equal(p->mode, TG_MODE_AUDIT);
		policy_free(p);
	}
	assert_int_equal(policy_load_buffer("t.yaml", NULL, 0, &p, &d), 0);
	policy_free(p);
	diag_free(&d);
}

/* Anchors and aliases are resolved by libyaml; a self-referencing one must not loop. */
static void test_yaml_aliases(void **state)
{
	struct tg_policy *p = load_ok("destinations:\n"
				      "  - name: a\n"
				      "    hosts: &h [a.example, b.example]\n"
				      "  - name: b\n"
				      "    cidrs: [10.0.0.0/8]\n"
				      "exceptions:\n"
				      "  - hosts: *h\n");

	assert_int_equal(p->exceptions[0].hosts.n, 2);
	policy_free(p);
	/* a node that contains itself would have a reader walk it forever */
	EXPECT_ERRORS("proxies: &a [*a]\n", "t.yaml:1:14: alias *a is inside the node it names");
	/* a later anchor of the same name wins */
	p = load_ok("exceptions: [{cidrs: &c [10.0.0.0/8]}, {cidrs: &c [10.1.0.0/16]}]\n"
		    "destinations:\n  - {name: a, cidrs: *c}\n");
	assert_int_equal(p->dests[0].cidrs[0].prefixlen, 96 + 16);
	policy_free(p);
}

/* ---- bounds (TG_POLICY_MAX_*) ---------------------------------------------- */

/* Build a policy text with printf-like pieces; freed by the caller. */
static char *text(size_t *len, const char *head, const char *item, size_t n, const char *tail)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	assert_non_null(f);
	fputs(head, f);
	for (size_t i = 0; i < n; i++)
		fprintf(f, item, i >> 16 & 255, i >> 8 & 255, i & 255);
	fputs(tail, f);
	fclose(f);
	return buf;
}

/* Exactly one message, @want, for @yaml (of @len bytes). */
static void check_one(const char *yaml, size_t len, const char *want)
{
	struct tg_diag d = { 0 };
	struct tg_policy *p = NULL;
	int ret = policy_load_buffer("t.yaml", yaml, len, &p, &d);
	bool same = d.n == 1 && !strcmp(d.msgs[0], want);

	if (!same)
		print_error("got %zu message(s), first: %s\nwant: %s\n", d.n, d.n ? d.msgs[0] : "-", want);
	diag_free(&d);
	assert_int_equal(ret, -EINVAL);
	assert_null(p);
	assert_true(same);
}

static void test_bound_depth(void **state)
{
	size_t len;
	char *yaml = text(&len, "destinations: ", "[", 40, "");

	/* the top-level mapping is the first level: the 32nd bracket is the 33rd */
	check_one(yaml, len, "t.yaml:1:46: lists and mappings nested more than 32 deep");
	free(yaml);
	yaml = text(&len, "", "{a: ", 40, "");
	check_one(yaml, len, "t.yaml:1:129: lists and mappings nested more than 32 deep");
	free(yaml);
	yaml = text(&len, "", "- ", 40, "");
	check_one(yaml, len, "t.yaml:1:65: lists and mappings nested more than 32 deep");
	free(yaml);
	/* at the bound, a document: the walker says what is wrong with it */
	yaml = text(&len, "proxies: ", "[", 31, "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n");
	check_one(yaml, len, "t.yaml:1:11: \"proxies\" entries must be strings");
	free(yaml);
}

static void test_bound_keys_items_scalar(void **state)
{
	size_t len;
	char *yaml = text(&len, "workloads:\n  kubernetes:\n    labels:\n", "      k%d.%d.%d: v\n",
			  TG_POLICY_MAX_KEYS + 1, "");

	check_one(yaml, len, "t.yaml:4:7: a mapping of more than 1024 keys");
	free(yaml);
	yaml = text(&len, "exceptions:\n  - cidrs:\n", "    - 10.%d.%d.%d\n", TG_POLICY_MAX_ITEMS + 1, "");
	check_one(yaml, len, "t.yaml:3:5: a list of more than 131072 entries");
	free(yaml);
	yaml = text(&len, "mode: \"", "a", TG_POLICY_MAX_SCALAR + 1, "\"\n");
	check_one(yaml, len, "t.yaml:1:7: a value longer than 8192 bytes");
	free(yaml);
	/* at the bounds themselves: loads (and the walker reports what it finds) */
	yaml = text(&len, "mode: \"", "a", TG_POLICY_MAX_SCALAR, "\"\n");
	check_one(yaml, len, "t.yaml:1:7: \"mode\" must be one of audit, enforce");
	free(yaml);
}

static void test_bound_nodes(void **state)
{
	size_t len;
	char *yaml = text(&len, "exceptions:\n", "  - cidrs: [10.%d.%d.%d, 10.0.0.1, 10.0.0.2, 10.0.0.3]\n",
			  TG_POLICY_MAX_NODES / 6 + 1, "");

	/* each entry is a mapping, a key, a list and four values: 7 nodes; entry
	 * 37449 has the 262145th at its third value */
	check_one(yaml, len, "t.yaml:37450:36: more than 262144 values, lists and mappings in all");
	free(yaml);
}

/*
 * A "billion laughs": lists of ten aliases of the list before. Each alias
 * counts the nodes it names (a: 7, b: 71, c: 711, ...): after e, 79,000 have
 * been counted and e itself is 71,111, so f's third *e crosses 262,144.
 */
static void test_bound_aliases(void **state)
{
	static const char laughs[] =
		"exceptions:\n"
		"  - {name: a, cidrs: &a [10.0.0.1, 10.0.0.2, 10.0.0.3, 10.0.0.4, 10.0.0.5, 10.0.0.6]}\n"
		"  - {name: b, cidrs: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]}\n"
		"  - {name: c, cidrs: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]}\n"
		"  - {name: d, cidrs: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]}\n"
		"  - {name: e, cidrs: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]}\n"
		"  - {name: f, cidrs: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]}\n"
		"  - {name: g, cidrs: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]}\n";
	struct tg_policy *p;

	check_one(laughs, strlen(laughs), "t.yaml:7:34: aliases expand to more than 262144 nodes in all");
	/* aliases within the bound are fine */
	p = load_ok("exceptions:\n  - {cidrs: &a [10.0.0.1]}\n  - {cidrs: *a}\n  - {cidrs: *a}\n");
	assert_int_equal(p->nexceptions, 3);
	policy_free(p);
}

static void test_bound_file_size(void **state)
{
	size_t len = TG_POLICY_MAX_BYTES + 1;
	char *yaml = malloc(len);

	assert_non_null(yaml);
	memset(yaml, '#', len);
	yaml[len - 1] = '\n';
	check_one(yaml, len, "t.yaml:1:16777217: the file is larger than 16 MiB, the most a policy may be");
	/* at the limit: a (long) comment, a valid empty policy */
	yaml[len - 2] = '\n';
	policy_free(load_ok_len(yaml, len - 1));
	free(yaml);
}

static void test_bound_hosts(void **state)
{
	size_t len;
	char *yaml = text(&len, "destinations:\n  - name: a\n    hosts:\n", "      - h%d-%d-%d.example\n",
			  TG_POLICY_MAX_HOSTS + 1, "");

	check_one(yaml, len, "t.yaml:4100:9: more than 4096 host names in destinations and exceptions");
	free(yaml);
}

/* ---- value parsers ------------------------------------------------------ */

static void test_parse_cidr(void **state)
{
	static const char *const garbage[] = {
		"", "/8", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/08",
		"10.0.0.0/33", "10.0.0/8", "10.0.0.0.0", "010.0.0.0/8", " 10.0.0.0/8",
		"10.0.0.0/8 ", "::/129", "fe80::1%eth0", "1.2.3.4/32/1", "example.com",
		"10.0.0.0/4294967304", "0x0a000000",
	};
	struct tg_cidr c;
	uint8_t v6[16];

	assert_int_equal(policy_parse_cidr("10.0.0.0/8", &c), 0);
	assert_cidr4(&c, "10.0.0.0", 8);
	assert_int_equal(policy_parse_cidr("192.168.1.1", &c), 0);
	assert_cidr4(&c, "192.168.1.1", 32);
	assert_int_equal(policy_parse_cidr("0.0.0.0/0", &c), 0);
	assert_cidr4(&c, "0.0.0.0", 0);

	assert_int_equal(policy_parse_cidr("2001:db8::/32", &c), 0);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::", v6), 1);
	assert_memory_equal(c.addr, v6, 16);
	assert_int_equal(c.prefixlen, 32);
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(policy_parse_cidr("::1", &c), 0);
	assert_int_equal(c.prefixlen, 128);
	assert_int_equal(policy_parse_cidr("::/0", &c), 0);
	assert_int_equal(c.prefixlen, 0);
	assert_int_equal(c.family, AF_INET6);
	/* written as IPv6, kept as IPv6 even when it is v4-mapped */
	assert_int_equal(policy_parse_cidr("::ffff:10.0.0.0/104", &c), 0);
	assert_int_equal(c.family, AF_INET6);
	assert_int_equal(c.prefixlen, 104);

	/* host bits: refused, but the network is handed back for a suggestion */
	assert_int_equal(policy_parse_cidr("10.0.0.1/8", &c), -ERANGE);
	assert_cidr4(&c, "10.0.0.0", 8);
	assert_int_equal(policy_parse_cidr("10.1.2.3/0", &c), -ERANGE);
	assert_int_equal(policy_parse_cidr("10.0.0.128/25", &c), 0);
	assert_int_equal(policy_parse_cidr("10.0.0.129/25", &c), -ERANGE);
	assert_int_equal(policy_parse_cidr("2001:db8::1/64", &c), -ERANGE);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::", v6), 1);
	assert_memory_equal(c.addr, v6, 16);

	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		if (policy_parse_cidr(garbage[i], &c) != -EINVAL)
			fail_msg("\"%s\" accepted", garbage[i]);
	}
}

static void test_parse_hosts(void **state)
{
	char why[96];
	char long_name[300];

	assert_int_equal(policy_check_host("example.com", why, sizeof(why)), 0);
	assert_int_equal(policy_check_host("*.blob.core.windows.net", why, sizeof(why)), 0);
	assert_int_equal(policy_check_host("localhost", NULL, 0), 0);
	assert_int_equal(policy_check_host("xn--bcher-kva.de", NULL, 0), 0);
	assert_int_equal(policy_check_host("a-b.c0", NULL, 0), 0);
	assert_int_equal(policy_check_host("", why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "empty");
	assert_int_equal(policy_check_host("*.", why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "empty label");
	assert_int_equal(policy_check_host("::1", why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "an IP address belongs under \"cidrs\"");
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	for (size_t i = 60; i < sizeof(long_name) - 1; i += 60)
		long_name[i] = '.';
	assert_int_equal(policy_check_host(long_name, why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "longer than 253 characters");
	assert_int_equal(policy_check_host("a b", why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "invalid character ' '");
	assert_int_equal(policy_check_host("a\tb", why, sizeof(why)), -EINVAL);
	assert_string_equal(why, "invalid character 0x09");
}

static void test_port_ranges(void **state)
{
	struct tg_policy *p = load_ok("destinations:\n"
				      "  - name: x\n"
				      "    hosts: [a.example]\n"
				      "    ports: [1, 65535, \"443\", 8000-8100, \"5-5\", '1-65535']\n");
	const struct tg_policy_dest *d = &p->dests[0];
	static const struct tg_port_range want[] = {
		{ 1, 1 }, { 65535, 65535 }, { 443, 443 }, { 8000, 8100 }, { 5, 5 }, { 1, 65535 },
	};

	assert_int_equal(d->nports, 6);
	for (size_t i = 0; i < 6; i++) {
		assert_int_equal(d->ports[i].lo, want[i].lo);
		assert_int_equal(d->ports[i].hi, want[i].hi);
	}
	policy_free(p);
	EXPECT_ERRORS("destinations:\n"
		      "  - name: x\n"
		      "    hosts: [a.example]\n"
		      "    ports: [65536, 1-65536, \" 80\", 80-90-100, -5, 8.0]\n",
		      "t.yaml:4:13: invalid port \"65536\"",
		      "t.yaml:4:20: invalid port range \"1-65536\"",
		      "t.yaml:4:29: invalid port \" 80\"",
		      "t.yaml:4:36: invalid port range \"80-90-100\"",
		      "t.yaml:4:47: invalid port range \"-5\"",
		      "t.yaml:4:51: invalid port \"8.0\"");
}

static void test_durations_sizes(void **state)
{
	static const struct { const char *text; unsigned int secs; } durs[] = {
		{ "0", 0 }, { "10", 10 }, { "\"10s\"", 10 }, { "2m", 120 }, { "48h", 172800 },
		{ "7d", 604800 }, { "4294967295", 4294967295U },
	};
	static const struct { const char *text; uint64_t bytes; } sizes[] = {
		{ "0", 0 }, { "1024", 1024 }, { "50MiB", 50ULL << 20 }, { "\"50 MiB\"", 50ULL << 20 },
		{ "2GB", 2000000000ULL }, { "1KB", 1000 }, { "3KiB", 3072 }, { "1TiB", 1ULL << 40 },
		{ "64Mi", 64ULL << 20 }, { "7B", 7 },
	};
	static const char *const bad_durs[] = {
		"10x", "s", "-1", "1.5h", "10 s", "4294967296", "49711d", "010", "10ms", "\"\"",
	};
	static const char *const bad_sizes[] = {
		"50mb", "MiB", "-1", "1.5GiB", "18446744073709551616", "17179869184GiB", "50  MiB",
	};
	char yaml[128], want[256];

	for (size_t i = 0; i < sizeof(durs) / sizeof(durs[0]); i++) {
		struct tg_policy *p;

		snprintf(yaml, sizeof(yaml), "fail_open_after: %s\nevents: {spool: {max_age: %s}}\n",
			 durs[i].text, durs[i].text);
		p = load_ok(yaml);
		assert_int_equal(p->fail_open_after_s, durs[i].secs);
		assert_int_equal(p->spool_max_age_s, durs[i].secs);
		policy_free(p);
	}
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct tg_policy *p;

		snprintf(yaml, sizeof(yaml), "events: {spool: {max_bytes: %s}}\n", sizes[i].text);
		p = load_ok(yaml);
		assert_int_equal(p->spool_max_bytes, sizes[i].bytes);
		policy_free(p);
	}
	for (size_t i = 0; i < sizeof(bad_durs) / sizeof(bad_durs[0]); i++) {
		const char *text = bad_durs[i];
		char shown[32];

		/* the message shows the scalar's value, without YAML's quotes */
		snprintf(shown, sizeof(shown), "%s", text[0] == '"' ? "" : text);
		snprintf(yaml, sizeof(yaml), "fail_open_after: %s\n", text);
		snprintf(want, sizeof(want),
			 "t.yaml:1:18: invalid duration \"%s\" (seconds, or a number with s, m, h or d)",
			 shown);
		EXPECT_ERRORS(yaml, want);
	}
	for (size_t i = 0; i < sizeof(bad_sizes) / sizeof(bad_sizes[0]); i++) {
		snprintf(yaml, sizeof(yaml), "events:\n  spool:\n    max_bytes: %s\n", bad_sizes[i]);
		snprintf(want, sizeof(want),
			 "t.yaml:3:16: invalid size \"%s\" (bytes, or a number with KB, MB, GB, TB, KiB, MiB, GiB or TiB)",
			 bad_sizes[i]);
		EXPECT_ERRORS(yaml, want);
	}
	EXPECT_ERRORS("fail_open_after: [1]\n", "t.yaml:1:18: \"fail_open_after\" must be a duration");
	EXPECT_ERRORS("events: {spool: {max_bytes: {}}}\n",
		      "t.yaml:1:29: \"max_bytes\" must be a size");
}

/* ---- files and the diag contract ---------------------------------------- */

static char tmpdir[] = "/tmp/tlsguard-test-policy-XXXXXX";

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void test_load_file(void **state)
{
	struct tg_diag d = { 0 };
	struct tg_policy *p = NULL;
	char path[128], want[256];

	snprintf(path, sizeof(path), "%s/missing.yaml", tmpdir);
	assert_int_equal(policy_load_file(path, &p, &d), -ENOENT);
	assert_null(p);
	assert_int_equal(d.n, 1);
	snprintf(want, sizeof(want), "%s: cannot read: No such file or directory", path);
	assert_string_equal(d.msgs[0], want);
	diag_free(&d);

	assert_int_equal(policy_load_file(tmpdir, &p, &d), -EISDIR);
	snprintf(want, sizeof(want), "%s: cannot read: Is a directory", tmpdir);
	assert_string_equal(d.msgs[0], want);
	diag_free(&d);

	snprintf(path, sizeof(path), "%s/bad.yaml", tmpdir);
	write_file(path, "mode: audit\nprots: 1\n");
	assert_int_equal(policy_load_file(path, &p, &d), -EINVAL);
	snprintf(want, sizeof(want), "%s:2:1: unknown key \"prots\"", path);
	assert_string_equal(d.msgs[0], want);

	/* diagnostics are appended, never reset behind the caller's back */
	snprintf(path, sizeof(path), "%s/good.yaml", tmpdir);
	write_file(path, design_example);
	assert_int_equal(policy_load_file(path, &p, &d), 0);
	assert_int_equal(d.n, 1);
	assert_string_equal(p->source, path);
	assert_int_equal(p->ndests, 2);
	policy_free(p);
	diag_free(&d);
	diag_free(&d);		/* idempotent */
	diag_free(NULL);
	policy_free(NULL);
}

/* ---- tlsguard policy ---------------------------------------------------- */

struct cli_run {
	int rc;
	char out[4096];
	char err[4096];
};

static void slurp(int fd, char *buf, size_t len)
{
	ssize_t n;

	assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
	n = read(fd, buf, len - 1);
	assert_true(n >= 0);
	buf[n] = '\0';
	close(fd);
}

/* Run cmd_policy with stdout and stderr captured. */
static void cli(struct cli_run *r, int argc, ...)
{
	char *argv[8];
	char tpl_out[] = "/tmp/tg-out-XXXXXX", tpl_err[] = "/tmp/tg-err-XXXXXX";
	int fo = mkstemp(tpl_out), fe = mkstemp(tpl_err), so, se;
	va_list ap;

	assert_true(fo >= 0 && fe >= 0 && argc < 8);
	unlink(tpl_out);
	unlink(tpl_err);
	va_start(ap, argc);
	for (int i = 0; i < argc; i++)
		argv[i] = va_arg(ap, char *);
	va_end(ap);
	argv[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	so = dup(1);
	se = dup(2);
	dup2(fo, 1);
	dup2(fe, 2);
	r->rc = cmd_policy(argc, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(so, 1);
	dup2(se, 2);
	close(so);
	close(se);
	slurp(fo, r->out, sizeof(r->out));
	slurp(fe, r->err, sizeof(r->err));
}

static void test_cli(void **state)
{
	struct cli_run r;
	char good[128], bad[128], want[512];

	snprintf(good, sizeof(good), "%s/cli-good.yaml", tmpdir);
	snprintf(bad, sizeof(bad), "%s/cli-bad.yaml", tmpdir);
	write_file(good, design_example);
	write_file(bad, "destinations:\n  - name: x\n    hosts: [a.example]\n    prots: [443]\n"
			"    ports: [70000]\n");

	/* the file alone, as CI would check it */
	cli(&r, 4, "policy", "check", "--offline", good);
	assert_int_equal(r.rc, 0);
	snprintf(want, sizeof(want), "%s: ok (2 destinations, 1 exceptions)\n", good);
	assert_string_equal(r.out, want);
	assert_string_equal(r.err, "");
	/* on this host, as the agent would start: no such cgroup, no such secret files */
	cli(&r, 3, "policy", "check", good);
	assert_int_equal(r.rc, 2);
	assert_string_equal(r.out, "");
	assert_non_null(strstr(r.err, "tlsguard: cannot attach to cgroup /kubepods.slice: "));
	snprintf(want, sizeof(want), "tlsguard: %s: events.key_file: key file /etc/tlsguard/secrets/"
		 "event-key: No such file or directory\n", good);
	assert_non_null(strstr(r.err, want));
	snprintf(want, sizeof(want), "tlsguard: %s: application_insights.connection_string_file: "
		 "/etc/tlsguard/secrets/appinsights-connection-string: No such file or directory\n", good);
	assert_non_null(strstr(r.err, want));

	cli(&r, 3, "policy", "check", bad);
	assert_int_equal(r.rc, 2);
	assert_string_equal(r.out, "");
	snprintf(want, sizeof(want),
		 "tlsguard: %s:4:5: unknown key \"prots\" (did you mean \"ports\")\n"
		 "tlsguard: %s:5:13: invalid port \"70000\"\n", bad, bad);
	assert_string_equal(r.err, want);

	cli(&r, 3, "policy", "check", "/nonexistent/policy.yaml");
	assert_int_equal(r.rc, 1);
	assert_string_equal(r.err,
		"tlsguard: /nonexistent/policy.yaml: cannot read: No such file or directory\n");

	cli(&r, 2, "policy", "show-default");
	assert_int_equal(r.rc, 0);
	assert_int_equal(strncmp(r.out, tg_default_policy_yaml, sizeof(r.out) - 1), 0);

	cli(&r, 2, "policy", "--help");
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.out, "Usage: tlsguard policy"));
	assert_string_equal(r.err, "");
	cli(&r, 3, "policy", "check", "-h");
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.out, "Usage: tlsguard policy check [--cgroup PATH]... [--offline] FILE"));
	cli(&r, 3, "policy", "show-default", "--help");
	assert_int_equal(r.rc, 0);
	assert_non_null(strstr(r.out, "Usage: tlsguard policy show-default"));

	cli(&r, 1, "policy");
	assert_int_equal(r.rc, 2);
	assert_string_equal(r.out, "");
	assert_non_null(strstr(r.err, "Usage: tlsguard policy"));
	cli(&r, 2, "policy", "check");
	assert_int_equal(r.rc, 2);
	assert_non_null(strstr(r.err, "Usage: tlsguard policy check [--cgroup PATH]... [--offline] FILE"));
	cli(&r, 4, "policy", "check", good, bad);
	assert_int_equal(r.rc, 2);
	cli(&r, 3, "policy", "check", "--frob");
	assert_int_equal(r.rc, 2);
	cli(&r, 2, "policy", "frob");
	assert_int_equal(r.rc, 2);
	assert_non_null(strstr(r.err, "tlsguard: policy: unknown command 'frob'\n"));
	cli(&r, 3, "policy", "show-default", "extra");
	assert_int_equal(r.rc, 2);
}

static int setup(void **state)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	static const char *const files[] = {
		"bad.yaml", "good.yaml", "cli-good.yaml", "cli-bad.yaml",
	};
	char path[128];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
		unlink(path);
	}
	return rmdir(tmpdir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_design_example),
		cmocka_unit_test(test_full_schema),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_appinsights_keys),
		cmocka_unit_test(test_null_is_absent),
		cmocka_unit_test(test_tls_versions),
		cmocka_unit_test(test_default_policy),
		cmocka_unit_test(test_port_entries),
		cmocka_unit_test(test_err_port_entries),
		cmocka_unit_test(test_overrides),
		cmocka_unit_test(test_err_overrides),
		cmocka_unit_test(test_err_unknown_key),
		cmocka_unit_test(test_err_duplicate_key),
		cmocka_unit_test(test_err_wrong_type),
		cmocka_unit_test(test_err_bad_cidr),
		cmocka_unit_test(test_err_bad_port),
		cmocka_unit_test(test_err_duplicate_name),
		cmocka_unit_test(test_err_no_targets),
		cmocka_unit_test(test_err_missing_name),
		cmocka_unit_test(test_err_dest_mode),
		cmocka_unit_test(test_err_host_names),
		cmocka_unit_test(test_err_other_values),
		cmocka_unit_test(test_dns_keys),
		cmocka_unit_test(test_limits_keys),
		cmocka_unit_test(test_err_overlap),
		cmocka_unit_test(test_err_all_collected),
		cmocka_unit_test(test_err_too_many),
		cmocka_unit_test(test_yaml_syntax),
		cmocka_unit_test(test_yaml_binary),
		cmocka_unit_test(test_yaml_empty),
		cmocka_unit_test(test_yaml_aliases),
		cmocka_unit_test(test_bound_depth),
		cmocka_unit_test(test_bound_keys_items_scalar),
		cmocka_unit_test(test_bound_nodes),
		cmocka_unit_test(test_bound_aliases),
		cmocka_unit_test(test_bound_file_size),
		cmocka_unit_test(test_bound_hosts),
		cmocka_unit_test(test_parse_cidr),
		cmocka_unit_test(test_parse_hosts),
		cmocka_unit_test(test_port_ranges),
		cmocka_unit_test(test_durations_sizes),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_cli),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
