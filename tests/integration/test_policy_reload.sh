#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Live reload under traffic: a changed policy file is picked up (inotify) and a
# new class is enforced; an invalid file is rejected with an `agent` event and
# the old policy keeps enforcing; SIGHUP reloads too; no verdict or event is
# lost while the maps are swapped; a host name a reload adds is resolved.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

tg_start_plain_server storage "$TG_PROT4" 80
tg_start_plain_server registry "$TG_OTHER4" 80
POLICY="$TG_TMP/policy.yaml"

write_policy()	# write_policy with_registry(0|1) [broken]
{
	{
		echo "mode: enforce"
		echo "destinations:"
		echo "  - name: storage"
		echo "    cidrs: [\"$TG_PROT4/32\"]"
		if [[ $1 == 1 ]]; then
			echo "  - name: registry"
			echo "    cidrs: [\"$TG_OTHER4/32\"]"
		fi
		[[ ${2:-} == broken ]] && echo "    prots: [80]"
		if [[ ${2:-} == named ]]; then
			echo "  - name: named"
			echo "    hosts: [\"localhost\"]"	# in /etc/hosts: resolved without DNS
		fi
		echo "events:"
		echo "  file: \"$TG_EVENTS\""
	} >"$POLICY.tmp"
	mv "$POLICY.tmp" "$POLICY"	# the way editors and ConfigMaps replace files
}

count_agent() { count_events "$TG_EVENTS" "e.get('type') == 'agent' and e.get('action') == '$1'"; }
wait_agent_count()	# ACTION N
{
	for _ in $(seq 100); do
		[[ $(count_agent "$1") -ge $2 ]] && return 0
		sleep 0.1
	done
	tg_dump_events
	tg_fail "no $2th agent '$1' event"
}

write_policy 0
tg_start_agent enforce "$POLICY"
wait_agent_count start 1

# steady plaintext to the storage class while the policy changes underneath
N=40
(
	for i in $(seq $N); do
		run_in_cg_ns "$TG_CG" "$TG_NS" curl -s --max-time 2 -o /dev/null "$(tg_url http "$TG_PROT4")" &&
			echo "request $i got through" >>"$TG_TMP/leaks"
		sleep 0.05
	done
) &
traffic=$!
TG_PIDS+=("$traffic")

# 1. the file changes: a new class appears
sleep 0.3
write_policy 1
wait_agent_count reload 1
tg_client registry curl -sS --max-time 5 "$(tg_url http "$TG_OTHER4")"
assert_rc_nonzero "plaintext to the class added by the reload"
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'plaintext' and get(e, 'destination.ip') == '$TG_OTHER4'" 5 "event for the new class")
assert_field "$ev" destination.class registry
assert_field "$ev" action blocked

# 2. an invalid file: rejected, reported, the old policy stays
write_policy 1 broken
wait_agent_count reload_failed 1
tg_client registry2 curl -sS --max-time 5 "$(tg_url http "$TG_OTHER4")"
assert_rc_nonzero "plaintext to the new class after a rejected reload"
assert_file_contains "$TG_AGENT_LOG" 'unknown key "prots" \(did you mean "ports"\)' "the agent says why"

# 3. the file goes back to the policy in force: nothing to reload; SIGHUP reloads anyway
write_policy 1
sleep 0.5
assert_eq 1 "$(count_agent reload)" "reloads after restoring the policy in force"
kill -HUP "$TG_AGENT_PID"
wait_agent_count reload 2

wait "$traffic" || true
[[ ! -e "$TG_TMP/leaks" ]] || tg_fail "plaintext got through during reloads: $(cat "$TG_TMP/leaks")"
sleep 0.5
assert_event_count "$TG_EVENTS" "e.get('type') == 'plaintext' and get(e, 'destination.ip') == '$TG_PROT4'" "$N" \
	"one event per plaintext request during the reloads"
assert_server storage "$N" -eq 0
assert_server registry 2 -eq 0

# 4. a host name the reload brings is resolved then (not only the names of the start)
write_policy 1 named
wait_agent_count reload 3
st=$("$TLSGUARD" status --socket "$TG_SOCK" -o json)
assert_eq 1 "$(json_get "$st" policy.hosts)" "host names after the reload"
resolved=$(json_get "$st" policy.resolved_ips)
[[ $resolved -ge 1 ]] || tg_fail "localhost, added by the reload, has no address: $st"
assert_eq $((2 + resolved)) "$(json_get "$st" policy.map_entries)" "map entries: two prefixes and localhost's addresses"
tg_stop_agent
assert_events_valid
