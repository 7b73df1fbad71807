#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Raw and packet sockets in a watched cgroup, on the running kernel (root has
# CAP_NET_RAW, as a container does by default):
#  - a SOCK_RAW socket is marked at socket() (kernel counter raw_sockets) and
#    a TCP segment with payload it writes to the protected address - into
#    the 5-tuple of an open, tracked connection - is plaintext (reason
#    raw_socket): sendto() fails and the server's TCP stack gets nothing in
#    enforce; flagged in audit. ICMP to the same address passes.
#  - an AF_PACKET socket moves no tlsguard counter: cgroup/sock_create does
#    not run for it (docs/threat-model.md says what follows).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

cat >"$TG_TMP/raw.py" <<'PY'
import socket, struct, sys, time
addr, port, case = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if case == "packet":
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    print("packet socket", s.fileno())
    sys.exit(0)
if case == "icmp":
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    s.sendto(b"\x08\x00\xf7\xff\x00\x00\x00\x00", (addr, 0))
    print("icmp sent")
    sys.exit(0)
# a tracked connection, then a segment in its 5-tuple written by hand
c = socket.create_connection((addr, port), timeout=3)
sport = c.getsockname()[1]
payload = b"GET /injected HTTP/1.1\r\nHost: storage.test\r\n\r\n"
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
tcp = struct.pack("!HHIIBBHHH", sport, port, 1, 1, 5 << 4, 0x18, 65535, 0, 0) + payload
src = socket.inet_aton(c.getsockname()[0]); dst = socket.inet_aton(addr)
ph = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
tcp = tcp[:16] + struct.pack("!H", csum(ph + tcp)) + tcp[18:]
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
try:
    r.sendto(tcp, (addr, 0))
    print("raw sent", len(payload))
except OSError as e:
    print("raw refused errno", e.errno)
time.sleep(0.3)
PY

counter() { "$TLSGUARD" status --socket "$TG_SOCK" -o json | python3 -c "import json,sys; print(json.load(sys.stdin)['kernel_counters']['$1'])"; }
P_RAW="e.get('type') == 'plaintext' and e.get('reason') == 'raw_socket'"
tg_start_plain_server web "$TG_PROT4" 80
for mode in audit enforce; do
	tg_log "---- $mode mode"
	: >"$TG_EVENTS"
	tg_write_policy "$TG_TMP/policy-$mode.yaml" "$mode" "[80, 443]"
	tg_start_agent "$mode" "$TG_TMP/policy-$mode.yaml"
	before=$(counter raw_sockets)
	checked=$(counter raw_checked)
	tg_client "packet-$mode" python3 "$TG_TMP/raw.py" "$TG_PROT4" 80 packet
	assert_rc 0 "an AF_PACKET socket in the watched cgroup"
	assert_eq "$before" "$(counter raw_sockets)" "raw_sockets after socket(AF_PACKET): cgroup/sock_create did not run for it"
	tg_client "icmp-$mode" python3 "$TG_TMP/raw.py" "$TG_PROT4" 0 icmp
	assert_rc 0 "ICMP from a raw socket to the protected address"
	assert_eq $((before + 1)) "$(counter raw_sockets)" "raw_sockets after socket(SOCK_RAW)"
	tg_client "inject-$mode" timeout 10 python3 "$TG_TMP/raw.py" "$TG_PROT4" 80 inject
	assert_rc 0 "the injector ran"
	ev=$(expect_event "$TG_EVENTS" "$P_RAW" 5 "raw_socket event")
	assert_field "$ev" destination.ip "$TG_PROT4"
	assert_field "$ev" destination.port 80
	assert_field "$ev" side client
	assert_field "$ev" protocol.detected http
	if [[ $mode == enforce ]]; then
		assert_field "$ev" action blocked
		assert_file_contains "$TG_OUT" '^raw refused errno 1$' "sendto() on the raw socket failed with EPERM"
	else
		assert_field "$ev" action flagged
		assert_file_contains "$TG_OUT" '^raw sent ' "the raw segment went out (audit)"
	fi
	assert_cmp "$(counter raw_checked)" -eq $((checked + 1)) "raw_checked (one segment judged)"
	tg_stop_agent
	assert_events_valid
done
