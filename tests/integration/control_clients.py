#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""`tlsguard events --follow` clients that misbehave, for the control socket's
bounds (test_control_bounds.sh). Each mode writes "ready" to --ready when its
connections are in place, then waits for --go to exist before the next step.

  stall  --type T        one follower that reads its first line (it is
                         subscribed), then nothing until --go exists; then it
                         reads until the socket has been quiet for 1 s and prints
                         {"lines": N, "bad": B} (all lines; B: not JSON)
  hold   --type T -n N   N followers that read nothing; then one more
                         connection, which prints {"extra": "refused"} when the
                         agent closes it at once (or "served"); at --go, prints
                         the lines each of the N received as {"held": [...]}
                         and closes them
"""

import argparse
import json
import os
import socket
import sys
import time


def follower(path, type_):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    req = {"v": 1, "cmd": "events", "follow": True, "type": type_}
    s.sendall(json.dumps(req).encode() + b"\n")
    return s


def wait_for(path, timeout=60):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            sys.exit("no %s within %ss" % (path, timeout))
        time.sleep(0.05)


def read_quiet(s, quiet=1.0):
    """Everything until the socket has been quiet for @quiet seconds."""
    buf = b""
    s.settimeout(quiet)
    while True:
        try:
            d = s.recv(1 << 20)
        except socket.timeout:
            return buf
        if not d:
            return buf
        buf += d


def read_now(s):
    """What has arrived (no waiting)."""
    buf = b""
    s.setblocking(False)
    while True:
        try:
            d = s.recv(1 << 20)
        except BlockingIOError:
            return buf
        if not d:
            return buf
        buf += d


def count_lines(buf):
    lines = [l for l in buf.split(b"\n") if l]
    bad = 0
    for l in lines:
        try:
            json.loads(l)
        except ValueError:
            bad += 1
    return len(lines), bad


def ready(path):
    with open(path + ".tmp", "w") as f:
        f.write("ready\n")
    os.rename(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("stall", "hold"))
    ap.add_argument("--socket", required=True)
    ap.add_argument("--type", default="plaintext")
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--ready", required=True)
    ap.add_argument("--go", required=True)
    a = ap.parse_args()

    if a.mode == "stall":
        s = follower(a.socket, a.type)
        first = b""
        s.settimeout(60)
        while b"\n" not in first:
            d = s.recv(1 << 16)
            if not d:
                sys.exit("the agent closed the follower")
            first += d
        ready(a.ready)
        wait_for(a.go)
        n, bad = count_lines(first + read_quiet(s))
        print(json.dumps({"lines": n, "bad": bad}), flush=True)
        return

    held = [follower(a.socket, a.type) for _ in range(a.n)]
    time.sleep(0.5)	# the agent has accepted them (in order) before the next one
    extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    extra.connect(a.socket)
    verdict = "served"
    try:
        extra.sendall(b'{"v": 1, "cmd": "status"}\n')
        extra.settimeout(5)
        if extra.recv(1 << 16) == b"":
            verdict = "refused"
    except (ConnectionResetError, BrokenPipeError):
        verdict = "refused"
    except socket.timeout:
        verdict = "no answer"
    extra.close()
    print(json.dumps({"extra": verdict}), flush=True)
    ready(a.ready)
    wait_for(a.go)
    time.sleep(0.5)
    print(json.dumps({"held": [count_lines(read_now(s))[0] for s in held]}), flush=True)
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
