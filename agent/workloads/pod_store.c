// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "pod_store.h"
#include "escape.h"

/* ---- pod table --------------------------------------------------------------- */

void wl_pod_free(struct wl_pod *p)
{
	free(p->name);
	free(p->namespace);
	for (size_t i = 0; i < p->nlabels; i++) {
		free(p->labels[i].key);
		free(p->labels[i].value);
	}
	free(p->labels);
	for (size_t i = 0; i < p->ncontainers; i++)
		free(p->containers[i].name);
	free(p->containers);
	memset(p, 0, sizeof(*p));
}

void wl_pod_table_clear(struct wl_pod_table *t)
{
	for (size_t i = 0; i < t->n; i++)
		wl_pod_free(&t->v[i]);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

struct wl_pod *wl_pod_table_find(const struct wl_pod_table *t, const char *uid)
{
	for (size_t i = 0; i < t->n; i++)
		if (!strcmp(t->v[i].uid, uid))
			return &t->v[i];
	return NULL;
}

int wl_pod_table_put(struct wl_pod_table *t, struct wl_pod *p)
{
	struct wl_pod *old = wl_pod_table_find(t, p->uid);

	if (old) {
		wl_pod_free(old);
		*old = *p;
		memset(p, 0, sizeof(*p));
		return 0;
	}
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		struct wl_pod *v = realloc(t->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	t->v[t->n++] = *p;
	memset(p, 0, sizeof(*p));
	return 0;
}

int wl_pod_table_del(struct wl_pod_table *t, const char *uid)
{
	struct wl_pod *p = wl_pod_table_find(t, uid);

	if (!p)
		return 0;
	wl_pod_free(p);
	*p = t->v[--t->n];
	return 1;
}

/* ---- Pod JSON ------------------------------------------------------------------- */

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static json_object *jobj(json_object *o, const char *key, json_type type)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
		return NULL;
	return v;
}

/* One more container of @p. 0 or -ENOMEM. */
int wl_pod_append_container(struct wl_pod *p, const char *id, const char *name)
{
	struct wl_container *c;

	c = realloc(p->containers, (p->ncontainers + 1) * sizeof(*c));
	if (!c)
		return -ENOMEM;
	p->containers = c;
	c += p->ncontainers;
	snprintf(c->id, sizeof(c->id), "%s", id);
	c->name = strdup(name);
	if (!c->name)
		return -ENOMEM;
	p->ncontainers++;
	return 0;
}

/* "containerd://<id>", "cri-o://<id>", "docker://<id>" → <id>. */
static int add_container_status(struct wl_pod *p, json_object *st)
{
	const char *name = jstr(st, "name"), *id = jstr(st, "containerID"), *sep;

	if (!name || !id || !(sep = strstr(id, "://")))
		return 0;	/* not started yet: no id */
	id = sep + 3;
	if (!*id || strlen(id) >= WL_CID_MAX)
		return 0;
	return wl_pod_append_container(p, id, name);
}

int workload_pod_from_json(json_object *pod, struct wl_pod *out)
{
	static const char *const status_lists[] = {
		"containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses",
	};
	json_object *meta = jobj(pod, "metadata", json_type_object);
	json_object *labels = jobj(meta, "labels", json_type_object);
	json_object *annotations = jobj(meta, "annotations", json_type_object);
	json_object *status = jobj(pod, "status", json_type_object);
	const char *uid = jstr(meta, "uid"), *name = jstr(meta, "name");
	const char *ns = jstr(meta, "namespace");
	/* a static pod's cgroup carries its config hash; the API shows its mirror */
	const char *mirror = jstr(annotations, "kubernetes.io/config.mirror");

	memset(out, 0, sizeof(*out));
	if (mirror && strlen(mirror) < WL_UID_MAX && *mirror)
		uid = mirror;
	if (!uid || !name || !ns || strlen(uid) >= WL_UID_MAX)
		return -EINVAL;
	snprintf(out->uid, sizeof(out->uid), "%s", uid);
	out->name = strdup(name);
	out->namespace = strdup(ns);
	out->labels_known = true;
	if (!out->name || !out->namespace)
		goto nomem;
	if (labels) {
		size_t n = (size_t)json_object_object_length(labels), k = 0;

		out->labels = calloc(n ? n : 1, sizeof(*out->labels));
		if (!out->labels)
			goto nomem;
		json_object_object_foreach(labels, key, val) {
			if (!json_object_is_type(val, json_type_string) || k >= n)
				continue;
			out->labels[k].key = strdup(key);
			out->labels[k].value = strdup(json_object_get_string(val));
			out->nlabels = ++k;
			if (!out->labels[k - 1].key || !out->labels[k - 1].value)
				goto nomem;
		}
	}
	for (size_t i = 0; i < sizeof(status_lists) / sizeof(status_lists[0]); i++) {
		json_object *list = jobj(status, status_lists[i], json_type_array);
		size_t n = list ? json_object_array_length(list) : 0;

		for (size_t j = 0; j < n; j++)
			if (add_container_status(out, json_object_array_get_idx(list, j)))
				goto nomem;
	}
	return 0;
nomem:
	wl_pod_free(out);
	return -ENOMEM;
}

/* Nesting bound for API server bodies (pod lists, watch lines): twice json-c's default. */
#define POD_JSON_DEPTH	64

static void copy_rv(json_object *obj, char rv[WL_RV_MAX])
{
	const char *v = jstr(jobj(obj, "metadata", json_type_object), "resourceVersion");

	if (v && strlen(v) < WL_RV_MAX)
		strcpy(rv, v);
}

int workload_apply_podlist(struct wl_pod_table *t, const char *body, size_t len, bool append,
			   char rv[WL_RV_MAX], char *cont, size_t contlen)
{
	json_object *root = tg_json_parse_depth(body, len, POD_JSON_DEPTH), *items;
	const char *c;
	size_t n;
	int err = 0;

	if (!root)
		return -EINVAL;
	items = jobj(root, "items", json_type_array);
	if (!items || (jstr(root, "kind") && strcmp(jstr(root, "kind"), "PodList"))) {
		json_object_put(root);
		return -EINVAL;
	}
	if (!append)
		wl_pod_table_clear(t);
	copy_rv(root, rv);
	c = jstr(jobj(root, "metadata", json_type_object), "continue");
	if (cont && contlen)
		snprintf(cont, contlen, "%s", c ? c : "");
	n = json_object_array_length(items);
	for (size_t i = 0; i < n && !err; i++) {
		struct wl_pod p;
		int r = workload_pod_from_json(json_object_array_get_idx(items, i), &p);

		if (r == -ENOMEM)
			err = r;
		else if (!r)
			err = wl_pod_table_put(t, &p);
		wl_pod_free(&p);
	}
	json_object_put(root);
	return err;
}

int workload_apply_watch_event(struct wl_pod_table *t, const char *line, size_t len,
			       char rv[WL_RV_MAX])
{
	json_object *root = tg_json_parse_depth(line, len, POD_JSON_DEPTH), *obj;
	const char *type;
	struct wl_pod p;
	int ret = WL_WATCH_UNCHANGED, r;

	if (!root)
		return WL_WATCH_ERROR;
	type = jstr(root, "type");
	obj = jobj(root, "object", json_type_object);
	if (!type || !obj) {
		ret = WL_WATCH_ERROR;
		goto out;
	}
	if (!strcmp(type, "ERROR")) {
		json_object *code;

		/* a Status: 410 Gone means our resourceVersion is too old */
		ret = json_object_object_get_ex(obj, "code", &code) &&
		      json_object_get_int(code) == 410 ? WL_WATCH_GONE : WL_WATCH_ERROR;
		goto out;
	}
	copy_rv(obj, rv);
	if (!strcmp(type, "BOOKMARK"))
		goto out;
	r = workload_pod_from_json(obj, &p);
	if (r) {
		ret = r == -ENOMEM ? r : WL_WATCH_UNCHANGED;
		goto out;
	}
	if (!strcmp(type, "ADDED") || !strcmp(type, "MODIFIED")) {
		r = wl_pod_table_put(t, &p);
		ret = r ? r : WL_WATCH_CHANGED;
	} else if (!strcmp(type, "DELETED")) {
		ret = wl_pod_table_del(t, p.uid) ? WL_WATCH_CHANGED : WL_WATCH_UNCHANGED;
	}
	wl_pod_free(&p);
out:
	json_object_put(root);
	return ret;
}

/* ---- the store ------------------------------------------------------------- */

int pod_store_init(struct wl_pod_store *s)
{
	pthread_condattr_t ca;

	memset(s, 0, sizeof(*s));
	s->gen = 1;
	s->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (s->event_fd < 0)
		return -errno;
	pthread_mutex_init(&s->lock, NULL);
	/* the API thread's back-off sleeps must not jump with the wall clock */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->wake, &ca);
	pthread_condattr_destroy(&ca);
	return 0;
}

void pod_store_destroy(struct wl_pod_store *s)
{
	if (s->event_fd < 0)
		return;		/* never initialised */
	close(s->event_fd);
	s->event_fd = -1;
	wl_pod_table_clear(&s->api);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->wake);
}

void pod_store_changed_locked(struct wl_pod_store *s)
{
	uint64_t one = 1;

	s->gen++;
	if (write(s->event_fd, &one, sizeof(one)) < 0) {
		/* the counter is saturated: the loop is already woken */
	}
}

size_t pod_store_replace(struct wl_pod_store *s, struct wl_pod_table *next, uint64_t *lists)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	wl_pod_table_clear(&s->api);
	s->api = *next;
	memset(next, 0, sizeof(*next));
	s->api_lists++;
	pod_store_changed_locked(s);
	n = s->api.n;
	*lists = s->api_lists;
	pthread_mutex_unlock(&s->lock);
	return n;
}

int pod_store_apply_watch_event(struct wl_pod_store *s, const char *line, size_t len,
				char rv[WL_RV_MAX])
{
	int r;

	pthread_mutex_lock(&s->lock);
	r = workload_apply_watch_event(&s->api, line, len, rv);
	s->api_watch_events++;
	if (r == WL_WATCH_CHANGED)
		pod_store_changed_locked(s);
	pthread_mutex_unlock(&s->lock);
	return r;
}

void pod_store_set_state(struct wl_pod_store *s, int api_state)
{
	pthread_mutex_lock(&s->lock);
	s->api_state = api_state;
	pthread_mutex_unlock(&s->lock);
}

bool pod_store_api_error(struct wl_pod_store *s, const char *msg)
{
	bool repeat;

	pthread_mutex_lock(&s->lock);
	repeat = !strcmp(msg, s->api_last_error);
	snprintf(s->api_last_error, sizeof(s->api_last_error), "%s", msg);
	s->api_errors++;
	pthread_mutex_unlock(&s->lock);
	return repeat;
}

bool pod_store_api_ok(struct wl_pod_store *s)
{
	bool was_failing;

	pthread_mutex_lock(&s->lock);
	was_failing = s->api_last_error[0];
	s->api_last_error[0] = '\0';
	pthread_mutex_unlock(&s->lock);
	return was_failing;
}

void pod_store_nap(struct wl_pod_store *s, int secs)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += secs;
	pthread_mutex_lock(&s->lock);
	while (!s->stop && pthread_cond_timedwait(&s->wake, &s->lock, &until) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&s->lock);
}

bool pod_store_stopping(struct wl_pod_store *s)
{
	return __atomic_load_n(&s->stop, __ATOMIC_RELAXED);
}

void pod_store_request_stop(struct wl_pod_store *s)
{
	pthread_mutex_lock(&s->lock);
	__atomic_store_n(&s->stop, true, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&s->wake);
	pthread_mutex_unlock(&s->lock);
}
