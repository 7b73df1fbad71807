#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# fail_mode with the agent SIGKILLed under plaintext and TLS traffic:
#   closed: the kernel keeps blocking every plaintext connection and passes
#           every TLS one; the counts match the traffic sent;
#   open:   blocking degrades to pass-and-count once the heartbeat is older
#           than fail_open_after, and returns when the agent is back, which
#           reports what passed as an `agent` fail_open event.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

tg_start_plain_server web "$TG_PROT4" 80
tg_start_tls_server tls "$TG_PROT4" 443
N=4

traffic()	# traffic TAG → prints "PLAIN_OK TLS_OK"
{
	local ok_plain=0 ok_tls=0 i
	for i in $(seq $N); do
		tg_client "$1-plain$i" curl -s --max-time 1 -o /dev/null "$(tg_url http "$TG_PROT4")"
		[[ $TG_RC -eq 0 ]] && ok_plain=$((ok_plain + 1))
		tg_client "$1-tls$i" curl -s -k --max-time 5 -o /dev/null "$(tg_url https "$TG_PROT4")"
		[[ $TG_RC -eq 0 ]] && ok_tls=$((ok_tls + 1))
	done
	echo "$ok_plain $ok_tls"
}
kernel_counter() { "$TLSGUARD" status --socket "$TG_SOCK" -o json | python3 -c "import json,sys; print(json.load(sys.stdin)['kernel_counters']['$1'])"; }

# ---- closed
tg_write_policy "$TG_TMP/closed.yaml" enforce "[80, 443]"
printf 'fail_mode: closed\n' >>"$TG_TMP/closed.yaml"
tg_start_agent enforce "$TG_TMP/closed.yaml"
tg_kill_agent
read -r plain tls < <(traffic closed)
assert_eq 0 "$plain" "closed, agent dead: plaintext requests that got through"
assert_eq "$N" "$tls" "closed, agent dead: TLS requests that worked"
sleep 2.5	# longer than any fail_open_after: closed must not care
read -r plain tls < <(traffic closed-late)
assert_eq 0 "$plain" "closed, agent dead for seconds: plaintext through"
tg_start_agent enforce "$TG_TMP/closed.yaml"
assert_eq $((2 * N)) "$(kernel_counter plaintext_blocked)" "closed: plaintext blocked in the kernel"
assert_eq $((2 * N)) "$(kernel_counter verdict_tls)" "closed: TLS verdicts"
assert_eq 0 "$(kernel_counter fail_open_passed)" "closed: nothing passed open"
tg_stop_agent
# the server first: the timed-out clients' orphaned sockets still retransmit their
# blocked request for a while, and after the uninstall nothing would drop it
assert_server web $((2 * N)) -eq 0
"$TLSGUARD" uninstall --pin-path "$TG_PIN" >/dev/null

# ---- open, fail_open_after 3s
tg_start_plain_server web2 "$TG_PROT4" 80
tg_write_policy "$TG_TMP/open.yaml" enforce "[80, 443]"
printf 'fail_mode: open\nfail_open_after: 3s\n' >>"$TG_TMP/open.yaml"
: >"$TG_EVENTS"
tg_start_agent enforce "$TG_TMP/open.yaml"
tg_kill_agent
# a blocked request waits out its 1 s timeout (no agent to destroy it): one only
tg_client open-fresh curl -s --max-time 1 -o /dev/null "$(tg_url http "$TG_PROT4")"
assert_rc_nonzero "open, heartbeat still fresh: plaintext blocked"
sleep 3
read -r plain tls < <(traffic open-stale)
assert_eq "$N" "$plain" "open, heartbeat stale: plaintext passed"
assert_eq "$N" "$tls" "open, heartbeat stale: TLS worked"
tg_start_agent enforce "$TG_TMP/open.yaml"
tg_client back curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
assert_rc_nonzero "open: blocking is back with the agent"
assert_cmp "$TG_MS" -lt 1000 "open: blocked request failed fast again (ms)"
assert_eq "$N" "$(kernel_counter fail_open_passed)" "open: verdicts passed while the agent was gone"
assert_eq 2 "$(kernel_counter plaintext_blocked)" "open: plaintext blocked (fresh heartbeat, agent back)"
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'agent' and e.get('action') == 'fail_open'" 5 "fail_open event")
[[ $(json_get "$ev" message) == "$N enforce verdict(s) passed"* ]] || tg_fail "fail_open message: $(json_get "$ev" message)"
tg_stop_agent
assert_server web2 $((N + 2)) -gt 0
assert_events_valid
