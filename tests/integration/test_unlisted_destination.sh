#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A destination that is not in the policy is left alone in both modes: plain
# HTTP to it works on any port and raises no event. A control request to the
# protected address shows the agent was watching all along.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

for mode in audit enforce; do
	tg_log "---- $mode mode"
	: >"$TG_EVENTS"
	tg_start_plain_server other "$TG_OTHER4" 80
	tg_start_plain_server other8080 "$TG_OTHER4" 8080
	tg_start_plain_server web "$TG_PROT4" 80
	tg_write_policy "$TG_TMP/policy-$mode.yaml" "$mode" "[80, 443]"
	tg_start_agent "$mode" "$TG_TMP/policy-$mode.yaml"

	tg_client "curl-other-$mode" curl -sS --max-time 5 "$(tg_url http "$TG_OTHER4")"
	assert_rc 0 "plain HTTP to an unlisted destination ($mode)"
	tg_client "curl-other8080-$mode" curl -sS --max-time 5 "$(tg_url http "$TG_OTHER4" 8080)"
	assert_rc 0 "plain HTTP to an unlisted destination, port 8080 ($mode)"

	# Control: the protected address right after is seen.
	tg_client "curl-control-$mode" curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
	expect_event "$TG_EVENTS" "e.get('type') == 'plaintext'" 5 "control plaintext event" >/dev/null
	sleep 0.3
	assert_event_count "$TG_EVENTS" "get(e, 'destination.ip') == '$TG_OTHER4'" 0 \
		"events about $TG_OTHER4 ($mode)"
	assert_event_count "$TG_EVENTS" "$TG_P_VIOLATION" 1 "violation events (the control only, $mode)"

	assert_server other 1 -gt 0
	assert_server other8080 1 -gt 0
	tg_stop_server web
	tg_stop_agent
	assert_events_valid
done
