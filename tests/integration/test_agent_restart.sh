#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Enforcement survives the agent: after SIGKILL the pinned programs keep
# dropping plaintext (no socket destroy, so the client times out, and the server
# receives nothing); an agent started again over the same pins adopts them
# (one program per attach type on the cgroup, as before) and blocks quickly
# again. `tlsguard uninstall` then leaves nothing behind.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

P_BLOCKED="e.get('type') == 'plaintext' and e.get('action') == 'blocked'"
url=$(tg_url http "$TG_PROT4")
tg_write_policy "$TG_TMP/policy.yaml" enforce "[80, 443]"

tg_log "---- first agent"
tg_start_plain_server web "$TG_PROT4" 80
tg_start_agent enforce "$TG_TMP/policy.yaml"
before=$(tg_assert_one_prog_per_type "first agent")
tg_client curl-1 curl -sS --max-time 5 "$url"
assert_rc_nonzero "plain HTTP, first agent"
assert_cmp "$TG_MS" -lt 1000 "curl failure time, first agent (ms)"
expect_event "$TG_EVENTS" "$P_BLOCKED and get(e, 'workload.pid') == $TG_CLIENT_PID" 5 \
	"blocked event, first agent" >/dev/null
assert_server web 1 -eq 0

tg_log "---- agent gone (SIGKILL)"
tg_kill_agent
[[ -d "$TG_PIN" ]] || tg_fail "pin directory $TG_PIN gone after SIGKILL"
gap=$(tg_cgroup_progs)
assert_eq "$before" "$gap" "programs on the cgroup while no agent runs"
tg_start_plain_server web "$TG_PROT4" 80
tg_client curl-gap curl -sS --max-time 2 "$url"
assert_rc_nonzero "plain HTTP while no agent runs"
assert_cmp "$TG_MS" -ge 1500 "curl ran into its own timeout (ms), nobody destroyed the socket"
# The client gave up; anything still retransmitted must stay dropped.
sleep 0.5
assert_server web 1 -eq 0

tg_log "---- second agent over the same pins"
: >"$TG_EVENTS"
tg_start_plain_server web "$TG_PROT4" 80
tg_start_agent enforce "$TG_TMP/policy.yaml"
after=$(tg_assert_one_prog_per_type "restarted agent")
assert_eq "$before" "$after" "attach types on the cgroup after the restart"
tg_client curl-2 curl -sS --max-time 5 "$url"
assert_rc_nonzero "plain HTTP, restarted agent"
assert_cmp "$TG_MS" -lt 1000 "curl failure time, restarted agent (ms)"
expect_event "$TG_EVENTS" "$P_BLOCKED and get(e, 'workload.pid') == $TG_CLIENT_PID" 5 \
	"blocked event, restarted agent" >/dev/null
assert_server web 1 -eq 0
tg_stop_agent
assert_events_valid

tg_log "---- uninstall"
tg_assert_uninstalled
tg_start_plain_server web "$TG_PROT4" 80
tg_client curl-after curl -sS --max-time 5 "$url"
assert_rc 0 "plain HTTP after uninstall"
assert_server web 1 -gt 0
