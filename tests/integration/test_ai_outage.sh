#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A storm of HTTP 503 (as long as the test needs, not a minute) and recovery: batches that cannot be
# delivered go to the encrypted spool (no readable plaintext on disk), status
# says the sink is down, and after recovery everything is delivered exactly
# once, in order.
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
  spool: {dir: \"$SPOOL\", max_bytes: 1MiB, max_age: 1h}"
ai_write_policy "$TG_TMP/policy.yaml" "flood_window: 0" "metrics_interval: 0"
ai_default '{"status": 503}'
tg_start_agent audit "$TG_TMP/policy.yaml"
ai_violations 4
# the storm: requests fail, batches pile up in the spool
for ((i = 0; i < 50; i++)); do
	st=$(ai_sink_status)
	[[ $(json_get "$st" spooled) -ge 5 ]] && break
	sleep 0.1
done
assert_cmp "$(json_get "$st" spooled)" -ge 5 "items in the spool during the storm"
assert_ne ok "$(json_get "$st" state)" "sink state during the storm"
assert_field "$st" spool "disk, encrypted"
assert_cmp "$(json_get "$st" sent)" -eq 0 "sent during the storm"
assert_eq 700 "$(stat -c %a "$SPOOL")" "spool directory mode"
files=$(find "$SPOOL" -name '*.spool' | wc -l)
assert_cmp "$files" -ge 1 "spool files"
for f in "$SPOOL"/*.spool; do
	assert_eq 600 "$(stat -c %a "$f")" "spool file mode"
done
for s in "$TG_CG_REL" "\"comm\":\"curl\"" "\"plaintext\"" storage "\"host\":\"$(hostname)\"" "$TG_PROT4" "$AI_IKEY" Microsoft; do
	if grep -rqaF -- "$s" "$SPOOL"; then
		tg_fail "spool files contain '$s' in clear text"
	fi
done
tg_log "ok: no event text readable in the spool"
# recovery: the storm ends, everything spooled is sent, oldest first
ai_default '{"status": 200}'
ai_wait_accepted 5 30
for ((i = 0; i < 50; i++)); do
	st=$(ai_sink_status)
	[[ $(json_get "$st" spooled) -eq 0 && $(json_get "$st" state) == ok ]] && break
	sleep 0.1
done
assert_field "$st" state ok
assert_field "$st" spooled 0
assert_field "$st" failed 0
assert_cmp "$(ai_stat answers | python3 -c 'import json,sys; print(json.load(sys.stdin).get("503", 0))')" -ge 1 \
	"requests answered 503"
tg_stop_agent
ai_assert_no_invalid
ai_assert_exactly_once 0

python3 - "$AI_RECORDS" <<'PY' || tg_fail "not delivered in order"
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
recs.sort(key=lambda r: (r["request"], r["index"]))
times = [r["item"]["data"]["baseData"]["properties"]["time"] for r in recs
         if r["item"]["data"]["baseType"] == "EventData"]
assert times == sorted(times), times
print("in order:", len(times))
PY
assert_events_valid
