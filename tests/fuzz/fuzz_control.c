// SPDX-License-Identifier: MIT
/*
 * libFuzzer: control socket requests (from any local peer that may connect),
 * and the events filter they carry matched against events with names an
 * attacker chose (and the input as such an event).
 */
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "control.h"

static const char hostile_event[] =
	"{\"type\":\"plaintext\",\"workload\":{\"cgroup\":\"/svc\\u001b[2J\\ufffd\","
	"\"comm\":\"\\u001b]0;pwned\\u0007\",\"pod\":\"p\\u0000d\"}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tg_control_request r;
	json_tokener *tok;
	json_object *ev;
	const char *err;

	if (control_parse_request((const char *)data, size, &r, &err) == 0) {
		ev = json_tokener_parse(hostile_event);
		control_event_matches(ev, r.type, r.workload);
		json_object_put(ev);
		control_request_free(&r);
	}
	tok = json_tokener_new();
	ev = tok ? json_tokener_parse_ex(tok, (const char *)data, (int)size) : NULL;
	if (ev) {
		control_event_matches(ev, "plaintext", "\x1b]0;pwned\x07");
		control_event_matches(ev, NULL, "svc");
		json_object_put(ev);
	}
	json_tokener_free(tok);
	return 0;
}
