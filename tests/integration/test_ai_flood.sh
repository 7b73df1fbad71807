#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Flood control: the first violation of a (workload, destination, type) goes
# to Application Insights at once; repeats within the window are folded into
# one event whose "count" (measurements.count) says how many. Nothing is lost:
# the counts add up to the violations, and the JSON file keeps every event.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ai_lib.sh disable=SC2119
. "$(dirname "$0")/ai_lib.sh"
trap tg_cleanup EXIT
tg_setup

ai_start_standin
ai_write_policy "$TG_TMP/policy.yaml" "flood_window: 8s" "metrics_interval: 0"
tg_start_agent audit "$TG_TMP/policy.yaml"

t0=$(tg_now_ms)
ai_violations 6
# the first one is sent at once (with the start event), the rest wait for the window
ai_wait_accepted 2 10
n=$(grep -c '"id": "plaintext|' "$AI_RECORDS") || true
assert_eq 1 "$n" "violations in App Insights before the window closed"
# the window closes 8 s after the first violation: one summary
ai_wait_accepted 3 20
t1=$(tg_now_ms)
assert_cmp $((t1 - t0)) -ge 7500 "the summary waited for the window (ms)"
assert_event_count "$TG_EVENTS" "e.get('type') == 'plaintext'" 6 "plaintext events in the file (complete)"
tg_stop_agent
ai_assert_no_invalid

python3 - "$AI_RECORDS" "$TG_EVENTS" <<'PY' || tg_fail "flood summary is wrong"
import json, sys
recs = [json.loads(l)["item"] for l in open(sys.argv[1])]
evs = [json.loads(l) for l in open(sys.argv[2])]
plain = [e for e in evs if e["type"] == "plaintext"]
items = [r["data"]["baseData"] for r in recs if r["data"]["baseData"].get("name") == "plaintext"]
assert len(items) == 2, items
first, summary = items
assert first["measurements"]["count"] == 1, first
assert first["properties"]["time"] == plain[0]["time"], (first, plain[0])
assert summary["measurements"]["count"] == 5, summary
# the summary carries the first folded event and the time of the last
assert summary["properties"]["time"] == plain[1]["time"], summary
assert summary["properties"]["last_time"] == plain[5]["time"], summary
assert "count" not in summary["properties"]
print("ok")
PY
tg_log "ok: 6 violations = 1 sent at once + 1 summary with count 5"
n=$(grep -c '"id": "agent|' "$AI_RECORDS") || true
assert_eq 2 "$n" "agent events (start, stop) in App Insights, never folded"
assert_events_valid
