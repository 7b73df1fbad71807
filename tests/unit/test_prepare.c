// SPDX-License-Identifier: MIT
/*
 * prepare_policy(): what each scope checks (the file alone for `policy check
 * --offline`, what a reload applies, what a start also needs), the outcome
 * codes and their messages, and the "unchanged file" shortcut of reloads.
 * tests/integration/test_policy_check_agrees.sh compares it with the agent.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "prepare.h"

static char dir[] = "/tmp/tg-prepare-XXXXXX";
static char file[64];

static void write_file(const char *yaml)
{
	FILE *f = fopen(file, "w");

	assert_non_null(f);
	fputs(yaml, f);
	fclose(f);
}

struct run {
	int ret;
	struct tg_prepared prep;
	struct tg_diag d;
};

static void run(struct run *r, enum tg_prepare_scope scope, const char *yaml)
{
	struct tg_prepare_opts o = { .path = file, .scope = scope, .mode_override = -1 };

	write_file(yaml);
	memset(&r->d, 0, sizeof(r->d));
	r->ret = prepare_policy(&o, &r->prep, &r->d);
}

static void done(struct run *r)
{
	if (!r->ret)
		prepared_free(&r->prep);
	diag_free(&r->d);
}

/* Files the policy names, none of which exist. */
static const char names_files[] =
	"workloads:\n  cgroups: [\"/tg-prepare-no-such-cgroup\"]\n"
	"destinations:\n"
	"  - name: storage\n"
	"    cidrs: [\"10.0.0.0/8\"]\n"
	"    service_tags: {file: /tg-prepare/no-tags.json, tags: [Storage]}\n"
	"control: {group: tg-prepare-no-such-group}\n"
	"events:\n  key_file: /tg-prepare/no-key\n";

static void test_scopes(void **state)
{
	struct run r;

	/* the file alone: valid */
	run(&r, TG_PREP_FILE, names_files);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.d.n, 0);
	assert_null(r.prep.hosts);
	assert_int_equal(r.prep.ncg, 0);
	done(&r);

	/* a reload reads the service tags, not the start-only settings */
	run(&r, TG_PREP_RELOAD, names_files);
	assert_int_equal(r.ret, -ENOENT);
	assert_int_equal(r.d.n, 1);
	assert_non_null(strstr(r.d.msgs[0], ":4:5: destination \"storage\": cannot read service tags "
			       "file /tg-prepare/no-tags.json: No such file or directory"));
	done(&r);

	/* a start: every one of them, in this order */
	run(&r, TG_PREP_START, names_files);
	assert_int_equal(r.ret, -ENOENT);
	assert_int_equal(r.d.n, 4);
	assert_string_equal(r.d.msgs[0], "cannot attach to cgroup /tg-prepare-no-such-cgroup: "
			    "No such file or directory");
	assert_non_null(strstr(r.d.msgs[1], "destination \"storage\": cannot read service tags"));
	assert_non_null(strstr(r.d.msgs[2], ": control.group: no group named 'tg-prepare-no-such-group'"));
	assert_non_null(strstr(r.d.msgs[3], ": events.key_file: key file /tg-prepare/no-key: "
			       "No such file or directory"));
	done(&r);
}

/* service_tags.file: the file of destinations that name tags without one of their own. */
static void test_policy_wide_service_tags(void **state)
{
	static const char tags_json[] =
		"{\"values\": [{\"name\": \"Storage\", \"properties\": "
		"{\"addressPrefixes\": [\"203.0.113.0/24\", \"2001:db8::/48\"]}}]}";
	char yaml[1024], path[] = "/tmp/tg-prepare-tags-XXXXXX";
	int fd = mkstemp(path);
	struct run r;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, tags_json, sizeof(tags_json) - 1), sizeof(tags_json) - 1);
	close(fd);
	snprintf(yaml, sizeof(yaml),
		 "service_tags: {file: %s}\n"
		 "destinations:\n"
		 "  - name: storage_tag\n"
		 "    service_tags: {tags: [Storage]}\n", path);
	run(&r, TG_PREP_RELOAD, yaml);
	assert_int_equal(r.ret, 0);
	assert_true(r.prep.policy->service_tags_loaded);
	assert_int_equal(r.prep.policy->service_tags_prefixes, 2);
	assert_int_equal(r.prep.policy->dests[0].ntag_cidrs, 2);
	assert_true(r.prep.policy->service_tags_mtime > 0);
	done(&r);

	/* optional and absent (the built-in policy without a download): not loaded, no error */
	unlink(path);
	snprintf(yaml, sizeof(yaml),
		 "service_tags: {file: %s, optional: true}\n"
		 "destinations:\n"
		 "  - name: storage_tag\n"
		 "    service_tags: {tags: [Storage]}\n", path);
	run(&r, TG_PREP_RELOAD, yaml);
	assert_int_equal(r.ret, 0);
	assert_false(r.prep.policy->service_tags_loaded);
	assert_string_equal(r.prep.policy->service_tags_why, "No such file or directory");
	assert_int_equal(r.prep.policy->dests[0].ntag_cidrs, 0);
	done(&r);

	/* not optional: absent refuses the policy, naming the destination */
	snprintf(yaml, sizeof(yaml),
		 "service_tags: {file: %s}\n"
		 "destinations:\n"
		 "  - name: storage_tag\n"
		 "    service_tags: {tags: [Storage]}\n", path);
	run(&r, TG_PREP_RELOAD, yaml);
	assert_int_equal(r.ret, -ENOENT);
	assert_non_null(strstr(r.d.msgs[0], "destination \"storage_tag\": cannot read service tags"));
	done(&r);

	/* tags without a file anywhere */
	run(&r, TG_PREP_RELOAD, "destinations:\n  - name: x\n    service_tags: {tags: [Storage]}\n");
	assert_int_equal(r.ret, -EINVAL);
	assert_non_null(strstr(r.d.msgs[0], ":2:5: destination \"x\": service_tags has no \"file\", and "
			       "the policy's service_tags.file is not set"));
	done(&r);
}

static void test_outcomes(void **state)
{
	struct tg_prepare_opts o = { .path = "/tg-prepare/no-such-policy", .scope = TG_PREP_FILE,
				     .mode_override = -1 };
	struct run r;
	char *big = NULL;
	size_t len;
	FILE *f;

	memset(&r.d, 0, sizeof(r.d));
	assert_int_equal(prepare_policy(&o, &r.prep, &r.d), -EIO);
	assert_string_equal(r.d.msgs[0], "/tg-prepare/no-such-policy: cannot read: No such file or directory");
	diag_free(&r.d);

	run(&r, TG_PREP_FILE, "mode: sometimes\n");
	assert_int_equal(r.ret, -EINVAL);
	assert_int_equal(r.d.n, 1);
	done(&r);

	/* the prefixes alone exceed the map: also without this host */
	f = open_memstream(&big, &len);
	fputs("destinations:\n  - name: big\n    cidrs:\n", f);
	for (int i = 0; i <= TG_MAX_DESTS; i++)
		fprintf(f, "      - 10.%d.%d.%d\n", i >> 16 & 255, i >> 8 & 255, i & 255);
	fclose(f);
	run(&r, TG_PREP_FILE, big);
	free(big);
	assert_int_equal(r.ret, -E2BIG);
	assert_int_equal(r.d.n, 1);
	assert_non_null(strstr(r.d.msgs[0], ": the policy needs 65537 destination map entries"));
	done(&r);
}

/* A reload that the file's unchanged content (or its absence for a moment) does not need. */
static void test_unless_sha256(void **state)
{
	struct tg_prepare_opts o = { .path = file, .scope = TG_PREP_RELOAD, .mode_override = -1 };
	struct run r;
	char sha[65];

	run(&r, TG_PREP_RELOAD, "mode: audit\n");
	assert_int_equal(r.ret, 0);
	memcpy(sha, r.prep.sha256, sizeof(sha));
	prepare_sha256_hex("mode: audit\n", strlen("mode: audit\n"), r.prep.sha256);
	assert_string_equal(sha, r.prep.sha256);
	done(&r);
	o.unless_sha256 = sha;
	assert_int_equal(prepare_policy(&o, &r.prep, &r.d), -EALREADY);
	write_file("mode: enforce\n");
	assert_int_equal(prepare_policy(&o, &r.prep, &r.d), 0);
	assert_int_equal(r.prep.policy->mode, TG_MODE_ENFORCE);
	prepared_free(&r.prep);
	unlink(file);
	assert_int_equal(prepare_policy(&o, &r.prep, &r.d), -EALREADY);	/* gone for a moment */
	assert_int_equal(r.d.n, 0);
}

static int setup(void **state)
{
	if (!mkdtemp(dir))
		return -1;
	snprintf(file, sizeof(file), "%s/policy.yaml", dir);
	return 0;
}

static int teardown(void **state)
{
	unlink(file);
	rmdir(dir);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scopes),
		cmocka_unit_test(test_outcomes),
		cmocka_unit_test(test_policy_wide_service_tags),
		cmocka_unit_test(test_unless_sha256),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
