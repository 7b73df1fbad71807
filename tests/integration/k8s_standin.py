#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A local stand-in for the Kubernetes API: the pods part the agent uses.

Follows the real contract for what tlsguard calls:

  GET /api/v1/pods?fieldSelector=spec.nodeName=NODE[&limit=N&continue=TOKEN]
      -> PodList {"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":...,
                  "continue":...},"items":[Pod...]}, paginated with limit/continue
  GET /api/v1/pods?fieldSelector=...&watch=1&resourceVersion=RV[&allowWatchBookmarks=true]
      [&timeoutSeconds=S]
      -> 200, Transfer-Encoding: chunked, one {"type":"ADDED|MODIFIED|DELETED|BOOKMARK|ERROR",
         "object":{...}} per line; events after RV first, then live ones; an RV older
         than the retained history gets an ERROR event with a 410 Status ("Expired")
  Authorization: Bearer TOKEN, else 401 with a Status object.

Test controls (no token; loopback only):
  POST /_test/event   {"type": "ADDED|MODIFIED|DELETED", "object": Pod}: applied with the
                      next resourceVersion and sent to every open watch
  POST /_test/expire  a change, then forget the history (as etcd compaction does) and
                      end every open watch: a client resuming from its last
                      resourceVersion gets 410 and has to list again

Every request is appended to STATE_DIR/requests.jsonl; the port goes to STATE_DIR/port.

  k8s_standin.py --cert C --key K --token-file T --pods PODS.json --state-dir DIR
"""
import argparse
import json
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Store:
    def __init__(self, pods):
        self.cond = threading.Condition()
        self.rv = 1000
        self.pods = {}          # uid -> pod
        self.history = []       # (rv, type, pod)
        self.oldest = self.rv   # watches from before this get 410
        self.epoch = 0          # bumped by expire: open watches end
        for p in pods:
            self.rv += 1
            p.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
            self.pods[p["metadata"]["uid"]] = p

    def apply(self, etype, pod):
        with self.cond:
            self.rv += 1
            pod.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
            uid = pod["metadata"]["uid"]
            if etype == "DELETED":
                self.pods.pop(uid, None)
            else:
                self.pods[uid] = pod
            self.history.append((self.rv, etype, pod))
            self.cond.notify_all()
            return self.rv

    def expire(self):
        with self.cond:
            self.rv += 1        # something changed while the history went away
            self.history = []
            self.oldest = self.rv
            self.epoch += 1
            self.cond.notify_all()


def node_of(pod):
    return pod.get("spec", {}).get("nodeName", "")


def status(code, reason, message):
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "k8s-standin/1"

    def log_message(self, fmt, *args):
        pass

    def record(self, **kw):
        entry = {"method": self.command, "path": urlsplit(self.path).path,
                 "query": parse_qs(urlsplit(self.path).query)}
        entry.update(kw)
        with self.server.log_lock, open(self.server.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def send_json(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def authorized(self):
        return self.headers.get("Authorization", "") == "Bearer " + self.server.token

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(n) if n else b""
        url = urlsplit(self.path)
        self.record()
        store = self.server.store
        if url.path == "/_test/event":
            ev = json.loads(body)
            rv = store.apply(ev["type"], ev["object"])
            self.send_json(200, {"resourceVersion": str(rv)})
        elif url.path == "/_test/expire":
            store.expire()
            self.send_json(200, {})
        else:
            self.send_json(404, status(404, "NotFound", "no such test control"))

    def do_GET(self):
        url = urlsplit(self.path)
        q = parse_qs(url.query)
        ok = self.authorized()
        self.record(auth_ok=ok)
        if not ok:
            self.send_json(401, status(401, "Unauthorized", "Unauthorized"))
            return
        if url.path != "/api/v1/pods":
            self.send_json(404, status(404, "NotFound", "the server could not find the requested resource"))
            return
        sel = q.get("fieldSelector", [""])[0]
        node = sel[len("spec.nodeName="):] if sel.startswith("spec.nodeName=") else None
        if sel and node is None:
            self.send_json(400, status(400, "BadRequest", "unsupported field selector " + sel))
            return
        if q.get("watch", [""])[0] in ("1", "true"):
            self.watch(q, node)
        else:
            self.list(q, node)

    def list(self, q, node):
        store = self.server.store
        limit = int(q.get("limit", ["0"])[0] or 0)
        start = int(q.get("continue", ["0"])[0] or 0)
        with store.cond:
            pods = [p for p in store.pods.values() if node is None or node_of(p) == node]
            rv = store.rv
        pods.sort(key=lambda p: (p["metadata"]["namespace"], p["metadata"]["name"]))
        meta = {"resourceVersion": str(rv)}
        if limit and start + limit < len(pods):
            meta["continue"] = str(start + limit)
            meta["remainingItemCount"] = len(pods) - start - limit
            items = pods[start:start + limit]
        else:
            items = pods[start:]
        self.send_json(200, {"kind": "PodList", "apiVersion": "v1", "metadata": meta, "items": items})

    def chunk(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def watch(self, q, node):
        store = self.server.store
        since = int(q.get("resourceVersion", ["0"])[0] or 0)
        timeout = int(q.get("timeoutSeconds", ["1800"])[0] or 1800)
        bookmarks = q.get("allowWatchBookmarks", [""])[0] == "true"
        deadline = time.monotonic() + timeout
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            with store.cond:
                epoch = store.epoch
                too_old = since < store.oldest
            if too_old:
                self.chunk({"type": "ERROR", "object": status(
                    410, "Expired", "too old resource version: %d (%d)" % (since, store.oldest))})
                return
            sent = since
            last_bookmark = time.monotonic()
            while time.monotonic() < deadline and not self.server.stopping:
                with store.cond:
                    pending = [h for h in store.history if h[0] > sent]
                    if not pending and store.epoch == epoch:
                        store.cond.wait(0.5)
                        pending = [h for h in store.history if h[0] > sent]
                    if store.epoch != epoch:
                        return  # history compacted: end the stream
                    rv = store.rv
                for hrv, etype, pod in pending:
                    sent = hrv
                    if node is None or node_of(pod) == node:
                        self.chunk({"type": etype, "object": pod})
                if bookmarks and time.monotonic() - last_bookmark > 2:
                    last_bookmark = time.monotonic()
                    sent = max(sent, rv)
                    self.chunk({"type": "BOOKMARK", "object": {
                        "kind": "Pod", "apiVersion": "v1",
                        "metadata": {"resourceVersion": str(sent)},
                        "spec": {"containers": None}, "status": {}}})
        except (BrokenPipeError, ConnectionResetError):
            return
        finally:
            try:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                pass
            self.close_connection = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--pods", required=True, help="JSON list of Pod objects")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()

    with open(args.pods) as f:
        pods = json.load(f)
    with open(args.token_file) as f:
        token = f.read().strip()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.store = Store(pods)
    srv.token = token
    srv.stopping = False
    srv.log_lock = threading.Lock()
    srv.log_path = os.path.join(args.state_dir, "requests.jsonl")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    port_file = os.path.join(args.state_dir, "port")
    with open(port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.stopping = True
    return 0


if __name__ == "__main__":
    sys.exit(main())
