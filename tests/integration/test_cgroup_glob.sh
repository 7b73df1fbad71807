#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# workloads.cgroups globs: "<test cgroup>/team-*" attaches to every cgroup it
# matches at start (team-a, team-b) and to nothing else (other, nor the test
# cgroup itself); traffic from a matched cgroup is reported, from the
# unmatched one is not. A pattern that matches no cgroup is a start error
# (exit 2) naming the pattern.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

mkdir "$TG_CG/team-a" "$TG_CG/team-b" "$TG_CG/other"

# policy: tg_write_policy's, with the glob as the only workload cgroup
tg_write_policy "$TG_TMP/policy.yaml" audit "[80, 443]"
sed -i "s|cgroups: \[\"$TG_CG_REL\"\]|cgroups: [\"$TG_CG_REL/team-*\"]|" "$TG_TMP/policy.yaml"
grep -q "team-\*" "$TG_TMP/policy.yaml" || tg_fail "policy edit did not apply"

# no --cgroup: workloads.cgroups decides (tg_start_agent would pass one)
start_agent_from_policy()
{
	local i
	TG_AGENT_STARTS=$((TG_AGENT_STARTS + 1))
	TG_AGENT_LOG="$TG_TMP/agent.$TG_AGENT_STARTS.log"
	"$TLSGUARD" agent --config "$1" --pin-path "$TG_PIN" --events-file "$TG_EVENTS" \
		--socket "$TG_SOCK" -v </dev/null >"$TG_AGENT_LOG" 2>&1 &
	TG_AGENT_PID=$!
	for ((i = 0; i < TG_AGENT_READY_TIMEOUT * 10; i++)); do
		grep -q 'tlsguard: ready' "$TG_AGENT_LOG" 2>/dev/null && return 0
		if ! kill -0 "$TG_AGENT_PID" 2>/dev/null; then
			wait "$TG_AGENT_PID" || true
			TG_AGENT_PID=""
			cat "$TG_AGENT_LOG" >&2
			tg_fail "agent exited before 'tlsguard: ready'"
		fi
		sleep 0.1
	done
	cat "$TG_AGENT_LOG" >&2
	tg_fail "agent not ready within ${TG_AGENT_READY_TIMEOUT}s"
}

tg_start_plain_server web "$TG_PROT4" 80
start_agent_from_policy "$TG_TMP/policy.yaml"

for cg in team-a team-b; do
	progs=$(tg_cgroup_progs "$TG_CG/$cg" | tr '\n' ' ')
	[[ "$progs" == *"cgroup_inet4_connect 1"* && "$progs" == *"cgroup_inet_egress $(tg_skb_progs) "* ]] ||
		tg_fail "glob: expected programs on $cg, got '$progs'"
	tg_log "ok: programs on $cg: $progs"
done
for cg in "$TG_CG/other" "$TG_CG"; do
	progs=$(tg_cgroup_progs "$cg")
	[[ -z "$progs" ]] || tg_fail "glob: expected no programs on $cg, got '$progs'"
done
tg_log "ok: nothing on other or the test cgroup"

url=$(tg_url http "$TG_PROT4")
tg_capture curl-other run_in_cg_ns "$TG_CG/other" "$TG_NS" curl -sS --max-time 5 "$url"
assert_rc 0 "plain HTTP from the unmatched cgroup"
tg_capture curl-b run_in_cg_ns "$TG_CG/team-b" "$TG_NS" curl -sS --max-time 5 "$url"
assert_rc 0 "plain HTTP from team-b"
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'plaintext'" 5 "event from team-b")
assert_field "$ev" workload.cgroup "$TG_CG_REL/team-b"
assert_event_count "$TG_EVENTS" "e.get('type') == 'plaintext'" 1 "plaintext events (none from other)"
tg_stop_agent
assert_events_valid

# a pattern that matches nothing: refused at start, exit 2
sed -i "s|team-\*|nobody-*|" "$TG_TMP/policy.yaml"
tg_capture no-match "$TLSGUARD" agent --config "$TG_TMP/policy.yaml" --pin-path "$TG_PIN" \
	--events-file "$TG_EVENTS" --socket "$TG_SOCK"
assert_rc 2 "agent with a glob that matches no cgroup"
assert_file_contains "$TG_OUT" "cannot attach to cgroup $TG_CG_REL/nobody-\\*: the pattern matches no cgroup" \
	"the error names the pattern"
