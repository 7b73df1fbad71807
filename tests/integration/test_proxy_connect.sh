#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# HTTP CONNECT through a real tinyproxy listed under `proxies:`. The proxy
# itself is no destination; its flows take the class of the host they ask
# for. curl through it to the protected TLS server is allowed; a tunnel
# (--proxytunnel) to the protected plain server carrying HTTP is plaintext,
# blocked in enforce, and the event names the tunnelled host. A tunnel to a
# host no class names is not ours.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup
tg_require_cmd tinyproxy

PROXY_PORT=8888
tg_start_tls_server tls "$TG_PROT4" 443
tg_start_plain_server web "$TG_PROT4" 80
tg_start_plain_server other "$TG_OTHER4" 80
cat >"$TG_TMP/tinyproxy.conf" <<EOC
Port $PROXY_PORT
Listen $TG_OTHER4
Timeout 30
LogLevel Info
MaxClients 20
Allow 0.0.0.0/0
ConnectPort 443
ConnectPort 80
DisableViaHeader Yes
EOC
ip netns exec "$TG_NS" tinyproxy -d -c "$TG_TMP/tinyproxy.conf" </dev/null >"$TG_TMP/tinyproxy.log" 2>&1 &
TG_PIDS+=("$!")
for _ in $(seq 50); do
	ip netns exec "$TG_NS" bash -c "echo >/dev/tcp/$TG_OTHER4/$PROXY_PORT" 2>/dev/null && break
	sleep 0.1
done
proxy="http://$TG_OTHER4:$PROXY_PORT"

P_PLAIN="e.get('type') == 'plaintext'"
for mode in audit enforce; do
	tg_log "---- $mode mode"
	: >"$TG_EVENTS"
	tg_write_policy_hs "$TG_TMP/policy-$mode.yaml" "$mode" '    hosts: ["*.storage.test"]
    ports: [80, 443]' "proxies: [\"$TG_OTHER4:$PROXY_PORT\"]"
	# the names the tunnels ask for, as the proxy resolves them
	printf '%s\tacct.storage.test\n%s\tplain.other.test\n' "$TG_PROT4" "$TG_OTHER4" >>"/etc/netns/$TG_NS/hosts"
	tg_start_agent "$mode" "$TG_TMP/policy-$mode.yaml"

	tg_client "tls-$mode" curl -sS -k --max-time 5 -x "$proxy" -o /dev/null -w '%{http_code}\n' \
		https://acct.storage.test/
	assert_rc 0 "curl through the proxy to the TLS server ($mode)"
	ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'tls'" 5 "tls event")
	assert_field "$ev" destination.name acct.storage.test
	assert_field "$ev" destination.tunnel.port 443
	assert_field "$ev" protocol.negotiation http-connect
	assert_field "$ev" tls.sni acct.storage.test

	tg_client "plain-$mode" curl -sS --max-time 5 -x "$proxy" --proxytunnel http://acct.storage.test/
	if [[ $mode == audit ]]; then
		assert_rc 0 "plain HTTP through a tunnel in audit mode"
	else
		assert_rc_nonzero "plain HTTP through a tunnel in enforce mode"
		assert_cmp "$TG_MS" -lt 2000 "time to the failure (ms)"
	fi
	ev=$(expect_event "$TG_EVENTS" "$P_PLAIN" 5 "plaintext event")
	assert_field "$ev" action "$([[ $mode == audit ]] && echo flagged || echo blocked)"
	assert_field "$ev" destination.class storage
	assert_field "$ev" destination.name acct.storage.test
	assert_field "$ev" destination.ip "$TG_OTHER4"
	assert_field "$ev" destination.port "$PROXY_PORT"
	assert_field "$ev" protocol.detected http
	assert_field "$ev" protocol.host acct.storage.test

	tg_client "unlisted-$mode" curl -sS --max-time 5 -x "$proxy" --proxytunnel http://plain.other.test/
	assert_rc 0 "a tunnel to a host no class names"
	sleep 0.3
	assert_event_count "$TG_EVENTS" "$P_PLAIN" 1 "plaintext events ($mode)"
	tg_stop_agent
	assert_events_valid
done
