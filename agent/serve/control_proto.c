// SPDX-License-Identifier: MIT
/* The control protocol both sides share: requests and the events filter (control_proto.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "control_proto.h"

json_object *control_request_new(const char *cmd)
{
	json_object *req = json_object_new_object();

	json_object_object_add(req, "v", json_object_new_int(TG_CONTROL_VERSION));
	json_object_object_add(req, "cmd", json_object_new_string(cmd));
	return req;
}

static const char *opt_string(json_object *req, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(req, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool only_space(const char *p, const char *end)
{
	for (; p < end; p++)
		if (*p != ' ' && *p != '\t' && *p != '\r')
			return false;
	return true;
}

void control_request_free(struct tg_control_request *r)
{
	free(r->type);
	free(r->workload);
	r->type = r->workload = NULL;
}

int control_parse_request(const char *line, size_t len, struct tg_control_request *out,
			  const char **err)
{
	struct json_tokener *tok = json_tokener_new();
	json_object *req = NULL, *v, *cmd, *follow;
	const char *name, *type, *workload;
	int ret = -EINVAL;

	memset(out, 0, sizeof(*out));
	*err = "request is not a JSON object";
	if (!tok)
		return -ENOMEM;
	if (len <= INT32_MAX)
		req = json_tokener_parse_ex(tok, line, (int)len);
	/* trailing bytes after the object, or an unfinished one, are not a request */
	if (!req || json_tokener_get_error(tok) != json_tokener_success ||
	    !only_space(line + json_tokener_get_parse_end(tok), line + len) ||
	    !json_object_is_type(req, json_type_object))
		goto out;
	if (!json_object_object_get_ex(req, "v", &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int(v) != TG_CONTROL_VERSION) {
		*err = "unsupported protocol version (this agent speaks v1)";
		goto out;
	}
	if (!json_object_object_get_ex(req, "cmd", &cmd) || !json_object_is_type(cmd, json_type_string)) {
		*err = "missing \"cmd\"";
		goto out;
	}
	name = json_object_get_string(cmd);
	if (!strcmp(name, TG_CONTROL_REQ_STATUS)) {
		out->cmd = TG_CMD_STATUS;
	} else if (!strcmp(name, TG_CONTROL_REQ_EVENTS)) {
		out->cmd = TG_CMD_EVENTS;
		type = opt_string(req, TG_CONTROL_FIELD_TYPE);
		workload = opt_string(req, TG_CONTROL_FIELD_WORKLOAD);
		out->type = type ? strdup(type) : NULL;
		out->workload = workload ? strdup(workload) : NULL;
		out->follow = json_object_object_get_ex(req, TG_CONTROL_FIELD_FOLLOW, &follow) &&
			      json_object_get_boolean(follow);
		if ((type && !out->type) || (workload && !out->workload)) {
			control_request_free(out);
			ret = -ENOMEM;
			*err = "out of memory";
			goto out;
		}
	} else {
		*err = "unknown command";
		goto out;
	}
	*err = NULL;
	ret = 0;
out:
	json_object_put(req);
	json_tokener_free(tok);
	return ret;
}

static bool str_contains(json_object *o, const char *a, const char *b, const char *needle, bool exact)
{
	json_object *x;
	const char *s;

	if (!json_object_object_get_ex(o, a, &x) || !json_object_object_get_ex(x, b, &x))
		return false;
	s = json_object_get_string(x);
	if (!s)
		return false;
	return exact ? !strcmp(s, needle) : strstr(s, needle) != NULL;
}

bool control_event_matches(json_object *ev, const char *type, const char *workload)
{
	json_object *t;

	if (type && (!json_object_object_get_ex(ev, TG_CONTROL_FIELD_TYPE, &t) || strcmp(json_object_get_string(t), type)))
		return false;
	if (workload && !str_contains(ev, "workload", "pod", workload, true) &&
	    !str_contains(ev, "workload", "comm", workload, true) &&
	    !str_contains(ev, "workload", "cgroup", workload, false))
		return false;
	return true;
}
