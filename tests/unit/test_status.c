// SPDX-License-Identifier: MIT
/*
 * status JSON (agent/serve/status.c) and the Prometheus text (prometheus.c)
 * from a hand-built struct tg_status_view: no agent, no kernel.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "control.h"
#include "dests.h"
#include "dnslearn.h"
#include "escape.h"
#include "events.h"
#include "handoff.h"
#include "loader.h"
#include "policy.h"
#include "prometheus.h"
#include "ai_sink.h"
#include "status.h"
#include "tally.h"

static struct tg_policy policy;
static struct tg_loader loader;
static struct tg_dest_table dests;
static struct tg_dest_entry entries[3];
static uint64_t class_stats[2][TG_CS__MAX];
static struct tg_dnslearn_stats dns_stats;
static uint64_t at_start[TG_CNT__MAX];
static struct tg_handoff_state handoff;
static struct tg_sink_stats file_sink;
static struct tg_top top;
static struct tg_control control;

static void build_view(struct tg_status_view *v)
{
	memset(v, 0, sizeof(*v));
	policy = (struct tg_policy){ .source = "/etc/tlsguard/test.yaml", .mode = TG_MODE_AUDIT,
				     .fail_mode = TG_FAIL_CLOSED, .fail_open_after_s = 10,
				     .ndests = 3, .nexceptions = 1, .max_tracked_flows = 1000,
				     .events_file = "/var/log/tlsguard/events.jsonl" };
	memset(&loader, 0, sizeof(loader));
	snprintf(loader.pin_dir, sizeof(loader.pin_dir), "/sys/fs/bpf/tg-test");
	loader.adopted_maps = true;
	memset(&dests, 0, sizeof(dests));
	dests.nclasses = 1;
	dests.class_names[1] = "db";
	dests.classes[1].mode = TG_MODE_ENFORCE;
	dests.classes[1].nranges = 2;
	dests.classes[1].ports[0].lo = dests.classes[1].ports[0].hi = 5432;
	dests.classes[1].ports[1].lo = 6000;
	dests.classes[1].ports[1].hi = 6010;
	memset(entries, 0, sizeof(entries));
	entries[0].val.class_id = entries[1].val.class_id = 1;
	dests.v = entries;
	dests.n = 3;			/* one entry of no class */
	memset(class_stats, 0, sizeof(class_stats));
	class_stats[1][TG_CS_TRACKED] = 9;
	class_stats[1][TG_CS_TLS] = 7;
	class_stats[1][TG_CS_PLAINTEXT_BLOCKED] = 2;
	memset(at_start, 0, sizeof(at_start));
	memset(&handoff, 0, sizeof(handoff));
	handoff.layout = 3;
	file_sink = (struct tg_sink_stats){ .name = "file", .ok = true, .sent = 42 };
	memset(&top, 0, sizeof(top));
	memset(&control, 0, sizeof(control));
	snprintf(control.path, sizeof(control.path), "/run/tlsguard/test.sock");
	control.nclients = 1;
	control.bad_requests = 4;

	v->mode = TG_MODE_AUDIT;
	v->started_real_ns = 1700000000LL * 1000000000LL;
	v->uptime_s = 12.7;
	v->loader = &loader;
	v->cg_mount = "/sys/fs/cgroup";
	v->policy = &policy;
	v->policy_sha256 = "ab12";
	v->policy_loaded_ns = 1700000001LL * 1000000000LL;
	v->reloads = 2;
	v->hosts = 2;
	v->resolved_ips = 4;
	v->unresolved_hosts = 1;
	v->dests = &dests;
	v->class_stats = (const uint64_t (*)[TG_CS__MAX])class_stats;
	v->dns_stats = &dns_stats;
	v->counters[TG_CNT_FLOWS_TRACKED] = 100;
	at_start[TG_CNT_FLOWS_TRACKED] = 40;
	v->counters[TG_CNT_VERDICT_TLS] = 50;
	v->counters[TG_CNT_PLAINTEXT_FLAGGED] = 3;
	v->counters[TG_CNT_PLAINTEXT_BLOCKED] = 2;
	v->counters[TG_CNT_CONNECT_BLOCKED] = 1;
	v->counters[TG_CNT_WEAK_TLS_FLAGGED] = 4;
	v->counters[TG_CNT_ERR_RINGBUF] = 7;
	at_start[TG_CNT_ERR_RINGBUF] = 2;
	v->counters_at_start = at_start;
	v->live_flows = 5;
	v->handoff = &handoff;
	v->events_emitted = 42;
	v->events_write_failed = 1;
	v->file_sink = &file_sink;
	v->events_target = policy.events_file;
	v->top = &top;
	v->control = &control;
}

static json_object *at(json_object *o, const char *path)
{
	char key[64];
	const char *dot;

	while (o && (dot = strchr(path, '.'))) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		if (!json_object_object_get_ex(o, key, &o))
			return NULL;
		path = dot + 1;
	}
	if (!o || !json_object_object_get_ex(o, path, &o))
		return NULL;
	return o;
}

static const char *str(json_object *o, const char *path)
{
	json_object *x = at(o, path);

	assert_non_null(x);
	return json_object_get_string(x);
}

static int64_t num(json_object *o, const char *path)
{
	json_object *x = at(o, path);

	assert_non_null(x);
	assert_true(json_object_is_type(x, json_type_int));
	return json_object_get_int64(x);
}

/* The fields the status JSON contract (DESIGN.md) promises, with the view's values. */
static void test_status_contract_fields(void **state)
{
	struct tg_status_view v;
	json_object *o, *sinks, *s0, *s1, *hooks, *classes, *c;

	build_view(&v);
	o = status_build_json(&v);
	assert_non_null(o);
	assert_string_equal(str(o, "agent.version"), TLSGUARD_VERSION);
	assert_int_equal(num(o, "agent.pid"), getpid());
	assert_int_equal(num(o, "agent.uptime_s"), 12);
	assert_string_equal(str(o, "agent.mode"), "audit");
	assert_string_equal(str(o, "agent.mode_source"), "policy");
	assert_string_equal(str(o, "agent.fail_mode"), "closed");
	assert_string_equal(str(o, "agent.pin_path"), "/sys/fs/bpf/tg-test");
	assert_true(json_object_get_boolean(at(o, "agent.adopted_pins")));
	hooks = at(o, "hooks");
	assert_true(json_object_is_type(hooks, json_type_array));
	assert_int_equal(json_object_array_length(hooks), 0);	/* no cgroup attached */

	assert_string_equal(str(o, "policy.source"), "/etc/tlsguard/test.yaml");
	assert_string_equal(str(o, "policy.sha256"), "ab12");
	assert_true(json_object_is_type(at(o, "policy.loaded_at"), json_type_string));
	assert_int_equal(num(o, "policy.destinations"), 3);
	assert_int_equal(num(o, "policy.exceptions"), 1);
	assert_int_equal(num(o, "policy.hosts"), 2);
	assert_int_equal(num(o, "policy.resolved_ips"), 4);
	assert_int_equal(num(o, "policy.unresolved_hosts"), 1);
	assert_int_equal(num(o, "policy.map_entries"), 3);
	assert_int_equal(num(o, "policy.reloads"), 2);
	assert_false(json_object_get_boolean(at(o, "policy.reloading")));
	classes = at(o, "policy.classes");
	assert_int_equal(json_object_array_length(classes), 1);
	c = json_object_array_get_idx(classes, 0);
	assert_string_equal(str(c, "name"), "db");
	assert_string_equal(str(c, "mode"), "enforce");
	assert_string_equal(str(c, "ports"), "5432,6000-6010");
	assert_int_equal(num(c, "map_entries"), 2);
	assert_int_equal(num(c, "flows.tracked"), 9);
	assert_int_equal(num(c, "flows.tls"), 7);
	assert_int_equal(num(c, "flows.plaintext_blocked"), 2);

	/* since this agent started: the kernel totals minus what they were then */
	assert_int_equal(num(o, "counters.flows_tracked"), 60);
	assert_int_equal(num(o, "counters.tls"), 50);
	assert_int_equal(num(o, "counters.plaintext"), 5);
	assert_int_equal(num(o, "counters.weak_tls"), 4);
	assert_int_equal(num(o, "counters.blocked"), 3);
	assert_int_equal(num(o, "counters.flagged"), 3);
	assert_int_equal(num(o, "counters.events_emitted"), 42);
	assert_int_equal(num(o, "counters.events_lost"), 6);	/* 5 ring buffer + 1 write */
	assert_int_equal(num(o, "kernel_counters.flows_tracked"), 100);	/* totals */
	assert_int_equal(num(o, "flows.live"), 5);
	assert_int_equal(num(o, "flows.max"), 1000);
	assert_int_equal(num(o, "handoff.layout"), 3);
	assert_false(json_object_get_boolean(at(o, "handoff.draining")));

	sinks = at(o, "sinks");
	assert_int_equal(json_object_array_length(sinks), 2);
	s0 = json_object_array_get_idx(sinks, 0);
	assert_string_equal(str(s0, "name"), "file");
	assert_string_equal(str(s0, "target"), "/var/log/tlsguard/events.jsonl");
	assert_string_equal(str(s0, "state"), "ok");
	assert_int_equal(num(s0, "sent"), 42);
	assert_int_equal(num(s0, "failed"), 0);
	assert_int_equal(num(s0, "queued"), 0);
	assert_int_equal(num(s0, "spooled"), 0);
	assert_true(json_object_object_get_ex(s0, "last_success", NULL));
	assert_null(at(s0, "last_success"));	/* never */
	s1 = json_object_array_get_idx(sinks, 1);
	assert_string_equal(str(s1, "name"), "appinsights");
	assert_string_equal(str(s1, "state"), "disabled");

	assert_string_equal(str(o, "health.state"), "healthy");
	assert_int_equal(json_object_array_length(at(o, "health.reasons")), 0);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(at(o, "health.warnings"), 0)),
			    "6 event(s) lost since start");
	assert_string_equal(str(o, "control.socket"), "/run/tlsguard/test.sock");
	assert_int_equal(num(o, "control.clients"), 1);
	assert_int_equal(num(o, "control.bad_requests"), 4);
	assert_null(at(o, "workloads"));
	assert_int_equal(json_object_array_length(at(o, "top.workloads")), 0);
	json_object_put(o);
}

static void test_status_degraded_and_mode_from_cli(void **state)
{
	struct tg_status_view v;
	json_object *o;

	build_view(&v);
	v.mode = TG_MODE_ENFORCE;
	v.mode_from_cli = true;
	file_sink.ok = false;
	snprintf(file_sink.last_error, sizeof(file_sink.last_error), "No space left on device");
	v.live_flows = 1000;
	o = status_build_json(&v);
	assert_string_equal(str(o, "agent.mode"), "enforce");
	assert_string_equal(str(o, "agent.mode_source"), "--mode");
	assert_string_equal(str(o, "health.state"), "degraded");
	assert_string_equal(json_object_get_string(json_object_array_get_idx(at(o, "health.reasons"), 0)),
			    "event sink file failing: No space left on device");
	assert_int_equal(json_object_array_length(at(o, "health.warnings")), 2);	/* + flow cap */
	assert_string_equal(str(json_object_array_get_idx(at(o, "sinks"), 0), "state"), "error");
	json_object_put(o);
}

static void test_tally_counts_violations(void **state)
{
	struct tg_status_view v;
	json_object *o, *w, *d, *ev;

	build_view(&v);
	for (int i = 0; i < 3; i++)
		tally_fields(&top, "plaintext", "/k8s/pod-a", "python3", "db", "db.internal", "10.0.0.1",
			     "5432");
	tally_fields(&top, "blocked_connect", "/k8s/pod-b", NULL, "db", NULL, "10.0.0.2", "5432");
	tally_fields(&top, "tls", "/k8s/pod-c", "curl", "db", NULL, "10.0.0.3", "443");	/* not one */
	tally_fields(&top, NULL, "/k8s/pod-d", "curl", "db", NULL, "10.0.0.3", "443");
	ev = json_tokener_parse("{\"type\":\"plaintext\",\"workload\":{\"cgroup\":\"/k8s/pod-b\"},"
				"\"destination\":{\"class\":\"db\",\"ip\":\"10.0.0.2\",\"port\":5432}}");
	tally_event(&top, ev);
	json_object_put(ev);

	o = status_build_json(&v);
	w = at(o, "top.workloads");
	d = at(o, "top.destinations");
	assert_int_equal(json_object_array_length(w), 2);
	assert_string_equal(str(json_object_array_get_idx(w, 0), "workload"), "/k8s/pod-a (python3)");
	assert_int_equal(num(json_object_array_get_idx(w, 0), "violations"), 3);
	assert_string_equal(str(json_object_array_get_idx(w, 1), "workload"), "/k8s/pod-b");
	assert_int_equal(num(json_object_array_get_idx(w, 1), "violations"), 2);
	assert_int_equal(json_object_array_length(d), 2);
	assert_string_equal(str(json_object_array_get_idx(d, 0), "destination"), "db db.internal:5432");
	assert_string_equal(str(json_object_array_get_idx(d, 1), "destination"), "db 10.0.0.2:5432");
	json_object_put(o);
}

static void test_tally_bounded_top_five(void **state)
{
	char cg[32];
	json_object *w;
	int found = 0;

	memset(&top, 0, sizeof(top));
	for (int i = 0; i < TG_TOP_MAX; i++) {
		snprintf(cg, sizeof(cg), "/cg-%02d", i);
		for (int n = 0; n <= i % 7; n++)
			tally_fields(&top, "plaintext", cg, NULL, "c", NULL, "10.0.0.1", "80");
	}
	/* the table is full: a new key takes the place of a least seen one */
	tally_fields(&top, "plaintext", "/newcomer", NULL, "c", NULL, "10.0.0.1", "80");
	w = tally_top_json(top.workloads, "workload");
	assert_int_equal(json_object_array_length(w), TG_TOP_SHOWN);
	/* seven each for i % 7 == 6 (06, 13, 20, ...); ties by key */
	assert_string_equal(str(json_object_array_get_idx(w, 0), "workload"), "/cg-06");
	assert_int_equal(num(json_object_array_get_idx(w, 0), "violations"), 7);
	assert_string_equal(str(json_object_array_get_idx(w, 4), "workload"), "/cg-34");
	json_object_put(w);
	for (int i = 0; i < TG_TOP_MAX; i++)
		found += !strcmp(top.workloads[i].key, "/newcomer") && top.workloads[i].count == 1;
	assert_int_equal(found, 1);
}

/* An event line's keys are tallied as the object's fields would be: valid UTF-8. */
static void test_tally_event_keys(void **state)
{
	struct tg_event_keys k = { .type = "plaintext", .cgroup = "/cg", .comm = "py\xff", .cls = "db",
				   .ip = "10.0.0.9", .port = 5432 };

	memset(&top, 0, sizeof(top));
	tally_event_keys(&top, &k);
	tally_event_keys(&top, &k);
	assert_int_equal(top.workloads[0].count, 2);
	assert_true(tg_utf8_valid(top.workloads[0].key, strlen(top.workloads[0].key)));
	assert_int_equal(strncmp(top.workloads[0].key, "/cg (py", 7), 0);
	assert_string_equal(top.destinations[0].key, "db 10.0.0.9:5432");
	k.type = "tls";
	tally_event_keys(&top, &k);
	assert_int_equal(top.workloads[0].count, 2);
}

/* Every sample line has a family announced by HELP and TYPE before it; promtool agrees. */
static void test_prometheus_text(void **state)
{
	struct tg_status_view v;
	char *text, *copy, *line, *save, tmpl[] = "/tmp/tg-status-metrics.XXXXXX", cmd[512];
	size_t len;
	static const char *const dns_names[] = { "copied", "query_scratch_busy" };
	int fd;

	build_view(&v);
	dns_stats.kernel_names = dns_names;	/* the dns program's counters, "dns_" before */
	dns_stats.nkernel = 2;
	dns_stats.kernel[1] = 3;
	assert_int_equal(prometheus_build(&v, &text, &len), 0);
	dns_stats.kernel_names = NULL;
	dns_stats.kernel[1] = 0;
	assert_int_equal(strlen(text), len);
	assert_non_null(strstr(text, "tlsguard_kernel_counter_total{name=\"dns_query_scratch_busy\"} 3\n"));
	assert_non_null(strstr(text, "tlsguard_events_emitted_total 42\n"));
	assert_non_null(strstr(text, "tlsguard_flows_total{class=\"db\",verdict=\"tracked\"} 9\n"));
	assert_non_null(strstr(text, "tlsguard_events_lost_total{reason=\"ringbuf_full\"} 5\n"));
	assert_non_null(strstr(text, "tlsguard_events_lost_total{reason=\"write_failed\"} 1\n"));
	assert_non_null(strstr(text, "tlsguard_sink_up{sink=\"file\"} 1\n"));
	assert_non_null(strstr(text, "tlsguard_kernel_counter_total{name=\"flows_tracked\"} 100\n"));
	assert_non_null(strstr(text, "tlsguard_tracked_flows_max 1000\n"));
	assert_non_null(strstr(text, "tlsguard_agent_uptime_seconds 13\n"));
	assert_null(strstr(text, "appinsights"));	/* not configured */

	fd = mkstemp(tmpl);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	copy = strdup(text);
	assert_non_null(copy);
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char family[128], head[160];
		const char *announced;

		if (line[0] == '#')
			continue;
		snprintf(family, sizeof(family), "%.*s", (int)strcspn(line, "{ "), line);
		snprintf(head, sizeof(head), "# TYPE %s ", family);
		announced = strstr(text, head);
		assert_non_null(announced);
		assert_true(announced < text + (line - copy));	/* before its samples */
	}
	free(copy);
	free(text);
	/*
	 * promtool parses the text (exit 1 on a parse error); its lint (exit 3)
	 * objects to tlsguard_kernel_counter_total's name only, a name the
	 * dashboards and alert rules already use.
	 */
	if (access("/usr/bin/promtool", X_OK) == 0) {
		snprintf(cmd, sizeof(cmd),
			 "out=$(promtool check metrics < %s 2>&1); rc=$?; echo \"$out\" >&2; "
			 "[ $rc -eq 0 ] || { [ $rc -eq 3 ] && ! echo \"$out\" | "
			 "grep -v '^tlsguard_kernel_counter_total metric name should not include "
			 "type .counter.$'; }", tmpl);
		assert_int_equal(system(cmd), 0);
	}
	unlink(tmpl);
}

/* With App Insights configured: its sink in status and its families in /metrics. */
static void test_appinsights_sink(void **state)
{
	struct tg_ai_sink_stats ai;
	struct tg_status_view v;
	json_object *o, *s1;
	char *text;
	size_t len;

	build_view(&v);
	memset(&ai, 0, sizeof(ai));
	ai.state = TG_AI_SINK_OK;
	snprintf(ai.endpoint, sizeof(ai.endpoint), "https://ingest.example:443");
	ai.sent = 11;
	ai.failed = 2;
	ai.lost_quota = 6;
	ai.requests = 3;
	ai.journal = true;
	ai.journal_syncs = 8;
	v.ai = &ai;
	o = status_build_json(&v);
	s1 = json_object_array_get_idx(at(o, "sinks"), 1);
	assert_string_equal(str(s1, "name"), "appinsights");
	assert_string_equal(str(s1, "target"), "https://ingest.example:443");
	assert_string_equal(str(s1, "state"), ai_sink_state_name(TG_AI_SINK_OK));
	assert_int_equal(num(s1, "sent"), 11);
	assert_int_equal(num(s1, "lost.quota"), 6);
	assert_int_equal(num(s1, "requests"), 3);
	assert_int_equal(num(s1, "journal.syncs"), 8);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(at(o, "health.warnings"), 0)),
			    "appinsights: 2 item(s) lost since start");
	json_object_put(o);

	assert_int_equal(prometheus_build(&v, &text, &len), 0);
	assert_non_null(strstr(text, "tlsguard_sink_up{sink=\"appinsights\"} 1\n"));
	assert_non_null(strstr(text, "tlsguard_sink_sent_total{sink=\"appinsights\"} 11\n"));
	assert_non_null(strstr(text, "tlsguard_sink_lost_total{sink=\"appinsights\",reason=\"quota\"} 6\n"));
	assert_non_null(strstr(text, "# TYPE tlsguard_sink_requests_total counter\n"
				     "tlsguard_sink_requests_total{sink=\"appinsights\"} 3\n"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_contract_fields),
		cmocka_unit_test(test_status_degraded_and_mode_from_cli),
		cmocka_unit_test(test_tally_counts_violations),
		cmocka_unit_test(test_tally_bounded_top_five),
		cmocka_unit_test(test_tally_event_keys),
		cmocka_unit_test(test_prometheus_text),
		cmocka_unit_test(test_appinsights_sink),
	};

	return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
