// SPDX-License-Identifier: MIT
/* tlsguard events: the agent's recent events, then (--follow) live ones. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/client.h"
#include "cli/render.h"
#include "commands.h"
#include "control.h"
#include "escape.h"
#include "log.h"

static const char *get(json_object *o, const char *a, const char *b)
{
	json_object *x;

	if (!json_object_object_get_ex(o, a, &x) || !x)
		return NULL;
	if (b && (!json_object_object_get_ex(x, b, &x) || !x))
		return NULL;
	/* values only: a list or mapping would print as JSON, keys unescaped */
	if (json_object_is_type(x, json_type_object) || json_object_is_type(x, json_type_array))
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

int cmd_events(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "follow", no_argument, NULL, 'f' },
		{ "type", required_argument, NULL, 't' },
		{ "workload", required_argument, NULL, 'w' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *socket_path = TG_DEFAULT_SOCKET, *fmt = "text", *type = NULL, *workload = NULL;
	int c, bad = 0, follow = 0;
	json_object *req, *ev;
	FILE *f;

	optind = 1;
	while ((c = getopt_long(argc, argv, "s:ft:w:o:h", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			socket_path = optarg;
			break;
		case 'f':
			follow = 1;
			break;
		case 't':
			type = optarg;
			break;
		case 'w':
			workload = optarg;
			break;
		case 'o':
			fmt = optarg;
			break;
		case 'h':
			usage(stdout);
			return TG_EXIT_OK;
		default:
			usage(stderr);
			return TG_EXIT_USAGE;
		}
	}
	if (optind < argc || (strcmp(fmt, "text") && strcmp(fmt, "json"))) {
		usage(stderr);
		return TG_EXIT_USAGE;
	}
	req = client_new_request("events");
	json_object_object_add(req, "follow", json_object_new_boolean(follow));
	if (type)
		json_object_object_add(req, "type", json_object_new_string(type));
	if (workload)
		json_object_object_add(req, "workload", json_object_new_string(workload));
	f = client_request(socket_path, req);
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
		if (!strcmp(fmt, "json")) {
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
