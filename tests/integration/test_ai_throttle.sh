#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# HTTP 429 with Retry-After, once in seconds and once as an HTTP-date: the
# sink waits at least as long as told (its own backoff would retry after ~1 s),
# then delivers everything exactly once.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ai_lib.sh disable=SC2119
. "$(dirname "$0")/ai_lib.sh"
trap tg_cleanup EXIT
tg_setup

ai_start_standin
ai_script '[{"status": 429, "retry_after": "3"}, {"status": 429, "retry_after_in": 3}]'
ai_write_policy "$TG_TMP/policy.yaml" "flood_window: 0" "metrics_interval: 0"
tg_start_agent audit "$TG_TMP/policy.yaml"
ai_violations 3
ai_wait_stat requests 3 20
ai_wait_accepted 4 10
st=$(ai_sink_status)
assert_cmp "$(json_get "$st" throttled)" -eq 2 "throttled requests"
assert_field "$st" state ok
tg_stop_agent
ai_assert_no_invalid
ai_assert_exactly_once 0

python3 - "$AI_REQUESTS" <<'PY' || tg_fail "Retry-After was not honoured"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert [x["status"] for x in r[:3]] == [429, 429, 200], [x["status"] for x in r[:3]]
gap1, gap2 = r[1]["time"] - r[0]["time"], r[2]["time"] - r[1]["time"]
print("gaps %.2f s (Retry-After: 3) and %.2f s (Retry-After: date + 3 s)" % (gap1, gap2))
assert gap1 >= 2.95, gap1
# an HTTP-date has whole seconds: at least 2 s remain of the 3
assert gap2 >= 1.95, gap2
# the same batch was retried, not another
assert r[0]["ids"] == r[1]["ids"] == r[2]["ids"][:len(r[0]["ids"])]
PY
assert_events_valid
