#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The real ingestion's rules (issue #17), with Entra ID on:
#  1. a 307 to a regional Azure Monitor host (westeurope-5.in.applicationinsights.azure.com,
#     reached through the test-only test_resolve) is followed with a valid token,
#     and later batches go there directly;
#  2. when the regional host fails, the agent falls back to the configured one;
#  3. 402 (whole request) and 439 (per item in a 206): not retried, counted as
#     `quota` in status and reported in a `loss` event;
#  4. a 307 to a host outside the allow-list (ingest.example.net) is refused:
#     neither the token nor the data go there; the batch is delivered at home;
#  5. a per-item 308 inside a 206 sends that item again, to the 206's Location.
# Every event is accepted exactly once, except the quota losses, which are counted.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ai_lib.sh disable=SC2119
. "$(dirname "$0")/ai_lib.sh"
trap tg_cleanup EXIT
tg_setup

ai_start_standin --imds --require-token
ai_write_policy "$TG_TMP/policy.yaml" "flood_window: 0" "metrics_interval: 0" \
	"auth: managed_identity" \
	"imds_url: \"http://127.0.0.1:$AI_IMDS_PORT/metadata/identity/oauth2/token\"" \
	"$(ai_resolve_lines)"

# 1. moved to the regional host
ai_script '[{"status": 307, "location": "regional"}]'
tg_start_agent audit "$TG_TMP/policy.yaml"
ai_violations 2
ai_wait_stat regional_accepted 3 20	# the start event and two violations
home=$(ai_stat requests)
ai_violations 2
ai_wait_stat regional_accepted 5 15
assert_eq "$home" "$(ai_stat requests)" "requests to the configured host once moved"
st=$(ai_sink_status)
assert_cmp "$(json_get "$st" redirects)" -ge 1 "redirects followed"
assert_eq "https://$AI_REGIONAL_NAME:$AI_REGIONAL_PORT" "$(json_get "$st" redirected_to)" \
	"status names the host in use"

# 2. the regional host fails: back home
ai_regional '{"status": 503}'
ai_violations 1
ai_wait_accepted 6 20
st=$(ai_sink_status)
assert_eq null "$(json_get "$st" redirected_to)" "back on the configured host"
assert_eq 5 "$(ai_stat regional_accepted)" "accepted by the failed regional host"
ai_regional '{"status": 200}'

# 3. the daily cap: 402 for a request, 439 for an item of a 206
ai_wait_sink_idle 10
ai_script '[{"status": 402}]'
ai_violations 1
for ((i = 0; i < 100; i++)); do
	[[ $(json_get "$(ai_sink_status)" lost.quota) -ge 1 ]] && break
	sleep 0.1
done
ai_script '[{"status": 206, "codes": {"0": 439}}]'
ai_violations 1
for ((i = 0; i < 100; i++)); do
	[[ $(json_get "$(ai_sink_status)" lost.quota) -ge 2 ]] && break
	sleep 0.1
done
st=$(ai_sink_status)
assert_field "$st" lost.quota 2
assert_field "$st" lost.rejected 0
expect_event "$TG_EVENTS" "e.get('action') == 'loss' and 'daily cap or quota' in (e.get('message') or '')" \
	10 "loss event for the quota" >/dev/null
grep -q 'daily cap or quota' "$TG_AGENT_LOG" || tg_fail "the quota is not logged"

# 4. a redirect outside the allow-list
ai_wait_sink_idle 10
v=$(ai_violations_accepted)
ai_script '[{"status": 307, "location": "evil"}]'
ai_violations 1
for ((i = 0; i < 100; i++)); do
	[[ $(json_get "$(ai_sink_status)" redirects_refused) -ge 1 ]] && break
	sleep 0.1
done
ai_wait_violations $((v + 1)) 20	# delivered at home after the refusal
st=$(ai_sink_status)
assert_cmp "$(json_get "$st" redirects_refused)" -ge 1 "refused redirects counted"
assert_eq 0 "$(ai_stat other_host_requests)" "requests that reached the host outside the allow-list"
grep -q 'redirects to another host' "$TG_AGENT_LOG" || tg_fail "the refused redirect is not logged"

# 5. a per-item 308 in a 206: that item goes again, to the Location
regional=$(ai_stat regional_accepted)
ai_script '[{"status": 206, "codes": {"0": 308}, "location": "regional"}]'
ai_violations 1
ai_wait_stat regional_accepted $((regional + 1)) 20
ai_wait_sink_idle 10
tg_stop_agent
ai_assert_no_invalid
ai_assert_exactly_once 2
assert_cmp "$(ai_stat auth_refused)" -eq 0 "requests refused for their token"
python3 - "$AI_RECORDS" <<'PY' || tg_fail "records: hosts, tokens or event ids wrong"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert all((r["token"] or "").startswith("mi-") for r in recs), "an item without a token"
hosts = {r["host"] for r in recs}
assert hosts == {"https", "regional"}, hosts
ids = [r["event_id"] for r in recs if not r["id"].startswith("metric|")]
assert all(i and len(i) == 32 for i in ids), ids
assert len(ids) == len(set(ids)), "an event_id twice"
ops = [r["item"]["tags"].get("ai.operation.id") for r in recs if not r["id"].startswith("metric|")]
assert ops == ids, "ai.operation.id is not the event_id"
print("hosts", sorted(hosts), len(ids), "event ids")
PY
assert_events_valid
