#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Application Insights, every answer 200: real violations from curl reach the
# stand-in exactly once as valid EventData (gzip, TLS with the test CA),
# counters arrive as MetricData, chosen fields are encrypted / hashed in both
# the App Insights items and the JSON file, and `tlsguard decrypt` restores them.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ai_lib.sh disable=SC2119
. "$(dirname "$0")/ai_lib.sh"
trap tg_cleanup EXIT
tg_setup

ai_start_standin
ai_make_key
AI_EVENTS_EXTRA="  encrypt_fields: [\"workload.cgroup\", \"destination.ip\"]
  hash_fields: [\"workload.comm\"]
  key_file: \"$AI_KEY\""
ai_write_policy "$TG_TMP/policy.yaml" "flood_window: 0" "metrics_interval: 1s"
tg_start_agent audit "$TG_TMP/policy.yaml"

ai_violations 4
# start + 4 violations
ai_wait_accepted 5 20
# and the counters, sent every metrics_interval: the first one can be a tick
# after the events, so wait for it rather than stop before it was due
for ((i = 0; i < 100; i++)); do
	grep -q '"id": "metric|tlsguard.events_emitted|' "$AI_RECORDS" 2>/dev/null && break
	sleep 0.1
done
st=$(ai_sink_status)
assert_field "$st" state ok
assert_cmp "$(json_get "$st" sent)" -ge 5 "appinsights sent"
assert_field "$st" failed 0
assert_field "$st" target "https://127.0.0.1:$AI_PORT"
"$TLSGUARD" status --socket "$TG_SOCK" >"$TG_TMP/status.txt"
tg_stop_agent

ai_assert_no_invalid
ai_assert_exactly_once 0
answers=$(json_get "$(ai_ctl /stats)" answers)
assert_eq "{\"200\": $(ai_stat requests)}" "$answers" "every request answered 200"

# counters as MetricData
n=$(grep -c '"id": "metric|tlsguard.events_emitted|' "$AI_RECORDS") || true
assert_cmp "$n" -ge 1 "tlsguard.events_emitted metric items"

# protected fields in what left the host ...
python3 - "$AI_RECORDS" "$TG_EVENTS" <<'PY' || tg_fail "fields are not protected"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
evs = [r["item"]["data"]["baseData"]["properties"] for r in recs
       if r["item"]["data"]["baseType"] == "EventData" and r["item"]["data"]["baseData"]["name"] == "plaintext"]
assert len(evs) == 4, len(evs)
for p in evs:
    assert p["workload.cgroup"].startswith("enc:v1:"), p
    assert p["destination.ip"].startswith("enc:v1:"), p
    assert p["workload.comm"].startswith("hmac:v1:"), p
    assert p["action"] == "flagged"
# hashes group: the same comm hashes the same
assert len({p["workload.comm"] for p in evs}) == 1
for l in open(sys.argv[2]):
    e = json.loads(l)
    if e["type"] == "plaintext":
        assert e["workload"]["cgroup"].startswith("enc:v1:"), e
        assert e["workload"]["comm"].startswith("hmac:v1:"), e
PY
tg_log "ok: workload.cgroup and destination.ip encrypted, workload.comm hashed (App Insights and file)"
# (the temp and pin dirs share the cgroup's name: look for the field)
if grep -qE "cgroup\": ?\"$TG_CG_REL\"" "$AI_RECORDS" "$TG_EVENTS"; then
	tg_fail "the cgroup name appears in clear text"
fi

# ... and back for an authorised reader
"$TLSGUARD" decrypt --key-file "$AI_KEY" "$AI_RECORDS" >"$TG_TMP/records.clear" ||
	tg_fail "tlsguard decrypt of the App Insights items failed"
"$TLSGUARD" decrypt --key-file "$AI_KEY" "$TG_EVENTS" >"$TG_TMP/events.clear" ||
	tg_fail "tlsguard decrypt of the events file failed"
n=$(grep -c "\"workload.cgroup\": *\"$TG_CG_REL\"" "$TG_TMP/records.clear") || true
assert_eq 4 "$n" "decrypted workload.cgroup in App Insights items"
n=$(grep -c "\"destination\":{[^}]*\"ip\":\"$TG_PROT4\"" "$TG_TMP/events.clear") || true
assert_eq 4 "$n" "decrypted destination.ip in the events file"
# a wrong key is a clear error naming the field
openssl rand -hex 32 >"$TG_TMP/wrong-key"
if "$TLSGUARD" decrypt --key-file "$TG_TMP/wrong-key" "$TG_EVENTS" >/dev/null 2>"$TG_TMP/wrong.err"; then
	tg_fail "decrypt with a wrong key succeeded"
fi
assert_file_contains "$TG_TMP/wrong.err" 'workload.cgroup|destination.ip|key' "wrong key names the problem"
assert_events_valid
