#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Audit mode: plain HTTP to a protected destination goes through and is
# reported once, as plaintext/flagged, with destination, workload pid and comm.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

tg_start_plain_server web "$TG_PROT4" 80
tg_write_policy "$TG_TMP/policy.yaml" audit "[80, 443]"
tg_start_agent audit "$TG_TMP/policy.yaml"

tg_client curl curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
assert_rc 0 "plain HTTP in audit mode"
assert_file_contains "$TG_OUT" 'tg-testsrv ok' "curl got the server's answer"
curl_pid=$TG_CLIENT_PID

P_PLAIN="e.get('type') == 'plaintext'"
ev=$(expect_event "$TG_EVENTS" "$P_PLAIN" 5 "plaintext event")
sleep 0.5 # a duplicate would come right after the first
assert_event_count "$TG_EVENTS" "$P_PLAIN" 1 "plaintext events"
assert_event_count "$TG_EVENTS" "e.get('type') == 'blocked_connect'" 0 "blocked_connect events"

assert_field "$ev" schema tlsguard.event/v1
assert_field "$ev" action flagged
assert_field "$ev" destination.class storage
assert_field "$ev" destination.ip "$TG_PROT4"
assert_field "$ev" destination.port 80
assert_field "$ev" workload.pid "$curl_pid"
assert_field "$ev" workload.comm curl
assert_field "$ev" workload.cgroup "$TG_CG_REL"
assert_field "$ev" protocol.detected http
assert_field "$ev" protocol.method GET
assert_field "$ev" protocol.host "$TG_PROT4"
assert_field "$ev" tls null
assert_cmp "$(json_get "$ev" source.port)" -gt 0 "source.port"
assert_cmp "$(json_get "$ev" flow.cookie)" -gt 0 "flow.cookie"

tg_stop_agent
assert_server web 1 -gt 0
assert_events_valid
