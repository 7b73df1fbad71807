#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Agent restart with a full spool: while the endpoint is down the spool fills
# past events.spool.max_bytes and the oldest batches are evicted (reported as
# `agent` loss events with their count); the agent stops with the rest
# spooled. The next agent replays the spool in order before its own events.
# Every event is accepted exactly once or counted in a loss event.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ai_lib.sh disable=SC2119
. "$(dirname "$0")/ai_lib.sh"
trap tg_cleanup EXIT
tg_setup

ai_start_standin
ai_make_key
SPOOL="$TG_TMP/spool"
AI_EVENTS_EXTRA="  encrypt_fields: [\"workload.cgroup\"]
  key_file: \"$AI_KEY\"
  spool: {dir: \"$SPOOL\", max_bytes: 8KiB}"
ai_write_policy "$TG_TMP/policy.yaml" "flood_window: 0" "metrics_interval: 0" "batch_items: 2" \
	"retry_base: 30s" "retry_max: 30s"
ai_default '{"status": 503}'
tg_start_agent audit "$TG_TMP/policy.yaml"
ai_violations 8
for ((i = 0; i < 50; i++)); do
	st=$(ai_sink_status)
	[[ $(json_get "$st" lost.evicted) -gt 0 ]] && break
	sleep 0.1
done
assert_cmp "$(json_get "$st" lost.evicted)" -gt 0 "items evicted from the full spool"
assert_cmp "$(json_get "$st" spool_bytes)" -le 8192 "spool within max_bytes"
expect_event "$TG_EVENTS" "e.get('action') == 'loss' and 'spool was full' in (e.get('message') or '')" 5 \
	"loss event for the eviction" >/dev/null
tg_stop_agent
assert_eq 0 "$(ai_stat accepted)" "accepted while down"
spooled=$(find "$SPOOL" -name '*.spool' | wc -l)
assert_cmp "$spooled" -ge 2 "spool files left for the next agent"
for s in "$TG_CG_REL" "\"comm\":\"curl\"" "\"plaintext\"" "\"host\":\"$(hostname)\""; do
	if grep -rqaF -- "$s" "$SPOOL"; then
		tg_fail "spool files contain '$s' in clear text"
	fi
done
seqs_before=$(find "$SPOOL" -name '*.spool' -printf '%f\n' | sort | tr '\n' ' ')

# the endpoint is back; a new agent replays the spool
ai_default '{"status": 200}'
tg_start_agent audit "$TG_TMP/policy.yaml"
for ((i = 0; i < 100; i++)); do
	[[ -z $(find "$SPOOL" -name '*.spool') ]] && break
	sleep 0.1
done
[[ -z $(find "$SPOOL" -name '*.spool') ]] || tg_fail "spool not replayed: $(ls "$SPOOL")"
tg_log "replayed spool files $seqs_before"
ai_wait_accepted 2 10
tg_stop_agent
ai_assert_no_invalid
lost=$(ai_lost_reported)
assert_cmp "$lost" -gt 0 "items reported lost (evicted)"
ai_assert_exactly_once "$lost"

python3 - "$AI_RECORDS" <<'PY' || tg_fail "spool not replayed in order"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
recs.sort(key=lambda r: (r["request"], r["index"]))
times = [r["item"]["data"]["baseData"]["properties"]["time"] for r in recs]
assert times == sorted(times), times
acts = [r["item"]["data"]["baseData"]["properties"].get("action") for r in recs]
# the first agent's stop came from the spool before the second agent's start
assert acts.index("stop") < max(i for i, a in enumerate(acts) if a == "start"), acts
print("in order:", acts)
PY
"$TLSGUARD" decrypt --key-file "$AI_KEY" "$AI_RECORDS" >/dev/null || tg_fail "replayed items do not decrypt"
assert_events_valid
