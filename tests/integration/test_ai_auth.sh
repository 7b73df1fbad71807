#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Entra ID: the stand-in requires a bearer token it issued.
#  1. managed identity: tokens from an IMDS stand-in (configurable imds_url),
#     cached, refreshed before expiry (6 s tokens) and after a 401; a 307 to
#     the same host is followed, a 307 to another host is not (the token
#     never goes there) and the batch is retried.
#  2. AKS workload identity: the federated token file is exchanged at
#     {AZURE_AUTHORITY_HOST}{AZURE_TENANT_ID}/oauth2/v2.0/token.
# Every event is accepted exactly once, always with a valid token.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ai_lib.sh disable=SC2119
. "$(dirname "$0")/ai_lib.sh"
trap tg_cleanup EXIT
tg_setup

CLIENT_ID=5a7c3e21-0000-4000-8000-00000000c11d
echo "eyJhbGciOiJSUzI1NiJ9.service-account-token.sig" >"$TG_TMP/federated-token"
ai_start_standin --imds --require-token --token-lifetime 6 --client-id "$CLIENT_ID" \
	--federated-token-file "$TG_TMP/federated-token"

# 1. managed identity
ai_script '[{"status": 401}, {"status": 307, "location": "same"}, {"status": 307, "location": "other"}]'
ai_write_policy "$TG_TMP/mi.yaml" "flood_window: 0" "metrics_interval: 0" \
	"auth: managed_identity" "client_id: \"$CLIENT_ID\"" \
	"imds_url: \"http://127.0.0.1:$AI_IMDS_PORT/metadata/identity/oauth2/token\""
tg_start_agent audit "$TG_TMP/mi.yaml"
ai_violations 2
ai_wait_accepted 3 20
sleep 3.5	# past the token's refresh time (half its 6 s life)
ai_violations 1
ai_wait_accepted 4 10
st=$(ai_sink_status)
assert_field "$st" state ok
assert_cmp "$(json_get "$st" redirects)" -ge 1 "same-host redirects followed"
assert_cmp "$(json_get "$st" token_fetches)" -ge 3 "tokens fetched (first, after the 401, before expiry)"
tg_stop_agent
assert_cmp "$(ai_stat imds_requests)" -ge 3 "IMDS requests"
assert_eq 0 "$(ai_stat other_host_requests)" "requests that reached the other host"
assert_cmp "$(ai_stat auth_refused)" -eq 0 "requests refused for their token (beyond the scripted 401)"
grep -q 'redirects to another host' "$TG_AGENT_LOG" || tg_fail "the refused redirect is not logged"
if grep -Eq 'mi-[0-9a-f]{32}' "$TG_AGENT_LOG"; then
	tg_fail "a token appears in the agent log"
fi

# 2. workload identity (the environment AKS injects)
ai_script '[{"status": 403}]'
ai_write_policy "$TG_TMP/wi.yaml" "flood_window: 0" "metrics_interval: 0" "auth: workload_identity"
AZURE_FEDERATED_TOKEN_FILE="$TG_TMP/federated-token" AZURE_TENANT_ID=72f988bf-0000-tenant \
	AZURE_CLIENT_ID="$CLIENT_ID" AZURE_AUTHORITY_HOST="https://127.0.0.1:$AI_PORT/" \
	tg_start_agent audit "$TG_TMP/wi.yaml"
ai_violations 1
ai_wait_stat wi_requests 2 15
tg_stop_agent
assert_cmp "$(ai_stat wi_requests)" -ge 2 "token requests at the v2.0 endpoint (first, after the 403)"
ai_assert_no_invalid
ai_assert_exactly_once 0
python3 - "$AI_RECORDS" <<'PY' || tg_fail "an item came without a valid token"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
kinds = [r["token"].split("-")[0] for r in recs]
assert all(k in ("mi", "wi") for k in kinds), kinds
assert "mi" in kinds and "wi" in kinds, kinds
print("tokens:", kinds)
PY
assert_events_valid
