// SPDX-License-Identifier: MIT
/*
 * `tlsguard policy`: check a policy file before deploying it, or print the
 * built-in one as a starting point. `check` exits 2 on an invalid policy so
 * that CI and admission hooks can gate on it; every problem is printed, not
 * only the first, as FILE:LINE:COL: message.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "log.h"
#include "policy.h"
#include "prepare.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: tlsguard policy <command>\n\n"
		"Commands:\n"
		"  check [--cgroup PATH]... [--offline] FILE\n"
		"                  check a policy file as 'tlsguard agent' would at start on this\n"
		"                  host; errors as FILE:LINE:COL: message (FILE \"-\" reads standard\n"
		"                  input)\n"
		"  show-default    print the built-in policy (YAML)\n\n"
		"Exit status: 0 valid, 1 file unreadable, 2 invalid policy or usage.\n");
}

static void usage_check(FILE *out)
{
	fprintf(out,
		"Usage: tlsguard policy check [--cgroup PATH]... [--offline] FILE\n\n"
		"Check FILE (\"-\" for standard input) the way 'tlsguard agent' does before it\n"
		"starts, with the same messages: the YAML (syntax, schema, size and nesting\n"
		"limits), then on this host the cgroups to attach to, the service tags files,\n"
		"host and proxy names, whether the destinations fit the kernel map, control.group,\n"
		"the event key files and the Application Insights connection string file.\n"
		"Prints \"FILE: ok (N destinations, M exceptions)\" and exits 0 when the agent\n"
		"would start with it; prints every problem (FILE:LINE:COL: message where it has a\n"
		"place in the file) and exits 2 when not; exits 1 when FILE cannot be read.\n\n"
		"  -c, --cgroup PATH   the cgroups 'tlsguard agent --cgroup' would be given\n"
		"                      (instead of workloads.cgroups)\n"
		"      --offline       the file alone, for CI and admission checks away from the\n"
		"                      node: no cgroups, no files it names, no name resolution\n"
		"                      (the map capacity counts its prefixes only)\n"
		"  -h, --help          this text\n");
}

static void usage_show_default(FILE *out)
{
	fprintf(out,
		"Usage: tlsguard policy show-default\n\n"
		"Print the built-in policy, used when no configuration file exists.\n");
}

static bool is_help(const char *arg)
{
	return !strcmp(arg, "--help") || !strcmp(arg, "-h");
}

/*
 * Standard input into a file of our own, so "-" goes through the same
 * preparation as a file; one byte past the limit is enough for the loader
 * to refuse it.
 */
static int stdin_to_file(char *path, size_t len)
{
	char buf[65536];
	size_t total = 0, n;
	int fd;

	snprintf(path, len, "/tmp/tlsguard-policy-stdin-XXXXXX");
	fd = mkstemp(path);
	if (fd < 0)
		return -errno;
	while (total <= TG_POLICY_MAX_BYTES && (n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
		if (write(fd, buf, n) != (ssize_t)n) {
			int err = -errno;

			close(fd);
			unlink(path);
			return err;
		}
		total += n;
	}
	close(fd);
	if (ferror(stdin)) {
		unlink(path);
		return -EIO;
	}
	return 0;
}

/* The outcome of prepare_policy() as an exit status. */
static int exit_status(int err)
{
	switch (err) {
	case 0:
		return TG_EXIT_OK;
	case -EINVAL:
	case -E2BIG:
	case -ENOENT:
		return TG_EXIT_USAGE;	/* the agent would refuse it: exit 2, as it does */
	default:
		return TG_EXIT_FAIL;	/* unreadable, out of memory: not a verdict on the policy */
	}
}

/* "FILE: ok (...)", with port entries and overrides when the policy has them. */
static void print_ok(const struct tg_policy *p)
{
	size_t entries = 0;

	for (size_t i = 0; i < p->ndests; i++)
		entries += p->dests[i].parent >= 0;
	if (entries)
		printf("%s: ok (%zu destinations, %zu port entries, %zu exceptions, %zu overrides)\n",
		       p->source, p->ndests - entries, entries, p->nexceptions, p->noverrides);
	else if (p->noverrides)
		printf("%s: ok (%zu destinations, %zu exceptions, %zu overrides)\n", p->source,
		       p->ndests, p->nexceptions, p->noverrides);
	else
		printf("%s: ok (%zu destinations, %zu exceptions)\n", p->source, p->ndests,
		       p->nexceptions);
}

static int policy_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cgroup", required_argument, NULL, 'c' },
		{ "offline", no_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct tg_prepare_opts o = { .scope = TG_PREP_START, .mode_override = -1 };
	char *cgroups[64], tmp[64] = "";
	struct tg_diag diag = { 0 };
	struct tg_prepared prep;
	int c, err;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (o.ncgroups == sizeof(cgroups) / sizeof(cgroups[0])) {
				tg_err("policy check: at most %zu --cgroup", o.ncgroups);
				return TG_EXIT_USAGE;
			}
			cgroups[o.ncgroups++] = optarg;
			break;
		case 'O':
			o.scope = TG_PREP_FILE;
			break;
		case 'h':
			usage_check(stdout);
			return TG_EXIT_OK;
		default:
			usage_check(stderr);
			return TG_EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		usage_check(stderr);
		return TG_EXIT_USAGE;
	}
	o.cgroups = cgroups;
	o.path = argv[optind];
	if (!strcmp(o.path, "-")) {
		err = stdin_to_file(tmp, sizeof(tmp));
		if (err) {
			tg_err("<stdin>: cannot read: %s", strerror(-err));
			return TG_EXIT_FAIL;
		}
		o.path = tmp;
		o.name = "<stdin>";
	}
	err = prepare_policy(&o, &prep, &diag);
	for (size_t i = 0; i < diag.n; i++)
		tg_err("%s", diag.msgs[i]);
	diag_free(&diag);
	if (tmp[0])
		unlink(tmp);
	if (err)
		return exit_status(err);
	print_ok(prep.policy);
	prepared_free(&prep);
	return TG_EXIT_OK;
}

static int policy_show_default(int argc, char **argv)
{
	if (argc > 1 && is_help(argv[1])) {
		usage_show_default(stdout);
		return TG_EXIT_OK;
	}
	if (argc > 1) {
		usage_show_default(stderr);
		return TG_EXIT_USAGE;
	}
	fputs(tg_default_policy_yaml, stdout);
	return fflush(stdout) ? TG_EXIT_FAIL : TG_EXIT_OK;
}

int cmd_policy(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return TG_EXIT_USAGE;
	}
	if (is_help(argv[1]) || !strcmp(argv[1], "help")) {
		usage(stdout);
		return TG_EXIT_OK;
	}
	if (!strcmp(argv[1], "check"))
		return policy_check(argc - 1, argv + 1);
	if (!strcmp(argv[1], "show-default"))
		return policy_show_default(argc - 1, argv + 1);
	tg_err("policy: unknown command '%s'", argv[1]);
	usage(stderr);
	return TG_EXIT_USAGE;
}
