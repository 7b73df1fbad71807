#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A slow endpoint: answers take 2 s, and one never comes (7 s, then a reset,
# past the 5 s timeout). The kernel-event path does not wait: events reach
# the JSON file and `tlsguard status` answers at once while the sink waits.
# Everything is delivered exactly once.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ai_lib.sh disable=SC2119
. "$(dirname "$0")/ai_lib.sh"
trap tg_cleanup EXIT
tg_setup

ai_start_standin
ai_default '{"status": 200, "delay_s": 2}'
ai_script '[{"delay_s": 7, "drop": true}]'
ai_write_policy "$TG_TMP/policy.yaml" "flood_window: 0" "metrics_interval: 0"
tg_start_agent audit "$TG_TMP/policy.yaml"
sleep 1.5	# the start event's request is on its way and hangs for 5 s
# the sink waits 5 s on that request, then 2 s on every answer: the event path
# and the control socket must not (bounds well below those waits, for loaded CI)
for i in 1 2 3; do
	t0=$(tg_now_ms)
	ai_violations 1
	for ((w = 0; w < 40; w++)); do
		[[ $(count_events "$TG_EVENTS" "e.get('type') == 'plaintext'") -ge $i ]] && break
		sleep 0.05
	done
	t1=$(tg_now_ms)
	assert_eq "$i" "$(count_events "$TG_EVENTS" "e.get('type') == 'plaintext'")" "events in the file"
	assert_cmp $((t1 - t0)) -lt 3000 "violation $i reached the file while the sink waits (ms)"
done
t0=$(tg_now_ms)
"$TLSGUARD" status --socket "$TG_SOCK" -o json >/dev/null
t1=$(tg_now_ms)
assert_cmp $((t1 - t0)) -lt 3000 "status answered while the sink waits (ms)"
ai_wait_accepted 4 30
st=$(ai_sink_status)
assert_field "$st" failed 0
assert_cmp "$(json_get "$st" retries)" -ge 1 "retries after the timeout"
grep -q 'appinsights: request failed (.*[Tt]imeout\|appinsights: request failed (Operation timed out' "$TG_AGENT_LOG" ||
	tg_fail "the timeout is not logged: $(grep appinsights "$TG_AGENT_LOG")"
tg_stop_agent
ai_assert_no_invalid
ai_assert_exactly_once 0
python3 - "$AI_REQUESTS" <<'PY' || tg_fail "unexpected request sequence"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
# the first request got no answer (timed out, then reset); the next carried the same batch
assert r[0]["status"] == 0 and r[1]["status"] == 200, r[:2]
assert all(x["status"] == 200 for x in r[1:]), [x["status"] for x in r]
PY
assert_events_valid
