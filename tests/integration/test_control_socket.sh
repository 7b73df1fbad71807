#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The control socket: root-only by default (file mode and peer credentials),
# control.group grants a group, and garbage, oversized, wrong-version,
# half-closed and silent clients neither crash nor stall the agent.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

GROUP="tgit$$"
cleanup_all()
{
	local rc=$?
	getent group "$GROUP" >/dev/null && groupdel "$GROUP"
	tg_cleanup
	return $rc
}
trap cleanup_all EXIT
tg_setup
tg_require_cmd setpriv groupadd

# ctl REQUEST_BYTES [shutdown] → the agent's reply, via a raw client
ctl()
{
	python3 - "$TG_SOCK" "$1" "${2:-}" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode().decode('unicode_escape').encode('latin-1'))
if sys.argv[3] == "shutdown":
    s.shutdown(socket.SHUT_WR)
out = b""
while True:
    try:
        b = s.recv(65536)
    except socket.timeout:
        print("TIMEOUT"); break
    if not b:
        break
    out += b
print(out.decode(errors="replace").strip())
PY
}

tg_write_policy "$TG_TMP/policy.yaml" audit "[80, 443]"
tg_start_agent audit "$TG_TMP/policy.yaml"

# ---- root-only by default
assert_eq "600 root" "$(stat -c '%a %U' "$TG_SOCK")" "socket mode and owner"
chmod 0711 "$TG_TMP"	# let the unprivileged user reach the socket file itself
tg_capture nobody setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$TLSGUARD" status --socket "$TG_SOCK"
assert_rc 1 "status as an unprivileged user"
assert_file_contains "$TG_OUT" "Permission denied" "unprivileged user is told why"
# even with the file opened up, the agent checks the peer's credentials
chmod 0666 "$TG_SOCK"
tg_capture nobody2 setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$TLSGUARD" status --socket "$TG_SOCK"
assert_rc 1 "status as an unprivileged user through a world-writable socket"
refused=$("$TLSGUARD" status --socket "$TG_SOCK" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["control"]["refused_peers"])')
assert_eq 1 "$refused" "peers refused by credentials"

# ---- hostile and broken requests
reply=$(ctl 'hello\n')
[[ $reply == *'"ok":false'*'not a JSON object'* ]] || tg_fail "garbage: $reply"
reply=$(ctl '{"v":2,"cmd":"status"}\n')
[[ $reply == *'"ok":false'*'version'* ]] || tg_fail "wrong version: $reply"
reply=$(ctl '{"v":1,"cmd":"reboot"}\n')
[[ $reply == *'"ok":false'*'unknown command'* ]] || tg_fail "unknown command: $reply"
reply=$(ctl "$(head -c 5000 /dev/zero | tr '\0' 'x')")
[[ $reply == *'request too large'* ]] || tg_fail "oversized: ${reply:0:200}"
reply=$(ctl '{"v":1,"cmd":"status"}' shutdown)
[[ $reply == *'"ok":true'*'"status"'* ]] || tg_fail "half-closed request: ${reply:0:200}"
tg_log "ok: garbage, wrong version, unknown command, oversized and half-closed requests answered"

# ---- a silent client does not stall anyone, and is dropped after the timeout
python3 - "$TG_SOCK" >"$TG_TMP/silent.out" 2>&1 <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.settimeout(15)
t = time.monotonic()
print("closed after %.1f s" % (time.monotonic() - t) if s.recv(1) == b"" else "data")
PY
silent=$!
TG_PIDS+=("$silent")
sleep 0.3
tg_capture while-silent "$TLSGUARD" status --socket "$TG_SOCK" --check
assert_rc 0 "status while a silent client is connected"
assert_cmp "$TG_MS" -lt 1000 "status latency with a silent client (ms)"
wait "$silent" || true
assert_file_contains "$TG_TMP/silent.out" '^closed after [5-7]\.' "silent client dropped after the request timeout"

# ---- the agent survived all of it
tg_capture after "$TLSGUARD" status --socket "$TG_SOCK" -o json
assert_rc 0 "status after the hostile clients"
tg_stop_agent

# ---- control.group grants one group read access
groupadd "$GROUP"
gid=$(getent group "$GROUP" | cut -d: -f3)
printf 'control:\n  group: "%s"\n' "$GROUP" >>"$TG_TMP/policy.yaml"
tg_start_agent audit "$TG_TMP/policy.yaml"
assert_eq "660 root $GROUP" "$(stat -c '%a %U %G' "$TG_SOCK")" "socket mode with control.group"
tg_capture member setpriv --reuid=65534 --regid="$gid" --clear-groups \
	"$TLSGUARD" status --socket "$TG_SOCK" --check
assert_rc 0 "status as a member of control.group"
tg_capture stranger setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$TLSGUARD" status --socket "$TG_SOCK"
assert_rc 1 "status as a user outside control.group"
tg_stop_agent
