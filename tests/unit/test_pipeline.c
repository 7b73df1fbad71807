// SPDX-License-Identifier: MIT
/*
 * daemon/pipeline.c from ring buffer records to the file sink and the control
 * socket's history: what reaches the file and when (one write per batch),
 * event_id stable for a record read again, short records skipped, field
 * protection applied to the local sinks after the tally saw clear names,
 * agent events stamped and flushed at once, a failing file counted as lost.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "ai_feed.h"
#include "control.h"
#include "dests.h"
#include "enforcer.h"
#include "events.h"
#include "fieldcrypt.h"
#include "json_get.h"
#include "pipeline.h"
#include "policy.h"
#include "tally.h"
#include "tlsguard/event.h"

static const char policy_yaml[] =
	"mode: audit\n"
	"destinations:\n"
	"  - name: storage\n"
	"    cidrs: [\"198.51.100.0/24\"]\n"
	"    ports: [80, 443]\n";

struct fixture {
	struct tg_policy *policy;
	struct tg_dest_table dests;
	struct tg_enforcer enforcer;
	struct tg_control control;
	struct ai_feed ai;
	struct tg_pipeline p;
	char dir[64];
	char events_path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct tg_diag diag = { 0 };

	if (!f)
		return -1;
	if (policy_load_buffer("test.yaml", policy_yaml, strlen(policy_yaml), &f->policy, &diag))
		return -1;
	diag_free(&diag);
	if (dests_build(f->policy, -1, NULL, NULL, &f->dests, NULL, 0))
		return -1;
	strcpy(f->dir, "/tmp/tg-test-pipeline.XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->events_path, sizeof(f->events_path), "%s/events.json", f->dir);
	f->enforcer.own_netns_fd = -1;
	f->control.listen_fd = -1;
	f->control.recent = calloc(TG_RECENT_EVENTS, sizeof(char *));	/* the history only */
	pipeline_init(&f->p);
	if (event_file_open(&f->p.ev_file, f->events_path))
		return -1;
	events_ctx_init(&f->p.ev_ctx);
	strcpy(f->p.ev_ctx.host, "node-1");
	f->p.ev_ctx.dests = &f->dests;
	f->p.enforcer = &f->enforcer;
	f->p.control = &f->control;
	f->p.ai = &f->ai;
	f->p.pin_dir = "/sys/fs/bpf/tlsguard-test";
	pipeline_set_policy(&f->p, f->policy, "ab12");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	event_file_close(&f->p.ev_file);
	for (size_t i = 0; i < TG_RECENT_EVENTS; i++)
		free(f->control.recent[i]);
	free(f->control.recent);
	ai_feed_close(&f->ai);
	unlink(f->events_path);
	rmdir(f->dir);
	dests_free(&f->dests);
	policy_free(f->policy);
	free(f);
	return 0;
}

/* A plaintext HTTP request to 198.51.100.10:80, flagged (audit). */
static void plaintext_record(struct tg_event *ev, uint64_t cookie)
{
	memset(ev, 0, sizeof(*ev));
	ev->ts_ns = 1000000000ULL + cookie;
	ev->type = TG_EV_PLAINTEXT;
	ev->action = TG_ACT_FLAGGED;
	ev->class_id = 1;
	ev->cookie = cookie;
	ev->tgid = 4242;
	ev->saddr[10] = ev->saddr[11] = 0xff;
	ev->saddr[12] = 10, ev->saddr[15] = 2;
	ev->daddr[10] = ev->daddr[11] = 0xff;
	ev->daddr[12] = 198, ev->daddr[13] = 51, ev->daddr[14] = 100, ev->daddr[15] = 10;
	ev->sport = 40000;
	ev->dport = 80;
	strcpy(ev->comm, "curl");
	ev->payload_len = 14;
	memcpy(ev->payload, "GET / HTTP/1.1", 14);
}

/* The events file's lines, parsed; *n of them. */
static json_object **read_lines(const char *path, size_t *n)
{
	json_object **v = NULL;
	char line[8192];
	FILE *fp = fopen(path, "r");

	*n = 0;
	assert_non_null(fp);
	while (fgets(line, sizeof(line), fp)) {
		v = realloc(v, (*n + 1) * sizeof(*v));
		assert_non_null(v);
		v[*n] = json_tokener_parse(line);
		assert_non_null(v[*n]);
		(*n)++;
	}
	fclose(fp);
	return v;
}

static void free_lines(json_object **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_object_put(v[i]);
	free(v);
}

/* How many lines the events file holds. */
static size_t lines_in(const char *path)
{
	size_t n;
	json_object **v = read_lines(path, &n);

	free_lines(v, n);
	return n;
}

/* The newest line of the control socket's history. */
static const char *last_recent(const struct tg_control *c)
{
	return c->recent[(c->recent_head + TG_RECENT_EVENTS - 1) % TG_RECENT_EVENTS];
}

static void test_batch_reaches_file_on_flush(void **state)
{
	struct fixture *f = *state;
	struct tg_event ev;
	json_object **lines;
	size_t n;

	for (uint64_t i = 1; i <= 3; i++) {
		plaintext_record(&ev, i);
		assert_int_equal(pipeline_record(&f->p, &ev, sizeof(ev)), 0);
	}
	assert_int_equal(f->p.file_sink.pending, 3);
	assert_int_equal(f->p.events_emitted, 0);	/* counted when the batch is written */
	assert_int_equal(lines_in(f->events_path), 0);
	pipeline_flush(&f->p);
	assert_int_equal(f->p.events_emitted, 3);
	assert_int_equal(f->p.file_sink.sent, 3);
	assert_int_equal(f->p.file_sink.pending, 0);
	assert_true(f->p.file_sink.ok);
	lines = read_lines(f->events_path, &n);
	assert_int_equal(n, 3);
	assert_string_equal(get_str(lines[0], "type", NULL), "plaintext");
	assert_string_equal(get_str(lines[0], "action", NULL), "flagged");
	assert_string_equal(get_str(lines[0], "host", NULL), "node-1");
	assert_string_equal(get_str(lines[0], "destination", "class"), "storage");
	/* the control socket's history holds the same bytes as the file's last line */
	assert_int_equal(f->control.recent_n, 3);
	json_object *recent = json_tokener_parse(last_recent(&f->control));

	assert_non_null(recent);
	assert_string_equal(get_str(lines[2], "event_id", NULL), get_str(recent, "event_id", NULL));
	json_object_put(recent);
	free_lines(lines, n);
}

static void test_event_id_same_when_read_again(void **state)
{
	struct fixture *f = *state;
	struct tg_event ev;
	json_object **lines;
	size_t n;

	plaintext_record(&ev, 7);
	pipeline_record(&f->p, &ev, sizeof(ev));
	pipeline_record(&f->p, &ev, sizeof(ev));	/* a record a killed agent had read */
	plaintext_record(&ev, 8);
	pipeline_record(&f->p, &ev, sizeof(ev));
	pipeline_flush(&f->p);
	lines = read_lines(f->events_path, &n);
	assert_int_equal(n, 3);
	assert_int_equal(strlen(get_str(lines[0], "event_id", NULL)), TG_EVENT_ID_LEN);
	assert_string_equal(get_str(lines[0], "event_id", NULL), get_str(lines[1], "event_id", NULL));
	assert_string_not_equal(get_str(lines[0], "event_id", NULL), get_str(lines[2], "event_id", NULL));
	free_lines(lines, n);
}

static void test_short_record_skipped(void **state)
{
	struct fixture *f = *state;
	struct tg_event ev;

	plaintext_record(&ev, 1);
	assert_int_equal(pipeline_record(&f->p, &ev, sizeof(ev) - 1), 0);
	pipeline_flush(&f->p);
	assert_int_equal(lines_in(f->events_path), 0);
	assert_int_equal(f->p.events_emitted, 0);
	assert_int_equal(f->p.events_write_failed, 0);
	assert_int_equal(f->control.recent_n, 0);
}

/* A key in a file under the fixture's directory, and a protector hashing destination.class. */
static void protect_destination_name(struct fixture *f)
{
	char path[160], err[256], *hash_fields[] = { "destination.class" };
	char *paths[1] = { path };
	FILE *fp;

	snprintf(path, sizeof(path), "%s/key.hex", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", fp);
	fclose(fp);
	chmod(path, 0600);
	f->ai.keys = keyring_load(paths, 1, err, sizeof(err));
	assert_non_null(f->ai.keys);
	f->ai.fc = fieldcrypt_new(f->ai.keys, NULL, 0, hash_fields, 1, err, sizeof(err));
	assert_non_null(f->ai.fc);
	unlink(path);
}

static void test_fields_protected_after_tally(void **state)
{
	struct fixture *f = *state;
	struct tg_event ev;
	json_object **lines;
	const char *name;
	size_t n;

	protect_destination_name(f);
	plaintext_record(&ev, 1);
	pipeline_record(&f->p, &ev, sizeof(ev));
	pipeline_flush(&f->p);
	lines = read_lines(f->events_path, &n);
	assert_int_equal(n, 1);
	name = get_str(lines[0], "destination", "class");
	assert_non_null(name);
	assert_memory_equal(name, TG_HMAC_PREFIX, strlen(TG_HMAC_PREFIX));
	assert_null(strstr(last_recent(&f->control), "\"storage\""));	/* followers see it protected */
	assert_non_null(strstr(last_recent(&f->control), TG_HMAC_PREFIX));
	assert_int_equal(strlen(get_str(lines[0], "event_id", NULL)), TG_EVENT_ID_LEN);
	free_lines(lines, n);
	/* the tally grouped by the clear name, before protection */
	json_object *top = tally_top_json(f->p.top.destinations, "destination");

	assert_non_null(top);
	assert_non_null(strstr(json_object_to_json_string(top), "storage"));
	json_object_put(top);
}

static void test_agent_event_stamped_and_flushed(void **state)
{
	struct fixture *f = *state;
	json_object **lines;
	size_t n;

	pipeline_agent_event(&f->p, "start", NULL);
	pipeline_agent_event(&f->p, "reload", "policy changed");
	/* no pipeline_flush(): agent events are written at once */
	lines = read_lines(f->events_path, &n);
	assert_int_equal(n, 2);
	assert_string_equal(get_str(lines[0], "type", NULL), "agent");
	assert_string_equal(get_str(lines[0], "action", NULL), "start");
	assert_string_equal(get_str(lines[0], "agent", "pin_path"), "/sys/fs/bpf/tlsguard-test");
	assert_string_equal(get_str(lines[0], "policy", "sha256"), "ab12");
	assert_string_equal(get_str(lines[0], "policy", "source"), f->policy->source);
	assert_string_equal(get_str(lines[1], "message", NULL), "policy changed");
	assert_non_null(get_str(lines[0], "event_id", NULL));
	assert_string_not_equal(get_str(lines[0], "event_id", NULL), get_str(lines[1], "event_id", NULL));
	assert_int_equal(f->p.events_emitted, 2);
	free_lines(lines, n);
}

static void test_file_failure_counted(void **state)
{
	struct fixture *f = *state;
	struct tg_event ev;

	event_file_close(&f->p.ev_file);
	assert_int_equal(event_file_open(&f->p.ev_file, "/dev/full"), 0);
	for (uint64_t i = 1; i <= 2; i++) {
		plaintext_record(&ev, i);
		pipeline_record(&f->p, &ev, sizeof(ev));
	}
	pipeline_flush(&f->p);
	assert_false(f->p.file_sink.ok);
	assert_int_equal(f->p.file_sink.failed, 2);
	assert_int_equal(f->p.events_write_failed, 2);
	assert_int_equal(f->p.events_emitted, 0);
	assert_non_null(strstr(f->p.file_sink.last_error, "write"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_batch_reaches_file_on_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_event_id_same_when_read_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_short_record_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fields_protected_after_tally, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_event_stamped_and_flushed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_failure_counted, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
