#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Enforce mode: plain HTTP to a protected destination fails within a second,
# not one byte reaches the server, one plaintext/blocked event.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

tg_start_plain_server web "$TG_PROT4" 80
tg_write_policy "$TG_TMP/policy.yaml" enforce "[80, 443]"
tg_start_agent enforce "$TG_TMP/policy.yaml"

tg_client curl curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
assert_rc_nonzero "plain HTTP in enforce mode"
assert_cmp "$TG_MS" -lt 1000 "curl failure time (ms)"
curl_pid=$TG_CLIENT_PID

P_PLAIN="e.get('type') == 'plaintext'"
ev=$(expect_event "$TG_EVENTS" "$P_PLAIN" 5 "plaintext event")
sleep 0.5
assert_event_count "$TG_EVENTS" "$P_PLAIN" 1 "plaintext events"
assert_field "$ev" action blocked
assert_field "$ev" destination.class storage
assert_field "$ev" destination.ip "$TG_PROT4"
assert_field "$ev" destination.port 80
assert_field "$ev" workload.pid "$curl_pid"
assert_field "$ev" workload.comm curl
assert_field "$ev" protocol.detected http

# The connection was made (the handshake carries no payload), nothing arrived.
assert_server web 1 -eq 0
tg_stop_agent
assert_events_valid
