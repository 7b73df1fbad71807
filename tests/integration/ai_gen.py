#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Violations for the journal tests: plain HTTP requests to ADDR:80 at RATE per
second (one `plaintext` event each) until the file STOP exists (or N were made),
then prints "sent N". Run inside the watched cgroup and netns."""
import os
import socket
import sys
import time

addr, rate, stop, limit = sys.argv[1], float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
sent = 0
t0 = time.monotonic()
while sent < limit and not os.path.exists(stop):
    # paced: the n-th request at t0 + n / rate, bursts catch up after a stall
    ahead = t0 + sent / rate - time.monotonic()
    if ahead > 0:
        time.sleep(min(ahead, 0.05))
        continue
    try:
        s = socket.create_connection((addr, 80), timeout=5)
        s.sendall(b"GET /%d HTTP/1.1\r\nHost: gen\r\n\r\n" % sent)
        s.close()
    except OSError as e:
        print("error", e, file=sys.stderr)
        continue
    sent += 1
print("sent", sent, flush=True)
