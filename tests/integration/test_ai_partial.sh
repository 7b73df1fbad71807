#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# HTTP 206 with mixed per-item codes: only the items whose statusCode is
# retryable (408, 429, 500, 503) are sent again, by index; the others are
# counted as lost: 400 as rejected, 402 (daily cap) as quota. Every event is accepted exactly once or
# counted, and the retried request holds exactly the right items.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ai_lib.sh disable=SC2119
. "$(dirname "$0")/ai_lib.sh"
trap tg_cleanup EXIT
tg_setup

ai_start_standin
ai_script '[{"status": 206, "codes": {"1": 500, "2": 400, "3": 429, "4": 408, "5": 402}}]'
# one request for the start event and five violations: 6 items, sent when full
ai_write_policy "$TG_TMP/policy.yaml" "flood_window: 0" "metrics_interval: 0" \
	"batch_items: 6" "batch_age: 20s"
tg_start_agent audit "$TG_TMP/policy.yaml"
ai_violations 5
ai_wait_stat requests 2 15
ai_wait_accepted 4 10
st=$(ai_sink_status)
assert_field "$st" failed 2
assert_field "$st" lost.rejected 1
assert_field "$st" lost.quota 1
assert_field "$st" sent 4
grep -q 'item(s) rejected' "$TG_AGENT_LOG" || tg_fail "the rejection is not logged"
tg_stop_agent
ai_assert_no_invalid

python3 - "$AI_REQUESTS" <<'PY' || tg_fail "the wrong items were retried"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
first, second = reqs[0], reqs[1]
assert first["status"] == 206 and len(first["ids"]) == 6, first
want = [first["ids"][i] for i in (1, 3, 4)]
assert second["ids"] == want, (second["ids"], want)
assert second["status"] == 200, second
# the lost ones were never sent again
for r in reqs[1:]:
    for i in (2, 5):
        assert first["ids"][i] not in r["ids"], (i, r)
print("retried", want)
PY
tg_log "ok: the second request held exactly items 1, 3 and 4 of the first"
# items 2 and 5 of the first request (400 and 402) are the lost ones
ai_assert_exactly_once 2
assert_events_valid
