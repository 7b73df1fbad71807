#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Upgrade across pin layouts (docs/operations.md, "Upgrades"): an agent of
# another layout (this source built with TG_PIN_LAYOUT_VERSION=1003 by
# `make test-build`) enforces; a steady stream of plaintext and TLS
# connections runs from the watched cgroup while it is stopped (SIGTERM: pins
# stay), and while the new agent starts over its pins, attaches next to it,
# takes over new connects and waits for the old generation to drain. No
# plaintext byte reaches the server at any point, every TLS connection
# works, every flow is tracked, judged and reported exactly once (kernel
# counters of both generations and events add up to the attempts), only the
# new programs are left on the cgroup and `tlsguard uninstall` removes all.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

# TG_OLD_TLSGUARD / TG_OLD_LAYOUT: an agent of a real older release instead
OLD_LAYOUT=${TG_OLD_LAYOUT:-1003}
NEW_LAYOUT=$(sed -n 's/^#define TG_PIN_LAYOUT_VERSION[[:space:]]*\([0-9]*\).*/\1/p' \
	"$TG_ROOT/include/tlsguard/config.h")
OLD_TLSGUARD=${TG_OLD_TLSGUARD:-"$(dirname "$TLSGUARD")/helpers/tlsguard-layout1003"}
[[ -x "$OLD_TLSGUARD" ]] || tg_fail "$OLD_TLSGUARD is missing (make test-build builds it)"
assert_ne "$OLD_LAYOUT" "$NEW_LAYOUT" "the two layouts"

P_PLAIN="e.get('type') == 'plaintext' and e.get('action') == 'blocked'"
P_UPGRADE="e.get('type') == 'agent' and e.get('action') == 'upgrade'"
P_DONE="e.get('type') == 'agent' and e.get('action') == 'upgrade_done'"
plain_url=$(tg_url http "$TG_PROT4")
tls_url="https://$TG_PROT4/"

tg_write_policy "$TG_TMP/policy.yaml" enforce "[80, 443]"
tg_start_plain_server web "$TG_PROT4" 80
tg_start_tls_server tls "$TG_PROT4" 443

tg_log "---- agent of layout $OLD_LAYOUT"
TLSGUARD=$OLD_TLSGUARD tg_start_agent enforce "$TG_TMP/policy.yaml"
assert_eq "$OLD_LAYOUT" "$(tg_layout_of "$TG_PIN")" "layout marker of the old agent's pins"

# The stream: one plaintext and one TLS connection per round, each outcome on
# a line of $results. Plaintext waits at most 2 s (while no agent runs, nobody
# destroys a blocked socket: the client runs into its own timeout).
results="$TG_TMP/results"
stop="$TG_TMP/stop-stream"
: >"$results"
run_in_cg_ns "$TG_CG" "$TG_NS" bash -c '
while [[ ! -e "$1" ]]; do
	rc=0; curl -sS -o /dev/null --max-time 2 "$3" 2>/dev/null || rc=$?
	echo "plain $rc" >>"$2"
	rc=0; curl -sSk -o /dev/null --max-time 5 "$4" 2>/dev/null || rc=$?
	echo "tls $rc" >>"$2"
done' tg-stream "$stop" "$results" "$plain_url" "$tls_url" &
stream_pid=$!
TG_PIDS+=("$stream_pid")

wait_rounds()
{
	local want=$1 what=$2 i n
	for ((i = 0; i < 300; i++)); do
		n=$(grep -c '^tls ' "$results" 2>/dev/null) || true
		[[ ${n:-0} -ge $want ]] && return 0
		sleep 0.1
	done
	tg_fail "the connection stream did not reach $want rounds ($what)"
}
wait_rounds 3 "old agent"

tg_log "---- old agent stopped (SIGTERM): its pins keep enforcing"
tg_stop_agent
n0=$(grep -c '^tls ' "$results") || true
wait_rounds $((n0 + 1)) "no agent"

tg_log "---- agent of layout $NEW_LAYOUT over the layout $OLD_LAYOUT pins"
TG_AGENT_UPGRADING=1 tg_start_agent enforce "$TG_TMP/policy.yaml"
ev=$(expect_event "$TG_EVENTS" "$P_UPGRADE" 5 "upgrade event")
assert_field "$ev" upgrade.from_layout "$OLD_LAYOUT"
assert_field "$ev" upgrade.to_layout "$NEW_LAYOUT"
assert_field "$ev" upgrade.old_events_read true
both=$(tg_cgroup_progs | tr '\n' ' ')
tg_log "programs on $TG_CG while the old layout drains: $both"
# egress: each generation's verdict program, and unless chained DNS learning's (the new agent's)
[[ "$both" == *"cgroup_inet4_connect 2 "* && "$both" == *"cgroup_inet_egress $(tg_skb_progs 2) "* ]] ||
	tg_fail "expected both generations on $TG_CG while the old one drains, got: $both"
TG_RC=0
"$TLSGUARD" status --socket "$TG_SOCK" -o json >"$TG_TMP/status-draining.json" 2>&1 || TG_RC=$?
st=$(cat "$TG_TMP/status-draining.json")
assert_eq true "$(json_get "$st" handoff.draining)" "status handoff.draining while draining"
assert_eq "$OLD_LAYOUT" "$(json_get "$st" handoff.retiring_layout)" "status handoff.retiring_layout"

tg_log "---- the new agent dies while the old layout drains; its successor finishes"
sleep 1
tg_kill_agent
[[ -d "$TG_PIN/retiring" ]] || tg_fail "$TG_PIN/retiring gone after SIGKILL mid-drain"
n1=$(grep -c '^tls ' "$results") || true
wait_rounds $((n1 + 1)) "new agent killed"
TG_AGENT_UPGRADING=1 tg_start_agent enforce "$TG_TMP/policy.yaml"
grep -q "resuming the upgrade from layout $OLD_LAYOUT" "$TG_AGENT_LOG" ||
	tg_fail "the restarted agent did not resume the upgrade (log $TG_AGENT_LOG)"
done_ev=$(expect_event "$TG_EVENTS" "$P_DONE" 30 "upgrade_done event")
n1=$(grep -c '^tls ' "$results") || true
wait_rounds $((n1 + 3)) "new agent"
touch "$stop"
wait "$stream_pid" || tg_fail "the connection stream failed"
sleep 0.5	# events of the last round

tg_log "---- every plaintext connection blocked, every TLS one passed"
plain=$(grep -c '^plain ' "$results") || true
plain_ok=$(grep -c '^plain 0$' "$results") || true
tls=$(grep -c '^tls ' "$results") || true
tls_ok=$(grep -c '^tls 0$' "$results") || true
tg_log "stream: $plain plaintext attempts ($plain_ok succeeded), $tls TLS ($tls_ok succeeded)"
assert_eq 0 "$plain_ok" "plaintext connections that succeeded"
assert_eq "$tls" "$tls_ok" "TLS connections that succeeded"
tg_stop_server web
assert_eq 0 "$(tg_server_bytes web)" "plaintext bytes the server received"
assert_eq "$plain" "$(tg_server_conns web)" "plaintext connections the server saw"

tg_log "---- counted and reported once"
assert_event_count "$TG_EVENTS" "$P_PLAIN" "$plain" "plaintext/blocked events (both agents)"
TG_RC=0
"$TLSGUARD" status --socket "$TG_SOCK" -o json >"$TG_TMP/status.json" 2>&1 || TG_RC=$?
assert_eq 0 "$TG_RC" "tlsguard status"
st=$(cat "$TG_TMP/status.json")
assert_eq "$NEW_LAYOUT" "$(json_get "$st" handoff.layout)" "status handoff.layout"
assert_eq false "$(json_get "$st" handoff.draining)" "status handoff.draining"
old_plain=$(json_get "$done_ev" upgrade.old_counters.plaintext)
old_tracked=$(json_get "$done_ev" upgrade.old_counters.flows_tracked)
new_plain=$(json_get "$st" kernel_counters.plaintext_blocked)
new_tracked=$(json_get "$st" kernel_counters.flows_tracked)
tg_log "counters: layout $OLD_LAYOUT plaintext $old_plain tracked $old_tracked; layout $NEW_LAYOUT plaintext $new_plain tracked $new_tracked"
assert_eq "$plain" $((old_plain + new_plain)) "plaintext verdicts of both layouts"
assert_eq $((plain + tls)) $((old_tracked + new_tracked)) "flows tracked by both layouts"
assert_cmp "$new_plain" -gt 0 "plaintext verdicts of the new layout"
assert_cmp "$old_plain" -gt 0 "plaintext verdicts of the old layout"

tg_log "---- only the new generation is left"
tg_assert_one_prog_per_type "after the upgrade" >/dev/null
for d in retiring retiring_tmp retired; do
	[[ ! -e "$TG_PIN/$d" ]] || tg_fail "$TG_PIN/$d left after the upgrade"
done
assert_eq "$NEW_LAYOUT" "$(tg_layout_of "$TG_PIN")" "layout marker after the upgrade"
tg_stop_agent
assert_events_valid

tg_log "---- a restart adopts the new layout as usual"
tg_start_agent enforce "$TG_TMP/policy.yaml"
grep -q 'pins .*(adopted)' "$TG_AGENT_LOG" || tg_fail "restarted agent did not adopt the pins"
tg_stop_agent

tg_log "---- uninstall"
tg_assert_uninstalled
