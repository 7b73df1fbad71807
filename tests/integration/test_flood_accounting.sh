#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Honest accounting under a flood: with the agent frozen (SIGSTOP), more
# violations happen than the kernel ring buffer can hold. Afterwards the
# events written plus the losses the kernel counted equal the violations
# generated, exactly, and the agent reports the loss as an `agent` event.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

N=4000	# the 1 MiB ring holds fewer than 3000 events of 352 bytes
tg_start_plain_server web "$TG_PROT4" 80
tg_write_policy "$TG_TMP/policy.yaml" audit "[80, 443]"
tg_start_agent audit "$TG_TMP/policy.yaml"

kill -STOP "$TG_AGENT_PID"
TG_STDIN=/dev/null tg_client flood python3 -c '
import socket, sys
n, addr = int(sys.argv[1]), sys.argv[2]
sent = 0
for i in range(n):
    s = socket.create_connection((addr, 80), timeout=5)
    s.sendall(b"GET /%d HTTP/1.1\r\nHost: flood\r\n\r\n" % i)
    s.close()
    sent += 1
print("sent", sent)' "$N" "$TG_PROT4"
kill -CONT "$TG_AGENT_PID"
assert_rc 0 "flood client"
assert_file_contains "$TG_OUT" "^sent $N\$" "flood client sent $N requests"

P="e.get('type') == 'plaintext'"
status_json()
{
	"$TLSGUARD" status --socket "$TG_SOCK" -o json
}
# wait until the agent has drained what the ring held
prev=-1
for _ in $(seq 100); do
	cur=$(count_events "$TG_EVENTS" "$P")
	[[ $cur -eq $prev && $cur -gt 0 ]] && break
	prev=$cur
	sleep 0.3
done
written=$(count_events "$TG_EVENTS" "$P")
read -r flagged lost emitted_lost < <(status_json | python3 -c '
import json, sys
s = json.load(sys.stdin)
k = s["kernel_counters"]
print(k["plaintext_flagged"], k["err_ringbuf"], s["counters"]["events_lost"])')
tg_log "violations $N: kernel flagged $flagged, events written $written, ring buffer losses $lost"
assert_eq "$N" "$flagged" "violations the kernel saw"
assert_cmp "$lost" -gt 0 "ring buffer losses (the flood must overflow the ring)"
assert_eq "$N" "$((written + lost))" "events written + events lost"
assert_eq "$lost" "$emitted_lost" "status counters.events_lost"
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'agent' and e.get('action') == 'loss'" 5 "agent loss event")
[[ $(json_get "$ev" message) == "$lost event(s) lost"* ]] || tg_fail "loss event message: $(json_get "$ev" message)"
tg_stop_agent
assert_events_valid
