// SPDX-License-Identifier: MIT
/*
 * `tlsguard policy`: check a policy file before deploying it, or print the
 * built-in one as a starting point. `check` exits 2 on an invalid policy so
 * that CI and admission hooks can gate on it; every problem is printed, not
 * only the first, as FILE:LINE:COL: message.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "log.h"
#include "policy.h"

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: tlsguard policy <command>\n\n"
		"Commands:\n"
		"  check FILE      validate a policy file; errors as FILE:LINE:COL: message\n"
		"                  (FILE \"-\" reads standard input)\n"
		"  show-default    print the built-in policy (YAML)\n\n"
		"Exit status: 0 valid, 1 file unreadable, 2 invalid policy or usage.\n");
}

static void usage_check(FILE *out)
{
	fprintf(out,
		"Usage: tlsguard policy check FILE\n\n"
		"Validate FILE (\"-\" for standard input). Prints \"FILE: ok (N destinations,\n"
		"M exceptions)\" and exits 0 when valid; prints every problem as\n"
		"FILE:LINE:COL: message and exits 2 when not; exits 1 when FILE cannot be read.\n");
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
 * Standard input into memory, so "-" goes through the same loader; one byte
 * past the limit is enough for the loader to refuse it.
 */
static int load_stdin(struct tg_policy **out, struct tg_diag *diag)
{
	size_t len = 0, cap = 0;
	char *buf = NULL, *nb;
	size_t n;
	int ret;

	while (len <= TG_POLICY_MAX_BYTES) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len, stdin);

		len += n;
		if (n == 0)
			break;
	}
	if (ferror(stdin)) {
		free(buf);
		tg_err("<stdin>: cannot read: %s", strerror(errno));
		return -EIO;
	}
	ret = policy_load_buffer("<stdin>", buf, len, out, diag);
	free(buf);
	return ret;
}

static int policy_check(int argc, char **argv)
{
	struct tg_diag diag = { 0 };
	struct tg_policy *p = NULL;
	const char *file;
	int ret, argi = 1;

	if (argc > 1 && is_help(argv[1])) {
		usage_check(stdout);
		return TG_EXIT_OK;
	}
	if (argc > 1 && !strcmp(argv[1], "--"))
		argi++;
	if (argc != argi + 1 || (argv[argi][0] == '-' && argv[argi][1] && argi == 1)) {
		usage_check(stderr);
		return TG_EXIT_USAGE;
	}
	file = argv[argi];
	if (!strcmp(file, "-"))
		ret = load_stdin(&p, &diag);
	else
		ret = policy_load_file(file, &p, &diag);
	for (size_t i = 0; i < diag.n; i++)
		tg_err("%s", diag.msgs[i]);
	diag_free(&diag);
	if (ret) {
		/* an unreadable file is not an invalid policy: 1, as for any runtime failure */
		return ret == -EINVAL ? TG_EXIT_USAGE : TG_EXIT_FAIL;
	}
	printf("%s: ok (%zu destinations, %zu exceptions)\n", p->source, p->ndests,
	       p->nexceptions);
	policy_free(p);
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
