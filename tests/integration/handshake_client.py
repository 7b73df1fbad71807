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


def main():
    case, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.settimeout(2)
    s.connect((addr, port))
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
