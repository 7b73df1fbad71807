#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A ClientHello written one byte at a time with TCP_NODELAY (hundreds of
# one-byte segments) is still recognised in enforce mode: the handshake
# completes, the request is answered, and the tls event names the SNI.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

tg_start_tls_server tls "$TG_PROT4" 443
tg_write_policy_hs "$TG_TMP/policy.yaml" enforce "    ports: [443]"
tg_start_agent enforce "$TG_TMP/policy.yaml"

cat >"$TG_TMP/split.py" <<'PY'
import socket, ssl, sys
addr = sys.argv[1]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
sock = socket.create_connection((addr, 443), timeout=5)
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(inc, out, server_hostname="storage.test")
first, writes = True, 0
def flush():
    global first, writes
    data = out.read()
    if first and data:
        for b in data:          # the ClientHello, one byte per send()
            sock.send(bytes([b]))
            writes += 1
        first = False
    elif data:
        sock.sendall(data)
while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        flush()
        d = sock.recv(65536)
        if not d:
            sys.exit("server closed during the handshake")
        inc.write(d)
flush()
tls.write(b"GET / HTTP/1.0\r\n\r\n")
flush()
reply = b""
while b"\r\n" not in reply:     # the status line is all we want
    try:
        reply += tls.read(65536)
    except ssl.SSLWantReadError:
        d = sock.recv(65536)
        if not d:
            break
        inc.write(d)
    except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
        break
print("writes", writes, tls.version())
print(reply.split(b"\r\n")[0].decode())
PY
tg_client split timeout 15 python3 "$TG_TMP/split.py" "$TG_PROT4"
assert_rc 0 "TLS handshake with a ClientHello in one-byte writes"
assert_file_contains "$TG_OUT" '^writes [0-9]{3,} TLSv1\.3' "the hello went out in hundreds of writes"
assert_file_contains "$TG_OUT" '^HTTP/1\.0 200' "the server answered"
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'tls'" 5 "tls event")
assert_field "$ev" tls.sni storage.test
assert_field "$ev" tls.version 1.3
assert_field "$ev" workload.comm python3
assert_event_count "$TG_EVENTS" "$TG_P_VIOLATION" 0 "violations"
tg_stop_agent
assert_events_valid
