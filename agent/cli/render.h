/* SPDX-License-Identifier: MIT */
/*
 * Text views of what the agent sends, for people: `tlsguard status` and
 * `tlsguard events`. Their strings must be escaped first
 * (tg_json_strings_to_text(), escape.h): process names, cgroup paths, pod
 * names and server errors are chosen by others and would reach the terminal.
 */
#ifndef TLSGUARD_CLI_RENDER_H
#define TLSGUARD_CLI_RENDER_H

#include <stdbool.h>
#include <stdio.h>

#include <json-c/json.h>

/* The `tlsguard status` text of a status object; @color: ANSI bold and colours. */
void status_render_text(FILE *out, json_object *status, bool color);

/* One `tlsguard events` line for an event. */
void events_render_text(FILE *out, json_object *ev);

#endif /* TLSGUARD_CLI_RENDER_H */
