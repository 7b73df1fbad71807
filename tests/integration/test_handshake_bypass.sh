#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Issue 16: a TLS destination's verdict cannot be talked around. Against a
# plain TCP server on the protected address (tg-testsrv counts every byte
# it receives), real sockets in the watched cgroup try: a zero-length
# ClientHello then HTTP, a 6-byte hello prefix then HTTP, a real
# ClientHello (Python's ssl) then HTTP (in its own write, and in the same
# one); a server that speaks first; a plain server that answers a real
# ClientHello. Enforce: the server receives no byte past a well-formed hello
# prefix (for the real hello and the 6-byte prefix: exactly those bytes,
# written alone; for the zero-length hello and a hello written with the HTTP
# in one send(): none), the client receives nothing of a
# plaintext server, one plaintext event each with its side and reason.
# Audit: the same events, flagged. Real TLS (openssl s_client against
# s_server) still passes: TLS 1.2, 1.3, a HelloRetryRequest, TLS 1.2
# resumption, a ClientHello over 2 KiB (large ALPN list) and one with a
# post-quantum-sized key share.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

client=$(dirname "$0")/handshake_client.py
P_PLAIN="e.get('type') == 'plaintext'"

# bytes the server got on its only connection, after stopping it
server_bytes() { tg_stop_server "$1"; tg_server_bytes "$1"; }
out_field() { awk -v k="$1" '$1 == k { print $2 }' "$TG_OUT"; }

for mode in audit enforce; do
	tg_log "---- $mode mode"
	: >"$TG_EVENTS"
	tg_write_policy "$TG_TMP/policy-$mode.yaml" "$mode" "[443, 8443, 9443]"
	tg_start_agent "$mode" "$TG_TMP/policy-$mode.yaml"
	act=$([[ $mode == audit ]] && echo flagged || echo blocked)
	n=0
	for c in fake_hello short_hello hello_then_http hello_http_one; do
		tg_start_testsrv "sink-$c" "$TG_PROT4" 443
		tg_client "$c-$mode" timeout 10 python3 "$client" "$c" "$TG_PROT4" 443
		n=$((n + 1))
		ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and e.get('action') == '$act'" 5 "$c event")
		got=$(server_bytes "sink-$c")
		sent=$(out_field sent)
		first=$(out_field first_write)
		if [[ $mode == enforce ]]; then
			case $c in
			hello_then_http | short_hello)
				# its first write is a hello so far (passes while collected), the HTTP is not
				assert_eq "$first" "$got" "$c: the server got the hello (prefix) and nothing after it" ;;
			*) assert_eq 0 "$got" "$c: bytes the server received" ;;
			esac
		else
			assert_eq "$sent" "$got" "$c (audit): the server got everything"
		fi
		assert_event_count "$TG_EVENTS" "$P_PLAIN" "$n" "plaintext events after $c"
	done
	last=$(python3 -c "$TG_PY_PRELUDE
import json
print(json.dumps(match(sys.argv[2], load(sys.argv[1]))[-1]))" "$TG_EVENTS" "$P_PLAIN")
	assert_field "$last" side client
	assert_field "$last" reason after_hello
	assert_field "$last" protocol.detected http

	# a protected server that speaks first
	tg_start_testsrv greeter "$TG_PROT4" 8443 --greet "220 plaintext banner, 40 bytes long...\r\n"
	tg_client "listen-$mode" timeout 10 python3 "$client" listen "$TG_PROT4" 8443
	ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and e.get('reason') == 'server_first'" 5 "server_first event")
	assert_field "$ev" side server
	assert_field "$ev" action "$act"
	if [[ $mode == enforce ]]; then
		assert_eq 0 "$(out_field received)" "bytes the client got from a server speaking first"
	else
		assert_cmp "$(out_field received)" -gt 0 "bytes the client got from it (audit)"
	fi
	tg_stop_server greeter

	# a plain server answering a real ClientHello
	tg_start_testsrv replier "$TG_PROT4" 9443 --reply "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
	tg_client "hello-read-$mode" timeout 10 python3 "$client" hello_read "$TG_PROT4" 9443
	ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and e.get('reason') == 'not_server_hello'" 5 "not_server_hello event")
	assert_field "$ev" side server
	assert_field "$ev" protocol.detected http
	if [[ $mode == enforce ]]; then
		assert_eq 0 "$(out_field received)" "bytes the client got of the plaintext answer"
	fi
	tg_stop_server replier
	tg_stop_agent
	assert_events_valid
done

# Real TLS in enforce: no false verdict
tg_log "---- real TLS, enforce"
: >"$TG_EVENTS"
tg_write_policy "$TG_TMP/policy-tls.yaml" enforce "[443, 8443, 9443]" true
tg_start_tls_server_args hrr "$TG_PROT4" 443 -groups P-256
tg_start_tls_server_args tls12 "$TG_PROT4" 8443 -tls1_2
tg_start_tls_server tls13 "$TG_PROT4" 9443
tg_start_agent enforce "$TG_TMP/policy-tls.yaml"
printf 'GET / HTTP/1.0\r\n\r\n' >"$TG_TMP/get.txt"
s_client() # NAME PORT ARGS...
{
	local name=$1 port=$2
	shift 2
	TG_STDIN="$TG_TMP/get.txt" tg_client "$name" timeout 10 openssl s_client \
		-connect "$(tg_hostport "$TG_PROT4" "$port")" -servername storage.test -ign_eof "$@"
	assert_rc 0 "openssl s_client $name"
	assert_file_contains "$TG_OUT" '^HTTP/1\.0 200' "$name got the page"
}
s_client hrr 443 -tls1_3 -groups X25519:P-256
assert_file_contains "$TG_OUT" 'Server Temp Key: ECDH, prime256v1' "hrr: the server asked again (HRR) for P-256"
# (-no_tx_cert_with_ext is OpenSSL 3.2+; Debian 12 has 3.0)
alpn=$(python3 -c "print(','.join('proto-%02d-%s' % (i, 'x' * 50) for i in range(36)))")
s_client big-hello 443 -tls1_3 -groups P-256 -alpn "$alpn"
s_client tls12-first 8443 -tls1_2 -sess_out "$TG_TMP/sess.pem"
s_client tls12-resumed 8443 -tls1_2 -sess_in "$TG_TMP/sess.pem"
assert_file_contains "$TG_OUT" '^Reused, TLSv1\.2' "the TLS 1.2 session was resumed"
# a ClientHello with a post-quantum-sized key share (1.7 KiB in one record)
tg_client pq-hello timeout 10 python3 "$client" pq_hello "$TG_PROT4" 9443
assert_file_contains "$TG_OUT" '^server hello$' "s_server answered the post-quantum-sized hello with a ServerHello"
assert_cmp "$(awk '$1 == "hello" { print $2 }' "$TG_OUT")" -gt 1700 "its size"
sleep 0.5
assert_event_count "$TG_EVENTS" "$TG_P_VIOLATION" 0 "violations on real TLS"
assert_event_count "$TG_EVENTS" "e.get('type') == 'tls'" 5 "tls events (one per connection)"
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'tls' and get(e, 'tls.hello_truncated')" 5 "the big hello was cut at 2 KiB")
tg_stop_agent
assert_events_valid
