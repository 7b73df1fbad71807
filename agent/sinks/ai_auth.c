// SPDX-License-Identifier: MIT
/* Entra ID tokens for ingestion: see ai_auth.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "ai_auth.h"
#include "bytes.h"
#include "escape.h"

#define MAX_RESPONSE	(64u << 10)
#define MAX_ASSERTION	(64u << 10)
#define REFRESH_BEFORE	300	/* seconds */

struct tg_ai_auth {
	int mode;
	char *audience;
	char *imds_url;
	char *client_id;
	char *ca_file;
	char *tenant;
	char *authority;	/* ends with '/' */
	char *token_file;
	long timeout_ms;
	int (*cancel)(void *arg);
	void *cancel_arg;
	CURL *h;
	char *token;
	time_t refresh_at;
	unsigned long fetches;
};

int ai_auth_resolve_mode(int configured, const char *connstr_authorization)
{
	const char *wi = getenv("AZURE_FEDERATED_TOKEN_FILE");

	if (configured != TG_AI_AUTH_AUTO)
		return configured;
	if (!connstr_authorization || strcasecmp(connstr_authorization, "aad"))
		return TG_AI_AUTH_NONE;
	return wi && *wi ? TG_AI_AUTH_WORKLOAD_IDENTITY : TG_AI_AUTH_MANAGED_IDENTITY;
}

static void wipe_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

void ai_auth_free(struct tg_ai_auth *a)
{
	if (!a)
		return;
	if (a->h)
		curl_easy_cleanup(a->h);
	wipe_free(a->token);
	free(a->audience);
	free(a->imds_url);
	free(a->client_id);
	free(a->ca_file);
	free(a->tenant);
	free(a->authority);
	free(a->token_file);
	free(a);
}

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

struct tg_ai_auth *ai_auth_new(const struct tg_ai_auth_config *cfg, char *err, size_t errlen)
{
	struct tg_ai_auth *a = calloc(1, sizeof(*a));
	const char *authority;

	if (!a)
		return NULL;
	a->mode = cfg->mode;
	a->cancel = cfg->cancel;
	a->cancel_arg = cfg->cancel_arg;
	a->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
	a->audience = strdup(cfg->audience ? cfg->audience : TG_AI_AUDIENCE_DEFAULT);
	a->imds_url = strdup(cfg->imds_url && *cfg->imds_url ? cfg->imds_url : TG_IMDS_URL_DEFAULT);
	a->client_id = dup_or_null(cfg->client_id);
	a->ca_file = dup_or_null(cfg->ca_file);
	a->h = curl_easy_init();
	if (!a->audience || !a->imds_url || !a->h ||
	    (cfg->client_id && *cfg->client_id && !a->client_id) ||
	    (cfg->ca_file && *cfg->ca_file && !a->ca_file))
		goto nomem;
	if (a->mode == TG_AI_AUTH_WORKLOAD_IDENTITY) {
		const char *missing = NULL;

		if (!env_nonempty("AZURE_FEDERATED_TOKEN_FILE"))
			missing = "AZURE_FEDERATED_TOKEN_FILE";
		else if (!env_nonempty("AZURE_TENANT_ID"))
			missing = "AZURE_TENANT_ID";
		else if (!a->client_id && !env_nonempty("AZURE_CLIENT_ID"))
			missing = "AZURE_CLIENT_ID";
		if (missing) {
			snprintf(err, errlen, "workload identity: %s is not set (is the pod labelled "
				 "azure.workload.identity/use: \"true\" with a federated service account?)",
				 missing);
			ai_auth_free(a);
			errno = EINVAL;
			return NULL;
		}
		authority = env_nonempty("AZURE_AUTHORITY_HOST");
		if (!authority)
			authority = TG_AUTHORITY_DEFAULT;
		if (asprintf(&a->authority, "%s%s", authority,
			     authority[strlen(authority) - 1] == '/' ? "" : "/") < 0) {
			a->authority = NULL;
			goto nomem;
		}
		a->tenant = strdup(getenv("AZURE_TENANT_ID"));
		a->token_file = strdup(getenv("AZURE_FEDERATED_TOKEN_FILE"));
		if (!a->client_id)
			a->client_id = strdup(getenv("AZURE_CLIENT_ID"));
		if (!a->tenant || !a->token_file || !a->client_id)
			goto nomem;
	}
	return a;
nomem:
	snprintf(err, errlen, "out of memory");
	ai_auth_free(a);
	errno = ENOMEM;
	return NULL;
}

void ai_auth_invalidate(struct tg_ai_auth *a)
{
	wipe_free(a->token);
	a->token = NULL;
	a->refresh_at = 0;
}

unsigned long ai_auth_fetches(const struct tg_ai_auth *a)
{
	return a ? a->fetches : 0;
}

time_t ai_auth_refresh_at(time_t now, time_t expires_on)
{
	time_t life = expires_on - now, early = REFRESH_BEFORE;

	if (life <= 0)
		return now;
	if (life / 2 < early)
		early = life / 2;
	return expires_on - early;
}

/* A number or a string of digits (IMDS sends strings, the v2.0 endpoint numbers). */
static bool get_seconds(json_object *root, const char *key, long long *out)
{
	json_object *v;
	const char *s;
	char *end;

	if (!json_object_object_get_ex(root, key, &v) || !v)
		return false;
	if (json_object_is_type(v, json_type_int)) {
		*out = json_object_get_int64(v);
		return true;
	}
	if (!json_object_is_type(v, json_type_string))
		return false;
	s = json_object_get_string(v);
	errno = 0;
	*out = strtoll(s, &end, 10);
	return !errno && end != s && !*end;
}

int ai_auth_parse_token(const char *body, size_t len, time_t now, char **token,
			time_t *expires_on)
{
	json_object *root, *v;
	long long secs;
	int ret = -EBADMSG;

	*token = NULL;
	if (len > MAX_RESPONSE)
		return -EBADMSG;
	root = tg_json_parse(body, len);
	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "access_token", &v) ||
	    !json_object_is_type(v, json_type_string) || !json_object_get_string_len(v))
		goto out;
	if (get_seconds(root, "expires_on", &secs) && secs > 0)
		*expires_on = (time_t)secs;
	else if (get_seconds(root, "expires_in", &secs) && secs > 0 && secs < 10 * 365 * 86400LL)
		*expires_on = now + (time_t)secs;
	else
		goto out;
	/* a bearer token goes into an HTTP header: no control characters */
	for (const char *p = json_object_get_string(v); *p; p++)
		if ((unsigned char)*p < 0x21 || *p == 0x7f)
			goto out;
	*token = strdup(json_object_get_string(v));
	ret = *token ? 0 : -ENOMEM;
out:
	json_object_put(root);
	return ret;
}

struct buf {
	char *p;
	size_t len;
	bool overflow;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	struct buf *b = arg;
	int ret = tg_text_append(&b->p, &b->len, MAX_RESPONSE, data, size * n);

	if (ret == -E2BIG)
		b->overflow = true;
	return ret ? 0 : size * n;	/* 0: curl stops the transfer */
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct tg_ai_auth *a = arg;

	return a->cancel ? a->cancel(a->cancel_arg) : 0;
}

static char *read_assertion(const char *path, char *err, size_t errlen)
{
	char *buf = NULL;
	ssize_t n;
	size_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		snprintf(err, errlen, "workload identity: cannot read the federated token file %s: %s",
			 path, strerror(errno));
		return NULL;
	}
	buf = malloc(MAX_ASSERTION + 1);
	if (!buf)
		goto out;
	n = read(fd, buf, MAX_ASSERTION + 1);
	if (n <= 0 || n > (ssize_t)MAX_ASSERTION) {
		snprintf(err, errlen, "workload identity: federated token file %s is %s", path,
			 n < 0 ? strerror(errno) : n == 0 ? "empty" : "too large");
		free(buf);
		buf = NULL;
		goto out;
	}
	len = n;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' '))
		len--;
	buf[len] = '\0';
out:
	close(fd);
	return buf;
}

static char *scope_for(const char *audience)
{
	char *s;

	/* "https://monitor.azure.com/" → "https://monitor.azure.com//.default", as the SDKs */
	if (asprintf(&s, "%s%s/.default", audience,
		     audience[strlen(audience) - 1] == '/' ? "" : "/") < 0)
		return NULL;
	return s;
}

static int fetch(struct tg_ai_auth *a, char *err, size_t errlen)
{
	struct curl_slist *hdrs = NULL;
	struct buf body = { 0 };
	char *url = NULL, *form = NULL, *assertion = NULL, *scope = NULL;
	char *e_aud = NULL, *e_cid = NULL, *e_scope = NULL, *e_assert = NULL;
	char cerr[CURL_ERROR_SIZE] = "";
	long status = 0;
	time_t expires_on = 0, now;
	CURLcode rc;
	int ret = -ENOMEM;

	curl_easy_reset(a->h);
	if (a->mode == TG_AI_AUTH_MANAGED_IDENTITY) {
		e_aud = curl_easy_escape(a->h, a->audience, 0);
		e_cid = a->client_id ? curl_easy_escape(a->h, a->client_id, 0) : NULL;
		if (!e_aud || (a->client_id && !e_cid))
			goto out;
		if (asprintf(&url, "%s%sapi-version=2018-02-01&resource=%s%s%s", a->imds_url,
			     strchr(a->imds_url, '?') ? "&" : "?", e_aud, e_cid ? "&client_id=" : "",
			     e_cid ? e_cid : "") < 0) {
			url = NULL;
			goto out;
		}
		hdrs = curl_slist_append(NULL, "Metadata: true");
		if (!hdrs)
			goto out;
		/* IMDS is link-local plain HTTP: never through a proxy */
		curl_easy_setopt(a->h, CURLOPT_NOPROXY, "*");
		curl_easy_setopt(a->h, CURLOPT_PROTOCOLS_STR, "http,https");
	} else {
		assertion = read_assertion(a->token_file, err, errlen);
		if (!assertion) {
			ret = -EIO;
			goto out;
		}
		scope = scope_for(a->audience);
		e_cid = curl_easy_escape(a->h, a->client_id, 0);
		e_scope = scope ? curl_easy_escape(a->h, scope, 0) : NULL;
		e_assert = curl_easy_escape(a->h, assertion, 0);
		if (!e_cid || !e_scope || !e_assert)
			goto out;
		if (asprintf(&url, "%s%s/oauth2/v2.0/token", a->authority, a->tenant) < 0) {
			url = NULL;
			goto out;
		}
		if (asprintf(&form, "client_id=%s&scope=%s&grant_type=client_credentials"
			     "&client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3Aclient-assertion-type%%3Ajwt-bearer"
			     "&client_assertion=%s", e_cid, e_scope, e_assert) < 0) {
			form = NULL;
			goto out;
		}
		curl_easy_setopt(a->h, CURLOPT_POSTFIELDS, form);
		curl_easy_setopt(a->h, CURLOPT_PROTOCOLS_STR, "https");
		curl_easy_setopt(a->h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
		if (a->ca_file)
			curl_easy_setopt(a->h, CURLOPT_CAINFO, a->ca_file);
	}
	curl_easy_setopt(a->h, CURLOPT_URL, url);
	curl_easy_setopt(a->h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(a->h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(a->h, CURLOPT_TIMEOUT_MS, a->timeout_ms);
	curl_easy_setopt(a->h, CURLOPT_CONNECTTIMEOUT_MS, a->timeout_ms < 10000 ? a->timeout_ms : 10000L);
	curl_easy_setopt(a->h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(a->h, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(a->h, CURLOPT_ERRORBUFFER, cerr);
	curl_easy_setopt(a->h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(a->h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(a->h, CURLOPT_XFERINFODATA, a);
	curl_easy_setopt(a->h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(a->h, CURLOPT_SSL_VERIFYHOST, 2L);
	rc = curl_easy_perform(a->h);
	curl_easy_getinfo(a->h, CURLINFO_RESPONSE_CODE, &status);
	now = time(NULL);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s token request failed: %s",
			 a->mode == TG_AI_AUTH_MANAGED_IDENTITY ? "managed identity (IMDS)" :
			 "workload identity", cerr[0] ? cerr : curl_easy_strerror(rc));
		ret = -EIO;
		goto out;
	}
	if (status != 200) {
		snprintf(err, errlen, "%s token request answered HTTP %ld",
			 a->mode == TG_AI_AUTH_MANAGED_IDENTITY ? "managed identity (IMDS)" :
			 "workload identity", status);
		ret = status == 400 || status == 401 || status == 403 ? -EACCES : -EIO;
		goto out;
	}
	wipe_free(a->token);
	a->token = NULL;
	ret = ai_auth_parse_token(body.p ? body.p : "", body.len, now, &a->token, &expires_on);
	if (ret) {
		snprintf(err, errlen, "token response is not a token (no access_token/expiry)");
		goto out;
	}
	a->refresh_at = ai_auth_refresh_at(now, expires_on);
	a->fetches++;
out:
	curl_easy_setopt(a->h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(a->h, CURLOPT_POSTFIELDS, NULL);
	curl_slist_free_all(hdrs);
	if (body.p) {
		explicit_bzero(body.p, body.len);
		free(body.p);
	}
	wipe_free(form);
	wipe_free(assertion);
	if (e_assert) {
		explicit_bzero(e_assert, strlen(e_assert));
		curl_free(e_assert);
	}
	curl_free(e_aud);
	curl_free(e_cid);
	curl_free(e_scope);
	free(scope);
	free(url);
	return ret;
}

int ai_auth_token(struct tg_ai_auth *a, const char **token, char *err, size_t errlen)
{
	int ret;

	if (!a->token || time(NULL) >= a->refresh_at) {
		ret = fetch(a, err, errlen);
		/* a still-valid cached token beats no token when a refresh fails */
		if (ret && !a->token)
			return ret;
	}
	*token = a->token;
	return 0;
}
