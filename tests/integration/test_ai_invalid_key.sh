#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# An instrumentation key the service does not know: every request is answered
# 400. The items are counted as lost (status: failed, lost.rejected), the
# problem is logged once (not once per request), the sink shows "down", and
# the agent keeps running. Also: hash_fields without a key refuses to start.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ai_lib.sh disable=SC2119
. "$(dirname "$0")/ai_lib.sh"
trap tg_cleanup EXIT
tg_setup

ai_start_standin
# refuse to start: a field to hash but no key
AI_EVENTS_EXTRA='  hash_fields: ["workload.pod"]' ai_write_policy "$TG_TMP/nokey.yaml"
tg_capture nokey "$TLSGUARD" agent --config "$TG_TMP/nokey.yaml" --pin-path "$TG_PIN" \
	--socket "$TG_SOCK" --events-file "$TG_TMP/nokey.jsonl"
assert_rc 2 "agent with hash_fields and no key"
assert_file_contains "$TG_OUT" 'hash_fields.*needs a key' "the refusal names the problem"

AI_CONNSTR=$(ai_connstr 00000000-1111-2222-3333-444444444444) # read by ai_write_policy
export AI_CONNSTR
ai_write_policy "$TG_TMP/policy.yaml" "flood_window: 0" "metrics_interval: 0"
tg_start_agent audit "$TG_TMP/policy.yaml"
ai_wait_stat requests 1 10	# the start event
ai_violations 2
ai_wait_stat requests 2 10
ai_violations 1
ai_wait_stat requests 3 10
sleep 0.3
st=$(ai_sink_status)
assert_field "$st" state down
assert_field "$st" sent 0
n=$(count_events "$TG_EVENTS" "True")
assert_cmp "$(json_get "$st" failed)" -eq "$n" "items counted as lost (= events so far)"
assert_field "$st" lost.rejected "$n"
assert_file_contains "$TG_AGENT_LOG" 'HTTP 400' "the rejection is logged"
tg_stop_agent
n=$(grep -c 'appinsights: the endpoint rejected' "$TG_AGENT_LOG") || true
assert_eq 1 "$n" "the rejection is logged once"
assert_eq 0 "$(ai_stat accepted)" "items accepted"
assert_cmp "$(ai_stat invalid)" -gt 0 "items the stand-in refused for the key"
# no loss event per rejected batch: that would loop (the loss event is rejected too)
assert_event_count "$TG_EVENTS" "e.get('action') == 'loss'" 0 "loss events"
assert_events_valid
