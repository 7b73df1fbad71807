// SPDX-License-Identifier: MIT
/* tlsguard status: what the agent is doing, for people (-o text) and programs (-o json). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/client.h"
#include "cli/render.h"
#include "cmdline.h"
#include "commands.h"
#include "control_proto.h"
#include "escape.h"
#include "log.h"

struct style {
	const char *bold, *green, *red, *yellow, *reset;
	FILE *out;
};

/*
 * Only values are shown: a list or mapping would print as JSON, with keys
 * tg_json_strings_to_text() did not escape.
 */
static bool scalar(json_object *x)
{
	return x && !json_object_is_type(x, json_type_object) && !json_object_is_type(x, json_type_array);
}

static const char *s(json_object *o, const char *path)
{
	char key[64];
	const char *dot;
	json_object *x = o;

	while (x && (dot = strchr(path, '.'))) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		if (!json_object_object_get_ex(x, key, &x))
			return "-";
		path = dot + 1;
	}
	if (!x || !json_object_object_get_ex(x, path, &x) || !scalar(x))
		return "-";
	return json_object_get_string(x);
}

/* The list under @key of @o, and its length; 0 when absent or not a list. */
static size_t list(json_object *o, const char *key, json_object **arr)
{
	if (!json_object_object_get_ex(o, key, arr) || !json_object_is_type(*arr, json_type_array))
		return 0;
	return json_object_array_length(*arr);
}

/* A list entry as text; "-" when it is not there. */
static const char *item(json_object *arr, size_t i)
{
	json_object *x = json_object_array_get_idx(arr, i);

	return scalar(x) ? json_object_get_string(x) : "-";
}

static void section(const struct style *st, const char *title)
{
	fprintf(st->out, "\n%s%s%s\n", st->bold, title, st->reset);
}

static void print_agent(const struct style *st, json_object *o)
{
	section(st, "Agent");
	fprintf(st->out, "  %-16s %s (up %ss, since %s)\n", "pid", s(o, "agent.pid"), s(o, "agent.uptime_s"),
	       s(o, "agent.started_at"));
	fprintf(st->out, "  %-16s %s (from %s)\n", "mode", s(o, "agent.mode"), s(o, "agent.mode_source"));
	fprintf(st->out, "  %-16s %s\n", "fail mode", s(o, "agent.fail_mode"));
	fprintf(st->out, "  %-16s %s%s\n", "pins", s(o, "agent.pin_path"),
	       !strcmp(s(o, "agent.adopted_pins"), "true") ? " (adopted from a previous agent)" : "");
	fprintf(st->out, "  %-16s %s", "pin layout", s(o, "handoff.layout"));
	if (!strcmp(s(o, "handoff.draining"), "true"))
		fprintf(st->out, " (upgrading from layout %s: it judges its %s open flow(s) until they are "
		       "decided)", s(o, "handoff.retiring_layout"), s(o, "handoff.retiring_open_flows"));
	fprintf(st->out, "\n");
	fprintf(st->out, "  %-16s %s\n", "control socket", s(o, "control.socket"));
}

/* A section of one line per member of the list under @key, each printed by @line. */
static void print_list(const struct style *st, json_object *o, const char *title, const char *key,
		       void (*line)(const struct style *st, json_object *member))
{
	json_object *arr;
	size_t n;

	section(st, title);
	n = list(o, key, &arr);
	for (size_t i = 0; i < n; i++)
		line(st, json_object_array_get_idx(arr, i));
}

static void print_hook(const struct style *st, json_object *h)
{
	int ok = !strcmp(s(h, "attached"), "true");
	const char *in = s(h, "chained_in");	/* "-" when null or absent (an older agent) */

	fprintf(st->out, "  %-11s %s%-12s%s cgroup %-24s prog %-6s %s%s%s\n", s(h, "name"),
	       ok ? st->green : st->red, ok ? "attached" : "NOT ATTACHED", st->reset,
	       s(h, "cgroup"), s(h, "prog_id"), s(h, "pinned"), strcmp(in, "-") ? " runs in " : "",
	       strcmp(in, "-") ? in : "");
}

/* The backstop for addresses no name covers: which file, how old (a weekly download). */
static void print_service_tags(const struct style *st, json_object *o)
{
	const char *file = s(o, "policy.service_tags.file");
	long days = atol(s(o, "policy.service_tags.age_s")) / 86400;

	if (!strcmp(file, "-"))
		return;
	if (!strcmp(s(o, "policy.service_tags.loaded"), "true"))
		fprintf(st->out, "  %-16s %s: %s prefixes, file %ld day(s) old%s\n", "service tags", file,
			s(o, "policy.service_tags.prefixes"), days,
			days > 14 ? " (Microsoft publishes it weekly: refresh it)" : "");
	else
		fprintf(st->out, "  %-16s %s: not loaded (%s)\n", "service tags", file,
			s(o, "policy.service_tags.reason"));
}

static void print_policy(const struct style *st, json_object *o)
{
	json_object *classes;
	size_t n;

	section(st, "Policy");
	fprintf(st->out, "  %-16s %s\n", "source", s(o, "policy.source"));
	fprintf(st->out, "  %-16s %s\n", "sha256", s(o, "policy.sha256"));
	fprintf(st->out, "  %-16s %s (reloads %s, failed %s)\n", "loaded", s(o, "policy.loaded_at"),
	       s(o, "policy.reloads"), s(o, "policy.reload_failures"));
	fprintf(st->out, "  %-16s %s, %s exceptions, %s map entries, %s IPs resolved from %s hosts (%s unresolved)\n",
	       "destinations", s(o, "policy.destinations"), s(o, "policy.exceptions"),
	       s(o, "policy.map_entries"), s(o, "policy.resolved_ips"), s(o, "policy.hosts"),
	       s(o, "policy.unresolved_hosts"));
	fprintf(st->out, "  %-16s %s IPs from DNS answers (at most %s, %s evicted, %s expired)\n", "learned",
	       s(o, "policy.learned_ips"), s(o, "policy.dns.max_learned"), s(o, "policy.learned_evicted"),
	       s(o, "policy.dns.expired"));
	print_service_tags(st, o);
	fprintf(st->out, "  %-16s %s open (at most %s); not tracked: %s at the cap, %s without memory "
	       "(%s refused, %s passed)\n", "tracked flows",
	       s(o, "flows.live"), s(o, "flows.max"), s(o, "flows.untracked.flow_cap"),
	       s(o, "flows.untracked.storage"), s(o, "flows.untracked.refused"),
	       s(o, "flows.untracked.passed"));
	n = list(json_object_object_get(o, "policy"), "classes", &classes);
	if (!n)
		return;
	fprintf(st->out, "  %-14s %-8s %-14s %7s %7s %9s %8s %9s\n", "CLASS", "MODE", "PORTS", "FLOWS", "TLS",
	       "FLAGGED", "BLOCKED", "REFUSED");
	for (size_t i = 0; i < n; i++) {
		json_object *c = json_object_array_get_idx(classes, i);

		fprintf(st->out, "  %-14s %-8s %-14s %7s %7s %9s %8s %9s\n", s(c, "name"), s(c, "mode"),
		       s(c, "ports"), s(c, "flows.tracked"), s(c, "flows.tls"),
		       s(c, "flows.plaintext_flagged"), s(c, "flows.plaintext_blocked"),
		       s(c, "flows.connect_blocked"));
	}
}

static void print_counters(const struct style *st, json_object *o)
{
	section(st, "Counters since the agent started");
	fprintf(st->out, "  %-16s %-8s %-16s %s\n", "flows tracked", s(o, "counters.flows_tracked"), "tls",
	       s(o, "counters.tls"));
	fprintf(st->out, "  %-16s %-8s %-16s %s\n", "plaintext", s(o, "counters.plaintext"), "blocked",
	       s(o, "counters.blocked"));
	fprintf(st->out, "  %-16s %-8s %-16s %s\n", "flagged", s(o, "counters.flagged"), "refused connects",
	       s(o, "counters.connect_blocked"));
	fprintf(st->out, "  %-16s %-8s %-16s %s\n", "weak tls", s(o, "counters.weak_tls"), "sni mismatch",
	       s(o, "counters.sni_mismatch"));
	fprintf(st->out, "  %-16s %-8s %-16s %s\n", "events emitted", s(o, "counters.events_emitted"), "events lost",
	       s(o, "counters.events_lost"));
	fprintf(st->out, "  %-16s %-8s %-16s %s\n", "sockets killed", s(o, "counters.sockets_destroyed"),
	       "destroy failed", s(o, "counters.destroy_failed"));
}

static void print_sink(const struct style *st, json_object *k)
{
	int ok = !strcmp(s(k, "state"), "ok");

	if (!strcmp(s(k, "state"), "disabled")) {
		fprintf(st->out, "  %-11s disabled (not configured)\n", s(k, "name"));
		return;
	}
	fprintf(st->out, "  %-11s %s%-6s%s %s: sent %s, failed %s, queued %s, spooled %s, last success %s",
	       s(k, "name"), ok ? st->green : st->red, s(k, "state"), st->reset, s(k, "target"),
	       s(k, "sent"), s(k, "failed"), s(k, "queued"), s(k, "spooled"), s(k, "last_success"));
	if (strcmp(s(k, "last_error"), "-"))
		fprintf(st->out, ", last error: %s", s(k, "last_error"));
	fprintf(st->out, "\n");
}

static void print_top(const struct style *st, json_object *o, const char *which, const char *title,
		      const char *label)
{
	json_object *arr;
	size_t n = list(json_object_object_get(o, "top"), which, &arr);

	section(st, title);
	if (!n) {
		fprintf(st->out, "  none\n");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *t = json_object_array_get_idx(arr, i);

		fprintf(st->out, "  %6s  %s\n", s(t, "violations"), s(t, label));
	}
}

static void print_health(const struct style *st, json_object *o)
{
	json_object *h = json_object_object_get(o, "health"), *l;
	int healthy = !strcmp(s(o, "health.state"), "healthy");

	fprintf(st->out, "%stlsguard %s%s  %s%s%s\n", st->bold, s(o, "agent.version"), st->reset,
	       healthy ? st->green : st->red, s(o, "health.state"), st->reset);
	for (size_t i = 0, n = list(h, "reasons", &l); i < n; i++)
		fprintf(st->out, "  %s!%s %s\n", st->red, st->reset, item(l, i));
	for (size_t i = 0, n = list(h, "warnings", &l); i < n; i++)
		fprintf(st->out, "  %s!%s %s\n", st->yellow, st->reset, item(l, i));
}

void status_render_text(FILE *out, json_object *o, bool color)
{
	static const struct style colors = { "\033[1m", "\033[32m", "\033[31m", "\033[33m", "\033[0m", NULL };
	static const struct style plain = { "", "", "", "", "", NULL };
	struct style st = color ? colors : plain;

	st.out = out;
	print_health(&st, o);
	print_agent(&st, o);
	print_list(&st, o, "Kernel hooks", "hooks", print_hook);
	print_policy(&st, o);
	print_counters(&st, o);
	print_list(&st, o, "Sinks", "sinks", print_sink);
	print_top(&st, o, "workloads", "Top violating workloads", "workload");
	print_top(&st, o, "destinations", "Top violated destinations", "destination");
}

/* --check: exit 0 when healthy, 1 with the reasons when degraded. */
static int check(json_object *o)
{
	json_object *reasons;

	if (!strcmp(s(o, "health.state"), "healthy")) {
		printf("healthy\n");
		return TG_EXIT_OK;
	}
	printf("degraded");
	for (size_t i = 0, n = list(json_object_object_get(o, "health"), "reasons", &reasons); i < n; i++)
		printf("%s %s", i ? ";" : ":", item(reasons, i));
	printf("\n");
	return TG_EXIT_FAIL;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: tlsguard status [--socket PATH] [-o text|json] [--check]\n\n"
		"What the agent is doing: health, kernel hooks, policy, counters, sinks and\n"
		"the top violating workloads and destinations.\n\n"
		"  -s, --socket PATH   control socket (default %s)\n"
		"  -o, --output FMT    text (default; colour on a terminal) or json\n"
		"      --check         for probes: print 'healthy' and exit 0, or 'degraded: REASONS'\n"
		"                      and exit 1\n"
		"  -h, --help          this text\n\n"
		"Exit status: 0 ok, 1 agent unreachable or (with --check) degraded, 2 usage.\n",
		TG_DEFAULT_SOCKET);
}

struct status_args {
	const char *socket_path, *fmt;
	bool check;
};

int cmd_status(int argc, char **argv)
{
	static const struct tg_cmdline_opt opts[] = {
		TG_OPT_STR("socket", 's', struct status_args, socket_path),
		TG_OPT_STR("output", 'o', struct status_args, fmt),
		TG_OPT_FLAG("check", 0, struct status_args, check),
		{ 0 },
	};
	struct status_args a = { .socket_path = TG_DEFAULT_SOCKET, .fmt = "text" };
	const char *socket_path;
	json_object *req, *resp, *status;
	int bad, ret;
	FILE *f;

	ret = client_parse_options(argc, argv, opts, usage, &a, &a.fmt);
	if (ret != TG_CMDLINE_GO)
		return ret;
	socket_path = a.socket_path;
	ret = TG_EXIT_FAIL;
	req = control_request_new(TG_CONTROL_REQ_STATUS);
	f = client_request(socket_path, req);
	json_object_put(req);
	if (!f)
		return TG_EXIT_FAIL;
	resp = client_read(f, &bad);
	fclose(f);
	if (!resp || !json_object_object_get_ex(resp, "status", &status)) {
		if (bad)
			tg_err("the agent at %s sent a malformed reply", socket_path);
		else
			tg_err("the agent at %s closed the connection without a status (it answers "
			       "only root and the group named in control.group)", socket_path);
		json_object_put(resp);
		return TG_EXIT_FAIL;
	}
	/* names workloads chose and errors servers sent, escaped either way (escape.h) */
	if (!a.check && !strcmp(a.fmt, "json")) {
		tg_json_strings_safe(status);
		ret = printf("%s\n", json_object_to_json_string_ext(status, JSON_C_TO_STRING_PRETTY |
								    JSON_C_TO_STRING_NOSLASHESCAPE)) < 0;
	} else if (tg_json_strings_to_text(status)) {
		tg_err("out of memory");
	} else if (a.check) {
		ret = check(status);
	} else {
		status_render_text(stdout, status, isatty(STDOUT_FILENO));
		ret = TG_EXIT_OK;
	}
	json_object_put(resp);
	return ret;
}
