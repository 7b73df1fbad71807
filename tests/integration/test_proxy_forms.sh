#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 16, proxies: a real tinyproxy listed under `proxies:`, the protected
# plain server behind it counting what it receives.
#  - CONNECT to the protected address written as inet_aton() and IPv6 forms
#    tinyproxy resolves ("198.51.25610", "3325256714", "0xc633640a",
#    "0306.063.0144.012", "[::ffff:198.51.100.10]") then plain HTTP inside:
#    the flow takes the protected class; in enforce the server receives 0
#    bytes, in audit the request reaches it and is flagged;
#  - keep-alive: Python's http.client and requests (urllib3's ProxyManager)
#    on one proxy connection, first to an unlisted host, then to the
#    protected one: the second request is judged (blocked, 0 bytes at the
#    protected server; the first one still answered; the event's source port
#    is the connection the first request used). tinyproxy itself closes a
#    client connection after each request, so in audit the second request
#    goes out on that connection and is flagged, but tinyproxy drops it.
#    urllib to the protected host: blocked.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup
tg_require_cmd tinyproxy

PROXY_PORT=8888
cat >"$TG_TMP/tinyproxy.conf" <<EOC
Port $PROXY_PORT
Listen $TG_OTHER4
Timeout 30
LogLevel Info
MaxClients 20
Allow 0.0.0.0/0
ConnectPort 80
DisableViaHeader Yes
EOC
ip netns exec "$TG_NS" tinyproxy -d -c "$TG_TMP/tinyproxy.conf" </dev/null >"$TG_TMP/tinyproxy.log" 2>&1 &
TG_PIDS+=("$!")
for _ in $(seq 50); do
	ip netns exec "$TG_NS" bash -c "echo >/dev/tcp/$TG_OTHER4/$PROXY_PORT" 2>/dev/null && break
	sleep 0.1
done
printf '%s\tacct.storage.test\n%s\tplain.other.test\n' "$TG_PROT4" "$TG_OTHER4" >>"/etc/netns/$TG_NS/hosts"
clients=$(dirname "$0")/proxy_clients.py
# Debian's python3-requests is installed for /usr/bin/python3
py_requests=/usr/bin/python3
$py_requests -c 'import requests' 2>/dev/null || py_requests=""
if [[ -z "$py_requests" && "${CI:-}" == true ]]; then
	tg_fail "python3-requests is not installed (make test-deps installs it)"
fi

P_PLAIN="e.get('type') == 'plaintext' and get(e, 'destination.class') == 'storage'"
for mode in audit enforce; do
	tg_log "---- $mode mode"
	: >"$TG_EVENTS"
	tg_write_policy_hs "$TG_TMP/policy-$mode.yaml" "$mode" '    hosts: ["*.storage.test"]
    ports: [80, 443]' "proxies: [\"$TG_OTHER4:$PROXY_PORT\"]"
	tg_start_agent "$mode" "$TG_TMP/policy-$mode.yaml"
	act=$([[ $mode == audit ]] && echo flagged || echo blocked)
	n=0
	for form in 198.51.25610 3325256714 0xc633640a 0306.063.0144.012 '[::ffff:198.51.100.10]'; do
		tg_start_plain_server prot "$TG_PROT4" 80
		tg_client "connect-$form-$mode" timeout 10 python3 "$clients" connect "$TG_OTHER4" "$PROXY_PORT" "$form"
		n=$((n + 1))
		expect_event "$TG_EVENTS" "$P_PLAIN" 5 "plaintext in a tunnel to $form" >/dev/null
		assert_event_count "$TG_EVENTS" "$P_PLAIN" "$n" "plaintext events after $form"
		if [[ $mode == enforce ]]; then
			assert_server prot 1 -eq 0
		else
			assert_file_contains "$TG_OUT" '^proxy said HTTP/1\.[01] 200' "tinyproxy reached $form"
			assert_server prot 1 -gt 0
		fi
	done

	tg_start_plain_server prot "$TG_PROT4" 80
	tg_start_plain_server other "$TG_OTHER4" 80
	tg_client "keepalive-$mode" timeout 15 python3 "$clients" keepalive "$TG_OTHER4" "$PROXY_PORT"
	assert_file_contains "$TG_OUT" '^step unlisted ok 200$' "http.client: the unlisted host answered"
	ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and get(e, 'protocol.host') == 'acct.storage.test' and get(e, 'workload.comm') == 'python3'" 5 "keep-alive: the second request")
	assert_field "$ev" action "$act"
	assert_field "$ev" destination.name acct.storage.test
	assert_field "$ev" source.port "$(awk '$1 == "port" { print $2 }' "$TG_OUT")"
	if [[ $mode == enforce ]]; then
		assert_file_contains "$TG_OUT" '^step protected failed ' "http.client: the protected request failed"
	fi
	assert_server prot 0 -eq 0
	tg_stop_server other

	if [[ -n "$py_requests" ]]; then
		: >"$TG_EVENTS"
		tg_start_plain_server prot "$TG_PROT4" 80
		tg_start_plain_server other "$TG_OTHER4" 80
		tg_client "requests-$mode" timeout 15 $py_requests "$clients" requests "$TG_OTHER4" "$PROXY_PORT"
		assert_file_contains "$TG_OUT" '^step unlisted ok 200$' "requests: the unlisted host answered"
		expect_event "$TG_EVENTS" "$P_PLAIN" 5 "requests: the protected request" >/dev/null
		if [[ $mode == enforce ]]; then
			assert_file_contains "$TG_OUT" '^step protected failed ' "requests: the protected request failed"
			assert_server prot 0 -eq 0
		else
			assert_server prot 1 -gt 0
		fi
		tg_stop_server other
	fi

	: >"$TG_EVENTS"
	tg_start_plain_server prot "$TG_PROT4" 80
	tg_client "urllib-$mode" timeout 15 python3 "$clients" urllib "$TG_OTHER4" "$PROXY_PORT"
	expect_event "$TG_EVENTS" "$P_PLAIN" 5 "urllib: the protected request" >/dev/null
	if [[ $mode == enforce ]]; then
		assert_server prot 0 -eq 0
	else
		assert_server prot 1 -gt 0
	fi
	tg_stop_agent
	assert_events_valid
done
