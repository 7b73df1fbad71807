#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The systemd notification protocol (agent/lib/notify.h), against a datagram
# socket standing in for systemd's: READY=1 with MAINPID and STATUS once the
# programs are attached (not before), WATCHDOG=1 pings when WATCHDOG_USEC is
# set, RELOADING=1 then READY=1 around a reload (a rejected one says so in
# STATUS), STOPPING=1 on SIGTERM.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

SOCK="$TG_TMP/notify.sock"
MSGS="$TG_TMP/notify.log"
# systemd's side: every datagram, one per record, "--" between them
python3 - "$SOCK" "$MSGS" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode() + "\n--\n")
PY
TG_PIDS+=("$!")
for _ in $(seq 50); do [[ -S "$SOCK" ]] && break; sleep 0.1; done
[[ -S "$SOCK" ]] || tg_fail "the stand-in notify socket did not appear"

# the i-th datagram (1-based) whose text contains STRING, printed; waits up to 10 s
nth_msg() # STRING N
{
	local i
	for ((i = 0; i < 100; i++)); do
		python3 - "$MSGS" "$1" "$2" <<'PY' && return 0
import sys
msgs = [m.strip() for m in open(sys.argv[1]).read().split("\n--\n") if m.strip()]
hits = [m for m in msgs if sys.argv[2] in m]
n = int(sys.argv[3])
if len(hits) < n:
    sys.exit(1)
print(hits[n - 1])
PY
		sleep 0.1
	done
	tg_fail "no datagram #$2 with '$1' from the agent; got: $(tr '\n' ' ' <"$MSGS")"
}

tg_start_plain_server web "$TG_PROT4" 80
tg_write_policy "$TG_TMP/policy.yaml" enforce "[80, 443]"
NOTIFY_SOCKET=$SOCK WATCHDOG_USEC=2000000 tg_start_agent enforce "$TG_TMP/policy.yaml"

ready=$(nth_msg READY=1 1)
assert_file_contains <(echo "$ready") "^MAINPID=$TG_AGENT_PID\$" "READY=1 names the agent's pid"
assert_file_contains <(echo "$ready") '^STATUS=enforce mode, 1 destinations \([0-9]+ map entries\), 1 cgroup\(s\)$' \
	"STATUS says what is in force"
# READY=1 only once the agent logged ready, i.e. after attach
assert_file_contains "$TG_AGENT_LOG" 'tlsguard: ready' "the agent was ready when it said so"
nth_msg WATCHDOG=1 2 >/dev/null

# a reload: RELOADING=1 with a monotonic timestamp, then READY=1 again
kill -HUP "$TG_AGENT_PID"
reloading=$(nth_msg RELOADING=1 1)
assert_file_contains <(echo "$reloading") '^MONOTONIC_USEC=[0-9]+$' "RELOADING=1 carries MONOTONIC_USEC"
nth_msg READY=1 2 >/dev/null
# a rejected reload: READY=1 again, and STATUS says the old policy stays
echo "destinations: [" >"$TG_TMP/policy.yaml"
kill -HUP "$TG_AGENT_PID"
nth_msg RELOADING=1 2 >/dev/null
failed=$(nth_msg READY=1 3)
assert_file_contains <(echo "$failed") '^STATUS=reload failed, previous policy in force: enforce mode' \
	"a rejected reload says so"

# the old policy still enforces
tg_client curl curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
assert_rc_nonzero "plain HTTP after the rejected reload"

tg_stop_agent
nth_msg STOPPING=1 1 >/dev/null
assert_server web 1 -eq 0
