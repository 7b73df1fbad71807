# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Shared by test_disallowed_port.sh (IPv4) and test_ipv6.sh: the port policy
# of a protected destination, for one address.

# check_disallowed_port ADDR : audit then enforce, 8080 against ports [80, 443].
check_disallowed_port()
{
	local addr=$1 mode ev P_BC
	P_BC="e.get('type') == 'blocked_connect' and get(e, 'destination.port') == 8080"
	for mode in audit enforce; do
		tg_log "---- disallowed port, $mode mode, $addr"
		: >"$TG_EVENTS"
		tg_start_plain_server p8080 "$addr" 8080
		tg_write_policy "$TG_TMP/policy-port-$mode.yaml" "$mode" "[80, 443]"
		tg_start_agent "$mode" "$TG_TMP/policy-port-$mode.yaml"

		tg_client "curl-8080-$mode" curl -sS -v --max-time 5 "$(tg_url http "$addr" 8080)"
		local curl_pid=$TG_CLIENT_PID
		if [[ $mode == audit ]]; then
			assert_rc 0 "connect to a disallowed port in audit mode"
			assert_file_contains "$TG_OUT" 'tg-testsrv ok' "curl got the server's answer"
		else
			assert_rc 7 "connect to a disallowed port in enforce mode (curl: couldn't connect)"
			assert_cmp "$TG_MS" -lt 1000 "time to the connect failure (ms)"
			assert_file_contains "$TG_OUT" 'Operation not permitted' "curl saw EPERM from connect()"
		fi
		ev=$(expect_event "$TG_EVENTS" "$P_BC" 5 "blocked_connect event")
		sleep 0.3
		assert_event_count "$TG_EVENTS" "$P_BC" 1 "blocked_connect events ($mode)"
		if [[ $mode == audit ]]; then
			assert_field "$ev" action flagged
		else
			assert_field "$ev" action blocked
		fi
		assert_field "$ev" destination.class storage
		assert_field "$ev" destination.ip "$addr"
		assert_field "$ev" workload.pid "$curl_pid"
		assert_field "$ev" workload.comm curl

		if [[ $mode == audit ]]; then
			assert_server p8080 1 -gt 0
		else
			assert_server p8080 0 -eq 0
		fi
		tg_stop_agent
		assert_events_valid
	done
}
