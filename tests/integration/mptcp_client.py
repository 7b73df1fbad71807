# SPDX-License-Identifier: MIT
"""One request over a Multipath TCP socket (IPPROTO_MPTCP), plaintext or TLS.

    mptcp_client.py plain|tls HOST PORT

The server need not speak MPTCP (the connection falls back to TCP on the first
subflow), so any server works. Prints one line: "answered N" (N bytes came
back), "closed", "reset", "timeout", or "error ERRNO"; "unsupported" and exit
status 2 when the kernel has no MPTCP (EPROTONOSUPPORT, net.mptcp.enabled=0).
"""
import errno
import socket
import ssl
import sys

IPPROTO_MPTCP = 262
REQUEST = b"GET /secret HTTP/1.0\r\nHost: storage\r\n\r\n"


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM, IPPROTO_MPTCP)
    except OSError as e:
        if e.errno in (errno.EPROTONOSUPPORT, errno.ENOPROTOOPT, errno.EINVAL):
            print("unsupported")
            return 2
        raise
    s.settimeout(5)
    try:
        s.connect((host, port))
        if mode == "tls":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            s = ctx.wrap_socket(s)
        s.sendall(REQUEST)
        data = s.recv(4096)
        print("answered %d" % len(data) if data else "closed")
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, ssl.SSLError):
        print("reset")
    except (socket.timeout, TimeoutError):
        print("timeout")
    except OSError as e:
        print("error %d" % e.errno)
    finally:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
