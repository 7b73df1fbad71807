# SPDX-License-Identifier: MIT
"""Clients that try to talk around the verdict (test_handshake_bypass.sh).

    handshake_client.py CASE ADDR PORT

Prints "sent N" (bytes the client handed to the kernel) and "received N"
(bytes it got back before the peer or the kernel ended it), one per line.
Cases: fake_hello (a zero-length ClientHello, then HTTP), short_hello (a
6-byte hello prefix, then HTTP), hello_then_http (a real ClientHello from
Python's ssl, then HTTP in the next write), hello_http_one (both in one
write), listen (send nothing, read what the server says), hello_read (a
real ClientHello, then read the answer)."""
import socket
import ssl
import sys
import time

HTTP = b"GET /secret HTTP/1.1\r\nHost: storage.test\r\n\r\n"


def real_client_hello(host="storage.test"):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname=host)
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def pq_sized(hello):
    """The hello with a post-quantum-sized key share (X25519MLKEM768, group
    0x11ec, 1216 bytes) put before its own, and the group named first in
    supported_groups: what OpenSSL 3.5 and browsers send, which Debian's
    OpenSSL 3.0 cannot make (it ignores the group it does not know)."""
    body = bytearray(hello[5:])
    p = 4 + 2 + 32
    p += 1 + body[p]                                   # session id
    p += 2 + int.from_bytes(body[p:p + 2], "big")      # cipher suites
    p += 1 + body[p]                                   # compression
    ext_len_at = p
    p += 2
    added = 0
    while p < len(body):
        typ = int.from_bytes(body[p:p + 2], "big")
        ln = int.from_bytes(body[p + 2:p + 4], "big")
        if typ == 0x000a:                              # supported_groups
            entry = (0x11ec).to_bytes(2, "big")
        elif typ == 0x0033:                            # key_share
            entry = (0x11ec).to_bytes(2, "big") + (1216).to_bytes(2, "big") + bytes(range(256)) * 4 + bytes(192)
        else:
            p += 4 + ln
            continue
        inner = int.from_bytes(body[p + 4:p + 6], "big")
        body[p + 4:p + 6] = (inner + len(entry)).to_bytes(2, "big")
        body[p + 2:p + 4] = (ln + len(entry)).to_bytes(2, "big")
        body[p + 6:p + 6] = entry
        added += len(entry)
        p += 4 + ln + len(entry)
    if added != 2 + 1220:
        raise SystemExit("no supported_groups or key_share extension")
    body[ext_len_at:ext_len_at + 2] = (int.from_bytes(body[ext_len_at:ext_len_at + 2], "big") + added).to_bytes(2, "big")
    body[1:4] = (len(body) - 4).to_bytes(3, "big")
    return b"\x16\x03\x01" + len(body).to_bytes(2, "big") + bytes(body)


def main():
    case, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(2)
    try:
        s.connect((addr, port))
    except OSError as e:
        # a server that speaks first is judged at once: in enforce the agent may destroy
        # the socket before connect() has returned to us; nothing was sent or received
        print("connect error", e.errno)
        print("sent", 0)
        print("received", 0)
        return
    writes = []
    if case == "fake_hello":
        writes = [b"\x16\x03\x01\x00\x04\x01\x00\x00\x00", HTTP]
    elif case == "short_hello":
        writes = [b"\x16\x03\x01\x02\x00\x01", HTTP]
    elif case == "hello_then_http":
        writes = [real_client_hello(), HTTP]
    elif case == "hello_http_one":
        writes = [real_client_hello() + HTTP]
    elif case == "hello_read":
        writes = [real_client_hello()]
    elif case == "pq_hello":
        h = pq_sized(real_client_hello())
        s.sendall(h)
        print("hello", len(h))
        first = s.recv(6)
        print("server", "hello" if first[:1] == b"\x16" and first[5:6] == b"\x02" else "other " + first.hex())
        s.sendall(b"\x14\x03\x03\x00\x01\x01")   # the client's next record: its CCS
        time.sleep(0.3)
        return
    sent = 0
    for w in writes:
        try:
            s.sendall(w)
            sent += len(w)
        except OSError as e:
            print("send error", e.errno)
            break
        time.sleep(0.2)
    got = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except OSError:
        pass
    print("sent", sent)
    print("received", len(got))
    if writes:
        print("first_write", len(writes[0]))


main()
