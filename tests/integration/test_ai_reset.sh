#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Connection resets: the endpoint reads two requests and resets the
# connection without an answer; the sink backs off, retries the same batch
# and delivers everything exactly once.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ai_lib.sh disable=SC2119
. "$(dirname "$0")/ai_lib.sh"
trap tg_cleanup EXIT
tg_setup

ai_start_standin
ai_script '[{"drop": true}, {"drop": true}]'
ai_write_policy "$TG_TMP/policy.yaml" "flood_window: 0" "metrics_interval: 0"
tg_start_agent audit "$TG_TMP/policy.yaml"
ai_violations 3
ai_wait_stat dropped 2 15
ai_wait_accepted 4 15
st=$(ai_sink_status)
assert_field "$st" state ok
assert_cmp "$(json_get "$st" retries)" -ge 2 "retries after resets"
assert_field "$st" failed 0
grep -Eq 'appinsights: request failed \((Recv failure|Connection reset|.*reset|Send failure|.*SSL)' "$TG_AGENT_LOG" ||
	tg_fail "the reset is not logged: $(grep appinsights "$TG_AGENT_LOG")"
tg_stop_agent
ai_assert_no_invalid
ai_assert_exactly_once 0
python3 - "$AI_REQUESTS" <<'PY' || tg_fail "the reset batch was not the one retried"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
assert r[0]["status"] == 0 and r[1]["status"] == 0 and r[2]["status"] == 200, r[:3]
assert r[0]["ids"] == [] and r[2]["ids"], r[2]
PY
assert_events_valid
