#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Nothing lost when the agent is killed (issue #17): a steady stream of
# violations, an outage (503) in the middle, and the agent killed with SIGKILL
# 22 times at random moments, started again each time; then the endpoint is
# up for good. Every violation the kernel counted is accepted by the stand-in
# (from the journal, the spool, or the kernel ring buffer the killed agent had
# not advanced past), no loss is reported, and an event accepted twice (a
# replay of a batch whose acknowledgement the kill cut off) carries the same
# event_id both times.
# tg-timeout: 240
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ai_lib.sh disable=SC2119
. "$(dirname "$0")/ai_lib.sh"
trap tg_cleanup EXIT
tg_setup

KILLS=22
ai_start_standin
ai_make_key
SPOOL="$TG_TMP/spool"
AI_EVENTS_EXTRA="  key_file: \"$AI_KEY\"
  spool: {dir: \"$SPOOL\", max_bytes: 16MiB}"
ai_write_policy "$TG_TMP/policy.yaml" "flood_window: 0" "metrics_interval: 0" "retry_base: 1s" \
	"retry_max: 1s" "batch_items: 20"
tg_start_plain_server web "$TG_PROT4" 80
tg_start_agent audit "$TG_TMP/policy.yaml"

# the steady stream: 40 violations a second until told to stop
run_in_cg_ns "$TG_CG" "$TG_NS" python3 "$TG_ROOT/tests/integration/ai_gen.py" "$TG_PROT4" 40 \
	"$TG_TMP/gen.stop" 100000 >"$TG_TMP/gen.out" 2>"$TG_TMP/gen.err" </dev/null &
GEN_PID=$!
TG_PIDS+=("$GEN_PID")

for ((k = 0; k < KILLS; k++)); do
	((k == 6)) && ai_default '{"status": 503}'	# the outage: kills 6..13 while it lasts
	((k == 14)) && ai_default '{"status": 200}'
	# 0.1 to 1.3 s after the start: before, during and after batches, requests, retries
	sleep "$(printf '0.%d' $((RANDOM % 10)))"
	sleep "0.$((1 + RANDOM % 3))"
	tg_kill_agent
	tg_start_agent audit "$TG_TMP/policy.yaml" >/dev/null 2>&1 || tg_fail "restart $k"
done
touch "$TG_TMP/gen.stop"
wait "$GEN_PID" || tg_fail "the generator failed: $(cat "$TG_TMP/gen.err")"
sent=$(awk '/^sent/ {print $2}' "$TG_TMP/gen.out")
kernel=$("$TLSGUARD" status --socket "$TG_SOCK" -o json |
	python3 -c 'import json,sys; k=json.load(sys.stdin)["kernel_counters"]; print(k["plaintext_flagged"], k["err_ringbuf"])')
read -r flagged ringbuf_lost <<<"$kernel"
tg_log "generated $sent violations; the kernel counted $flagged, ring buffer losses $ringbuf_lost"
assert_eq "$sent" "$flagged" "violations the kernel counted"
assert_eq 0 "$ringbuf_lost" "ring buffer losses"
ai_wait_violations "$flagged" 40
tg_stop_agent

python3 - "$AI_RECORDS" "$TG_EVENTS" "$flagged" <<'PY' || tg_fail "after $KILLS kills: not every violation accepted, or a duplicate with another event_id"
import json, sys, collections
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
events = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
flagged = int(sys.argv[3])
viol = [r for r in recs if r["id"].startswith("plaintext|")]
by_id = collections.defaultdict(set)      # what identifies the violation -> event_ids
by_eid = collections.defaultdict(set)
for r in viol:
    by_id[r["id"]].add(r["event_id"])
    by_eid[r["event_id"]].add(r["id"])
assert len(by_id) >= flagged, "accepted %d distinct violations, the kernel counted %d" % (len(by_id), flagged)
bad = {k: v for k, v in by_id.items() if len(v) != 1}
assert not bad, "a violation accepted under two event ids: %s" % list(bad.items())[:3]
assert all(len(v) == 1 for v in by_eid.values()), "one event_id for two violations"
dups = len(viol) - len(by_id)
# the events file holds every violation too (duplicates of a re-read record share the id)
file_ids = {e["event_id"] for e in events if e.get("type") == "plaintext"}
assert set(by_eid) <= file_ids, "accepted event_ids missing from the events file"
assert len(file_ids) >= flagged, "events file: %d distinct violations of %d" % (len(file_ids), flagged)
losses = [e["message"] for e in events if e.get("type") == "agent" and e.get("action") == "loss"]
assert not losses, "loss reported: %s" % losses
print("%d violations accepted (%d accepted twice, same event_id), %d requests" %
      (len(by_id), dups, len({r["request"] for r in recs})))
PY
tg_log "ok: every violation accepted after $KILLS SIGKILLs"
ai_assert_no_invalid
assert_events_valid
