// SPDX-License-Identifier: MIT
/*
 * The Kubernetes API client of the workload module: list the pods of this
 * node, then watch them from the list's resourceVersion, the way client-go's
 * reflector does. One thread, blocking libcurl; the event loop only sees the
 * pod store (pod_store.h) change, under its mutex, through its eventfd.
 *
 *   GET /api/v1/pods?fieldSelector=spec.nodeName%3D<node>&limit=500[&continue=...]
 *   GET /api/v1/pods?fieldSelector=...&watch=1&resourceVersion=<rv>
 *       &allowWatchBookmarks=true&timeoutSeconds=<300..600>
 *
 * A watch that ends normally (its timeout) is resumed from the last
 * resourceVersion; 410 Gone (HTTP or an ERROR event) and other ERROR events
 * mean re-list; transport and HTTP errors back off exponentially (1 s..30 s).
 * The service account token is read from its file for every request: the
 * kubelet rotates projected tokens.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "bytes.h"
#include "clock.h"
#include "log.h"
#include "enum_name.h"
#include "pod_store.h"
#include "workload_api.h"

#define LIST_PAGE		500
#define LIST_MAX_BYTES		(256u << 20)	/* a page of 500 pods is a few MiB */
#define LINE_MAX_BYTES		(16u << 20)	/* one watch event: one pod object */
#define TOKEN_MAX_BYTES		16384
#define BACKOFF_MIN_S		1
#define BACKOFF_MAX_S		30
#define CONNECT_TIMEOUT_S	10L
#define LIST_TIMEOUT_S		120L

static const char *const state_names[] = {
	[WL_API_OFF] = "off",
	[WL_API_LISTING] = "listing",
	[WL_API_WATCHING] = "watching",
	[WL_API_BACKOFF] = "backoff",
};

const char *wl_api_state_name(int state)
{
	return TG_ENUM_NAME(state_names, state, "off");
}

struct buf {
	char *p;
	size_t n, cap, max;
	bool too_big;
};

static int buf_add(struct buf *b, const char *data, size_t n)
{
	if (b->n + n + 1 > b->max) {
		b->too_big = true;
		return -E2BIG;
	}
	if (tg_reserve((void **)&b->p, &b->cap, b->n + n + 1, 1, 65536))
		return -ENOMEM;
	memcpy(b->p + b->n, data, n);
	b->n += n;
	b->p[b->n] = '\0';
	return 0;
}

static bool stopping(struct wl_api *w)
{
	return pod_store_stopping(w->store);
}

static void set_state(struct wl_api *w, int state)
{
	pod_store_set_state(w->store, state);
}

/* Log an error once per distinct message; status shows the last one. */
static void __attribute__((format(printf, 2, 3))) api_error(struct wl_api *w, const char *fmt, ...)
{
	char msg[WL_API_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!pod_store_api_error(w->store, msg))
		tg_warn("workloads: Kubernetes API %s: %s (retrying; pods are attributed from "
			"%s/pods meanwhile)", w->cfg.server, msg, w->cfg.log_dir ? w->cfg.log_dir : "-");
}

static void api_ok(struct wl_api *w)
{
	if (pod_store_api_ok(w->store))
		tg_info("workloads: Kubernetes API %s reachable again", w->cfg.server);
}

/* Sleep up to @secs, or until asked to stop. */
static void nap(struct wl_api *w, int secs)
{
	pod_store_nap(w->store, secs);
}

static int read_token(const char *path, char **out)
{
	FILE *f = fopen(path, "re");
	char *tok;
	size_t n;

	*out = NULL;
	if (!f)
		return -errno;
	tok = malloc(TOKEN_MAX_BYTES);
	if (!tok) {
		fclose(f);
		return -ENOMEM;
	}
	n = fread(tok, 1, TOKEN_MAX_BYTES - 1, f);
	fclose(f);
	tok[n] = '\0';
	while (n && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
		tok[--n] = '\0';
	if (!n) {
		free(tok);
		return -ENODATA;
	}
	*out = tok;
	return 0;
}

static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	return stopping(ctx);	/* nonzero aborts: shutdown within about a second */
}

struct req {
	long status;
	char errbuf[CURL_ERROR_SIZE];
	CURLcode rc;
};

/*
 * One GET. Returns 0 when the transfer completed (any HTTP status, in
 * r->status), -EINTR when stopped, -EIO on transport errors (r->errbuf).
 */
static int get(struct wl_api *w, CURL *h, const char *url, long timeout_s,
	       curl_write_callback write_cb, void *write_ctx, struct req *r)
{
	struct curl_slist *hdrs = NULL, *grown;
	char *token = NULL, *auth = NULL;
	int err;

	memset(r, 0, sizeof(*r));
	err = read_token(w->cfg.token_file, &token);
	if (err) {
		snprintf(r->errbuf, sizeof(r->errbuf), "cannot read the service account token %s: %s",
			 w->cfg.token_file, err == -ENODATA ? "empty" : strerror(-err));
		return -EIO;
	}
	if (asprintf(&auth, "Authorization: Bearer %s", token) < 0)
		auth = NULL;
	free(token);
	if (!auth)
		return -ENOMEM;
	grown = curl_slist_append(hdrs, auth);
	if (grown)
		hdrs = grown;
	grown = hdrs ? curl_slist_append(hdrs, "Accept: application/json") : NULL;
	if (grown)
		hdrs = grown;
	explicit_bzero(auth, strlen(auth));
	free(auth);
	if (!grown) {
		curl_slist_free_all(hdrs);
		return -ENOMEM;
	}
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "tlsguard/" TLSGUARD_VERSION);
#if LIBCURL_VERSION_NUM >= 0x075500	/* 7.85: CURLOPT_PROTOCOLS is deprecated */
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
	curl_easy_setopt(h, CURLOPT_CAINFO, w->cfg.ca_file);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");	/* the token goes to the API server only */
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);	/* we are a thread */
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, write_ctx);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, w);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf);
	r->rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (stopping(w))
		return -EINTR;
	if (r->rc != CURLE_OK && r->rc != CURLE_WRITE_ERROR) {
		if (!r->errbuf[0])
			snprintf(r->errbuf, sizeof(r->errbuf), "%s", curl_easy_strerror(r->rc));
		return -EIO;
	}
	return 0;
}

static char *pods_url(struct wl_api *w, CURL *h, const char *extra)
{
	char *sel, *node = curl_easy_escape(h, w->cfg.node_name, 0), *url = NULL;

	if (!node)
		return NULL;
	if (asprintf(&sel, "spec.nodeName%%3D%s", node) < 0)
		sel = NULL;
	curl_free(node);
	if (!sel)
		return NULL;
	if (asprintf(&url, "%s/api/v1/pods?fieldSelector=%s%s", w->cfg.server, sel, extra) < 0)
		url = NULL;
	free(sel);
	return url;
}

/* The message of a Status body ({"kind":"Status","message":...}), for logs. */
static void status_message(const char *body, size_t n, char *out, size_t len)
{
	json_object *o = body && n ? json_tokener_parse(body) : NULL, *m;

	out[0] = '\0';
	if (o && json_object_object_get_ex(o, "message", &m) && json_object_is_type(m, json_type_string))
		snprintf(out, len, ": %s", json_object_get_string(m));
	json_object_put(o);
}

static void http_error(struct wl_api *w, const char *what, long status, const struct buf *body)
{
	char msg[160];

	status_message(body->p, body->n, msg, sizeof(msg));
	if (status == 401 || status == 403)
		api_error(w, "%s: HTTP %ld%s (the service account needs get/list/watch on pods: "
			  "see deploy/kubernetes)", what, status, msg);
	else
		api_error(w, "%s: HTTP %ld%s", what, status, msg);
}

static size_t collect(char *data, size_t size, size_t nmemb, void *ctx)
{
	return buf_add(ctx, data, size * nmemb) ? 0 : size * nmemb;
}

/* List every page into a new table, then swap it in. 0, -EINTR or -EIO (logged). */
static int list_pods(struct wl_api *w, CURL *h, char rv[WL_RV_MAX])
{
	struct wl_pod_table next = { 0 };
	char cont[4096] = "", page_rv[WL_RV_MAX] = "";
	uint64_t lists;
	size_t npods;
	struct req r;
	int err = 0;

	rv[0] = '\0';
	for (int page = 0; !err; page++) {
		struct buf body = { .max = LIST_MAX_BYTES };
		char extra[4200], *ec = cont[0] ? curl_easy_escape(h, cont, 0) : NULL, *url;

		snprintf(extra, sizeof(extra), "&limit=%d%s%s", LIST_PAGE, ec ? "&continue=" : "",
			 ec ? ec : "");
		curl_free(ec);
		url = pods_url(w, h, extra);
		if (!url) {
			err = -ENOMEM;
			break;
		}
		err = get(w, h, url, LIST_TIMEOUT_S, collect, &body, &r);
		free(url);
		if (err == -EIO)
			api_error(w, "list pods: %s", body.too_big ? "answer too large" : r.errbuf);
		else if (!err && r.status != 200) {
			http_error(w, "list pods", r.status, &body);
			err = -EIO;
		} else if (!err) {
			err = workload_apply_podlist(&next, body.p ? body.p : "", body.n, page > 0,
						     page_rv, cont, sizeof(cont));
			if (err == -EINVAL)
				api_error(w, "list pods: the answer is not a PodList");
			if (err)
				err = err == -ENOMEM ? err : -EIO;
			else if (!page)
				snprintf(rv, WL_RV_MAX, "%s", page_rv);	/* every page has the snapshot's */
			if (!err && !rv[0]) {
				api_error(w, "list pods: the PodList has no resourceVersion to watch from");
				err = -EIO;
			}
		}
		free(body.p);
		if (!err && !cont[0])
			break;
	}
	if (err) {
		wl_pod_table_clear(&next);
		rv[0] = '\0';
		return err == -EINTR ? err : -EIO;
	}
	npods = pod_store_replace(w->store, &next, &lists);
	if (lists == 1)
		tg_info("workloads: %zu pod(s) on node %s from the Kubernetes API %s", npods,
			w->cfg.node_name, w->cfg.server);
	api_ok(w);
	return 0;
}

struct watch_ctx {
	struct wl_api *w;
	CURL *h;
	struct buf line;		/* the event being received; a non-200 body */
	char *rv;
	int result;			/* GONE or ERROR when an ERROR event ended it */
};

/* Split the stream into lines; each is one watch event. */
static size_t on_watch_data(char *data, size_t size, size_t nmemb, void *arg)
{
	struct watch_ctx *c = arg;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {	/* a Status object: kept (its start) for the message */
		buf_add(&c->line, data, n);
		return n;
	}
	for (size_t i = 0; i < n;) {
		char *nl = memchr(data + i, '\n', n - i);
		size_t run = nl ? (size_t)(nl - (data + i)) : n - i;
		int r;

		if (buf_add(&c->line, data + i, run))
			return 0;	/* abort: an event larger than any pod */
		i += run;
		if (!nl)
			break;
		i++;
		if (!c->line.n)
			continue;
		r = pod_store_apply_watch_event(c->w->store, c->line.p, c->line.n, c->rv);
		if (r != WL_WATCH_CHANGED && r != WL_WATCH_UNCHANGED) {
			c->result = r == WL_WATCH_GONE ? r : WL_WATCH_ERROR;
			return 0;	/* stop reading, the line kept for the message */
		}
		c->line.n = 0;
	}
	return n;
}

/*
 * Watch from @rv until the server ends the stream, an ERROR event or a
 * failure. Returns 0 (ended normally: watch again), WL_WATCH_GONE (re-list),
 * -EIO (logged: back off), -EINTR.
 */
static int watch_pods(struct wl_api *w, CURL *h, char rv[WL_RV_MAX])
{
	struct watch_ctx c = { .w = w, .h = h, .rv = rv, .line = { .max = LINE_MAX_BYTES } };
	int timeout = 300 + (int)(tg_mono_ns() % 300);	/* spread reconnects, as client-go does */
	char extra[WL_RV_MAX + 128], *url;
	struct req r;
	int err;

	snprintf(extra, sizeof(extra), "&watch=1&resourceVersion=%s&allowWatchBookmarks=true"
		 "&timeoutSeconds=%d", rv, timeout);
	url = pods_url(w, h, extra);
	if (!url)
		return -ENOMEM;
	err = get(w, h, url, timeout + 60L, on_watch_data, &c, &r);
	free(url);
	if (!err && r.status == 410) {
		err = WL_WATCH_GONE;
	} else if (!err && r.status != 200) {
		http_error(w, "watch pods", r.status, &c.line);
		err = -EIO;
	} else if (!err && c.result == WL_WATCH_GONE) {
		err = WL_WATCH_GONE;
	} else if (!err && c.result == WL_WATCH_ERROR) {
		char msg[160];

		status_message(c.line.p, c.line.n, msg, sizeof(msg));
		api_error(w, "watch pods: ERROR event%s", msg[0] ? msg : " (not a Status)");
		err = -EIO;
	} else if (err == -EIO) {
		api_error(w, "watch pods: %s", c.line.too_big ? "event too large" : r.errbuf);
	}
	free(c.line.p);
	return err;
}

static void *api_main(void *arg)
{
	struct wl_api *w = arg;
	char rv[WL_RV_MAX] = "";
	int backoff = BACKOFF_MIN_S;
	bool need_list = true;
	uint64_t started;
	CURL *h = curl_easy_init();

	if (!h) {
		api_error(w, "cannot create an HTTP client");
		return NULL;
	}
	while (!stopping(w)) {
		int err;

		if (need_list) {
			set_state(w, WL_API_LISTING);
			err = list_pods(w, h, rv);
			if (err == -EINTR)
				break;
			if (err) {
				set_state(w, WL_API_BACKOFF);
				nap(w, backoff);
				backoff = backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
				continue;
			}
			need_list = false;
			backoff = BACKOFF_MIN_S;
		}
		set_state(w, WL_API_WATCHING);
		started = tg_mono_ns();
		err = watch_pods(w, h, rv);
		if (err == -EINTR)
			break;
		/* a server that ends every watch at once must not make us spin */
		if (!err && tg_mono_ns() - started < 1000000000ULL)
			nap(w, BACKOFF_MIN_S);
		if (err == WL_WATCH_GONE || !rv[0]) {
			need_list = true;	/* history compacted: start over from a list */
		} else if (err) {
			need_list = true;
			set_state(w, WL_API_BACKOFF);
			nap(w, backoff);
			backoff = backoff * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : backoff * 2;
		} else {
			api_ok(w);
		}
	}
	curl_easy_cleanup(h);
	return NULL;
}

int wl_api_start(struct wl_api *w)
{
	int err;

	if (!w->cfg.node_name || !w->cfg.node_name[0]) {
		tg_err("workloads: no node name for the Kubernetes API (set NODE_NAME or "
		       "workloads.kubernetes.node_name)");
		return -EINVAL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	w->store->api_state = WL_API_LISTING;	/* no thread yet: no lock needed */
	err = -pthread_create(&w->thread, NULL, api_main, w);
	if (err) {
		curl_global_cleanup();
		return err;
	}
	w->started = true;
	tg_debug("workloads: watching pods of node %s at %s", w->cfg.node_name, w->cfg.server);
	return 0;
}

void wl_api_stop(struct wl_api *w)
{
	if (!w->started)
		return;
	pod_store_request_stop(w->store);
	pthread_join(w->thread, NULL);
	w->started = false;
	curl_global_cleanup();
}
