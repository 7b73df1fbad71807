# SPDX-License-Identifier: MIT
"""Resolve and connect at once, as every HTTP client does (getaddrinfo, connect, send).

    dns_race_client.py OUT [--port PORT] NAME...

For each NAME, in order: getaddrinfo (glibc: resolv.conf decides UDP or TCP),
connect to the first IPv4 address on PORT (default 80), send a plaintext HTTP request,
wait up to 5 s for an answer. One JSON line per name in OUT:
{"name", "ip", "result", "ms"}, result one of "answered" (the server's bytes
came back), "closed", "reset", "refused", "timeout", "resolve_failed".
"""
import json
import socket
import sys
import time


def one(name, port):
    t0 = time.monotonic()
    rec = {"name": name, "ip": None}
    try:
        ai = socket.getaddrinfo(name, port, socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror:
        rec["result"] = "resolve_failed"
        return rec
    rec["ip"] = ai[0][4][0]
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((rec["ip"], port))
        s.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % name.encode())
        rec["result"] = "answered" if s.recv(100) else "closed"
    except ConnectionRefusedError:
        rec["result"] = "refused"
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        rec["result"] = "reset"
    except (socket.timeout, TimeoutError):
        rec["result"] = "timeout"
    except OSError as e:
        rec["result"] = "error %d" % e.errno
    finally:
        s.close()
    rec["ms"] = round((time.monotonic() - t0) * 1000, 1)
    return rec


def main():
    args, port = sys.argv[2:], 80
    if args[:1] == ["--port"]:
        port, args = int(args[1]), args[2:]
    with open(sys.argv[1], "w") as out:
        for name in args:
            out.write(json.dumps(one(name, port)) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
