#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# min_tls_version 1.2: `openssl s_client -tls1_1` (and -tls1, @SECLEVEL=0)
# against a server that allows them is weak_tls on the client side: flagged
# in audit (the handshake completes), blocked in enforce (the client fails at
# once, the server never completes a handshake). A client offering up to 1.3
# to a server capped at 1.1 is weak_tls on the server side. TLS 1.2/1.3 pass.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

tg_start_tls_server_args old "$TG_PROT4" 443 -cipher DEFAULT@SECLEVEL=0 -min_protocol TLSv1
tg_start_tls_server_args capped "$TG_PROT4" 8443 -cipher DEFAULT@SECLEVEL=0 -min_protocol TLSv1 \
	-max_protocol TLSv1.1
printf 'GET / HTTP/1.0\r\n\r\n' >"$TG_TMP/get.txt"

s_client() # NAME PORT ARGS...
{
	local name=$1 port=$2
	shift 2
	TG_STDIN="$TG_TMP/get.txt" tg_client "$name" timeout 10 openssl s_client \
		-connect "$(tg_hostport "$TG_PROT4" "$port")" -servername storage.test -ign_eof "$@"
}

P_WEAK="e.get('type') == 'weak_tls'"
for mode in audit enforce; do
	tg_log "---- $mode mode"
	: >"$TG_EVENTS"
	tg_write_policy_hs "$TG_TMP/policy-$mode.yaml" "$mode" "    ports: [443, 8443]" \
		'min_tls_version: "1.2"'
	tg_start_agent "$mode" "$TG_TMP/policy-$mode.yaml"

	s_client "tls11-$mode" 443 -tls1_1 -cipher DEFAULT@SECLEVEL=0
	if [[ $mode == audit ]]; then
		assert_rc 0 "s_client -tls1_1 in audit mode"
		assert_file_contains "$TG_OUT" '^HTTP/1\.0 200' "TLS 1.1 handshake completed in audit mode"
	else
		assert_rc_nonzero "s_client -tls1_1 in enforce mode"
		assert_cmp "$TG_MS" -lt 2000 "time to the failure (ms)"
	fi
	ev=$(expect_event "$TG_EVENTS" "$P_WEAK and get(e, 'tls.offered_max') == '1.1'" 5 "weak_tls (1.1)")
	assert_field "$ev" action "$([[ $mode == audit ]] && echo flagged || echo blocked)"
	assert_field "$ev" tls.weak_side client
	assert_field "$ev" tls.min_version 1.2
	assert_field "$ev" tls.sni storage.test
	assert_field "$ev" destination.class storage
	assert_field "$ev" workload.comm openssl
	assert_field "$ev" protocol.detected tls

	s_client "tls10-$mode" 443 -tls1 -cipher DEFAULT@SECLEVEL=0
	[[ $mode == enforce ]] && assert_rc_nonzero "s_client -tls1 in enforce mode"
	expect_event "$TG_EVENTS" "$P_WEAK and get(e, 'tls.offered_max') == '1.0'" 5 "weak_tls (1.0)" >/dev/null

	# offers 1.3, the server only goes to 1.1: the server side is weak
	s_client "capped-$mode" 8443 -cipher DEFAULT@SECLEVEL=0
	[[ $mode == enforce ]] && assert_rc_nonzero "s_client to a TLS 1.1 server in enforce mode"
	ev=$(expect_event "$TG_EVENTS" "$P_WEAK and get(e, 'tls.weak_side') == 'server'" 5 "weak_tls (server)")
	assert_field "$ev" tls.version 1.1
	assert_field "$ev" tls.offered_max 1.3

	# compliant versions still work, in either mode
	s_client "tls13-$mode" 443 -tls1_3
	assert_rc 0 "s_client -tls1_3 in $mode mode"
	assert_file_contains "$TG_OUT" '^HTTP/1\.0 200' "TLS 1.3 works in $mode mode"
	s_client "tls12-$mode" 443 -tls1_2
	assert_rc 0 "s_client -tls1_2 in $mode mode"
	ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'tls' and get(e, 'tls.version') == '1.2'" 5 "tls event (1.2)")
	assert_field "$ev" action allowed
	sleep 0.3
	assert_event_count "$TG_EVENTS" "$P_WEAK" 3 "weak_tls events ($mode)"
	n=$("$TLSGUARD" status --socket "$TG_SOCK" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["weak_tls"])')
	assert_eq 3 "$n" "status counters.weak_tls ($mode)"
	tg_stop_agent
	assert_events_valid
done
