#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# TLS 1.2 (curl) and TLS 1.3 (openssl s_client) to a protected destination work
# in audit and in enforce mode and raise no violation. With log_tls_flows the
# agent reports them as `tls` events (proof that it saw them at all).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

tg_start_tls_server tls "$TG_PROT4" 443
printf 'GET / HTTP/1.0\r\n\r\n' >"$TG_TMP/get.txt"

tls_clients()
{
	local mode=$1
	tg_client "curl-tls12-$mode" curl -sS -k --max-time 5 --tlsv1.2 --tls-max 1.2 \
		-o /dev/null -w '%{http_code} %{ssl_verify_result}\n' "$(tg_url https "$TG_PROT4")"
	assert_rc 0 "curl TLS 1.2 in $mode mode"
	assert_file_contains "$TG_OUT" '^200 ' "curl TLS 1.2 got HTTP 200"

	TG_STDIN="$TG_TMP/get.txt" tg_client "s_client-tls13-$mode" \
		timeout 10 openssl s_client -connect "$(tg_hostport "$TG_PROT4" 443)" \
		-tls1_3 -brief -ign_eof
	assert_rc 0 "openssl s_client TLS 1.3 in $mode mode"
	assert_file_contains "$TG_OUT" 'Protocol version: TLSv1\.3' "s_client negotiated TLS 1.3"
	assert_file_contains "$TG_OUT" '^HTTP/1\.0 200' "s_client got HTTP 200"
}

for mode in audit enforce; do
	tg_log "---- $mode mode"
	: >"$TG_EVENTS"
	log_tls=false
	[[ $mode == enforce ]] && log_tls=true
	tg_write_policy "$TG_TMP/policy-$mode.yaml" "$mode" "[80, 443]" "$log_tls"
	tg_start_agent "$mode" "$TG_TMP/policy-$mode.yaml"
	tls_clients "$mode"
	if [[ $log_tls == true ]]; then
		P_TLS="e.get('type') == 'tls' and get(e, 'destination.port') == 443"
		expect_event "$TG_EVENTS" "$P_TLS" 5 "tls event" >/dev/null
		sleep 0.5
		n=$(count_events "$TG_EVENTS" "$P_TLS")
		assert_cmp "$n" -ge 2 "tls events with log_tls_flows (one per client)"
		versions=$(python3 -c "$TG_PY_PRELUDE
vs = sorted({get(e, 'tls.version') for e in match(sys.argv[2], load(sys.argv[1]))} - {None})
print(','.join(vs))" "$TG_EVENTS" "$P_TLS")
		# Versions are optional in this check, wrong ones are not.
		[[ -z "$versions" || "$versions" == "1.2,1.3" ]] ||
			tg_fail "tls.version of the tls events: expected 1.2 and 1.3, got '$versions'"
	else
		sleep 0.5
		assert_event_count "$TG_EVENTS" "e.get('type') == 'tls'" 0 "tls events without log_tls_flows"
	fi
	assert_event_count "$TG_EVENTS" "$TG_P_VIOLATION" 0 "violation events for TLS ($mode)"
	tg_stop_agent
	assert_events_valid
done
