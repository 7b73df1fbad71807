#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The audit, enforce and port checks over IPv6 (2001:db8::10).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup
# shellcheck source=tests/integration/port_common.sh
. "$(dirname "$0")/port_common.sh"

P_PLAIN="e.get('type') == 'plaintext'"
url=$(tg_url http "$TG_PROT6")

tg_log "---- plaintext, audit mode"
tg_start_plain_server web6 "$TG_PROT6" 80
tg_write_policy "$TG_TMP/policy-audit.yaml" audit "[80, 443]"
tg_start_agent audit "$TG_TMP/policy-audit.yaml"
tg_client curl-audit curl -sS --max-time 5 "$url"
assert_rc 0 "plain HTTP over IPv6 in audit mode"
curl_pid=$TG_CLIENT_PID
ev=$(expect_event "$TG_EVENTS" "$P_PLAIN" 5 "plaintext event")
sleep 0.5
assert_event_count "$TG_EVENTS" "$P_PLAIN" 1 "plaintext events"
assert_field "$ev" action flagged
assert_field "$ev" destination.class storage
assert_field "$ev" destination.ip "$TG_PROT6"
assert_field "$ev" destination.port 80
assert_field "$ev" workload.pid "$curl_pid"
assert_field "$ev" workload.comm curl
assert_field "$ev" protocol.detected http
assert_field "$ev" protocol.host "[$TG_PROT6]"
tg_stop_agent
assert_server web6 1 -gt 0
assert_events_valid

tg_log "---- plaintext, enforce mode"
: >"$TG_EVENTS"
tg_start_plain_server web6 "$TG_PROT6" 80
tg_write_policy "$TG_TMP/policy-enforce.yaml" enforce "[80, 443]"
tg_start_agent enforce "$TG_TMP/policy-enforce.yaml"
tg_client curl-enforce curl -sS --max-time 5 "$url"
assert_rc_nonzero "plain HTTP over IPv6 in enforce mode"
assert_cmp "$TG_MS" -lt 1000 "curl failure time (ms)"
curl_pid=$TG_CLIENT_PID
ev=$(expect_event "$TG_EVENTS" "$P_PLAIN" 5 "plaintext event")
sleep 0.5
assert_event_count "$TG_EVENTS" "$P_PLAIN" 1 "plaintext events"
assert_field "$ev" action blocked
assert_field "$ev" destination.ip "$TG_PROT6"
assert_field "$ev" workload.pid "$curl_pid"
assert_server web6 1 -eq 0
tg_stop_agent
assert_events_valid

check_disallowed_port "$TG_PROT6"
