/* SPDX-License-Identifier: MIT */
/*
 * Entra ID bearer tokens for Application Insights ingestion
 * (reference/application-insights.md, "Entra ID auth"):
 *
 *  - managed identity: GET <imds_url>?api-version=2018-02-01&resource=<audience>
 *    [&client_id=<id>] with "Metadata: true" (plain HTTP to the link-local
 *    IMDS address, never through a proxy);
 *  - AKS workload identity: the projected service account token in
 *    AZURE_FEDERATED_TOKEN_FILE (re-read every time: kubelet rotates it) is
 *    exchanged at {AZURE_AUTHORITY_HOST}{AZURE_TENANT_ID}/oauth2/v2.0/token
 *    for client AZURE_CLIENT_ID (client_credentials, jwt-bearer assertion).
 *
 * The token is cached and fetched again shortly before it expires (5 minutes,
 * or half its lifetime when that is shorter). No token or assertion is ever
 * logged. One tg_ai_auth belongs to one thread (the sender).
 */
#ifndef TLSGUARD_AI_AUTH_H
#define TLSGUARD_AI_AUTH_H

#include <stddef.h>
#include <time.h>

#define TG_AI_AUDIENCE_DEFAULT	"https://monitor.azure.com/"
#define TG_IMDS_URL_DEFAULT	"http://169.254.169.254/metadata/identity/oauth2/token"
#define TG_AUTHORITY_DEFAULT	"https://login.microsoftonline.com/"

enum tg_ai_auth_mode {
	TG_AI_AUTH_AUTO = 0,		/* Authorization=AAD in the connection string → WI or MI */
	TG_AI_AUTH_NONE,
	TG_AI_AUTH_MANAGED_IDENTITY,
	TG_AI_AUTH_WORKLOAD_IDENTITY,
};

struct tg_ai_auth_config {
	int mode;			/* enum tg_ai_auth_mode, already resolved (not AUTO) */
	const char *audience;		/* NULL: TG_AI_AUDIENCE_DEFAULT */
	const char *imds_url;		/* NULL: TG_IMDS_URL_DEFAULT */
	const char *client_id;		/* user-assigned identity (MI); overrides AZURE_CLIENT_ID (WI) */
	const char *ca_file;		/* for the token endpoint (WI); NULL: system store */
	long timeout_ms;
	/* optional: polled during a request; non-zero aborts it (the agent is stopping) */
	int (*cancel)(void *arg);
	void *cancel_arg;
};

struct tg_ai_auth;

/*
 * Resolve the mode: AUTO becomes WORKLOAD_IDENTITY when the connection string
 * says Authorization=AAD and AZURE_FEDERATED_TOKEN_FILE is set,
 * MANAGED_IDENTITY when it says AAD otherwise, NONE when it does not.
 */
int ai_auth_resolve_mode(int configured, const char *connstr_authorization);

/*
 * NULL + errno; for workload identity -EINVAL with the missing variable named
 * in @err when the environment is incomplete.
 */
struct tg_ai_auth *ai_auth_new(const struct tg_ai_auth_config *cfg, char *err, size_t errlen);
void ai_auth_free(struct tg_ai_auth *a);

/*
 * A valid token (borrowed until the next call), fetching one when the cache
 * is empty or due for refresh. 0, or -errno with a message in @err.
 */
int ai_auth_token(struct tg_ai_auth *a, const char **token, char *err, size_t errlen);

/* Forget the cached token (after a 401/403): the next ai_auth_token() fetches. */
void ai_auth_invalidate(struct tg_ai_auth *a);

/* Tokens fetched since start (status, tests). */
unsigned long ai_auth_fetches(const struct tg_ai_auth *a);

/*
 * Parse a token response of IMDS or the v2.0 token endpoint: "access_token",
 * and "expires_on" (Unix seconds, number or string) or "expires_in" (seconds
 * from @now). *token is malloc'd. 0, or -EBADMSG.
 */
int ai_auth_parse_token(const char *body, size_t len, time_t now, char **token,
			time_t *expires_on);

/* When to fetch again a token valid from @now until @expires_on. */
time_t ai_auth_refresh_at(time_t now, time_t expires_on);

#endif /* TLSGUARD_AI_AUTH_H */
