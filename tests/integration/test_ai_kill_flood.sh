#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SIGKILL during a flood, the endpoint up (issue #17): 5000 violations a second
# for 3 s, the agent killed after 1.5 s and started again at once. Across the
# restart, the violations Application Insights accepted plus the losses the
# agents reported (`loss` events: the kernel ring buffer overflowing while no
# agent read it, App Insights losses) equal the violations generated, exactly.
# tg-timeout: 240
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ai_lib.sh disable=SC2119
. "$(dirname "$0")/ai_lib.sh"
trap tg_cleanup EXIT
tg_setup

N=15000
ai_start_standin
ai_make_key
AI_EVENTS_EXTRA="  key_file: \"$AI_KEY\"
  spool: {dir: \"$TG_TMP/spool\", max_bytes: 64MiB}"
ai_write_policy "$TG_TMP/policy.yaml" "flood_window: 0" "metrics_interval: 0" "queue_max: 100000"
tg_start_plain_server web "$TG_PROT4" 80
tg_start_agent audit "$TG_TMP/policy.yaml"

run_in_cg_ns "$TG_CG" "$TG_NS" python3 "$TG_ROOT/tests/integration/ai_gen.py" "$TG_PROT4" 5000 \
	"$TG_TMP/gen.stop" "$N" >"$TG_TMP/gen.out" 2>"$TG_TMP/gen.err" </dev/null &
GEN_PID=$!
TG_PIDS+=("$GEN_PID")
sleep 1.5
tg_kill_agent
tg_start_agent audit "$TG_TMP/policy.yaml"
wait "$GEN_PID" || tg_fail "the generator failed: $(cat "$TG_TMP/gen.err")"
sent=$(awk '/^sent/ {print $2}' "$TG_TMP/gen.out")
assert_eq "$N" "$sent" "violations generated"

# settle: the ring drained, the losses reported (once a second), the sink idle
reported()
{
	python3 -c "$TG_PY_PRELUDE
import re
n = 0
for e in load(sys.argv[1]):
    if e.get('type') == 'agent' and e.get('action') == 'loss':
        m = re.match(r'(?:appinsights: )?(\d+) (?:event|item)', e.get('message') or '')
        n += int(m.group(1)) if m else 0
print(n)" "$TG_EVENTS"
}
# Distinct violations by event_id: a record the killed agent had read but not committed is
# read again by the next one, with the same event_id but a "time" that may differ in the
# last microsecond (each agent converts the kernel's monotonic stamp with its own offset).
accepted()
{
	python3 -c '
import json, sys
ids = set()
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        if r.get("id", "").startswith("plaintext|"):
            ids.add(r.get("event_id"))
print(len(ids))' "$AI_RECORDS"
}
for ((i = 0; i < 400; i++)); do
	((i % 10 == 0)) || { sleep 0.1; continue; }
	a=$(accepted)
	r=$(reported)
	((a + r >= N)) && break
	sleep 0.1
done
read -r flagged ringbuf <<<"$("$TLSGUARD" status --socket "$TG_SOCK" -o json |
	python3 -c 'import json,sys; k=json.load(sys.stdin)["kernel_counters"]; print(k["plaintext_flagged"], k["err_ringbuf"])')"
tg_stop_agent
a=$(accepted)
r=$(reported)
retimed=$(python3 -c '
import collections, json, sys
ids = collections.defaultdict(set)
for line in open(sys.argv[1]):
    if line.strip():
        r = json.loads(line)
        if r.get("id", "").startswith("plaintext|"):
            ids[r.get("event_id")].add(r["id"])
print(sum(1 for v in ids.values() if len(v) > 1))' "$AI_RECORDS")
tg_log "generated $N, kernel flagged $flagged (ring buffer full: $ringbuf); accepted $a + reported lost $r; $retimed read again by the second agent with another time"
assert_eq "$N" "$flagged" "violations the kernel counted"
assert_eq "$N" "$((a + r))" "accepted + reported lost"
assert_cmp "$r" -ge "$ringbuf" "the ring buffer losses are reported"
ai_assert_no_invalid
