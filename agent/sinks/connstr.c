// SPDX-License-Identifier: MIT
/*
 * Application Insights connection string parser. Follows what the official
 * SDKs do: keys case-insensitive and trimmed, unknown keys ignored (the
 * service adds keys over time), a duplicate key is an error because which one
 * wins would otherwise be a guess.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "bytes.h"
#include "connstr.h"
#include "secretfile.h"
#include "log.h"

enum {
	K_IKEY,
	K_INGESTION,
	K_LIVE,
	K_SUFFIX,
	K_LOCATION,
	K_APPID,
	K_AUDIENCE,
	K_AUTH,
	K__MAX,
};

static const char *const known_keys[K__MAX] = {
	[K_IKEY] = "InstrumentationKey",
	[K_INGESTION] = "IngestionEndpoint",
	[K_LIVE] = "LiveEndpoint",
	[K_SUFFIX] = "EndpointSuffix",
	[K_LOCATION] = "Location",
	[K_APPID] = "ApplicationId",
	[K_AUDIENCE] = "AADAudience",
	[K_AUTH] = "Authorization",
};

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

static bool is_uuid(const char *s)
{
	static const char pattern[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
	size_t i;

	if (strlen(s) != TG_IKEY_LEN)
		return false;
	for (i = 0; i < TG_IKEY_LEN; i++) {
		if (pattern[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* Host names and the EndpointSuffix/Location pieces that become part of one. */
static bool is_hostish(const char *s, bool allow_dot)
{
	if (!*s)
		return false;
	for (; *s; s++) {
		if (!isalnum((unsigned char)*s) && *s != '-' && !(allow_dot && *s == '.'))
			return false;
	}
	return true;
}

/*
 * The iKey travels in every request body, so a non-TLS endpoint is refused
 * outright: tlsguard of all programs must not send telemetry in plaintext.
 */
static int check_endpoint(char *url, char *err, size_t errlen)
{
	const char *host;
	size_t len;

	if (strncasecmp(url, "https://", 8))
		return tg_seterr(err, errlen, -EINVAL, "IngestionEndpoint must be an https:// URL");
	len = strlen(url);
	while (len > 8 && url[len - 1] == '/')
		url[--len] = '\0';
	host = url + 8;
	if (!*host || *host == '/' || *host == ':')
		return tg_seterr(err, errlen, -EINVAL, "IngestionEndpoint has no host name");
	for (const char *p = url; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == '"' || *p == '\\' || *p == '?' || *p == '#' ||
		    (unsigned char)*p >= 0x7f)
			return tg_seterr(err, errlen, -EINVAL,
				      "IngestionEndpoint contains a character not allowed in a URL here");
	}
	return 0;
}

static int find_key(const char *key)
{
	for (int i = 0; i < K__MAX; i++) {
		if (!strcasecmp(key, known_keys[i]))
			return i;
	}
	return -1;
}

/* Unknown keys are ignored but still checked for duplicates. */
static bool seen_before(char **seen, size_t nseen, const char *key)
{
	for (size_t i = 0; i < nseen; i++) {
		if (!strcasecmp(seen[i], key))
			return true;
	}
	return false;
}

static int split_pairs(char *buf, char *vals[K__MAX], char *err, size_t errlen)
{
	char **seen;
	size_t nseen = 0, segno = 0;
	char *seg, *next;
	int ret = 0;

	/* At most one key per two characters of a 4096-character string. */
	seen = calloc(TG_CONNSTR_MAX / 2 + 1, sizeof(*seen));
	if (!seen)
		return tg_seterr(err, errlen, -ENOMEM, "out of memory");

	for (seg = buf; seg; seg = next) {
		char *eq, *key, *val;
		int k;

		next = strchr(seg, ';');
		if (next)
			*next++ = '\0';
		segno++;
		seg = trim(seg);
		if (!*seg)
			continue;	/* "a=b;;c=d" and a trailing ';' are common */
		eq = strchr(seg, '=');
		if (!eq) {
			ret = tg_seterr(err, errlen, -EINVAL,
				     "segment %zu is not of the form key=value", segno);
			break;
		}
		*eq = '\0';
		key = trim(seg);
		val = trim(eq + 1);
		if (!*key) {
			ret = tg_seterr(err, errlen, -EINVAL, "segment %zu has an empty key", segno);
			break;
		}
		k = find_key(key);
		if (seen_before(seen, nseen, key)) {
			ret = tg_seterr(err, errlen, -EINVAL, "duplicate key \"%.64s\"",
				     k >= 0 ? known_keys[k] : key);
			break;
		}
		seen[nseen++] = key;
		if (k < 0)
			continue;
		if (!*val) {
			ret = tg_seterr(err, errlen, -EINVAL, "\"%s\" has an empty value", known_keys[k]);
			break;
		}
		vals[k] = val;
	}
	free(seen);
	return ret;
}

static int build_endpoint(char *vals[K__MAX], struct tg_connstr *out, char *err, size_t errlen)
{
	char *suffix = vals[K_SUFFIX], *loc = vals[K_LOCATION];
	int ret;

	if (vals[K_INGESTION]) {
		ret = check_endpoint(vals[K_INGESTION], err, errlen);
		if (ret)
			return ret;
		out->endpoint = strdup(vals[K_INGESTION]);
	} else if (suffix) {
		while (*suffix == '.')
			suffix++;
		while (*suffix && suffix[strlen(suffix) - 1] == '/')
			suffix[strlen(suffix) - 1] = '\0';
		if (!is_hostish(suffix, true))
			return tg_seterr(err, errlen, -EINVAL, "EndpointSuffix is not a DNS suffix");
		if (loc && !is_hostish(loc, false))
			return tg_seterr(err, errlen, -EINVAL, "Location is not a region name");
		/* Location only means something together with EndpointSuffix. */
		if (asprintf(&out->endpoint, "https://%s%sdc.%s", loc ? loc : "", loc ? "." : "",
			     suffix) < 0)
			out->endpoint = NULL;
	} else {
		out->endpoint = strdup(TG_AI_DEFAULT_ENDPOINT);
	}
	if (!out->endpoint)
		return tg_seterr(err, errlen, -ENOMEM, "out of memory");
	if (asprintf(&out->track_url, "%s%s", out->endpoint, TG_AI_TRACK_PATH) < 0) {
		out->track_url = NULL;
		return tg_seterr(err, errlen, -ENOMEM, "out of memory");
	}
	return 0;
}

static int fill_optional(char *vals[K__MAX], struct tg_connstr *out, char *err, size_t errlen)
{
	if (vals[K_AUTH]) {
		/* Only "ikey" is defined; "aad" is what the Java agent uses for Entra ID. */
		if (strcasecmp(vals[K_AUTH], "ikey") && strcasecmp(vals[K_AUTH], "aad"))
			return tg_seterr(err, errlen, -EINVAL,
				      "Authorization: unsupported value (expected \"ikey\" or \"aad\")");
		out->authorization = strdup(vals[K_AUTH]);
		if (!out->authorization)
			return tg_seterr(err, errlen, -ENOMEM, "out of memory");
		for (char *p = out->authorization; *p; p++)
			*p = tolower((unsigned char)*p);
	}
	if (vals[K_AUDIENCE]) {
		out->aad_audience = strdup(vals[K_AUDIENCE]);
		if (!out->aad_audience)
			return tg_seterr(err, errlen, -ENOMEM, "out of memory");
	}
	if (vals[K_LIVE]) {
		out->live_endpoint = strdup(vals[K_LIVE]);
		if (!out->live_endpoint)
			return tg_seterr(err, errlen, -ENOMEM, "out of memory");
	}
	return 0;
}

int connstr_parse(const char *s, struct tg_connstr *out, char *err, size_t errlen)
{
	char *vals[K__MAX] = { 0 };
	char *buf;
	size_t len;
	int ret;

	memset(out, 0, sizeof(*out));
	if (!s)
		return tg_seterr(err, errlen, -EINVAL, "no connection string");
	len = strlen(s);
	if (len > TG_CONNSTR_MAX)
		return tg_seterr(err, errlen, -E2BIG, "connection string is longer than %d characters",
			      TG_CONNSTR_MAX);
	buf = strdup(s);
	if (!buf)
		return tg_seterr(err, errlen, -ENOMEM, "out of memory");

	ret = split_pairs(buf, vals, err, errlen);
	if (ret)
		goto out;
	if (!vals[K_IKEY]) {
		ret = tg_seterr(err, errlen, -EINVAL, "connection string has no InstrumentationKey");
		goto out;
	}
	if (!is_uuid(vals[K_IKEY])) {
		ret = tg_seterr(err, errlen, -EINVAL,
			     "InstrumentationKey is not a UUID (expected 8-4-4-4-12 hex digits)");
		goto out;
	}
	memcpy(out->ikey, vals[K_IKEY], TG_IKEY_LEN + 1);
	ret = build_endpoint(vals, out, err, errlen);
	if (ret)
		goto out;
	ret = fill_optional(vals, out, err, errlen);
out:
	OPENSSL_cleanse(buf, len);
	free(buf);
	if (ret)
		connstr_free(out);
	return ret;
}

int connstr_read_file(const char *path, struct tg_connstr *out, char *err, size_t errlen)
{
	/* Room for the maximum, a CRLF, and one byte more to detect "too long". */
	char buf[TG_CONNSTR_MAX + 4];
	char msg[256];
	size_t len = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = secret_file_read(path, NULL, buf, sizeof(buf) - 1, &len, err, errlen);
	if (ret)
		return ret;
	buf[len] = '\0';
	if (memchr(buf, '\0', len)) {
		ret = tg_seterr(err, errlen, -EINVAL, "%s: contains a NUL byte", path);
		goto out;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	if (len > TG_CONNSTR_MAX) {
		ret = tg_seterr(err, errlen, -E2BIG, "%s: connection string is longer than %d characters",
			     path, TG_CONNSTR_MAX);
		goto out;
	}
	ret = connstr_parse(buf, out, msg, sizeof(msg));
	if (ret)
		tg_seterr(err, errlen, ret, "%s: %s", path, msg);
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	return ret;
}

void connstr_free(struct tg_connstr *c)
{
	if (!c)
		return;
	free(c->endpoint);
	free(c->track_url);
	free(c->live_endpoint);
	free(c->aad_audience);
	free(c->authorization);
	memset(c, 0, sizeof(*c));
}
