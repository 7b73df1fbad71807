/* SPDX-License-Identifier: MIT */
/*
 * Application Insights connection string: "Key=Value;Key=Value". See
 * reference/application-insights.md. The result says where to POST and which
 * iKey to put in every envelope.
 *
 * A connection string is configuration and may be treated as sensitive, so no
 * error message ever repeats it: messages name the key or the segment number.
 */
#ifndef TLSGUARD_CONNSTR_H
#define TLSGUARD_CONNSTR_H

#include <stddef.h>

#define TG_CONNSTR_MAX		4096	/* characters, as the SDKs enforce */
#define TG_IKEY_LEN		36	/* 8-4-4-4-12 */
#define TG_AI_DEFAULT_ENDPOINT	"https://dc.services.visualstudio.com"
#define TG_AI_TRACK_PATH	"/v2.1/track"

struct tg_connstr {
	char ikey[TG_IKEY_LEN + 1];	/* InstrumentationKey as written (validated UUID) */
	char *endpoint;			/* ingestion base, https://host[:port][/path], no trailing '/' */
	char *track_url;		/* endpoint + "/v2.1/track" */
	char *live_endpoint;		/* LiveEndpoint or NULL (not used by tlsguard) */
	char *aad_audience;		/* AADAudience or NULL */
	char *authorization;		/* "ikey" or "aad" (lower-cased) or NULL when absent */
};

/*
 * Parse @s. Returns 0 and fills @out (release with connstr_free()), or -EINVAL
 * (malformed), -E2BIG (longer than TG_CONNSTR_MAX), -ENOMEM; a message for the
 * user is written to @err (may be NULL). @out is left zeroed on failure.
 */
int connstr_parse(const char *s, struct tg_connstr *out, char *err, size_t errlen);

/*
 * Read and parse the connection string stored in the regular file @path (a
 * Kubernetes Secret or Key Vault CSI mount). One trailing newline (and any
 * surrounding whitespace) is ignored. Warns, but does not fail, when the file
 * is readable by every user. Errors as for connstr_parse(), plus -errno from
 * open/read; messages start with @path.
 */
int connstr_read_file(const char *path, struct tg_connstr *out, char *err, size_t errlen);

void connstr_free(struct tg_connstr *c);

#endif /* TLSGUARD_CONNSTR_H */
