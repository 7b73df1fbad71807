#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The control socket's bounds (agent/serve/control_proto.h, control.h, docs/operations.md "Bounded
# resources"): a `tlsguard events --follow` client that does not read loses
# lines once 8 MiB wait for it, counted in control.follower_drops, exactly
# (received + dropped = published), while a reading follower loses none; and
# with 64 clients connected, the 65th is refused and counted in
# control.refused_peers, while the 64 are still served.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

CLIENTS="$(dirname "$0")/control_clients.py"
OUT_MAX=$((8 << 20))	# TG_CONTROL_OUT_MAX
MAX_CLIENTS=64		# TG_CONTROL_MAX_CLIENTS
# Events carry the workload's cgroup path: a deep one with long names makes
# them about 3 KiB each, so 8 MiB takes a few thousand events, not 25,000.
DEEP=""
cleanup()
{
	local rc=$? d=$DEEP
	set +e	# a cleanup that stops half way would leave the agent running
	trap - ERR
	# the directories go deepest first, before tg_cleanup removes the test's cgroup
	[[ -n "$DEEP" ]] && _tg_empty_cgroup "$DEEP"
	while [[ -n "$DEEP" && "$d" == "$TG_CG"/* ]]; do
		rmdir "$d" 2>/dev/null || true
		d=${d%/*}
	done
	(exit "$rc")	# tg_cleanup turns the test's status into the result
	tg_cleanup
}
trap cleanup EXIT
tg_setup

status_json() { "$TLSGUARD" status --socket "$TG_SOCK" -o json; }

DEEP=$TG_CG
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
	DEEP="$DEEP/$(printf "level%02d-%0240d" "$i" 0)"
done
mkdir -p "$DEEP"

tg_start_plain_server web "$TG_PROT4" 80
tg_write_policy "$TG_TMP/policy.yaml" audit "[80, 443]"
tg_start_agent audit "$TG_TMP/policy.yaml"

# ---- 1. a follower that does not read
python3 "$CLIENTS" stall --socket "$TG_SOCK" --type plaintext --ready "$TG_TMP/stall.ready" \
	--go "$TG_TMP/stall.go" >"$TG_TMP/stall.out" 2>&1 &
stall=$!
TG_PIDS+=("$stall")
"$TLSGUARD" events --socket "$TG_SOCK" --follow --type plaintext -o json >"$TG_TMP/reader.out" 2>&1 &
reader=$!
TG_PIDS+=("$reader")
# one event first, to size the flood; both followers have it (live, or from the
# agent's recent events) before the flood starts
run_in_cg_ns "$DEEP" "$TG_NS" curl -sS --max-time 5 -o /dev/null "$(tg_url http "$TG_PROT4")"
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'plaintext'" 10 "first plaintext event")
for ((i = 0; i < 100; i++)); do
	[[ -e "$TG_TMP/stall.ready" && -s "$TG_TMP/reader.out" ]] && break
	sleep 0.1
done
[[ -e "$TG_TMP/stall.ready" ]] || tg_fail "the stalled follower did not get the first event: $(cat "$TG_TMP/stall.out")"
[[ -s "$TG_TMP/reader.out" ]] || tg_fail "the reading follower did not get the first event"
line=$(python3 -c 'import json, sys; print(len(json.dumps(json.loads(sys.argv[1]), separators=(",", ":"))))' "$ev")
[[ $(json_get "$ev" workload.cgroup) == "${DEEP#"$TG_CG2"}" ]] ||
	tg_fail "the event does not name the deep cgroup: $(json_get "$ev" workload.cgroup)"
# 8 MiB in the agent + what the kernel holds for the socket, with a margin.
# Violations come in rounds until that many events are written: the kernel's
# ring buffer may drop some while the agent is busy (counted elsewhere).
want=$(((OUT_MAX + (1 << 20)) / line + 1))
tg_log "event lines of about $line bytes: $want events wanted"
start=$(tg_now_ms)
cur=1
for ((round = 0; round < 20 && cur < want; round++)); do
	TG_STDIN=/dev/null tg_capture "flood$round" run_in_cg_ns "$DEEP" "$TG_NS" python3 -c '
import socket, sys
n, addr = int(sys.argv[1]), sys.argv[2]
for i in range(n):
    s = socket.create_connection((addr, 80), timeout=5)
    s.sendall(b"GET /%d HTTP/1.1\r\nHost: flood\r\n\r\n" % i)
    s.close()' $((want - cur < 1000 ? want - cur : 1000)) "$TG_PROT4" 2>/dev/null
	assert_rc 0 "flood client" 2>/dev/null
	# until the agent has written what the kernel handed it
	prev=-1
	for ((i = 0; i < 200; i++)); do
		cur=$(count_events "$TG_EVENTS" "e.get('type') == 'plaintext'")
		[[ $cur -eq $prev ]] && break
		prev=$cur
		sleep 0.2
	done
done
tg_log "flood: $cur plaintext events written in $(($(tg_now_ms) - start)) ms"
assert_cmp "$cur" -ge "$want" "plaintext events (more than 8 MiB of lines)"
drops=$(json_get "$(status_json)" control.follower_drops)
assert_cmp "$drops" -gt 0 "control.follower_drops with a follower that does not read"
touch "$TG_TMP/stall.go"
wait "$stall" || tg_fail "the stalled follower failed: $(cat "$TG_TMP/stall.out")"
got=$(tail -1 "$TG_TMP/stall.out")
assert_eq 0 "$(json_get "$got" bad)" "broken lines the stalled follower got"
assert_cmp "$(json_get "$got" lines)" -ge $((OUT_MAX / line - 1)) "lines waiting for the stalled follower (8 MiB)"
assert_eq "$cur" $(($(json_get "$got" lines) + drops)) "lines received + control.follower_drops = plaintext events"
# the follower that reads lost nothing
for ((i = 0; i < 50; i++)); do
	[[ $(grep -c '"type":"plaintext"' "$TG_TMP/reader.out") -ge $cur ]] && break
	sleep 0.1
done
assert_eq "$cur" "$(grep -c '"type":"plaintext"' "$TG_TMP/reader.out")" "lines the reading follower got"
assert_eq "$drops" "$(json_get "$(status_json)" control.follower_drops)" "follower_drops (only the stalled follower's)"
kill "$reader" 2>/dev/null || true
wait "$reader" 2>/dev/null || true

# ---- 2. 64 clients, then one more
# every earlier client is gone: only this status request is connected
for ((i = 0; i < 100; i++)); do
	st=$(status_json)
	[[ $(json_get "$st" control.clients) == 1 ]] && break
	sleep 0.1
done
assert_eq 1 "$(json_get "$st" control.clients)" "control.clients (the status request itself)"
assert_eq 0 "$(json_get "$st" control.refused_peers)" "control.refused_peers before"
sleep 0.2	# and the agent has seen that one close too
python3 "$CLIENTS" hold -n $MAX_CLIENTS --socket "$TG_SOCK" --type agent --ready "$TG_TMP/hold.ready" \
	--go "$TG_TMP/hold.go" >"$TG_TMP/hold.out" 2>&1 &
hold=$!
TG_PIDS+=("$hold")
for ((i = 0; i < 100; i++)); do
	[[ -e "$TG_TMP/hold.ready" ]] && break
	sleep 0.1
done
[[ -e "$TG_TMP/hold.ready" ]] || tg_fail "the followers did not connect: $(cat "$TG_TMP/hold.out")"
assert_eq refused "$(json_get "$(head -1 "$TG_TMP/hold.out")" extra)" "connection $((MAX_CLIENTS + 1))"
# the 64 are served: each gets the reload event (and nothing older: the start
# event left the agent's 1,024 recent events during the flood)
kill -HUP "$TG_AGENT_PID"
expect_event "$TG_EVENTS" "e.get('type') == 'agent' and e.get('action') == 'reload'" 10 "reload event" >/dev/null
touch "$TG_TMP/hold.go"
wait "$hold" || tg_fail "the followers failed: $(cat "$TG_TMP/hold.out")"
held=$(tail -1 "$TG_TMP/hold.out")
nagent=1
python3 -c 'import json, sys; h = json.loads(sys.argv[1])["held"]; sys.exit(h != [int(sys.argv[3])] * int(sys.argv[2]))' \
	"$held" "$MAX_CLIENTS" "$nagent" || tg_fail "not every one of the $MAX_CLIENTS followers got the reload event, once: $held"
tg_log "ok: each of the $MAX_CLIENTS followers got the reload event, once"
# they are gone; status gets a slot again (a status refused meanwhile is one more refusal)
extra=0
for ((i = 0; i < 50; i++)); do
	st=$(status_json 2>/dev/null) && break
	extra=$((extra + 1))
	sleep 0.1
done
assert_eq $((1 + extra)) "$(json_get "$st" control.refused_peers)" "control.refused_peers"
tg_stop_agent
assert_events_valid
