#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Ask the agent for its status over and over, timing each answer, until
--stop exists (test_reload_off_loop.sh). Writes "ready" to --ready after the
first answer; at the end prints one JSON object:

  {"n": answers, "max_ms": slowest, "p50_ms": .., "p99_ms": ..,
   "reloading": answers that said policy.reloading, "errors": [...],
   "slow": [[t_ms, ms], ...]   (answers slower than --slow-ms, by start time)}

Each request is the one `tlsguard status` sends; the time runs from connect()
to the end of the reply.
"""

import argparse
import json
import os
import socket
import time


def status_once(path, timeout):
    t0 = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(b'{"v":1,"cmd":"status"}\n')
        buf = b""
        while True:
            d = s.recv(1 << 20)
            if not d:
                break
            buf += d
    finally:
        s.close()
    ms = (time.monotonic() - t0) * 1000
    return ms, json.loads(buf)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--stop", required=True)
    ap.add_argument("--ready", required=True)
    ap.add_argument("--slow-ms", type=float, default=100)
    ap.add_argument("--interval", type=float, default=0.01)
    args = ap.parse_args()

    times, slow, errors, reloading = [], [], [], 0
    start = time.monotonic()
    while not os.path.exists(args.stop):
        t = (time.monotonic() - start) * 1000
        try:
            ms, reply = status_once(args.socket, 10)
        except (OSError, ValueError) as e:
            errors.append("%.0f ms: %s" % (t, e))
            time.sleep(args.interval)
            continue
        times.append(ms)
        if ms > args.slow_ms:
            slow.append([round(t), round(ms, 1)])
        if reply.get("status", {}).get("policy", {}).get("reloading"):
            reloading += 1
        if len(times) == 1:
            with open(args.ready, "w") as f:
                f.write("ready\n")
        time.sleep(args.interval)
    times.sort()
    n = len(times)
    print(json.dumps({
        "n": n,
        "max_ms": round(times[-1], 1) if n else None,
        "p50_ms": round(times[n // 2], 1) if n else None,
        "p99_ms": round(times[min(n - 1, n * 99 // 100)], 1) if n else None,
        "reloading": reloading,
        "errors": errors[:10],
        "slow": slow[:20],
    }))


if __name__ == "__main__":
    main()
