#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The tracked-flow cap (limits.max_tracked_flows), as docs/operations.md says:
#   enforce + fail_mode closed: with the cap's worth of connections held open
#     to a protected destination, the next connect() fails at once with EPERM,
#     reported as blocked_connect with reason flow_cap and counted; traffic to
#     unprotected addresses is not affected;
#   closing the held connections gives their slots back (cgroup/sock_release):
#     the gauge returns to 0 and new connections are tracked (and judged) again;
#   connect() again on a socket that holds a slot (UDP) takes no second one;
#   SIGHUP applies a new cap;
#   enforce + fail_mode open, and audit: the connect over the cap succeeds,
#     passes unjudged (its plaintext arrives), is counted and reported as an
#     `agent` untracked event.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

CAP=4
tg_start_plain_server web "$TG_PROT4" 80
tg_start_plain_server other "$TG_OTHER4" 80

# hold N: N TCP connections from the watched cgroup to the protected server,
# kept open (no payload: the flows stay undecided) until the holder is killed.
HOLDER_PID=""
hold()
{
	local n=$1 i
	rm -f "$TG_TMP/held" "$TG_TMP/last.pid"
	run_in_cg_ns "$TG_CG" "$TG_NS" python3 -c '
import socket, sys, time
socks = [socket.create_connection((sys.argv[1], 80), timeout=5) for _ in range(int(sys.argv[2]))]
open(sys.argv[3], "w").write("held %d\n" % len(socks))
time.sleep(600)' "$TG_PROT4" "$n" "$TG_TMP/held" >"$TG_TMP/holder.out" 2>&1 &
	TG_PIDS+=("$!")
	for ((i = 0; i < 50; i++)); do
		[[ -s "$TG_TMP/held" ]] && break
		kill -0 "${TG_PIDS[-1]}" 2>/dev/null || { cat "$TG_TMP/holder.out" >&2; tg_fail "holder exited"; }
		sleep 0.1
	done
	[[ -s "$TG_TMP/held" ]] || tg_fail "holder did not connect $n times"
	HOLDER_PID=$(cat "$TG_TMP/last.pid")	# python itself (the subshell's child)
	tg_log "holding $n connection(s) (pid $HOLDER_PID)"
}
release()
{
	kill -TERM "$HOLDER_PID" 2>/dev/null || true
	wait "${TG_PIDS[-1]}" 2>/dev/null || true
	HOLDER_PID=""
}

# connect_once NAME ADDR → "connected" or "error EPERM" in $TG_OUT; TG_RC 0 or 1
connect_once()
{
	tg_client "$1" python3 -c '
import errno, socket, sys
try:
    socket.create_connection((sys.argv[1], 80), timeout=5).close()
    print("connected")
except OSError as e:
    print("error", errno.errorcode.get(e.errno, e.errno))
    sys.exit(1)' "$2"
}

status_get()	# status_get PATH → value from tlsguard status -o json
{
	"$TLSGUARD" status --socket "$TG_SOCK" -o json | python3 -c "
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split('.'):
    v = v[k]
print(v)" "$1"
}

wait_live()	# wait_live N WHAT : the gauge reaches N within 3 s
{
	local i got
	for ((i = 0; i < 30; i++)); do
		got=$(status_get flows.live)
		[[ $got == "$1" ]] && break
		sleep 0.1
	done
	assert_eq "$1" "$got" "$2"
}

policy()	# policy FILE MODE FAIL_MODE CAP
{
	tg_write_policy "$1" "$2" "[80, 443]"
	printf 'fail_mode: %s\nlimits:\n  max_tracked_flows: %s\n' "$3" "$4" >>"$1"
}

P_CAP="e.get('type') == 'blocked_connect' and e.get('reason') == 'flow_cap'"
P_UNTRACKED="e.get('type') == 'agent' and e.get('action') == 'untracked'"

# ---- enforce, fail_mode closed: refused at the cap ------------------------------
policy "$TG_TMP/closed.yaml" enforce closed "$CAP"
tg_start_agent enforce "$TG_TMP/closed.yaml"
assert_eq "$CAP" "$(status_get flows.max)" "status: flows.max"
assert_eq 0 "$(status_get flows.live)" "status: flows.live before traffic"
hold "$CAP"
wait_live "$CAP" "gauge with the cap's worth held"

connect_once over "$TG_PROT4"
assert_rc 1 "connect over the cap (enforce, closed)"
assert_file_contains "$TG_OUT" "error EPERM" "EPERM over the cap"
assert_cmp "$TG_MS" -lt 1000 "refused connect time (ms)"
over_pid=$TG_CLIENT_PID
ev=$(expect_event "$TG_EVENTS" "$P_CAP" 5 "blocked_connect flow_cap event")
assert_field "$ev" action blocked
assert_field "$ev" destination.class storage
assert_field "$ev" destination.ip "$TG_PROT4"
assert_field "$ev" destination.port 80
assert_field "$ev" workload.pid "$over_pid"
assert_eq 1 "$(status_get kernel_counters.untracked_flow_cap)" "kernel counter untracked_flow_cap"
assert_eq 1 "$(status_get kernel_counters.untracked_refused)" "kernel counter untracked_refused"
assert_eq 0 "$(status_get kernel_counters.untracked_passed)" "kernel counter untracked_passed"
assert_eq 1 "$(status_get flows.untracked.flow_cap)" "status flows.untracked.flow_cap"
assert_eq "$CAP" "$(status_get flows.live)" "gauge unchanged by the refused connect"
"$TLSGUARD" status --socket "$TG_SOCK" >"$TG_TMP/status.txt"
assert_file_contains "$TG_TMP/status.txt" "tracked-flow cap reached: $CAP of $CAP" "status text: cap warning"
assert_file_contains "$TG_TMP/status.txt" "tracked flows +$CAP open \\(at most $CAP\\)" "status text: tracked flows line"
expect_event "$TG_EVENTS" "$P_UNTRACKED" 5 "agent untracked event" >/dev/null

# unprotected destinations do not take slots and are not affected by the cap
tg_client other curl -sS --max-time 5 -o /dev/null "$(tg_url http "$TG_OTHER4")"
assert_rc 0 "plain HTTP to an unprotected address at the cap"

# ---- the release hook gives the slots back --------------------------------------
release
wait_live 0 "gauge after the held connections closed"
tg_client tracked curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
assert_rc_nonzero "plain HTTP below the cap is tracked and blocked again"
expect_event "$TG_EVENTS" "e.get('type') == 'plaintext' and e.get('action') == 'blocked'" 5 \
	"plaintext event once tracked again" >/dev/null
wait_live 0 "gauge after the blocked flow's socket closed"
# connect() again on a socket that holds a slot (connected UDP) takes no second one
hold $((CAP - 1))
wait_live $((CAP - 1)) "one below the cap"
tg_client reconnect python3 -c '
import errno, socket, sys
def conn(s):
    try:
        s.connect((sys.argv[1], 443)); return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
first, again = conn(u), conn(u)
t = socket.socket()
t.settimeout(2)
print(first, again, conn(t))' "$TG_PROT4"
assert_rc 0 "UDP re-connect client"
assert_file_contains "$TG_OUT" "^ok ok EPERM$" "last slot, re-connect on it, then refused"
wait_live $((CAP - 1)) "gauge after the re-connecting client exited"
release
wait_live 0 "gauge after the second release"

# ---- SIGHUP applies a new cap ----------------------------------------------------
policy "$TG_TMP/closed.yaml" enforce closed 2
kill -HUP "$TG_AGENT_PID"
for ((i = 0; i < 50; i++)); do
	[[ $(status_get flows.max) == 2 ]] && break
	sleep 0.1
done
assert_eq 2 "$(status_get flows.max)" "flows.max after SIGHUP"
hold 2
wait_live 2 "gauge at the reloaded cap"
connect_once over-reloaded "$TG_PROT4"
assert_rc 1 "connect over the reloaded cap"
assert_file_contains "$TG_OUT" "error EPERM" "EPERM over the reloaded cap"
assert_eq 3 "$(status_get kernel_counters.untracked_refused)" "refused after the reload"
release
wait_live 0 "gauge after the release (reloaded cap)"
tg_stop_agent
assert_event_count "$TG_EVENTS" "$P_CAP" 3 "blocked_connect flow_cap events"
assert_events_valid
"$TLSGUARD" uninstall --pin-path "$TG_PIN" >/dev/null
# the refused connects never reached the server: the cap's worth and one less
# held, the reloaded cap's, the one tracked (blocked, no byte) connection
assert_server web $((2 * CAP - 1 + 2 + 1)) -eq 0

# ---- passed and counted: enforce with fail_mode open, then audit -----------------
tg_start_plain_server web2 "$TG_PROT4" 80
passes_at_cap()	# passes_at_cap MODE FAIL_MODE
{
	local what="$1, fail_mode $2"
	: >"$TG_EVENTS"
	policy "$TG_TMP/$1-$2.yaml" "$1" "$2" "$CAP"
	tg_start_agent "$1" "$TG_TMP/$1-$2.yaml"
	hold "$CAP"
	wait_live "$CAP" "$what: the cap's worth held"
	tg_client "pass-$1-$2" curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$(tg_url http "$TG_PROT4")"
	assert_rc 0 "$what: plain HTTP over the cap passes"
	assert_file_contains "$TG_OUT" "200" "$what: HTTP status"
	assert_eq 1 "$(status_get kernel_counters.untracked_flow_cap)" "$what: untracked_flow_cap"
	assert_eq 1 "$(status_get kernel_counters.untracked_passed)" "$what: untracked_passed"
	assert_eq 0 "$(status_get kernel_counters.untracked_refused)" "$what: untracked_refused"
	ev=$(expect_event "$TG_EVENTS" "$P_UNTRACKED" 5 "$what: agent untracked event")
	[[ $(json_get "$ev" message) == "1 connect(s) to protected destinations not tracked"* ]] ||
		tg_fail "$what: untracked message: $(json_get "$ev" message)"
	assert_event_count "$TG_EVENTS" "$TG_P_VIOLATION" 0 "$what: violations (nothing judged)"
	release
	wait_live 0 "$what: gauge after the release"
	tg_client "tracked-$1-$2" curl -sS --max-time 5 -o /dev/null "$(tg_url http "$TG_PROT4")"
	expect_event "$TG_EVENTS" "e.get('type') == 'plaintext'" 5 "$what: tracked again below the cap" >/dev/null
	tg_stop_agent
	assert_events_valid
	"$TLSGUARD" uninstall --pin-path "$TG_PIN" >/dev/null
}
passes_at_cap enforce open
passes_at_cap audit closed
# enforce/open: the untracked request arrived, the tracked one was blocked
# (no byte); audit: both arrived. Plus the held connections (no bytes).
tg_stop_server web2
assert_cmp "$(tg_server_bytes web2)" -gt 0 "bytes of the untracked requests at the server"
assert_eq $((2 * CAP + 4)) "$(tg_server_conns web2)" "connections at web2"
