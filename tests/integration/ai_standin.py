#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A local Application Insights ingestion endpoint for tests.

Follows reference/application-insights.md ("Test stand-in behaviour"):
POST /v2/track and /v2.1/track only (404 elsewhere, 405 for other methods),
gzip or plain bodies, newline-delimited JSON or a JSON array, every item
validated (iKey, name, time within 48 h, data.baseType, baseData.ver and the
field limits), answers 200 / 206 with per-index errors / 400 like the service,
and scriptable answers for the next requests.

Listeners (ports chosen by the kernel, written to --port-file as JSON):
  https    the ingestion endpoint (and the Entra ID v2.0 token endpoint
           POST /{tenant}/oauth2/v2.0/token for workload identity)
  other    --other-listen: a second HTTPS endpoint on another address; any
           request reaching it is recorded (a redirect that was followed)
  regional --regional-listen: a full ingestion endpoint on another address,
           what a redirect to <region>-N.in.applicationinsights.azure.com
           reaches (the agent's test_resolve maps --regional-name to it);
           its answers: POST /regional on the control port (one action,
           for every request, like /default); records carry "host": "regional"
  imds     plain HTTP: GET /metadata/identity/oauth2/token (managed identity)
  control  plain HTTP on 127.0.0.1 for the test:
             POST /script   JSON list of actions, used by the next requests
             POST /default  JSON action for requests without a script entry
             POST /release  let every held request (and later ones) go on
             GET  /stats    counters (JSON; "held": requests waiting now)

Actions (JSON objects; every key optional):
  {"status": 200}                              (the default)
  {"status": 206, "codes": {"0": 500, "3": 400}}  per-index item errors
  {"status": 429, "retry_after": "2"}          Retry-After as given
  {"status": 429, "retry_after_in": 2}         Retry-After as an HTTP-date, now + 2 s
  {"status": 503, "for_s": 8}                  answer 503 to everything for 8 s (then 200)
  {"status": 307, "location": "same"|"other"|"regional"|"evil"|URL}
                                               regional: https://--regional-name:port
                                               evil: https://--evil-name:<other port>
  {"status": 206, "codes": {"0": 308}, "location": "regional"}
                                               per-item redirect: Location on the 206
  {"status": 401}                              (any status: answered with an empty error body)
  {"delay_s": 3}                               answer late (with any of the above)
  {"hold": true}                               stall until POST /release (at most 60 s),
                                               then answer (with any of the above)
  {"drop": true}                               read the request, then reset the connection

Every accepted item is appended to --records (JSONL: request, index, ikey,
token, item); every request to --requests (JSONL: n, time, status, ids).
Only answered, accepted items are recorded: a dropped request records none.
"""

import argparse
import email.utils
import gzip
import http.server
import json
import math
import os
import re
import secrets
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timezone

TRACK_PATHS = ("/v2/track", "/v2.1/track")
LIMITS = {
    "name": 512, "prop_key": 150, "prop_value": 8192, "item": 64 * 1024,
    "items": 64000, "message": 32768,
    "tags": {"ai.cloud.role": 256, "ai.cloud.roleInstance": 256,
             "ai.operation.id": 128, "ai.internal.sdkVersion": 64},
}
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,7})?Z$")


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.script = []
        self.default = {"status": 200}
        self.storm = None            # (status, until)
        self.nreq = 0
        self.released = threading.Event()
        self.stats = {
            "requests": 0, "accepted": 0, "invalid": 0, "answers": {}, "dropped": 0, "held": 0,
            "other_host_requests": 0, "other_host_auth": 0, "imds_requests": 0,
            "wi_requests": 0, "tokens_issued": 0, "auth_refused": 0, "bad_requests": 0,
            "invalid_reasons": [], "regional_requests": 0, "regional_accepted": 0,
        }
        self.regional = {"status": 200}
        self.tokens = {}             # token -> expiry (unix time)
        self.records = open(args.records, "a", buffering=1)
        self.requests = open(args.requests, "a", buffering=1) if args.requests else None
        self.ikeys = set(k.lower() for k in args.ikey.split(","))

    def next_action(self):
        with self.lock:
            now = time.time()
            if self.storm and now < self.storm[1]:
                return {"status": self.storm[0]}
            self.storm = None
            if self.script:
                act = self.script.pop(0)
            else:
                act = dict(self.default)
                if "for_s" in act:
                    self.default = {"status": 200}   # one storm, then recovery
            if "for_s" in act:
                self.storm = (act.get("status", 503), now + float(act["for_s"]))
            return act

    def count(self, key, n=1):
        with self.lock:
            self.stats[key] = self.stats.get(key, 0) + n

    def answer(self, status):
        with self.lock:
            k = str(status)
            self.stats["answers"][k] = self.stats["answers"].get(k, 0) + 1

    def issue_token(self, prefix):
        tok = prefix + "-" + secrets.token_hex(16)
        life = self.args.token_lifetime
        with self.lock:
            self.tokens[tok] = time.time() + life
            self.stats["tokens_issued"] += 1
        return tok, life

    def token_ok(self, tok):
        with self.lock:
            exp = self.tokens.get(tok)
        return exp is not None and time.time() < exp


def parse_time(s):
    if not isinstance(s, str) or not TIME_RE.match(s):
        return None
    base, _, frac = s[:-1].partition(".")
    try:
        t = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return t.timestamp() + (float("0." + frac) if frac else 0.0)


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validate(item, raw_len, ikeys):
    """The reason an item is invalid, or None."""
    if not isinstance(item, dict):
        return "item is not an object"
    if raw_len > LIMITS["item"]:
        return "item larger than 64 KB (%d bytes)" % raw_len
    ikey = item.get("iKey")
    if not isinstance(ikey, str) or not UUID_RE.match(ikey):
        return "iKey missing or not a UUID"
    if ikey.lower() not in ikeys:
        return "Invalid instrumentation key"
    name = item.get("name")
    if not isinstance(name, str) or not name or len(name) > 1024:
        return "name missing"
    compact = ikey.replace("-", "").lower()
    t = parse_time(item.get("time"))
    if t is None:
        return "time missing or not ISO 8601 UTC"
    now = time.time()
    if t < now - 48 * 3600:
        return "time older than 48 hours"
    if t > now + 24 * 3600:
        return "time in the future"
    if "ver" in item and item["ver"] != 1:
        return "ver is not 1"
    sr = item.get("sampleRate", 100.0)
    if not is_num(sr) or not 0 < sr <= 100:
        return "sampleRate out of range"
    tags = item.get("tags", {})
    if not isinstance(tags, dict):
        return "tags is not an object"
    for k, v in tags.items():
        if not isinstance(v, str):
            return "tag %s is not a string" % k
        lim = LIMITS["tags"].get(k)
        if lim and len(v) > lim:
            return "tag %s longer than %d" % (k, lim)
    data = item.get("data")
    if not isinstance(data, dict):
        return "data missing"
    bt = data.get("baseType")
    bd = data.get("baseData")
    if bt not in ("EventData", "MetricData", "MessageData") or not isinstance(bd, dict):
        return "data.baseType/baseData missing or unknown"
    expect = {"EventData": "Event", "MetricData": "Metric", "MessageData": "Message"}[bt]
    if name.lower() != ("microsoft.applicationinsights.%s.%s" % (compact, expect)).lower():
        return "name %r does not match the iKey and baseType" % name
    if bd.get("ver") != 2:
        return "baseData.ver is not 2"
    props = bd.get("properties", {})
    if not isinstance(props, dict):
        return "properties is not an object"
    for k, v in props.items():
        if not k or len(k) > LIMITS["prop_key"]:
            return "property key length %d" % len(k)
        if not isinstance(v, str):
            return "property %s is not a string" % k
        if len(v) > LIMITS["prop_value"]:
            return "property %s longer than %d" % (k, LIMITS["prop_value"])
    if bt == "EventData":
        n = bd.get("name")
        if not isinstance(n, str) or not n or len(n) > LIMITS["name"]:
            return "event name missing or longer than %d" % LIMITS["name"]
        meas = bd.get("measurements", {})
        if not isinstance(meas, dict) or not all(is_num(v) for v in meas.values()):
            return "measurements must be numbers"
    elif bt == "MetricData":
        ms = bd.get("metrics")
        if not isinstance(ms, list) or not ms:
            return "metrics missing"
        m = ms[0]
        if not isinstance(m, dict) or not isinstance(m.get("name"), str) or not m["name"] \
                or not is_num(m.get("value")):
            return "metric name/value missing"
    else:
        msg = bd.get("message")
        if not isinstance(msg, str) or len(msg) > LIMITS["message"]:
            return "message missing or too long"
    return None


def item_id(item):
    """What tests match on: type|time|flow.cookie|action (events), metric|name|time."""
    try:
        bd = item["data"]["baseData"]
        if item["data"]["baseType"] == "MetricData":
            return "metric|%s|%s" % (bd["metrics"][0]["name"], item["time"])
        p = bd.get("properties", {})
        return "%s|%s|%s|%s" % (bd.get("name"), p.get("time", ""), p.get("flow.cookie", ""),
                                p.get("action", ""))
    except (KeyError, TypeError, IndexError):
        return "?"


def event_id(item):
    try:
        return item["data"]["baseData"].get("properties", {}).get("event_id")
    except (KeyError, TypeError, AttributeError):
        return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ai-standin/1"
    role = "https"            # set per server
    st = None                 # State

    def log_message(self, fmt, *args):
        if self.st.args.log:
            with open(self.st.args.log, "a") as f:
                f.write("%s %s %s\n" % (time.strftime("%H:%M:%S"), self.role, fmt % args))

    def reply(self, status, body=b"", ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reset_connection(self):
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    # ---- control -----------------------------------------------------------
    def control(self):
        path = self.path.split("?")[0]
        if self.command == "GET" and path == "/stats":
            with self.st.lock:
                s = json.loads(json.dumps(self.st.stats))
                s["script_left"] = len(self.st.script)
            return self.reply(200, s)
        if self.command == "POST" and path == "/release":
            self.st.released.set()
            return self.reply(200, {"ok": True})
        if self.command == "POST" and path == "/regional":
            try:
                v = json.loads(self.read_body() or b"null")
            except ValueError:
                return self.reply(400, {"error": "not JSON"})
            with self.st.lock:
                self.st.regional = v
            return self.reply(200, {"ok": True})
        if self.command == "POST" and path in ("/script", "/default"):
            try:
                v = json.loads(self.read_body() or b"null")
            except ValueError:
                return self.reply(400, {"error": "not JSON"})
            with self.st.lock:
                if path == "/script":
                    self.st.script.extend(v if isinstance(v, list) else [v])
                else:
                    self.st.default = v
                    self.st.storm = None
            return self.reply(200, {"ok": True})
        return self.reply(404, {"error": "unknown control path"})

    # ---- managed identity (IMDS) ------------------------------------------------
    def imds(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        self.st.count("imds_requests")
        if u.path != "/metadata/identity/oauth2/token" or self.command != "GET":
            return self.reply(404, {"error": "not found"})
        if self.headers.get("Metadata") != "true":
            return self.reply(400, {"error": "invalid_request", "error_description": "Metadata header"})
        if q.get("api-version") != ["2018-02-01"] or q.get("resource") != ["https://monitor.azure.com/"]:
            return self.reply(400, {"error": "invalid_request", "error_description": "api-version/resource"})
        if self.st.args.client_id and q.get("client_id") != [self.st.args.client_id]:
            return self.reply(400, {"error": "invalid_request", "error_description": "client_id"})
        tok, life = self.st.issue_token("mi")
        now = int(time.time())
        return self.reply(200, {"access_token": tok, "expires_in": str(life),
                                "expires_on": str(now + life), "resource": "https://monitor.azure.com/",
                                "token_type": "Bearer"})

    # ---- workload identity token endpoint ----------------------------------------
    def wi_token(self, body):
        self.st.count("wi_requests")
        a = self.st.args
        f = urllib.parse.parse_qs(body.decode(errors="replace"))
        want_assertion = open(a.federated_token_file).read().strip() if a.federated_token_file else None
        ok = (f.get("grant_type") == ["client_credentials"]
              and f.get("client_assertion_type") == ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
              and f.get("scope") == ["https://monitor.azure.com//.default"]
              and (not a.client_id or f.get("client_id") == [a.client_id])
              and want_assertion is not None and f.get("client_assertion") == [want_assertion])
        if not ok:
            return self.reply(401, {"error": "invalid_client"})
        tok, life = self.st.issue_token("wi")
        return self.reply(200, {"token_type": "Bearer", "expires_in": life, "ext_expires_in": life,
                                "access_token": tok})

    # ---- ingestion ------------------------------------------------------------------
    def ingest(self):
        body = self.read_body()
        st = self.st
        if self.role == "other":
            st.count("other_host_requests")
            if self.headers.get("Authorization"):
                st.count("other_host_auth")
            return self.reply(500, {"error": "the other host must never be reached"})
        path = self.path.split("?")[0]
        if path.endswith("/oauth2/v2.0/token") and self.command == "POST":
            return self.wi_token(body)
        if path not in TRACK_PATHS:
            return self.reply(404, {"error": "not found"})
        if self.command != "POST":
            return self.reply(405, {"error": "POST only"}, headers={"Allow": "POST"})
        with st.lock:
            st.nreq += 1
            n = st.nreq
            st.stats["requests" if self.role == "https" else "regional_requests"] += 1
            act = dict(st.regional) if self.role == "regional" else None
        if act is None:
            act = st.next_action()
        if act.get("hold"):
            st.count("held", 1)
            st.released.wait(60)
            st.count("held", -1)
        if act.get("delay_s"):
            time.sleep(float(act["delay_s"]))
        if act.get("drop"):
            st.count("dropped")
            self.log_req(n, 0, [], act)
            return self.reset_connection()
        token = None
        authz = self.headers.get("Authorization", "")
        if authz.startswith("Bearer "):
            token = authz[7:]
        if st.args.require_token and not st.token_ok(token or ""):
            st.count("auth_refused")
            st.answer(401)
            self.log_req(n, 401, [], act)
            return self.reply(401, {"itemsReceived": 0, "itemsAccepted": 0,
                                    "errors": [{"index": 0, "statusCode": 401,
                                                "message": "Authorization token invalid"}]})
        status = int(act.get("status", 200))
        loc = self.location(act.get("location", "same"))
        if status in (307, 308):
            st.answer(status)
            self.log_req(n, status, [], act)
            return self.reply(status, b"", headers={"Location": loc})
        if status not in (200, 206):
            st.answer(status)
            self.log_req(n, status, [], act)
            headers = {}
            if "retry_after" in act:
                headers["Retry-After"] = str(act["retry_after"])
            if "retry_after_in" in act:
                headers["Retry-After"] = email.utils.formatdate(time.time() + float(act["retry_after_in"]),
                                                                usegmt=True)
            return self.reply(status, {"itemsReceived": 0, "itemsAccepted": 0, "errors": []},
                              headers=headers)
        # parse the items
        ctype = self.headers.get("Content-Type", "")
        if not (ctype.startswith("application/x-json-stream") or ctype.startswith("application/json")):
            st.count("bad_requests")
            return self.reply(400, {"error": "Content-Type %r" % ctype})
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError):
                st.count("bad_requests")
                return self.reply(400, {"error": "bad gzip"})
        text = body.decode("utf-8", errors="strict") if body else ""
        raws = []
        if text.lstrip().startswith("["):
            try:
                raws = [(json.dumps(x), x) for x in json.loads(text)]
            except ValueError:
                raws = [(text, None)]
        else:
            for line in text.split("\n"):
                if line.strip():
                    try:
                        raws.append((line, json.loads(line)))
                    except ValueError:
                        raws.append((line, None))
        if len(raws) > LIMITS["items"]:
            st.count("bad_requests")
            return self.reply(400, {"error": "too many items"})
        codes = {int(k): int(v) for k, v in act.get("codes", {}).items()}
        errors, accepted, ids = [], [], []
        for i, (raw, item) in enumerate(raws):
            ids.append(item_id(item) if item is not None else "?")
            why = "not JSON" if item is None else validate(item, len(raw.encode()), st.ikeys)
            if why:
                st.count("invalid")
                with st.lock:
                    if len(st.stats["invalid_reasons"]) < 20:
                        st.stats["invalid_reasons"].append("%s: %s" % (why, raw[:300]))
                errors.append({"index": i, "statusCode": 400, "message": why})
                continue
            if i in codes:
                errors.append({"index": i, "statusCode": codes[i], "message": "scripted"})
                continue
            accepted.append((i, item))
        if raws and not accepted and all(e["statusCode"] == 400 for e in errors):
            status = 400
        elif errors:
            status = 206
        else:
            status = 200
        for i, item in accepted:
            st.records.write(json.dumps({"request": n, "index": i, "ikey": item.get("iKey"),
                                         "token": token, "id": item_id(item), "host": self.role,
                                         "event_id": event_id(item), "item": item}) + "\n")
        st.count("accepted", len(accepted))
        if self.role == "regional":
            st.count("regional_accepted", len(accepted))
        st.answer(status)
        self.log_req(n, status, ids, act, errors)
        headers = {"Location": loc} if status == 206 and "location" in act else None
        return self.reply(status, {"itemsReceived": len(raws), "itemsAccepted": len(accepted),
                                   "errors": errors}, headers=headers)

    def location(self, loc):
        st = self.st
        named = {"same": (st.args.listen, st.ports["https"]),
                 "other": (st.args.other_listen, st.ports.get("other")),
                 "regional": (st.args.regional_name, st.ports.get("regional")),
                 "evil": (st.args.evil_name, st.ports.get("other"))}
        if loc in named:
            return "https://%s:%s%s" % (named[loc][0], named[loc][1], self.path)
        return loc

    def log_req(self, n, status, ids, act, errors=()):
        if self.st.requests:
            self.st.requests.write(json.dumps({
                "n": n, "time": time.time(), "status": status, "ids": ids, "action": act,
                "errors": list(errors), "auth": bool(self.headers.get("Authorization"))}) + "\n")

    def dispatch(self):
        if self.role == "control":
            return self.control()
        if self.role == "imds":
            return self.imds()
        return self.ingest()

    do_GET = do_POST = do_PUT = do_DELETE = lambda self: self.dispatch()


def make_server(role, addr, st, tls_ctx):
    handler = type("H_" + role, (Handler,), {"role": role, "st": st})
    srv = http.server.ThreadingHTTPServer((addr, 0), handler)
    srv.daemon_threads = True
    if tls_ctx:
        # the handshake runs in the connection's thread: a silent client cannot stall accept()
        srv.socket = tls_ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    return srv


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ikey", required=True, help="accepted instrumentation key(s), comma-separated")
    ap.add_argument("--records", required=True)
    ap.add_argument("--requests")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--other-listen")
    ap.add_argument("--regional-listen")
    ap.add_argument("--regional-name", default="westeurope-5.in.applicationinsights.azure.com")
    ap.add_argument("--evil-name", default="ingest.example.net")
    ap.add_argument("--imds", action="store_true")
    ap.add_argument("--require-token", action="store_true")
    ap.add_argument("--token-lifetime", type=int, default=3600)
    ap.add_argument("--client-id")
    ap.add_argument("--federated-token-file")
    args = ap.parse_args()

    st = State(args)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    servers = {"https": make_server("https", args.listen, st, ctx),
               "control": make_server("control", "127.0.0.1", st, None)}
    if args.other_listen:
        servers["other"] = make_server("other", args.other_listen, st, ctx)
    if args.regional_listen:
        servers["regional"] = make_server("regional", args.regional_listen, st, ctx)
    if args.imds:
        servers["imds"] = make_server("imds", "127.0.0.1", st, None)
    st.ports = {k: s.server_address[1] for k, s in servers.items()}
    for s in servers.values():
        threading.Thread(target=s.serve_forever, daemon=True).start()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        json.dump(st.ports, f)
    os.rename(tmp, args.port_file)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
