#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# SNI binding: the class lists *.storage.test and *.blob.test; curl to the
# same address with another name (--resolve) is sni_mismatch, flagged in
# audit and blocked in enforce; a ClientHello without SNI is one only with
# require_sni; names under the listed ones pass. (Wildcards, because exact
# names start the agent's resolver thread; exact-name matching is covered
# by the BPF tests.)
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

tg_start_tls_server tls "$TG_PROT4" 443
P_SNI="e.get('type') == 'sni_mismatch'"

curl_as() # NAME HOST
{
	tg_client "$1" curl -sS -k --max-time 5 -o /dev/null -w '%{http_code}\n' \
		--resolve "$2:443:$TG_PROT4" "https://$2/"
}

for mode in audit enforce; do
	tg_log "---- $mode mode"
	: >"$TG_EVENTS"
	tg_write_policy_hs "$TG_TMP/policy-$mode.yaml" "$mode" \
		'    hosts: ["*.storage.test", "*.blob.test"]
    ports: [443]
    require_sni: true'
	tg_start_agent "$mode" "$TG_TMP/policy-$mode.yaml"

	curl_as "listed-$mode" www.storage.test
	assert_rc 0 "curl with a listed name ($mode)"
	curl_as "wildcard-$mode" acct.blob.test
	assert_rc 0 "curl with a name under the listed wildcard ($mode)"

	curl_as "other-$mode" other.test
	if [[ $mode == audit ]]; then
		assert_rc 0 "curl with another name in audit mode"
	else
		assert_rc_nonzero "curl with another name in enforce mode"
		assert_cmp "$TG_MS" -lt 2000 "time to the failure (ms)"
	fi
	ev=$(expect_event "$TG_EVENTS" "$P_SNI and get(e, 'tls.sni') == 'other.test'" 5 "sni_mismatch")
	assert_field "$ev" action "$([[ $mode == audit ]] && echo flagged || echo blocked)"
	assert_field "$ev" tls.sni_check mismatch
	assert_field "$ev" destination.ip "$TG_PROT4"
	assert_field "$ev" workload.comm curl

	TG_STDIN=/dev/null tg_client "nosni-$mode" timeout 5 openssl s_client \
		-connect "$TG_PROT4:443" -noservername
	ev=$(expect_event "$TG_EVENTS" "$P_SNI and get(e, 'tls.sni_check') == 'missing'" 5 "missing SNI")
	assert_field "$ev" tls.sni null
	sleep 0.3
	assert_event_count "$TG_EVENTS" "$P_SNI" 2 "sni_mismatch events ($mode)"
	n=$("$TLSGUARD" status --socket "$TG_SOCK" -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["counters"]["sni_mismatch"])')
	assert_eq 2 "$n" "status counters.sni_mismatch ($mode)"
	tg_stop_agent
	assert_events_valid
done
