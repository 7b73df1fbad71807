#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Which cgroup judges a socket? The one it was created in. On the running
# kernel, in enforce mode:
#  - a process creates a TCP socket outside the watched cgroup, then moves
#    itself into it (cgroup.procs) and connects to the protected address with
#    plain HTTP: connect4 and the skb hooks run for the socket's cgroup, not
#    the task's, so the request reaches the server and no event comes;
#  - the reverse: a socket created inside, the process moved out before it
#    connects, is still judged (blocked, 0 bytes).
# docs/threat-model.md says why tlsguard does not attach at a common
# ancestor to catch the first case.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

cat >"$TG_TMP/move.py" <<'PY'
import os, socket, sys
addr = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)   # created where we are now
# fd 3: the target cgroup's cgroup.procs, opened before `ip netns exec`
# (which hides the cgroup2 mount)
os.write(3, str(os.getpid()).encode())
print("moved to", [l for l in open("/proc/self/cgroup").read().split("\n") if l.startswith("0::")][0])
s.settimeout(3)
s.connect((addr, 80))
try:
    s.sendall(b"GET /moved HTTP/1.1\r\nHost: storage.test\r\n\r\n")
    print("reply", len(s.recv(4096)))
except OSError as e:
    print("error", e.errno)
PY

root_cg=$(tg_cgroup2_mount)
# move_run NAME WHERE_FROM TARGET_CG : move.py started outside the watched
# cgroup or inside it, with fd 3 on TARGET_CG's cgroup.procs
move_run()
{
	local name=$1 start="" target=$3
	[[ $2 == inside ]] && start=$TG_CG
	tg_capture "$name" sh -c 'exec 3>"$1/cgroup.procs" || exit 125
[ -z "$2" ] || echo $$ >"$2/cgroup.procs" || exit 125
shift 2
exec ip netns exec "$@"' move "$target" "$start" "$TG_NS" timeout 10 python3 "$TG_TMP/move.py" "$TG_PROT4"
}
tg_start_plain_server web "$TG_PROT4" 80
tg_write_policy "$TG_TMP/policy.yaml" enforce "[80, 443]"
tg_start_agent enforce "$TG_TMP/policy.yaml"

# created outside (the test's own cgroup), moved in, then connect + plaintext
move_run moved-in outside "$TG_CG"
assert_rc 0 "the moved-in process ran"
assert_file_contains "$TG_OUT" "moved to 0::$TG_CG_REL\$" "it runs in the watched cgroup when it connects"
assert_file_contains "$TG_OUT" '^reply [1-9]' "the server answered: the socket's (outside) cgroup judged it, i.e. nothing did"
sleep 0.5
assert_event_count "$TG_EVENTS" "e.get('type') == 'plaintext'" 0 "events for the moved-in socket"
assert_server web 1 -gt 0

# created inside, moved out (to the cgroup2 root), then connect + plaintext
tg_start_plain_server web "$TG_PROT4" 80
move_run moved-out inside "$root_cg"
assert_file_contains "$TG_OUT" 'moved to 0::/$' "it runs outside the watched cgroup when it connects"
expect_event "$TG_EVENTS" "e.get('type') == 'plaintext' and e.get('action') == 'blocked'" 5 \
	"the moved-out socket is judged by the cgroup it was made in" >/dev/null
assert_server web 1 -eq 0
tg_stop_agent
assert_events_valid
