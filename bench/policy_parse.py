#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How `tlsguard policy check --offline` scales with the size of a policy file
(`make bench-policy`): CPU time (user + system of the child) per file, for
shapes that were super-linear before the bounded loader (nested flow lists,
nested flow mappings, nested block mappings) and for valid policies of many
prefixes. Each measurement is the minimum of --rounds runs, binaries
alternating run by run, so other load on the machine hits all alike.

  bench/policy_parse.py TLSGUARD [--baseline OLD_TLSGUARD] [--out RESULTS_MD]

Without --out, prints the Markdown table. The baseline is only run on inputs
it finishes in reasonable time (the nested ones up to 40,000 levels).
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile


def nested_flow(n):
    return "mode: " + "[" * n + "]" * n + "\n"


def nested_map(n):
    return "{a: " * n + "}" * n + "\n"


def nested_block(n):
    return "".join(" " * i + "k:\n" for i in range(n))


def cidrs(n):
    lines = ["destinations:\n  - name: filler\n    cidrs:\n"]
    lines += ['      - "10.%d.%d.%d/32"\n' % (i >> 16 & 255, i >> 8 & 255, i & 255) for i in range(n)]
    return "".join(lines)


def cpu_of(binary, path):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run([binary, "policy", "check", "--offline", path], capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, p.returncode, p.stderr.decode(errors="replace").strip().splitlines()[:1]


def cpu_of_old(binary, path):
    """The binary before `--offline` existed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run([binary, "policy", "check", path], capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), p.returncode


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tlsguard")
    ap.add_argument("--baseline")
    ap.add_argument("--out")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    cases = [
        ("nested flow lists", nested_flow, [10000, 20000, 40000, (16 << 20) // 2 - 4], 40000),
        ("nested flow mappings", nested_map, [10000, 20000, 40000, (16 << 20) // 5], 40000),
        ("nested block mappings", nested_block, [1000, 2000, 4000, 5700], 4000),
        ("valid: /32 prefixes", cidrs, [8192, 32768, 65536, 131072], 131072),
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="tg-bench-policy-") as tmp:
        for name, gen, sizes, base_max in cases:
            for n in sizes:
                path = os.path.join(tmp, "p.yaml")
                with open(path, "w") as f:
                    f.write(gen(n))
                size = os.path.getsize(path)
                new, old = [], []
                for _ in range(args.rounds):
                    cpu, rc, msg = cpu_of(args.tlsguard, path)
                    new.append(cpu)
                    if args.baseline and n <= base_max:
                        old.append(cpu_of_old(args.baseline, path)[0])
                first = msg[0].replace("tlsguard: " + path, "FILE") if msg else "ok"
                rows.append((name, n, size, min(new), rc, first,
                             min(old) if old else None))
                print("%-22s %8d %10d bytes  %.3f s%s" % (name, n, size, min(new),
                      "  (baseline %.3f s)" % min(old) if old else ""), file=sys.stderr)
    out = ["# Policy parsing: CPU time against file size", "",
           "`bench/policy_parse.py` (`make bench-policy`): `tlsguard policy check --offline`, "
           "user + system CPU time of the process, the minimum of %d runs, binaries alternating." % args.rounds,
           "", "| input | n | bytes | CPU s | exit | first message | before (s) |",
           "|---|---|---|---|---|---|---|"]
    for name, n, size, cpu, rc, msg, old in rows:
        out.append("| %s | %d | %d | %.3f | %d | %s | %s |" % (
            name, n, size, cpu, rc, msg.replace("|", "\\|")[:80], "%.3f" % old if old is not None else "-"))
    text = "\n".join(out) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
