// SPDX-License-Identifier: MIT
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "events.h"
#include "tally.h"

static void tally(struct tg_tally *t, const char *key)
{
	struct tg_tally *least = &t[0];

	for (size_t i = 0; i < TG_TOP_MAX; i++) {
		if (t[i].count && !strcmp(t[i].key, key)) {
			t[i].count++;
			return;
		}
		if (t[i].count < least->count)
			least = &t[i];
	}
	/* full: the least seen gives way (top-N of a bounded table, not exact) */
	snprintf(least->key, sizeof(least->key), "%s", key);
	least->count = 1;
}

static const char *get2(json_object *o, const char *a, const char *b)
{
	json_object *x;

	if (!json_object_object_get_ex(o, a, &x) || !x || !json_object_object_get_ex(x, b, &x) || !x)
		return NULL;
	return json_object_get_string(x);
}

void tally_fields(struct tg_top *t, const char *type, const char *cg, const char *comm,
		  const char *cls, const char *name, const char *ip, const char *port)
{
	char key[320];

	if (!type || !strcmp(type, "tls"))
		return;
	snprintf(key, sizeof(key), "%s%s%s%s", cg ? cg : "?", comm ? " (" : "", comm ? comm : "",
		 comm ? ")" : "");
	tally(t->workloads, key);
	snprintf(key, sizeof(key), "%s %s:%s", cls ? cls : "?", name ? name : ip ? ip : "?",
		 port ? port : "?");
	tally(t->destinations, key);
}

void tally_event(struct tg_top *t, json_object *ev)
{
	const char *type = NULL;
	json_object *x;

	if (json_object_object_get_ex(ev, "type", &x))
		type = json_object_get_string(x);
	tally_fields(t, type, get2(ev, "workload", "cgroup"), get2(ev, "workload", "comm"),
		     get2(ev, "destination", "class"), get2(ev, "destination", "name"),
		     get2(ev, "destination", "ip"), get2(ev, "destination", "port"));
}

/* A key part as json-c would hold it: valid UTF-8 (*fixed: to free). */
static const char *tally_text(const char *s, char **fixed)
{
	size_t n;

	*fixed = NULL;
	if (!s || tg_utf8_valid(s, strlen(s)))
		return s;
	*fixed = tg_utf8_repair(s, strlen(s), &n);
	return *fixed ? *fixed : "?";
}

void tally_event_keys(struct tg_top *t, const struct tg_event_keys *k)
{
	char *f[4], port[8];

	snprintf(port, sizeof(port), "%u", k->port);
	tally_fields(t, k->type, tally_text(k->cgroup, &f[0]), tally_text(k->comm, &f[1]),
		     tally_text(k->cls, &f[2]), tally_text(k->name, &f[3]), k->ip, port);
	for (int i = 0; i < 4; i++)
		free(f[i]);
}

static int tally_cmp(const void *x, const void *y)
{
	const struct tg_tally *a = x, *b = y;

	return a->count < b->count ? 1 : a->count > b->count ? -1 : strcmp(a->key, b->key);
}

json_object *tally_top_json(const struct tg_tally *t, const char *label)
{
	struct tg_tally sorted[TG_TOP_MAX];
	json_object *arr = json_object_new_array();
	size_t n = 0;

	for (size_t i = 0; i < TG_TOP_MAX; i++)
		if (t[i].count)
			sorted[n++] = t[i];
	qsort(sorted, n, sizeof(sorted[0]), tally_cmp);
	for (size_t i = 0; i < n && i < TG_TOP_SHOWN; i++) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, label, tg_json_string(sorted[i].key));
		json_object_object_add(o, "violations", json_object_new_uint64(sorted[i].count));
		json_object_array_add(arr, o);
	}
	return arr;
}
