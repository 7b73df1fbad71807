# SPDX-License-Identifier: MIT
"""Clients through a forward proxy for test_proxy_forms.sh.

    proxy_clients.py CASE PROXY_HOST PROXY_PORT [ARG]

connect FORM     raw CONNECT FORM:80, then plain HTTP inside the tunnel
keepalive        http.client: one proxy connection, GET to an unlisted
                 host, then GET to a protected one
urllib           urllib.request through the proxy to the protected host
requests         requests.Session (urllib3 ProxyManager): unlisted, then protected
Prints "step NAME ok STATUS" or "step NAME failed ERROR" per request."""
import socket
import sys

case, phost, pport = sys.argv[1], sys.argv[2], int(sys.argv[3])
PLAIN = "plain.other.test"
PROT = "acct.storage.test"


def step(name, fn):
    try:
        print("step", name, "ok", fn(), flush=True)
    except Exception as e:  # the kernel dropping and the agent destroying show up here
        print("step", name, "failed", type(e).__name__, flush=True)


def connect_form(form):
    s = socket.create_connection((phost, pport), timeout=3)
    s.sendall(("CONNECT %s:80 HTTP/1.1\r\nHost: %s:80\r\n\r\n" % (form, form)).encode())
    reply = s.recv(4096).split(b"\r\n")[0].decode()
    print("proxy said", reply, flush=True)
    s.sendall(b"GET /through-the-tunnel HTTP/1.1\r\nHost: storage.test\r\n\r\n")
    return len(s.recv(4096))


if case == "connect":
    step("tunnel", lambda: connect_form(sys.argv[4]))
elif case == "keepalive":
    import http.client
    c = http.client.HTTPConnection(phost, pport, timeout=3)

    def get(host):
        c.request("GET", "http://%s/" % host, headers={"Host": host})
        r = c.getresponse()
        r.read()
        return r.status
    step("unlisted", lambda: get(PLAIN))
    print("port", c.sock.getsockname()[1], flush=True)   # the connection kept for the next request
    step("protected", lambda: get(PROT))
elif case == "urllib":
    import urllib.request
    op = urllib.request.build_opener(urllib.request.ProxyHandler({"http": "http://%s:%d" % (phost, pport)}))
    step("protected", lambda: op.open("http://%s/" % PROT, timeout=3).status)
elif case == "requests":
    import requests
    s = requests.Session()
    px = {"http": "http://%s:%d" % (phost, pport)}
    step("unlisted", lambda: s.get("http://%s/" % PLAIN, proxies=px, timeout=3).status_code)
    step("protected", lambda: s.get("http://%s/" % PROT, proxies=px, timeout=3).status_code)
