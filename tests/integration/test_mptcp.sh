#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Multipath TCP is TCP to the verdict: a workload that opens its socket with
# IPPROTO_MPTCP (the kernel connects a TCP subflow for it, in the workload's
# cgroup) gets the same verdicts. In enforce mode plaintext over MPTCP to a
# protected destination is blocked with 0 bytes at the server and reported;
# TLS over MPTCP to the same destination is allowed, judged (a `tls` event with
# events.log_tls_flows) and raises no violation.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

client="$TG_ROOT/tests/integration/mptcp_client.py"
ip netns exec "$TG_NS" sysctl -qw net.mptcp.enabled=1 2>/dev/null ||
	tg_skip "this kernel has no Multipath TCP (net.mptcp.enabled)"

tg_start_plain_server web "$TG_PROT4" 80
tg_start_tls_server tls "$TG_PROT4" 443
tg_write_policy "$TG_TMP/policy.yaml" enforce "[80, 443]" true
tg_start_agent enforce "$TG_TMP/policy.yaml"

tg_client mptcp-plain python3 "$client" plain "$TG_PROT4" 80
[[ $TG_RC -ne 2 ]] || tg_skip "no MPTCP sockets here: $(cat "$TG_OUT")"
assert_rc 0 "MPTCP plaintext client"
assert_file_contains "$TG_OUT" '^(reset|closed)$' "plaintext over MPTCP cut off"

P_PLAIN="e.get('type') == 'plaintext'"
ev=$(expect_event "$TG_EVENTS" "$P_PLAIN" 5 "plaintext event")
assert_field "$ev" action blocked
assert_field "$ev" destination.class storage
assert_field "$ev" destination.port 80
assert_field "$ev" workload.comm python3

tg_client mptcp-tls python3 "$client" tls "$TG_PROT4" 443
assert_rc 0 "MPTCP TLS client"
assert_file_contains "$TG_OUT" '^answered [1-9]' "TLS over MPTCP answered"

ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'tls'" 5 "tls event of the MPTCP flow")
assert_field "$ev" action allowed
assert_field "$ev" destination.port 443
sleep 0.5
assert_event_count "$TG_EVENTS" "$P_PLAIN" 1 "plaintext events"
assert_event_count "$TG_EVENTS" "e.get('type') in ('weak_tls', 'sni_mismatch', 'blocked_connect')" 0 \
	"violations of the TLS flow"
assert_server web 1 -eq 0
tg_stop_agent
assert_events_valid
