#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The destination map at its bound (TG_MAX_DESTS = 65,536 entries,
# docs/operations.md "Bounded resources"): a policy of exactly 65,536 entries
# loads and enforces; one entry more is refused at start (exit 2, one message,
# nothing loaded) and on reload (a `reload_failed` event; the old policy keeps
# blocking plaintext). The filler prefixes are /32s in 10.0.0.0/8 that never
# get traffic; only the test netns addresses do.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

MAX=65536
POLICY="$TG_TMP/policy.yaml"

# write_policy FILE FILLER : "storage" (2 entries, enforce), one exception
# (1 entry) and a class "filler" of FILLER /32 prefixes: 3 + FILLER entries.
write_policy()
{
	python3 - "$1.tmp" "$2" "$TG_CG_REL" "$TG_PROT4" "$TG_PROT6" "$TG_EVENTS" <<'PY'
import sys
path, n, cg, p4, p6, events = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
with open(path, "w") as f:
    f.write('mode: enforce\nworkloads:\n  cgroups: ["%s"]\ndestinations:\n' % cg)
    f.write('  - name: storage\n    cidrs: ["%s/32", "%s/128"]\n    ports: [80, 443]\n' % (p4, p6))
    f.write('  - name: filler\n    cidrs:\n')
    f.writelines('      - "10.%d.%d.%d/32"\n' % (i >> 16 & 255, i >> 8 & 255, i & 255) for i in range(n))
    f.write('exceptions:\n  - cidrs: ["192.0.2.99/32"]\nevents:\n  file: "%s"\n' % events)
PY
	mv "$1.tmp" "$1"	# the way editors and ConfigMaps replace files
}

status_json() { "$TLSGUARD" status --socket "$TG_SOCK" -o json; }

tg_start_plain_server web "$TG_PROT4" 80

# 1. one entry too many at start: exit 2, one clear message, nothing loaded
write_policy "$POLICY" $((MAX - 3 + 1))
rc=0
"$TLSGUARD" agent --config "$POLICY" --cgroup "$TG_CG" --pin-path "$TG_PIN" --events-file "$TG_EVENTS" \
	--socket "$TG_SOCK" </dev/null >"$TG_TMP/refused.log" 2>&1 || rc=$?
_tg_check_sanitizers "$TG_TMP/refused.log"
[[ $rc -eq 2 ]] || { cat "$TG_TMP/refused.log" >&2; tg_fail "agent start with $((MAX + 1)) entries: exit $rc, expected 2"; }
tg_log "ok: refused at start with exit 2"
assert_file_contains "$TG_TMP/refused.log" \
	"^tlsguard: $POLICY: the policy needs $((MAX + 1)) destination map entries .*at most $MAX" "the agent says why"
n=$(grep -c -i 'destination\|too long\|E2BIG' "$TG_TMP/refused.log") || true
[[ $n -eq 1 ]] || { cat "$TG_TMP/refused.log" >&2; tg_fail "expected one message about the destinations, got $n"; }
[[ ! -e "$TG_PIN" ]] || tg_fail "a refused policy left pins under $TG_PIN"
[[ -z "$(tg_cgroup_progs)" ]] || tg_fail "a refused policy attached programs: $(tg_cgroup_progs)"

# 2. exactly at the bound: loads and enforces
write_policy "$POLICY" $((MAX - 3))
tg_start_agent enforce "$POLICY"
assert_eq $MAX "$(json_get "$(status_json)" policy.map_entries)" "map entries at the bound"
assert_eq $MAX "$(bpftool -j map dump pinned "$TG_PIN/tg_dests" 2>/dev/null | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' ||
	echo "?")" "entries in the kernel map"
tg_client plain1 curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
assert_rc_nonzero "plaintext to storage with the map full"

# 3. one entry too many on reload: refused, reported, the old policy stays in force
write_policy "$POLICY" $((MAX - 3 + 1))
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'agent' and e.get('action') == 'reload_failed'" 20 "reload_failed event")
[[ $(json_get "$ev" message) == "the policy's destinations do not fit the kernel map; the previous policy stays in force" ]] ||
	tg_fail "reload_failed message: $(json_get "$ev" message)"
st=$(status_json)
assert_eq 1 "$(json_get "$st" policy.reload_failures)" "reload failures"
assert_eq 0 "$(json_get "$st" policy.reloads)" "reloads"
assert_eq $MAX "$(json_get "$st" policy.map_entries)" "map entries after the refused reload"
assert_file_contains "$TG_AGENT_LOG" "the policy needs $((MAX + 1)) destination map entries" "the agent says why on reload"
tg_client plain2 curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
assert_rc_nonzero "plaintext to storage after the refused reload"
assert_event_count "$TG_EVENTS" "e.get('type') == 'plaintext' and e.get('action') == 'blocked' and \
get(e, 'destination.class') == 'storage'" 2 "blocked plaintext events"
tg_stop_agent
assert_server web 2 -eq 0
assert_events_valid
