// SPDX-License-Identifier: MIT
/* tlsguard events: the agent's recent events, then (--follow) live ones. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/client.h"
#include "cli/render.h"
#include "cmdline.h"
#include "commands.h"
#include "control_proto.h"
#include "escape.h"
#include "log.h"

static const char *get(json_object *o, const char *a, const char *b)
{
	json_object *x = tg_json_member(o, a, b);

	/* values only: a list or mapping would print as JSON, keys unescaped */
	if (!x || json_object_is_type(x, json_type_object) || json_object_is_type(x, json_type_array))
		return NULL;
	return json_object_get_string(x);
}

static const char *or(const char *v, const char *dflt)
{
	return v ? v : dflt;
}

void events_render_text(FILE *out, json_object *ev)
{
	const char *name = get(ev, "destination", "name"), *method = get(ev, "protocol", "method");
	char what[400] = "";

	if (method)
		snprintf(what, sizeof(what), "%s %s Host=%s", or(get(ev, "protocol", "detected"), "?"), method,
			 or(get(ev, "protocol", "host"), "-"));
	else
		snprintf(what, sizeof(what), "%s", or(get(ev, "protocol", "detected"), "-"));
	fprintf(out, "%s  %-15s %-8s %-10s %s:%s  %s[%s] %s  %s\n", or(get(ev, "time", NULL), "-"),
	       or(get(ev, "type", NULL), "-"), or(get(ev, "action", NULL), "-"),
	       or(get(ev, "destination", "class"), "-"), name ? name : or(get(ev, "destination", "ip"), "-"),
	       or(get(ev, "destination", "port"), "-"), or(get(ev, "workload", "comm"), "?"),
	       or(get(ev, "workload", "pid"), "?"), or(get(ev, "workload", "cgroup"), "-"), what);
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: tlsguard events [--socket PATH] [--follow] [--type T] [--workload W] [-o text|json]\n\n"
		"The events the agent keeps in memory (the last %d), then with --follow the live\n"
		"ones until interrupted.\n\n"
		"  -s, --socket PATH   control socket (default %s)\n"
		"  -f, --follow        keep printing new events\n"
		"  -t, --type T        only events of type T (plaintext, blocked_connect, tls, ...)\n"
		"  -w, --workload W    only events whose pod or comm is W, or whose cgroup contains W\n"
		"  -o, --output FMT    text (default) or json (one event per line, as the agent writes)\n"
		"  -h, --help          this text\n",
		TG_RECENT_EVENTS, TG_DEFAULT_SOCKET);
}

struct events_args {
	const char *socket_path, *fmt, *type, *workload;
	bool follow;
};

int cmd_events(int argc, char **argv)
{
	static const struct tg_cmdline_opt opts[] = {
		TG_OPT_STR("socket", 's', struct events_args, socket_path),
		TG_OPT_FLAG("follow", 'f', struct events_args, follow),
		TG_OPT_STR("type", 't', struct events_args, type),
		TG_OPT_STR("workload", 'w', struct events_args, workload),
		TG_OPT_STR("output", 'o', struct events_args, fmt),
		{ 0 },
	};
	struct events_args a = { .socket_path = TG_DEFAULT_SOCKET, .fmt = "text" };
	json_object *req, *ev;
	int ret, bad = 0;
	FILE *f;

	ret = client_parse_options(argc, argv, opts, usage, &a, &a.fmt);
	if (ret != TG_CMDLINE_GO)
		return ret;
	req = control_request_new(TG_CONTROL_REQ_EVENTS);
	json_object_object_add(req, TG_CONTROL_FIELD_FOLLOW, json_object_new_boolean(a.follow));
	if (a.type)
		json_object_object_add(req, TG_CONTROL_FIELD_TYPE, json_object_new_string(a.type));
	if (a.workload)
		json_object_object_add(req, TG_CONTROL_FIELD_WORKLOAD, json_object_new_string(a.workload));
	f = client_request(a.socket_path, req);
	json_object_put(req);
	if (!f)
		return TG_EXIT_FAIL;
	signal(SIGPIPE, SIG_DFL);
	while ((ev = client_read(f, &bad)) || bad) {
		if (!ev)
			continue;
		if (json_object_object_get_ex(ev, "error", NULL)) {
			tg_err("agent: %s", get(ev, "error", NULL));
			json_object_put(ev);
			fclose(f);
			return TG_EXIT_FAIL;
		}
		if (!strcmp(a.fmt, "json")) {
			tg_json_strings_safe(ev);	/* no raw control character: escape.h */
			printf("%s\n", json_object_to_json_string_ext(ev, JSON_C_TO_STRING_PLAIN |
								     JSON_C_TO_STRING_NOSLASHESCAPE));
		} else if (!tg_json_strings_to_text(ev)) {	/* names workloads chose: escape.h */
			events_render_text(stdout, ev);
		}
		fflush(stdout);
		json_object_put(ev);
	}
	fclose(f);
	return TG_EXIT_OK;
}
