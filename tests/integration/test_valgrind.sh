#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# valgrind memcheck over an integration scenario: the release agent (no
# sanitizers) runs under memcheck through start, blocked and flagged
# violations, status/events/metrics queries, a reload and a clean stop;
# memcheck must report no error and no leak (the agent's exit status is
# valgrind's error exit code otherwise, which tg_stop_agent rejects).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup
tg_require_cmd valgrind
TLSGUARD="$TG_ROOT/build/tlsguard"
[[ -x "$TLSGUARD" ]] || tg_fail "release binary missing (make build/tlsguard)"

tg_start_plain_server web "$TG_PROT4" 80
tg_start_tls_server tls "$TG_PROT4" 443
tg_write_policy "$TG_TMP/policy.yaml" enforce "[80, 443]" true
metrics_port=$((20000 + RANDOM % 20000))
printf 'metrics:\n  listen: "127.0.0.1:%s"\n' "$metrics_port" >>"$TG_TMP/policy.yaml"
VG_LOG="$TG_TMP/valgrind.log"
TG_AGENT_READY_TIMEOUT=120 \
TG_AGENT_WRAPPER="valgrind --quiet --suppressions=$TG_ROOT/tests/valgrind.supp --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect --log-file=$VG_LOG" \
	tg_start_agent enforce "$TG_TMP/policy.yaml"

tg_client plain curl -sS --max-time 10 "$(tg_url http "$TG_PROT4")"
assert_rc_nonzero "plaintext blocked under valgrind"
tg_client refused curl -sS --max-time 10 "$(tg_url http "$TG_PROT4" 8080)"
assert_rc 7 "refused connect under valgrind"
tg_client tls curl -sS -k --max-time 10 -o /dev/null "$(tg_url https "$TG_PROT4")"
assert_rc 0 "TLS under valgrind"
expect_event "$TG_EVENTS" "e.get('type') == 'plaintext'" 20 "plaintext event" >/dev/null
expect_event "$TG_EVENTS" "e.get('type') == 'tls'" 20 "tls event" >/dev/null
"$TLSGUARD" status --socket "$TG_SOCK" -o json >/dev/null || tg_fail "status under valgrind"
"$TLSGUARD" events --socket "$TG_SOCK" >/dev/null || tg_fail "events under valgrind"
curl -sS --max-time 20 "http://127.0.0.1:$metrics_port/metrics" >/dev/null || tg_fail "metrics under valgrind"
kill -HUP "$TG_AGENT_PID"
expect_event "$TG_EVENTS" "e.get('type') == 'agent' and e.get('action') == 'reload'" 30 "reload" >/dev/null
tg_stop_agent
# "--PID-- WARNING: unhandled eBPF command" lines are valgrind saying it does
# not model a bpf(2) command; errors are the "==PID==" lines
if grep -q '^==[0-9]*==' "$VG_LOG"; then
	cat "$VG_LOG" >&2
	tg_fail "valgrind reported problems (see above)"
fi
tg_log "ok: valgrind memcheck: no error, no leak"
