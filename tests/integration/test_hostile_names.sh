#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Names an attacker chooses, through every way out to an operator: a real
# curl, executed through a symlink named ESC ] 0 ; pwned BEL (its comm), in a
# watched cgroup whose name holds ESC [ 2 J and a byte that is not UTF-8,
# sends plaintext to a protected destination whose class name (from the
# policy, by YAML escapes) holds ESC too. `tlsguard status` and `tlsguard
# events` in text print no raw control byte (each shows "\x1b" instead); their
# JSON, the events file and the agent's log are valid UTF-8 with no raw
# control byte, and the JSON still carries the names exactly.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

EVIL=$'\e]0;pwned\a'
CG_NAME=$'svc\e[2J\xff'
mkdir "$TG_CG/$CG_NAME"

# no_raw_controls FILE WHAT: no byte below 0x20 but newline, no DEL, no C1 or bidi
# control, valid UTF-8
no_raw_controls()
{
	python3 - "$1" "$2" <<'PY' || tg_fail "$2 carries raw control bytes (see above)"
import sys
data, what = open(sys.argv[1], "rb").read(), sys.argv[2]
bad = [(i, b) for i, b in enumerate(data) if (b < 0x20 and b != 0x0a) or b == 0x7f]
try:
    text = data.decode("utf-8")
except UnicodeDecodeError as e:
    sys.exit(f"{what}: not UTF-8: {e}")
bad += [(i, ord(c)) for i, c in enumerate(text) if 0x80 <= ord(c) <= 0x9f or 0x202a <= ord(c) <= 0x202e]
if bad:
    sys.exit(f"{what}: raw control characters at {bad[:5]}: {data[:300]!r}")
PY
}

tg_start_plain_server web "$TG_PROT4" 80
cat >"$TG_TMP/policy.yaml" <<EOF
mode: audit
workloads:
  cgroups: ["$TG_CG_REL"]
destinations:
  - name: "st\\e]2;x\\aorage"
    cidrs: ["$TG_PROT4/32"]
    ports: [80, 443]
events:
  file: "$TG_EVENTS"
EOF
tg_start_agent audit "$TG_TMP/policy.yaml"

# the client: curl under the hostile name, in the hostile cgroup
ln -s "$(command -v curl)" "$TG_TMP/$EVIL"
tg_capture evil run_in_cg_ns "$TG_CG/$CG_NAME" "$TG_NS" "$TG_TMP/$EVIL" -sS --max-time 5 \
	"$(tg_url http "$TG_PROT4")"
assert_rc 0 "plaintext in audit mode goes through"
assert_eq "$EVIL" "$(cat "/proc/$TG_CLIENT_PID/comm" 2>/dev/null || printf '%s' "$EVIL")" \
	"comm of the client (while it lived)"
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'plaintext'" 10 "plaintext event")

# the events file: valid JSON that keeps the names exactly (JSON escapes them)
no_raw_controls "$TG_EVENTS" "events file"
python3 - "$ev" "$EVIL" "$TG_CG_REL" <<'PY' || tg_fail "the event does not carry the names"
import json, sys
e, evil, cg = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
assert e["workload"]["comm"] == evil, e["workload"]["comm"]
assert e["workload"]["cgroup"] == cg + "/svc\x1b[2J\ufffd", e["workload"]["cgroup"]
assert e["destination"]["class"] == "st\x1b]2;x\x07orage", e["destination"]["class"]
PY

# tlsguard events, text and JSON
tg_capture events-text "$TLSGUARD" events --socket "$TG_SOCK"
assert_rc 0 "tlsguard events"
no_raw_controls "$TG_OUT" "tlsguard events"
assert_file_contains "$TG_OUT" 'plaintext .* flagged .*st\\x1b\]2;x\\x07orage .* \\x1b\]0;pwned\\x07\[[0-9]+\] ' \
	"the event line shows class and process escaped"
assert_file_contains "$TG_OUT" 'svc\\x1b\[2J' "the event line shows the cgroup escaped"
tg_capture events-json "$TLSGUARD" events --socket "$TG_SOCK" -o json
assert_rc 0 "tlsguard events -o json"
no_raw_controls "$TG_OUT" "tlsguard events -o json"
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1]) if l.strip()]' "$TG_OUT" ||
	tg_fail "tlsguard events -o json is not JSON lines"

# tlsguard status, text (top workloads, classes) and JSON
tg_capture status-text "$TLSGUARD" status --socket "$TG_SOCK"
assert_rc 0 "tlsguard status"
no_raw_controls "$TG_OUT" "tlsguard status"
assert_file_contains "$TG_OUT" '^  st\\x1b\]2;x\\x07orage +audit ' "the class row is escaped"
assert_file_contains "$TG_OUT" 'svc\\x1b\[2J.* \(\\x1b\]0;pwned\\x07\)' "the top workload is escaped"
tg_capture status-json "$TLSGUARD" status --socket "$TG_SOCK" -o json
assert_rc 0 "tlsguard status -o json"
no_raw_controls "$TG_OUT" "tlsguard status -o json"
python3 - "$TG_OUT" "$EVIL" <<'PY' || tg_fail "status -o json lost the names"
import json, sys
s, evil = json.load(open(sys.argv[1])), sys.argv[2]
assert any(evil in t["workload"] for t in s["top"]["workloads"]), s["top"]
assert s["policy"]["classes"][0]["name"] == "st\x1b]2;x\x07orage", s["policy"]["classes"]
PY
tg_capture status-check "$TLSGUARD" status --socket "$TG_SOCK" --check
no_raw_controls "$TG_OUT" "tlsguard status --check"

tg_stop_agent
no_raw_controls "$TG_AGENT_LOG" "the agent's log"
assert_events_valid
