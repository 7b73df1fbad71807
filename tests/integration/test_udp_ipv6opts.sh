#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Real sockets for the UDP and IPv6 parts of issue 16, a UDP sink on the
# protected addresses counting the datagrams and bytes it received:
#  - unconnected UDP: sendto() plaintext is blocked in enforce (the sink gets
#    nothing), flagged in audit; a QUIC-shaped Initial passes, and later
#    datagrams must be QUIC of that connection (plaintext after it: blocked);
#    a second protected destination from the same socket: sendto() EPERM;
#  - UDP-Lite (IPPROTO_UDPLITE), connected: plaintext blocked like UDP;
#  - IPv6 with a destination-options and a hop-by-hop header (setsockopt
#    IPV6_DSTOPTS / IPV6_HOPOPTS, a PadN option): the extension headers are
#    walked and the plain HTTP behind them is judged (blocked, 0 bytes).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

cat >"$TG_TMP/udp.py" <<'PY'
import os, socket, struct, sys, time
case = sys.argv[1]
P4, P6, O4 = "198.51.100.10", "2001:db8::10", "198.51.100.20"
def initial():
    # long header, QUIC v1 Initial, DCID 8 bytes, SCID 0, padded to 1200
    return bytes([0xc3, 0, 0, 0, 1, 8]) + b"\x11" * 8 + b"\x00" + b"\x00" * 1185
def send(s, data, dst):
    try:
        n = s.sendto(data, dst)
        print("sent", n)
    except OSError as e:
        print("refused errno", e.errno)
if case == "plain":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    send(s, b"GET / HTTP/1.1\r\n\r\n", (P4, 4433))
elif case == "quic":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    send(s, initial(), (P4, 4433))
    send(s, bytes([0xc3, 0, 0, 0, 1, 8]) + b"\x11" * 8 + b"\x00" * 1186, (P4, 4433))  # a retransmission
    time.sleep(0.1)
    send(s, b"plaintext after the Initial", (P4, 4433))
elif case == "second":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    send(s, initial(), (P4, 4433))
    send(s, initial(), (P4, 4434))
    send(s, b"to an unprotected address", (O4, 4433))
elif case == "udplite":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, 136)
    s.connect((P4, 4433))
    try:
        print("sent", s.send(b"plaintext over UDP-Lite"))
    except OSError as e:
        print("refused errno", e.errno)
elif case in ("dstopts", "hopopts"):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    opt = socket.IPV6_DSTOPTS if case == "dstopts" else socket.IPV6_HOPOPTS
    # next header (filled by the kernel), length 0 (8 bytes), PadN of 4
    s.setsockopt(socket.IPPROTO_IPV6, opt, bytes([0, 0, 1, 4, 0, 0, 0, 0]))
    s.settimeout(3)
    s.connect((P6, 80))
    try:
        s.sendall(b"GET /behind-options HTTP/1.1\r\nHost: storage.test\r\n\r\n")
        print("reply", len(s.recv(4096)))
    except OSError as e:
        print("error", e.errno)
PY
cat >"$TG_TMP/sink.py" <<'PY'
import socket, sys, select
socks = []
for fam, addr, port, proto in ((socket.AF_INET, "198.51.100.10", 4433, 0), (socket.AF_INET, "198.51.100.10", 4434, 0),
                               (socket.AF_INET, "198.51.100.20", 4433, 0)):
    s = socket.socket(fam, socket.SOCK_DGRAM, proto)
    s.bind((addr, port))
    socks.append(s)
lite = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, 136)
lite.bind(("198.51.100.10", 4433))
socks.append(lite)
print("listening", flush=True)
log = open(sys.argv[1], "a", buffering=1)
while True:
    r, _, _ = select.select(socks, [], [])
    for s in r:
        d, a = s.recvfrom(65536)
        log.write("dgram port=%d proto=%s bytes=%d\n" % (s.getsockname()[1], "lite" if s is lite else "udp", len(d)))
PY
ip netns exec "$TG_NS" python3 "$TG_TMP/sink.py" "$TG_TMP/sink.log" >"$TG_TMP/sink.out" 2>&1 &
TG_PIDS+=("$!")
for _ in $(seq 50); do grep -q listening "$TG_TMP/sink.out" 2>/dev/null && break; sleep 0.1; done
counter() { "$TLSGUARD" status --socket "$TG_SOCK" -o json | python3 -c "import json,sys; print(json.load(sys.stdin)['kernel_counters']['$1'])"; }
sink_bytes() { awk -F'bytes=' -v m="$1" '$0 ~ m { s += $2 } END { print s + 0 }' "$TG_TMP/sink.log" 2>/dev/null || echo 0; }

P_PLAIN="e.get('type') == 'plaintext'"
for mode in audit enforce; do
	tg_log "---- $mode mode"
	: >"$TG_EVENTS"
	: >"$TG_TMP/sink.log"
	tg_write_policy "$TG_TMP/policy-$mode.yaml" "$mode" "[80, 4433, 4434]"
	tg_start_agent "$mode" "$TG_TMP/policy-$mode.yaml"
	act=$([[ $mode == audit ]] && echo flagged || echo blocked)

	tg_client "plain-$mode" python3 "$TG_TMP/udp.py" plain
	ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and get(e, 'destination.port') == 4433" 5 "unconnected UDP plaintext")
	assert_field "$ev" action "$act"
	assert_field "$ev" reason first_bytes
	sleep 0.3
	if [[ $mode == enforce ]]; then
		assert_file_contains "$TG_OUT" '^refused errno 1$' "sendto() of plaintext failed (EPERM)"
		assert_eq 0 "$(sink_bytes 'port=4433 proto=udp')" "bytes the sink got"
	else
		assert_eq 18 "$(sink_bytes 'port=4433 proto=udp')" "bytes the sink got (audit)"
	fi

	: >"$TG_TMP/sink.log"
	tg_client "quic-$mode" python3 "$TG_TMP/udp.py" quic
	ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and e.get('reason') == 'not_quic'" 5 "plaintext after a QUIC Initial")
	assert_field "$ev" action "$act"
	sleep 0.3
	if [[ $mode == enforce ]]; then
		assert_eq $((1200 + 1200)) "$(sink_bytes 'port=4433 proto=udp')" "the sink got the two Initials and nothing else"
	fi

	tg_client "second-$mode" python3 "$TG_TMP/udp.py" second
	ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'blocked_connect' and e.get('reason') == 'udp_second_destination'" 5 "second destination")
	assert_field "$ev" action "$act"
	assert_field "$ev" destination.port 4434
	[[ $mode == enforce ]] && assert_file_contains "$TG_OUT" '^refused errno 1$' "sendto() to a second protected destination: EPERM"
	assert_file_contains "$TG_OUT" '^sent 25$' "a datagram to an unprotected address went out"

	: >"$TG_TMP/sink.log"
	: >"$TG_EVENTS"
	tg_client "udplite-$mode" python3 "$TG_TMP/udp.py" udplite
	# (no pid: UDP-Lite flows start on egress, where the kernel does not say which task)
	ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and e.get('reason') == 'first_bytes' and get(e, 'destination.port') == 4433" 5 "UDP-Lite plaintext")
	assert_field "$ev" action "$act"
	sleep 0.3
	[[ $mode == enforce ]] && assert_eq 0 "$(sink_bytes 'proto=lite')" "bytes the UDP-Lite sink got"

	for o in dstopts hopopts; do
		: >"$TG_EVENTS"
		ext0=$(counter ipv6_exthdr)
		tg_start_plain_server "web-$o" "$TG_PROT6" 80
		tg_client "$o-$mode" timeout 10 python3 "$TG_TMP/udp.py" "$o"
		ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and get(e, 'destination.port') == 80" 5 "plaintext behind $o")
		assert_cmp "$(counter ipv6_exthdr)" -gt "$ext0" "IPv6 extension headers walked ($o)"
		assert_field "$ev" destination.ip "$TG_PROT6"
		assert_field "$ev" protocol.detected http
		if [[ $mode == enforce ]]; then
			assert_server "web-$o" 1 -eq 0
		else
			assert_server "web-$o" 1 -gt 0
		fi
	done
	tg_stop_agent
	assert_events_valid
done
