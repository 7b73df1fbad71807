#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tlsguard overhead benchmark (`make bench`):
#
#   bench/run.sh TLSGUARD BENCHDIR RESULTS_MD
#
# TLSGUARD is the agent binary, BENCHDIR holds loadgen and empty.bpf.o (mk/bench.mk
# builds both). Writes RESULTS_MD and prints it. Exit status: 0 when every workload
# ran (targets met or not), 1 when the benchmark itself broke, 2 usage.
#
# One network namespace (lo up, 198.51.100.10 protected, .20 not) holds a sink server
# (loadgen sink). Clients run in one of four sibling cgroups under one parent:
#   base   no programs                          variant A (without tlsguard)
#   tg     tlsguard's programs (the agent)      variant B (with tlsguard)
#   empty  one empty program per hook type      variant E (the bpf_stats yardstick, and
#          tlsguard attached (bench/empty.bpf.c)  what merely having programs costs)
#   floor  the empty programs, but connect()    variant S (the storage floor: what any
#          creates a tg_flow-sized sk_storage    design with per-flow sk_storage pays;
#          value and every packet looks it up   workload 1 only)
#   hfloor the storage floor of a state       variants H and P (BENCH_ONLY=stats and
#   pfloor hash keyed by socket cookie         conn only): allocated on insert (H) or
#          instead of sk_storage                preallocated (P), deleted at sock_release
#   nodns  tlsguard's programs but not the     variant D: what running those separately
#          DNS observers (attached by id)       costs (the same as B where the agent
#                                               chains them: BENCH_DNS_HOOKS)
#   srv    the sink, never watched
#   srvA, srvE, srvS  a sink each for the concurrent pairs (198.51.100.31-33), never watched
# and variant N is base with an equivalent nftables rule set loaded in the netns.
# Variants of one workload alternate round by round (A B N, B N A, N A B, ...), so
# drift from other load on the machine hits all of them alike; figures are medians
# over the rounds, ratios median(B)/median(A), spread the min..max of the per-round
# ratios. Workloads 1 and 2 also run as concurrent pairs (A, B, E, S at the same time,
# each client with a server of its own): their figures are the medians of the per-round
# differences and ratios, and they decide targets 1 and 2 (the report's method says why).
# bpf_stats is on only for the run-time rounds (it adds two clock reads to every
# invocation) and its old value is restored on exit.
#
# Everything is named tg-bench-<pid>-<random> and removed on exit, also on failure.
#
# Environment: BENCH_ROUNDS (default 7), BENCH_SECS (2), BENCH_CONC (32 connections in
# flight), BENCH_QUICK=1 (2 rounds of 1 s: for working on the bench, not for results),
# BENCH_PIN=0 leaves client and server unpinned (default: CPU 0 and CPU 1),
# BENCH_KEEP_TMP=1 keeps the raw data and logs, BENCH_SPREAD_LIMIT_US (6) the spread of the
# per-round CPU-per-connection difference above which workloads 1 and 2 run more rounds,
# BENCH_BULK_PERF_ROUNDS (5) the rounds of workload 3 under perf (needs perf: linux-perf),
# BENCH_PAIR_ROUNDS (15) and BENCH_PAIR_SECS (3) the concurrent pairs' rounds and their length,
# BENCH_DNS_HOOKS (auto) the agent's --dns-hooks: separate measures DNS learning as programs
# of their own, as kernels that cannot chain them run it (variant D then shows their cost).
# BENCH_ONLY=events runs section 6 alone (the event flood to the file, then bench/ai_sink)
# and prints its per-round figures instead of writing RESULTS_MD (about a minute);
# BENCH_ONLY=stats runs the bpf_stats rounds of workload 1 alone (B/D/E/S/H/P x BENCH_ROUNDS);
# BENCH_ONLY=conn runs workload 1 alone (A/B/D/E/S/H/P x BENCH_ROUNDS, CPU µs per connection and
# conn/s per round, then the medians: for A/B work on the fast path, not for results);
# BENCH_ONLY=pairs runs the concurrent pairs of workloads 1 and 2 alone (BENCH_PAIR_ROUNDS,
# default 15, of BENCH_PAIR_SECS, default 3) and prints the per-pair differences;
# BENCH_ONLY=pairs-calibrate the same with no program attached anywhere (every difference
# should be 0 within its spread: the method's own bias);
# BENCH_ONLY=bulk runs workload 3 alone (A/B/E x BENCH_ROUNDS: CPU ms per GB and Gbit/s; then
# A/B/D/E x BENCH_BULK_PERF_ROUNDS under perf: the hook's share; per round, then the medians);
# BENCH_PERF=FILE also records the agent with `perf record -g` (BENCH_PERF_OPTS replaces
# -g, e.g. "--call-graph dwarf") into FILE during the flood; with BENCH_ONLY=conn, the whole
# machine during one more round of each variant in BENCH_PERF_VARIANTS (default "A B") into
# FILE.A, FILE.B, ...
set -euo pipefail

if [[ $# -ne 3 ]]; then
	echo "usage: $0 TLSGUARD BENCHDIR RESULTS_MD" >&2
	exit 2
fi
TLSGUARD=$(realpath "$1")
BENCHDIR=$(realpath "$2")
RESULTS=$3
LOADGEN=$BENCHDIR/loadgen
EMPTY_OBJ=$BENCHDIR/empty.bpf.o
ROOT=$(cd "$(dirname "$0")/.." && pwd)

ROUNDS=${BENCH_ROUNDS:-7}
SECS=${BENCH_SECS:-2}
CONC=${BENCH_CONC:-32}
SMALL_ROUNDS=3		# growth curves and bpf_stats
SMALL_SECS=2
if [[ "${BENCH_QUICK:-0}" == 1 ]]; then
	ROUNDS=2 SECS=1 SMALL_ROUNDS=2 SMALL_SECS=1
fi
LAT_N=5000		# sequential connections per latency round
PREFIXES=(1 100 10000 100000)
OPEN_FLOWS=(10 100 1000 10000)

PROT=198.51.100.10	# in the policy
OTHER=198.51.100.20	# not in the policy
# Concurrent pairs (workloads 1 and 2): every variant but B has a server of its own, at its
# own address (not in the policy; their cgroups carry no tlsguard programs), in its own cgroup
declare -A PAIR_ADDR=([A]=198.51.100.31 [E]=198.51.100.32 [S]=198.51.100.33)
PAIR_SECS=${BENCH_PAIR_SECS:-3}
PAIR_ROUNDS=${BENCH_PAIR_ROUNDS:-15}

ID="tg-bench-$$-$RANDOM"
NS=$ID
CG2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CGP="$CG2/$ID"
PIN="/sys/fs/bpf/$ID"
EPIN="/sys/fs/bpf/$ID-empty"
TMP=""
RAW=""
META=""
AGENT_PID=""
AGENT_LOG=""
SINK_PIDS=()
# the variants' cgroups (variant_cgroup) and the servers' (pair_server_cgroup)
CGROUPS=(base tg empty floor hfloor pfloor nodns srv srvA srvE srvS)
# IN_CG_NS CGROUP_DIR NETNS CMD... runs CMD in that cgroup (entered first: `ip netns exec`
# mounts a /sys without the cgroup2 mount) and that network namespace
# shellcheck disable=SC2016 # expanded by the inner shell
IN_CG_NS=(sh -c 'echo $$ >"$1/cgroup.procs" || exit 125; ns=$2; shift 2; exec ip netns exec "$ns" "$@"' in_cg_ns)
STATS_OLD=""
NFT_ON=0
T_START=$(date +%s)

log() { printf '[bench %3ds] %s\n' "$(($(date +%s) - T_START))" "$*" >&2; }

die()
{
	printf 'bench: FAILED: %s\n' "$*" >&2
	exit 1
}

# ---- cleanup ---------------------------------------------------------------------

kill_wait()
{
	local pid=$1 i
	[[ -n "$pid" ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

cleanup()
{
	local rc=$? cg i
	set +e
	trap - EXIT INT TERM
	[[ -n "$STATS_OLD" ]] && sysctl -qw kernel.bpf_stats_enabled="$STATS_OLD"
	kill_wait "$AGENT_PID"
	for i in "${SINK_PIDS[@]}"; do
		kill_wait "$i"
	done
	if [[ -d "$CGP" ]]; then
		for cg in "$CGP"/*/; do
			[[ -e "$cg/cgroup.kill" ]] && echo 1 >"$cg/cgroup.kill" 2>/dev/null
		done
	fi
	if [[ -e "$PIN" ]]; then
		"$TLSGUARD" uninstall --pin-path "$PIN" >/dev/null 2>&1
		rm -rf "$PIN"
	fi
	rm -rf "$EPIN"
	for cg in "${CGROUPS[@]}"; do
		for ((i = 0; i < 30; i++)); do
			[[ -d "$CGP/$cg" ]] || break
			rmdir "$CGP/$cg" 2>/dev/null && break
			sleep 0.1
		done
	done
	[[ -d "$CGP" ]] && rmdir "$CGP" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	if [[ -n "$TMP" && -d "$TMP" ]]; then
		if [[ "${BENCH_KEEP_TMP:-0}" == 1 || $rc -ne 0 ]]; then
			echo "bench: raw data and logs kept in $TMP" >&2
		else
			rm -rf "$TMP"
		fi
	fi
	for cg in "$CGP" "$PIN" "$EPIN"; do
		[[ -e "$cg" ]] && echo "bench: WARNING: could not remove $cg" >&2
	done
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- checks and setup --------------------------------------------------------------

[[ $(id -u) -eq 0 ]] || die "needs root (netns, cgroups, BPF): run 'sudo make bench'"
for c in ip nft bpftool python3 sysctl timeout; do
	command -v "$c" >/dev/null || die "command '$c' not found (make bench installs it: scripts/install-deps.sh)"
done
for f in "$TLSGUARD" "$LOADGEN" "$BENCHDIR/verdict_cost"; do
	[[ -x "$f" ]] || die "$f is missing (make bench-build)"
done
[[ -r "$EMPTY_OBJ" ]] || die "$EMPTY_OBJ is missing (make bench-build)"
[[ -n "$CG2" ]] || die "no cgroup2 mount in /proc/mounts"
# no bpffs at /sys/fs/bpf is no reason to stop: the agent mounts it (agent/mounts.h)

TMP=$(mktemp -d "/tmp/$ID.XXXXXX")
RAW=$TMP/raw.tsv
META=$TMP/meta
: >"$RAW"
: >"$META"
HELPER=$TMP/bench.py

# Helper for JSON (bpftool), policies with many prefixes and the report.
cat >"$HELPER" <<'PYEOF'
import json, random, statistics, subprocess, sys

def bpftool(*args):
    out = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out) if out.strip() else []

# bpftool's attach types → the names `bpftool cgroup attach` takes (and the report uses)
HOOKS = {"cgroup_inet_egress": "egress", "cgroup_inet_ingress": "ingress",
         "cgroup_inet4_connect": "connect4", "cgroup_inet6_connect": "connect6",
         "sock_ops": "sock_ops", "cgroup_inet_sock_create": "sock_create",
         "cgroup_udp4_sendmsg": "sendmsg4", "cgroup_udp6_sendmsg": "sendmsg6",
         "cgroup_inet_sock_release": "sock_release"}

def cmd_cgprogs(cg):
    """HOOK:NAME:ID for every program attached to the cgroup, one per line."""
    for p in bpftool("cgroup", "show", cg):
        t = p.get("attach_type", "?")
        print("%s:%s:%d" % (HOOKS.get(t, t), p.get("name") or "prog", p["id"]))

def cmd_progstats(*progs):
    """HOOK:NAME RUN_CNT RUN_TIME_NS for each HOOK:NAME:ID (0 0 before bpf_stats counted)."""
    stats = {p.get("id"): (p.get("run_cnt", 0), p.get("run_time_ns", 0)) for p in bpftool("prog", "show")}
    for spec in progs:
        hook, name, pid = spec.split(":")
        c, t = stats.get(int(pid), (0, 0))
        print("%s:%s %d %d" % (hook, name, c, t))

def cmd_policy(path, mode, cg_rel, events, nprefix, ports, protected):
    """A policy with one class "storage" of NPREFIX cidrs: PROTECTED/32 first, the rest
    random prefixes (/16../32, seeded, never covering the bench's addresses)."""
    n = int(nprefix)
    cidrs = [protected + "/32"]
    seen = set(cidrs)
    rng = random.Random(20261122)
    lens = [16, 18, 20, 22, 24, 24, 24, 26, 28, 32, 32, 32]
    while len(cidrs) < n:
        a = rng.getrandbits(32)
        if a >> 24 in (0, 10, 127, 198) or a >> 28 >= 14:
            continue
        plen = rng.choice(lens)
        a &= (0xFFFFFFFF << (32 - plen)) & 0xFFFFFFFF
        s = "%d.%d.%d.%d/%d" % (a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255, plen)
        if s not in seen:
            seen.add(s)
            cidrs.append(s)
    with open(path, "w") as f:
        f.write("# written by bench/run.sh: %d protected prefixes\n" % n)
        f.write("mode: %s\nmin_tls_version: \"1.2\"\nworkloads:\n  cgroups: [\"%s\"]\n" % (mode, cg_rel))
        f.write("destinations:\n  - name: storage\n    cidrs:\n")
        for c in cidrs:
            f.write("      - \"%s\"\n" % c)
        f.write("    ports: %s\n    mode: %s\n" % (ports, mode))
        f.write("exceptions:\n  - cidrs: [\"192.0.2.99/32\"]\n")
        f.write("events:\n  file: \"%s\"\n  log_tls_flows: false\n" % events)

def cmd_pairs(raw):
    """The concurrent pairs' medians (BENCH_ONLY=pairs)."""
    data = R(load_raw(raw))
    for wl in ("pair_prot", "pair_other"):
        for v in "BES":
            d = data.pdiff(wl, v, "A", "cpu_us_conn")
            q = data.pratio(wl, v, "A", "rate")
            if d[0] is None:
                continue
            print("%s %s−A: %+.2f µs/conn (%+.2f..%+.2f), conn/s ratio %.3f (%.3f..%.3f), A %.2f µs/conn, %d rounds" % (
                wl, v, d[0], d[1], d[2], q[0], q[1], q[2], data.median(wl, "A", "cpu_us_conn"),
                len(data.vals(wl, "A", "cpu_us_conn"))))

def cmd_status_get(path, *keys):
    """Values at dotted paths of a status JSON document."""
    doc = json.load(open(path))
    for k in keys:
        cur = doc
        for part in k.split("."):
            cur = cur.get(part) if isinstance(cur, dict) else None
        print(cur if cur is not None else "")

# ---- report --------------------------------------------------------------------

def load_raw(path):
    data = {}
    for line in open(path):
        f = line.rstrip("\n").split("\t")
        if len(f) != 5:
            continue
        wl, var, rnd, key, val = f
        try:
            v = float(val)
        except ValueError:
            continue
        data.setdefault((wl, var, key), []).append((int(rnd), v))
    return data

def med(xs):
    return statistics.median(xs) if xs else None

def fmt(v, nd=1):
    if v is None:
        return "–"
    if abs(v) >= 1000 and nd <= 1:
        return "{:,.0f}".format(v)
    return "{:.{}f}".format(v, nd)

class R:
    def __init__(self, data):
        self.d = data
    def vals(self, wl, var, key):
        return [v for _, v in sorted(self.d.get((wl, var, key), []))]
    def byround(self, wl, var, key):
        return dict(self.d.get((wl, var, key), []))
    def median(self, wl, var, key):
        return med(self.vals(wl, var, key))
    def ratio(self, wl, num, den, key):
        """median(num)/median(den) and min..max of the per-round ratios."""
        a, b = self.median(wl, den, key), self.median(wl, num, key)
        if not a or b is None:
            return None, None, None
        ra, rb = self.byround(wl, den, key), self.byround(wl, num, key)
        per = [rb[r] / ra[r] for r in ra if r in rb and ra[r]]
        return b / a, (min(per) if per else None), (max(per) if per else None)
    def diff(self, wl, num, den, key, den_key=None):
        """median(num)-median(den) and min..max of the per-round differences."""
        dk = den_key or key
        a, b = self.median(wl, den, dk), self.median(wl, num, key)
        if a is None or b is None:
            return None, None, None
        ra, rb = self.byround(wl, den, dk), self.byround(wl, num, key)
        per = [rb[r] - ra[r] for r in ra if r in rb]
        return b - a, (min(per) if per else None), (max(per) if per else None)
    def pdiff(self, wl, num, den, key):
        """Concurrent pairs: the median of the per-round differences num − den, min..max."""
        ra, rb = self.byround(wl, den, key), self.byround(wl, num, key)
        per = [rb[r] - ra[r] for r in ra if r in rb]
        return (med(per), min(per), max(per)) if per else (None, None, None)
    def pratio(self, wl, num, den, key):
        """Concurrent pairs: the median of the per-round ratios num / den, min..max."""
        ra, rb = self.byround(wl, den, key), self.byround(wl, num, key)
        per = [rb[r] / ra[r] for r in ra if r in rb and ra[r]]
        return (med(per), min(per), max(per)) if per else (None, None, None)
    def progs(self, wl):
        """(hook, name) of the tlsguard programs bpf_stats counted in this workload."""
        out = set()
        for (w_, v, k) in self.d:
            if w_ == wl and v == "B" and k.endswith("_ns") and ":" in k:
                hook, name = k[:-3].split(":", 1)
                out.add((hook, name))
        order = {"connect4": 0, "connect6": 1, "egress": 2, "ingress": 3}
        return sorted(out, key=lambda x: (order.get(x[0], 9), x[1]))
    def bpf(self, wl, hook, name):
        """tlsguard ns, empty ns, (Δ, lo, hi), invocations per round."""
        k, ek = "%s:%s_ns" % (hook, name), "%s:empty_%s_ns" % (hook, hook)
        return (self.median(wl, "B", k), self.median(wl, "E", ek), self.diff(wl, "B", "E", k, ek),
                self.median(wl, "B", "%s:%s_cnt" % (hook, name)))
    def cv(self, wl, var, key):
        xs = self.vals(wl, var, key)
        if len(xs) < 2 or not statistics.mean(xs):
            return None
        return statistics.stdev(xs) / statistics.mean(xs) * 100

def spread(lo, hi, nd=3):
    if lo is None:
        return "–"
    return "{:.{n}f}–{:.{n}f}".format(lo, hi, n=nd)

def verdict(ok):
    if ok is None:
        return "n/a"
    return "met" if ok else "**MISSED**"

def cmd_report(raw, meta, out):
    data = R(load_raw(raw))
    m = {}
    notes = []
    for line in open(meta):
        k, _, v = line.rstrip("\n").partition("=")
        if k == "note":
            notes.append(v)
        else:
            m[k] = v
    L = []
    w = L.append
    w("# tlsguard benchmark results")
    w("")
    w("Written by `make bench` (bench/run.sh). Method at the end; raw numbers are medians over rounds.")
    w("")
    w("| | |")
    w("|---|---|")
    for k, label in [("date", "date (UTC)"), ("machine", "machine"), ("kernel", "kernel"),
                     ("tlsguard", "tlsguard"), ("commit", "source"), ("run", "run"),
                     ("load", "load average (1 min) at start / end"),
                     ("bpf_stats_before", "kernel.bpf_stats_enabled before the run"),
                     ("pinning", "CPU pinning of client and server"),
                     ("mitigations", "CPU mitigations (every BPF helper call and return pays them)"),
                     ("dns_hooks", "DNS learning's programs (agent --dns-hooks)"),
                     ("duration", "duration")]:
        if k in m:
            w("| %s | %s |" % (label, m[k]))
    w("")
    steal = [x for wl in ("conn_prot", "conn_other") for v in "ABNES" for x in data.vals(wl, v, "steal_ms")]
    budget = float(m.get("secs", 0)) * 1000 * int(m.get("ncpu", 0))
    if steal and budget and max(steal) > 0.05 * budget:
        notes.append("The host took CPU time from this VM while it ran: steal in one %ss run of workloads 1–2 up to %s ms "
                     "(median %s ms) of the %s CPU-ms there were. Figures that are not ratios within one run (the events' rates above "
                     "all) are lower than on a quiet host, and the spreads are wider." % (
                         m["secs"], fmt(max(steal), 0), fmt(med(steal), 0), fmt(budget, 0)))
    for n in notes:
        w("> " + n)
        w("")

    # ---- targets
    w("## Targets")
    w("")
    w("| # | what | target | measured | spread | |")
    w("|---|---|---|---|---|---|")
    # workloads 1 and 2 are decided on the concurrent pairs (the host's swings cancel there);
    # the sequential rounds are the reference with nftables and the throughput table
    r1 = data.pratio("pair_prot", "B", "A", "rate")
    r2 = data.pratio("pair_other", "B", "A", "rate")
    e1 = data.pratio("pair_prot", "E", "A", "rate")
    e2 = data.pratio("pair_other", "E", "A", "rate")
    r3 = data.ratio("bulk", "B", "A", "gbit_s")
    def trow(num, what, target, r, thr):
        ok = None if r[0] is None else r[0] >= thr
        w("| %s | %s | %s | %s | %s | %s |" % (num, what, target, fmt(r[0], 3), spread(r[1], r[2]), verdict(ok)))
    sg = lambda v: "–" if v is None else "%+.2f" % v
    for wl, seq, what, thr in [("pair_prot", "conn_prot", "a protected destination (ClientHello)", 3.5),
                               ("pair_other", "conn_other", "an unprotected destination", 1.0)]:
        d, de = data.pdiff(wl, "B", "A", "cpu_us_conn"), data.pdiff(wl, "E", "A", "cpu_us_conn")
        ds = data.pdiff(wl, "S", "A", "cpu_us_conn")
        dq = data.diff(seq, "B", "A", "cpu_us_conn")
        ok = None if d[0] is None else d[0] <= thr
        floor = "" if ds[0] is None else ", storage floor %s" % sg(ds[0])
        w("| 1 | **CPU µs per short connection** to %s, client + server cgroups, tlsguard − none, concurrent pairs (headline) | ≤ +%.1f µs | %s µs (none %s, empty programs %s%s; sequential rounds %s) | %s | %s |" % (
            what, thr, sg(d[0]), fmt(data.median(wl, "A", "cpu_us_conn"), 2), sg(de[0]), floor,
            sg(dq[0]), spread(d[1], d[2], 2), verdict(ok)))
    for num, what, r, e, thr, target in [
            (1, "a protected destination (ClientHello)", r1, e1, 0.97, "≥ 0.97 where empty programs ≥ 0.98"),
            (2, "an unprotected destination", r2, e2, 0.99, "≥ 0.99")]:
        ok = None if r[0] is None else r[0] >= thr
        w("| %s | short connections/s to %s, ratio, concurrent pairs | %s | %s (empty programs %s) | %s | %s |" % (
            num, what, target, fmt(r[0], 3), fmt(e[0], 3), spread(r[1], r[2]), verdict(ok)))
    hb = data.vals("bulk_perf", "B", "hook_pct")
    if hb:
        share = med(hb)
        ok = share <= 1.0
        he, hd = data.median("bulk_perf", "E", "hook_pct"), data.median("bulk_perf", "D", "hook_pct")
        w("| 3 | **bulk flow after its verdict: share of its CPU in the cgroup skb hook**, tlsguard (perf of client + server, same run; without tlsguard the hook does not run) (headline) | ≤ 1 %% (ratio ≥ 0.99) | %s %% (implied ratio %s; empty programs %s %%, tlsguard without the DNS observers %s %%) | %s | %s |" % (
            fmt(share, 2), fmt(1 - share / 100, 4), fmt(he, 2), fmt(hd, 2), spread(min(hb), max(hb), 2), verdict(ok)))
    trow(3, "bulk throughput of one allowed TLS flow after its verdict, ratio", "≥ 0.99", r3, 0.99)
    lat = data.diff("latency", "B", "A", "connect_p50_us")
    lat99 = data.diff("latency", "B", "A", "connect_p99_us")
    w("| 4 | connect() latency, with − without | report | p50 %s µs, p99 %s µs | p50 %s | – |" % (
        fmt(lat[0], 2), fmt(lat99[0], 2), spread(lat[1], lat[2], 2)))
    for cls, what, thr, issue in [("bulk_prot", "on a tracked, decided flow (bulk)", 60, 100),
                                  ("bulk_other", "on untracked traffic (bulk)", 30, 60),
                                  ("conn_other", "on untracked traffic (short connections)", 30, 60)]:
        wl = "stats_" + cls
        for hook, name in data.progs(wl):
            if hook not in ("egress", "ingress"):
                continue
            b, e, d, cnt = data.bpf(wl, hook, name)
            ok = None if d[0] is None else d[0] <= thr
            w("| 5 | BPF %s `%s` %s, Δ vs empty %s | ≤ +%d ns (issue: ≤ %d ns absolute) | %s ns (absolute %s ns) | %s | %s |" % (
                hook, name, what, hook, thr, issue, fmt(d[0]), fmt(b), spread(d[1], d[2], 1), verdict(ok)))
    cap = data.median("events", "B", "per_cpu_s")
    obs = data.median("events", "B", "rate")
    ok = None if cap is None else cap >= 100000
    lost = sum(data.vals("events", "B", "lost"))
    w("| 6 | events/s to a file (JSON lines), per agent CPU-second | ≥ 100,000 | %s (observed %s/s, generator-bound; %s of %s lost) | %s | %s |" % (
        fmt(cap, 0), fmt(obs, 0), fmt(lost, 0), fmt(sum(data.vals("events", "B", "violations")), 0), spread(min(data.vals("events", "B", "per_cpu_s") or [0]),
                                         max(data.vals("events", "B", "per_cpu_s") or [0]), 0), verdict(ok)))
    aip = data.vals("ai_pipeline", "B", "per_core")
    w("| 6 | events/s per core to App Insights batches (3 fields encrypted + 1 hashed, envelope, gzip: the sender thread's CPU, bench/ai_sink) | ≥ 50,000 | %s (%s µs/event) | %s | %s |" % (
        fmt(med(aip), 0), fmt(data.median("ai_pipeline", "B", "us_per_event"), 2),
        spread(min(aip), max(aip), 0) if aip else "–", verdict(med(aip) is not None and med(aip) >= 50000)))
    ja, jb = data.median("journal", "A", "cpu_rate"), data.median("journal", "B", "cpu_rate")
    wa, wb = data.median("journal", "A", "wall_rate"), data.median("journal", "B", "wall_rate")
    ua, ub = data.median("journal", "A", "us_per_event"), data.median("journal", "B", "us_per_event")
    w("| 6 | App Insights submit on the agent thread, events/s per CPU-second (wall): without → with the journal (group commit per 64 events, encrypted, fdatasync) | reference | %s (%s) → %s (%s); +%s µs/event | %s | – |" % (
        fmt(ja, 0), fmt(wa, 0), fmt(jb, 0), fmt(wb, 0),
        fmt(ub - ua if ua is not None and ub is not None else None, 2),
        spread(min(data.vals("journal", "B", "cpu_rate") or [0]), max(data.vals("journal", "B", "cpu_rate") or [0]), 0)))
    rest = data.median("rss", "B", "rest_kib")
    ok = None if rest is None else rest / 1024 <= 32
    w("| 7 | agent RSS at rest | ≤ 32 MiB | %s MiB | – | %s |" % (fmt(rest / 1024 if rest else None, 1), verdict(ok)))
    n1 = data.ratio("conn_prot", "N", "A", "rate")
    n3 = data.ratio("bulk", "N", "A", "gbit_s")
    w("| 8 | nftables reference (same runs): connections/s ratio, bulk ratio | reference | %s, %s | %s, %s | – |" % (
        fmt(n1[0], 3), fmt(n3[0], 3), spread(n1[1], n1[2]), spread(n3[1], n3[2])))
    w("")

    # ---- throughput
    w("## 1–3 and 8: throughput, without (A), with tlsguard (B), with nftables instead (N)")
    w("")
    w("\"Empty programs\" (E) is the same workload in a cgroup carrying one empty program of each type tlsguard")
    w("attaches: what any cgroup-BPF agent pays before doing anything, part of tlsguard's ratio too. The")
    w("\"storage floor\" (S, workload 1) is E with connect() creating a tg_flow-sized sk_storage value that every")
    w("packet looks up once: what any design keeping per-flow state in sk_storage pays before judging anything.")
    w("")
    w("| workload | without | with tlsguard | ratio | spread | CV A/B | with nftables | ratio | spread | empty programs ratio | spread | storage floor ratio |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for wl, key, what, unit in [("conn_prot", "rate", "1. short connections to protected 198.51.100.10:443, ClientHello", "conn/s"),
                                ("conn_other", "rate", "2. short connections to unprotected 198.51.100.20:443", "conn/s"),
                                ("bulk", "gbit_s", "3. one bulk flow to protected :8443 after its ClientHello", "Gbit/s")]:
        a, b, n = (data.median(wl, v, key) for v in "ABN")
        rb, rn = data.ratio(wl, "B", "A", key), data.ratio(wl, "N", "A", key)
        nd = 2 if unit == "Gbit/s" else 0
        cva, cvb = data.cv(wl, "A", key), data.cv(wl, "B", key)
        re_ = data.ratio(wl, "E", "A", key)
        rs = data.ratio(wl, "S", "A", key)
        w("| %s | %s %s | %s | %s | %s | %s%%/%s%% | %s | %s | %s | %s | %s | %s |" % (
            what, fmt(a, nd), unit, fmt(b, nd), fmt(rb[0], 3), spread(rb[1], rb[2]),
            fmt(cva, 1), fmt(cvb, 1), fmt(n, nd) if n is not None else "–",
            fmt(rn[0], 3) if n is not None else "–", spread(rn[1], rn[2]) if n is not None else "–",
            fmt(re_[0], 3), spread(re_[1], re_[2]), fmt(rs[0], 3)))
    w("")
    w("Conditions of the short-connection runs (client on CPU 0, server on CPU 1 in every variant; more sequential")
    w("rounds are run while the per-round difference in CPU per connection spans more than %s µs; the concurrent" % m.get("spread_limit_us", "?"))
    w("pairs, which decide targets 1 and 2, always run %s rounds of %s s):" % (m.get("pair_rounds", "?"), m.get("pair_secs", "?")))
    w("")
    w("| workload | rounds | 1-min load at a run's start, median (max) | steal per run, ms, median (max) | kernel.bpf_stats_enabled |")
    w("|---|---|---|---|---|")
    for wl, what in [("conn_prot", "1. protected, sequential"), ("conn_other", "2. unprotected, sequential"),
                     ("pair_prot", "1. protected, concurrent pairs"), ("pair_other", "2. unprotected, concurrent pairs")]:
        load = [x for v in "ABNES" for x in data.vals(wl, v, "load1")]
        steal = [x for v in "ABNES" for x in data.vals(wl, v, "steal_ms")]
        stats = sorted({int(x) for v in "ABNES" for x in data.vals(wl, v, "bpf_stats")})
        w("| %s | %d | %s (%s) | %s (%s) | %s |" % (what, len(data.vals(wl, "A", "cpu_us_conn")),
                                             fmt(med(load), 2), fmt(max(load) if load else None, 2),
                                             fmt(med(steal), 0), fmt(max(steal) if steal else None, 0),
                                             ", ".join(map(str, stats)) or "–"))
    w("")

    # ---- bulk: CPU per byte and the hook's share
    if data.vals("bulk", "A", "cpu_ms_gb"):
        w("### 3: the bulk flow's CPU")
        w("")
        w("CPU per GB moved (client + server cgroups' cpu.stat, the same rounds as the throughput above), and under")
        w("`perf record -a -g` in rounds of their own: the share of the workload's samples whose call chain passes")
        w("through `__cgroup_bpf_run_filter_skb` (program dispatch, programs, helpers) and that time per GB. One")
        cvs = ", ".join("%s %s %%" % (v, fmt(data.cv("bulk", v, "cpu_ms_gb"), 0)) for v in "AB" if data.cv("bulk", v, "cpu_ms_gb") is not None)
        w("loopback flow is bound by the sender's CPU, and its CPU per byte moves with throughput (CV over this run's")
        w("rounds: %s), so the ratio of CPU per GB cannot decide a 1 %% target; the share in the hook is measured" % cvs)
        w("inside each run.")
        w("")
        w("| variant | CPU ms per GB | spread | rounds | hook share of the CPU (perf) | spread | ms per GB in the hook | spread | perf rounds |")
        w("|---|---|---|---|---|---|---|---|---|")
        for v, what in [("A", "without (A)"), ("B", "tlsguard (B)"), ("D", "tlsguard without the DNS observers (D)"),
                        ("E", "empty programs (E)"), ("N", "nftables (N)")]:
            c = data.vals("bulk", v, "cpu_ms_gb")
            hp = data.vals("bulk_perf", v, "hook_pct")
            hm = data.vals("bulk_perf", v, "hook_ms_gb")
            if not c and not hp:
                continue
            w("| %s | %s | %s | %d | %s | %s | %s | %s | %d |" % (
                what, fmt(med(c), 1), spread(min(c), max(c), 1) if c else "–", len(c),
                ("%s %%" % fmt(med(hp), 2)) if hp else "–", spread(min(hp), max(hp), 2) if hp else "–",
                fmt(med(hm), 2), spread(min(hm), max(hm), 2) if hm else "–", len(hp)))
        w("")

    # ---- latency
    w("## 4: connection latency (µs, sequential connections to the protected destination)")
    w("")
    w("| | without | with tlsguard | difference | spread of the difference |")
    w("|---|---|---|---|---|")
    for key, what in [("connect_p50_us", "connect() p50"), ("connect_p99_us", "connect() p99"),
                      ("txn_p50_us", "connect → ClientHello → server closed, p50"),
                      ("txn_p99_us", "connect → ClientHello → server closed, p99")]:
        d = data.diff("latency", "B", "A", key)
        w("| %s | %s | %s | %s | %s |" % (what, fmt(data.median("latency", "A", key), 2),
                                         fmt(data.median("latency", "B", key), 2), fmt(d[0], 2), spread(d[1], d[2], 2)))
    w("")

    # ---- bpf_stats
    w("## 5: BPF run time per invocation (kernel bpf_stats)")
    w("")
    w("tlsguard's programs (cgroup `tg`) against empty programs of the same types (cgroup `empty`) on the same workload,")
    w("alternating; Δ = median(tlsguard) − median(empty), spread = min..max of the per-round Δ.")
    w("")
    w("| traffic | program | tlsguard ns | empty ns | Δ ns | spread Δ | invocations/round |")
    w("|---|---|---|---|---|---|---|")
    for cls, what in [("bulk_prot", "bulk flow to protected :8443 (tracked, decided)"),
                      ("conn_prot", "short connections to protected :443 (tracked: connect, classify)"),
                      ("bulk_other", "bulk flow to unprotected :8443 (untracked)"),
                      ("conn_other", "short connections to unprotected :443 (untracked)")]:
        wl = "stats_" + cls
        for hook, name in data.progs(wl):
            b, e, d, cnt = data.bpf(wl, hook, name)
            if (cnt or 0) < 100:
                continue	# e.g. one connect per bulk round: too few to mean anything
            w("| %s | %s `%s` | %s | %s | %s | %s | %s |" % (what, hook, name, fmt(b), fmt(e), fmt(d[0]),
                                                             spread(d[1], d[2], 1), fmt(cnt, 0)))
    w("")

    # ---- events and RSS
    w("## 6–7: event pipeline and agent memory")
    w("")
    w("Plaintext HTTP connections to the protected destination in audit mode: one `plaintext`/`flagged`")
    w("event each, written by the agent as a JSON line to its events file.")
    w("")
    w("| | median | min | max |")
    w("|---|---|---|---|")
    for key, what, nd in [("violations", "violations driven per round", 0),
                          ("events", "events written per round", 0),
                          ("lost", "violations without an event (lost)", 0),
                          ("rate", "events/s observed (limited by the generator on this machine)", 0),
                          ("cpu_pct", "agent CPU while doing it (% of one core)", 1),
                          ("per_cpu_s", "events per agent CPU-second (what one core sustains)", 0),
                          ("us_per_event", "agent CPU per event (µs)", 2)]:
        xs = data.vals("events", "B", key)
        w("| %s | %s | %s | %s |" % (what, fmt(med(xs), nd), fmt(min(xs) if xs else None, nd), fmt(max(xs) if xs else None, nd)))
    for key, what in [("rest_kib", "agent VmRSS at rest (MiB), 1 prefix"),
                      ("flood_kib", "agent VmRSS under the event flood, highest sample (MiB)"),
                      ("hwm_kib", "agent VmHWM after the flood (MiB)")]:
        xs = data.vals("rss", "B", key)
        w("| %s | %s | %s | %s |" % (what, fmt(med(xs) / 1024 if xs else None, 1),
                                     fmt(min(xs) / 1024 if xs else None, 1), fmt(max(xs) / 1024 if xs else None, 1)))
    w("")
    aip = data.vals("ai_pipeline", "B", "per_core")
    w("App Insights batches, the sender thread (bench/ai_sink: 3 fields encrypted, 1 hashed, envelope, batch of 500,")
    w("gzip): %s events per CPU-second (%s per round), %s µs per event. `make bench-ai` prints the stages." % (
        fmt(med(aip), 0), ", ".join(fmt(x, 0) for x in aip) or "–",
        fmt(data.median("ai_pipeline", "B", "us_per_event"), 2)))
    w("")

    # ---- growth: prefixes
    w("## Cost growth: protected prefixes (workload 1)")
    w("")
    w("| prefixes in the policy | agent ready (s) | RSS at rest (MiB) | without conn/s | with conn/s | ratio | spread | BPF Δ ns per invocation vs empty |")
    w("|---|---|---|---|---|---|---|---|")
    for p in m.get("prefixes", "").split():
        wl = "prefix_%s" % p
        if m.get("prefix_%s_error" % p):
            w("| %s | agent refused the policy: %s | | | | | | |" % ("{:,}".format(int(p)), m["prefix_%s_error" % p]))
            continue
        r = data.ratio(wl, "B", "A", "rate")
        deltas = []
        for hook, name in data.progs(wl):
            b, e, d, cnt = data.bpf(wl, hook, name)
            if (cnt or 0) >= 100:
                deltas.append("%s %s" % (name, fmt(d[0])))
        rss = data.median(wl, "B", "rss_kib")
        w("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            "{:,}".format(int(p)), fmt(data.median(wl, "B", "ready_s"), 2), fmt(rss / 1024 if rss else None, 1),
            fmt(data.median(wl, "A", "rate"), 0), fmt(data.median(wl, "B", "rate"), 0), fmt(r[0], 3),
            spread(r[1], r[2]), "; ".join(deltas) or "–"))
    w("")

    # ---- growth: open flows
    w("## Cost growth: concurrently open tracked flows (workload 1 while N decided TLS flows stay open)")
    w("")
    w("| open flows | without conn/s | with conn/s | ratio | spread |")
    w("|---|---|---|---|---|")
    for n in m.get("open_flows", "").split():
        wl = "open_%s" % n
        r = data.ratio(wl, "B", "A", "rate")
        w("| %s | %s | %s | %s | %s |" % ("{:,}".format(int(n)), fmt(data.median(wl, "A", "rate"), 0),
                                         fmt(data.median(wl, "B", "rate"), 0), fmt(r[0], 3), spread(r[1], r[2])))
    w("")

    w("## Method")
    w("")
    for line in METHOD.strip().splitlines():
        w(line)
    w("")
    text = "\n".join(L)
    with open(out, "w") as f:
        f.write(text)
    print(text)

METHOD = """
- One network namespace, lo up, 198.51.100.10 (protected: the policy's only destination, class
  `storage`, ports 443 and 8443) and 198.51.100.20 (unprotected). A sink (`loadgen sink`) listens on
  both: `:443` reads one message and resets the connection (no TIME_WAIT build-up), `:8443` reads until
  the client closes, `:80` (protected) is the plaintext target of workload 6. The sink runs in its own
  cgroup, never watched.
- Clients (`loadgen`, epoll, libc only) run in sibling cgroups: `base` (no BPF: without), `tg`
  (the agent's `--cgroup`: with), `empty` (one empty program of each type tlsguard attaches,
  bench/empty.bpf.c: the bpf_stats yardstick and the "empty programs" column), `floor` (the same,
  but connect() creates a tg_flow-sized sk_storage value that every packet looks up: the "storage
  floor" of workload 1). "With nftables" is `base` with a table in the netns that drops TCP to
  port 80 of the protected set (`ip daddr @protected tcp dport 80 drop`, output hook) — what a user
  might deploy instead. The agent runs in enforce mode with the bench policy for workloads 1–5 and in
  audit mode for 6–7.
- 1/2: short connections, 32 in flight; each connects, sends a 517-byte TLS 1.3 ClientHello, gets
  a TLS 1.3 ServerHello back and the server's reset. 3: one connection sends a ClientHello, reads the
  ServerHello (the flow is decided: min_tls_version 1.2 is judged on it), then 256 KiB writes for the
  round. 4: sequential connections; connect() time and connect → ClientHello →
  server-close time. Variants alternate round by round (A B N, B N A, ...); medians over rounds;
  ratio = median(with)/median(without); spread = min–max of the per-round ratios (each round's
  runs are adjacent in time); CV = coefficient of variation over rounds.
- CPU per connection (the headline of 1 and 2): the growth of `usage_usec` in `cpu.stat` of the
  client's cgroup plus the server's (`srv`) over a round, divided by the round's connections;
  softirq work is charged to whichever task it interrupts, so noise from other jobs is in it too.
  The client runs on CPU 0 and the server on CPU 1 in every variant (taskset; none on one CPU).
  Each run records the 1-minute load at its start, the machine's steal time during it and
  kernel.bpf_stats_enabled (the "Conditions" table); while the per-round difference tlsguard −
  none spans more than BENCH_SPREAD_LIMIT_US (6 µs) after BENCH_ROUNDS rounds, up to as many
  rounds again are run.
- Concurrent pairs (the headline of 1 and 2): run one after the other, the variants' CPU per
  connection swings with the host (steal, a neighbour's cache traffic) by more than tlsguard
  adds. So BENCH_PAIR_ROUNDS (15) rounds of BENCH_PAIR_SECS (3 s) run A, B, E and S (workload 2:
  A, B, E) at the same time: every client on CPU 0, every server on CPU 1, each variant with a
  server of its own in a cgroup of its own (B the sink in `srv`, the others one each in
  `srvA`/`srvE`/`srvS` at 198.51.100.31–33, not in the policy; their clients carry no tlsguard
  program, so the address makes no difference to them). Each variant's CPU per connection is
  its client's and its server's `usage_usec` over the round; figure = median of the per-round
  differences (ratios) against A in the same round, spread their min–max. The scheduler gives
  each client the same share of CPU 0, so a variant that costs more CPU per connection makes
  fewer: the conn/s ratio is the CPU ratio seen from the other side. `BENCH_ONLY=pairs-calibrate`
  runs the pairs with no program anywhere: its differences are the method's own bias (on the
  Intel host of 2026-12-08: −0.14 to +0.15 µs, ratios 0.996–1.001, 15 rounds).
- 3 (CPU): CPU per GB is the same cgroups' `usage_usec` over the round's bytes. The headline is
  measured apart: BENCH_BULK_PERF_ROUNDS (5) rounds of A/B/D/E alternating, each under
  `perf record -a -g -e cpu-clock -c 100000` (one sample per 0.1 ms of CPU); the share of
  loadgen's samples (client and server, with the softirq work run in their context) whose call
  chain holds `__cgroup_bpf_run_filter_skb`. Without tlsguard that function does not run, so the
  share is what the hook adds, and 1 − share the ratio it implies. perf's
  own work at each sample (the unwinding) is not sampled; it slows every variant alike.
- 5: `kernel.bpf_stats_enabled=1` only for these rounds (restored afterwards). Per-invocation
  time = Δrun_time_ns/Δrun_cnt of each program over a round; tlsguard's and the empty programs'
  rounds alternate on the same workload; the difference removes the two clock reads bpf_stats adds.
- 6: HTTP requests (plaintext) to the protected destination's port 80, agent in audit mode: one
  `plaintext` event each. Events = growth of the events file in lines; the agent's CPU time from
  /proc/PID/schedstat over the same window gives events per CPU-second (the rate one core sustains,
  since the generator on a 2-core machine cannot outrun the agent). Lost = violations − events.
- 6 (journal): bench/ai_sink, no kernel and no network: events handed to the App Insights sink on
  the agent thread (flood check, deep copy, queue) with a commit every 64 events, without and with
  the journal (the event serialized, encrypted with the event key, one write + fdatasync per
  commit into a spool directory under the run's temporary directory); CPU time of the thread, and
  wall time (fdatasync waits count there).
- 6 (App Insights per core): the same program, the sender thread's work on each event the agent
  thread handed over (a deep copy of a ~20-leaf event): 3 fields encrypted and 1 hashed, the
  envelope, the batch (500 items) and its gzip; events per second of that thread's CPU time.
- 7: VmRSS of the agent after start and 1 s idle (at rest), sampled during the flood, and VmHWM.
- Growth: the agent restarted with 1, 100, 10,000 and 100,000 prefixes (the protected /32 first,
  the rest seeded random /16–/32 prefixes elsewhere in IPv4 space); workload 1 A/B, then bpf_stats
  rounds. Open flows: before workload 1 starts, N connections to :8443 send a ClientHello (decided
  TLS flows, tracked when in `tg`) and stay open until it ends.
"""

if __name__ == "__main__":
    globals()["cmd_" + sys.argv[1].replace("-", "_")](*sys.argv[2:])
PYEOF

py() { python3 "$HELPER" "$@"; }

# record WORKLOAD VARIANT ROUND KEY VALUE
record() { printf '%s\t%s\t%s\t%s\t%s\n' "$@" >>"$RAW"; }
meta() { printf '%s=%s\n' "$1" "$2" >>"$META"; }

# kv LINE KEY → the value of KEY=... in loadgen's output line
kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }

setup()
{
	local cg a v
	log "setting up netns $NS, cgroups $CGP/{$(IFS=,; echo "${CGROUPS[*]}")}, pins $PIN"
	ip netns add "$NS" || die "ip netns add $NS"
	ip -n "$NS" link set lo up
	for a in "$PROT" "$OTHER" "${PAIR_ADDR[@]}"; do
		ip -n "$NS" addr add "$a/32" dev lo || die "ip addr add $a"
	done
	ip netns exec "$NS" sysctl -qw net.ipv4.ip_local_port_range="1024 65535" \
		net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=8192 ||
		die "netns sysctls"
	mkdir "$CGP" || die "mkdir $CGP"
	for cg in "${CGROUPS[@]}"; do
		mkdir "$CGP/$cg" || die "mkdir $CGP/$cg"
	done

	# the nftables reference: loaded only for variant N
	cat >"$TMP/nft-on.nft" <<-EOF
		table inet tgbench {
			set protected4 {
				type ipv4_addr
				flags interval
				elements = { $PROT/32 }
			}
			chain out {
				type filter hook output priority 0; policy accept;
				ip daddr @protected4 tcp dport 80 drop
			}
		}
	EOF
	ip netns exec "$NS" nft -c -f "$TMP/nft-on.nft" || die "nft rule set does not load"

	start_sink srv "$PROT:443/hello" "$OTHER:443/hello" "$PROT:80/hello" \
		"$PROT:8443/drain" "$OTHER:8443/drain"
	for v in "${!PAIR_ADDR[@]}"; do
		start_sink "$(pair_server_cgroup "$v")" "${PAIR_ADDR[$v]}:443/hello"
	done
}

# start_sink CGROUP LISTEN... → a loadgen sink in $CGP/CGROUP, on the server's CPU, ready
start_sink()
{
	local cg=$1 pid i
	shift
	"${IN_CG_NS[@]}" "$CGP/$cg" "$NS" "${PIN_SERVER[@]}" "$LOADGEN" sink --max-time 1800 "$@" \
		>"$TMP/sink.$cg.out" 2>&1 </dev/null &
	pid=$!
	SINK_PIDS+=("$pid")
	for ((i = 0; i < 50; i++)); do
		grep -q '^ready' "$TMP/sink.$cg.out" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || die "sink $cg exited: $(cat "$TMP/sink.$cg.out")"
		sleep 0.1
	done
	die "sink $cg not ready: $(cat "$TMP/sink.$cg.out")"
}

nft_on()
{
	ip netns exec "$NS" nft -f "$TMP/nft-on.nft" || die "loading the nftables rule set"
	NFT_ON=1
}

nft_off()
{
	[[ $NFT_ON -eq 1 ]] || return 0
	ip netns exec "$NS" nft delete table inet tgbench || die "removing the nftables rule set"
	NFT_ON=0
}

variant_cgroup()
{
	case $1 in
	A | N) echo base ;;
	B) echo tg ;;
	E) echo empty ;;
	S) echo floor ;;
	H) echo hfloor ;;
	D) echo nodns ;;
	P) echo pfloor ;;
	*) die "unknown variant $1" ;;
	esac
}

# cg_usage_us CGROUP... → the sum of their cpu.stat usage_usec (client + server CPU, user
# and system, softirq work charged to them included)
cg_usage_us()
{
	local cg t=0 u
	for cg in "$@"; do
		u=$(awk '$1 == "usage_usec" { print $2 }' "$cg/cpu.stat" 2>/dev/null)
		t=$((t + ${u:-0}))
	done
	echo "$t"
}

# steal_ms → the machine's steal time so far (/proc/stat, all CPUs), in ms
CLK_TCK=$(getconf CLK_TCK)
steal_ms() { awk -v hz="$CLK_TCK" '$1 == "cpu" { printf "%d", $9 * 1000 / hz }' /proc/stat; }

# Client and server run on fixed CPUs, the same in every variant, so that no variant
# gains or loses by where the scheduler happens to put them (one CPU, or BENCH_PIN=0: no pinning).
if [[ $(nproc) -ge 2 && ${BENCH_PIN:-1} == 1 ]]; then
	PIN_CLIENT=(taskset -c 0)
	PIN_SERVER=(taskset -c 1)
else
	PIN_CLIENT=()
	PIN_SERVER=()
fi

# per_conn OUT → CPU µs per connection of a conn run (cpu_us / conns)
per_conn() { awk -v c="$(kv "$1" cpu_us)" -v n="$(kv "$1" conns)" 'BEGIN { if (n > 0) printf "%.3f", c / n; else print "" }'; }

# lg VARIANT MODE ARGS... → loadgen's key=value line; a failed run breaks the bench.
lg()
{
	local v=$1 cg out rc=0
	shift
	cg=$(variant_cgroup "$v")
	[[ $v == N ]] && nft_on
	local u0 u1 s0 load
	read -r load _ </proc/loadavg
	s0=$(steal_ms)
	u0=$(cg_usage_us "$CGP/$cg" "$CGP/srv")
	out=$(timeout -k 5 900 "${IN_CG_NS[@]}" "$CGP/$cg" "$NS" "${PIN_CLIENT[@]}" "$LOADGEN" "$@" \
		2>"$TMP/lg.err") || rc=$?
	u1=$(cg_usage_us "$CGP/$cg" "$CGP/srv")
	out="$out steal_ms=$(($(steal_ms) - s0)) load1=$load bpf_stats=$(sysctl -n kernel.bpf_stats_enabled)"
	[[ $v == N ]] && nft_off
	if [[ $rc -ne 0 ]]; then
		die "loadgen $* (variant $v) exited with $rc: $(cat "$TMP/lg.err")"
	fi
	out="$out cpu_us=$((u1 - u0))"
	[[ "${BENCH_VERBOSE:-0}" == 1 ]] && log "  $v: $out"
	printf '%s\n' "$out"
}

# rotate ROUND VARIANTS... → the variants in this round's order (A B N, B N A, N A B, ...)
rotate()
{
	local r=$1 n i
	shift
	local vs=("$@")
	n=${#vs[@]}
	for ((i = 0; i < n; i++)); do
		printf '%s ' "${vs[$(((i + r) % n))]}"
	done
}

# ---- the agent ---------------------------------------------------------------------

POLICY=$TMP/policy.yaml
EVENTS=$TMP/events.jsonl
SOCK=$TMP/tlsguard.sock
AGENT_STARTS=0
AGENT_READY_S=0
LAST_AGENT_ERROR=""

# start_agent POLICY → 0 when ready; 1 with LAST_AGENT_ERROR when it refused to start.
start_agent()
{
	local policy=$1 i t0 t1
	AGENT_STARTS=$((AGENT_STARTS + 1))
	AGENT_LOG=$TMP/agent.$AGENT_STARTS.log
	t0=$(date +%s%N)
	"$TLSGUARD" agent --config "$policy" --cgroup "$CGP/tg" --pin-path "$PIN" \
		--events-file "$EVENTS" --socket "$SOCK" --dns-hooks "${BENCH_DNS_HOOKS:-auto}" \
		</dev/null >"$AGENT_LOG" 2>&1 &
	AGENT_PID=$!
	for ((i = 0; i < 1200; i++)); do
		if grep -q 'tlsguard: ready' "$AGENT_LOG" 2>/dev/null; then
			t1=$(date +%s%N)
			AGENT_READY_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
			return 0
		fi
		if ! kill -0 "$AGENT_PID" 2>/dev/null; then
			local rc=0
			wait "$AGENT_PID" 2>/dev/null || rc=$?
			AGENT_PID=""
			LAST_AGENT_ERROR=$(grep -v '^libbpf: ' "$AGENT_LOG" | grep -i 'error\|cannot\|fail\|invalid\|too many\|tlsguard:' |
				head -n 3 | tr '\n' ' ' | sed 's/|/\\|/g')
			[[ -n "$LAST_AGENT_ERROR" ]] || LAST_AGENT_ERROR=$(tail -n 3 "$AGENT_LOG" | tr '\n' ' ')
			LAST_AGENT_ERROR="exit status $rc: ${LAST_AGENT_ERROR:-no output}"
			return 1
		fi
		sleep 0.05
	done
	LAST_AGENT_ERROR="not ready within 60 s"
	kill_wait "$AGENT_PID"
	AGENT_PID=""
	return 1
}

stop_agent()
{
	[[ -n "$AGENT_PID" ]] || return 0
	kill -TERM "$AGENT_PID" 2>/dev/null
	local i
	for ((i = 0; i < 100; i++)); do
		kill -0 "$AGENT_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill_wait "$AGENT_PID"
	AGENT_PID=""
	# start every configuration from scratch: no adopted maps, no programs left behind
	if [[ -e "$PIN" ]]; then
		"$TLSGUARD" uninstall --pin-path "$PIN" >"$TMP/uninstall.log" 2>&1 ||
			die "tlsguard uninstall --pin-path $PIN: $(cat "$TMP/uninstall.log")"
	fi
}

must_start_agent()
{
	start_agent "$1" || die "agent did not start with $1: $LAST_AGENT_ERROR (log: $AGENT_LOG)"
}

rss_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
cpu_ns() { awk '{ print $1 }' "/proc/$1/schedstat"; }

status_json()
{
	"$TLSGUARD" status --socket "$SOCK" -o json >"$TMP/status.json" 2>"$TMP/status.err" ||
		die "tlsguard status: $(cat "$TMP/status.err")"
}

counter() { py status_get "$TMP/status.json" "counters.$1"; }

# ---- bpf_stats -------------------------------------------------------------------------

# progs CGROUP → "HOOK:NAME:ID ..." of every program attached there
progs()
{
	local out
	out=$(py cgprogs "$1" | tr '\n' ' ') || die "bpftool cgroup show $1"
	[[ -n "$out" ]] || die "no program attached to $1"
	echo "$out"
}

# One empty program per hook type tlsguard attached (the same types, the same
# cgroup level): variant E and the bpf_stats yardstick.
attach_empty()
{
	local spec hook done_hooks=" "
	# the yardstick, loaded once the agent runs: it mounts bpffs at /sys/fs/bpf when the
	# machine has none (agent/mounts.c), and the empty programs are pinned there too
	bpftool prog loadall "$EMPTY_OBJ" "$EPIN" || die "loading $EMPTY_OBJ"
	for spec in $(progs "$CGP/tg"); do
		hook=${spec%%:*}
		[[ $done_hooks == *" $hook "* ]] && continue
		done_hooks+="$hook "
		if [[ ! -e "$EPIN/empty_$hook" ]]; then
			log "WARNING: no empty $hook program in bench/empty.bpf.c: $hook is reported without a yardstick"
			continue
		fi
		bpftool cgroup attach "$CGP/empty" "$hook" pinned "$EPIN/empty_$hook" multi ||
			die "attaching the empty $hook program"
		local f prog
		for f in floor hfloor pfloor; do
			prog=$EPIN/empty_$hook
			[[ -e "$EPIN/${f}_$hook" ]] && prog=$EPIN/${f}_$hook
			bpftool cgroup attach "$CGP/$f" "$hook" pinned "$prog" multi ||
				die "attaching the $f $hook program"
		done
	done
	log "tlsguard hooks: $(progs "$CGP/tg"); yardstick: $(progs "$CGP/empty"); storage floor: $(progs "$CGP/floor")"
	attach_nodns
}

# Variant D: the agent's own programs on a cgroup of their own, all but the DNS observers
# (dnslearn's tg_dns_*), attached by id in the order the agent attached them: what DNS
# answer learning adds to every packet as two programs of its own. Where the agent chains
# them into tg_egress/tg_ingress (--dns-hooks auto on x86-64) none is attached: D is B. They are the same
# programs as B's, so their bpf_stats count both cgroups: stats_round reads them around
# one variant's round, while the other cgroup is idle.
attach_nodns()
{
	local spec hook name id
	for spec in $(progs "$CGP/tg"); do
		IFS=: read -r hook name id <<<"$spec"
		[[ $name == tg_dns_* ]] && continue
		bpftool cgroup attach "$CGP/nodns" "$hook" id "$id" multi ||
			die "attaching $name to $CGP/nodns"
	done
}

stats_on()
{
	STATS_OLD=$(sysctl -n kernel.bpf_stats_enabled)
	sysctl -qw kernel.bpf_stats_enabled=1 || die "cannot enable kernel.bpf_stats_enabled"
}

stats_off()
{
	[[ -n "$STATS_OLD" ]] && sysctl -qw kernel.bpf_stats_enabled="$STATS_OLD"
	STATS_OLD=""
}

# stats_round WL VARIANT ROUND MODE ARGS... : one loadgen run with the per-invocation
# run time of that variant's egress and connect4 programs recorded.
stats_round()
{
	local wl=$1 v=$2 r=$3 specs before after
	shift 3
	case $v in
	B) specs=$TG_PROGS ;;
	S) specs=$FLOOR_PROGS ;;
	H) specs=$HFLOOR_PROGS ;;
	D) specs=$NODNS_PROGS ;;
	P) specs=$PFLOOR_PROGS ;;
	*) specs=$EMPTY_PROGS ;;
	esac
	# shellcheck disable=SC2086 # one word per program
	before=$(py progstats $specs)
	lg "$v" "$@" >/dev/null
	# shellcheck disable=SC2086
	after=$(py progstats $specs)
	# keys: HOOK:NAME_ns / _cnt (the empty programs are named empty_HOOK)
	paste <(echo "$before") <(echo "$after") | awk -v wl="$wl" -v v="$v" -v r="$r" '
		{
			dc = $5 - $2; dt = $6 - $3
			if (dc > 0) {
				printf "%s\t%s\t%s\t%s_ns\t%.2f\n", wl, v, r, $1, dt / dc
				printf "%s\t%s\t%s\t%s_cnt\t%d\n", wl, v, r, $1, dc
			}
		}' >>"$RAW"
}

# ---- workloads ---------------------------------------------------------------------

CONN_ARGS=(-c "$CONC")

# record_conn WL VARIANT ROUND OUT → the figures of one conn run, with the round's conditions
record_conn()
{
	local k
	record "$1" "$2" "$3" cpu_us_conn "$(per_conn "$4")"
	for k in rate steal_ms load1 bpf_stats; do
		record "$1" "$2" "$3" "$k" "$(kv "$4" "$k")"
	done
}

# wide_spread WL LIMIT → true when the per-round B−A CPU µs per connection spans more than LIMIT
wide_spread()
{
	awk -F'\t' -v wl="$1" -v lim="$2" '
		$1 == wl && $4 == "cpu_us_conn" && ($2 == "A" || $2 == "B") { v[$3, $2] = $5; r[$3] = 1 }
		END {
			for (k in r) if ((k, "A") in v && (k, "B") in v) {
				d = v[k, "B"] - v[k, "A"]
				if (n++ == 0 || d < lo) lo = d
				if (n == 1 || d > hi) hi = d
			}
			exit !(n > 1 && hi - lo > lim)
		}' "$RAW"
}

# conn_rounds WL DEST VARIANTS... → ROUNDS rounds, and as many again while the spread is wide
conn_rounds()
{
	local wl=$1 dest=$2 r v out
	shift 2
	for ((r = 0; r < 2 * ROUNDS; r++)); do
		if ((r == ROUNDS)); then
			wide_spread "$wl" "$SPREAD_LIMIT_US" || break
			log "  the per-round difference spans more than $SPREAD_LIMIT_US µs: up to $ROUNDS more rounds"
		fi
		((r > ROUNDS)) && ! wide_spread "$wl" "$SPREAD_LIMIT_US" && break
		for v in $(rotate "$r" "$@"); do
			out=$(lg "$v" conn -d "$dest" "${CONN_ARGS[@]}" -t "$SECS")
			record_conn "$wl" "$v" "$r" "$out"
		done
	done
}

# pair_server_cgroup VARIANT → the cgroup of the variant's own server in the pairs
pair_server_cgroup() { if [[ $1 == B ]]; then echo srv; else echo "srv$1"; fi; }

# pair_usage_us VARIANT → usage_usec so far of the variant's client and server cgroups
pair_usage_us() { cg_usage_us "$CGP/$(variant_cgroup "$1")" "$CGP/$(pair_server_cgroup "$1")"; }

# pair_round WL BDEST ROUND VARIANTS... → one round of concurrent pairs: every variant's
# client (its cgroup, CPU 0) and its own server (CPU 1) at the same time, B to BDEST, the
# others to their own servers. The host's slowdowns (steal, a neighbour's cache traffic)
# fall on all of them at once, so the per-round differences are not the host's swings;
# the scheduler gives each client an equal share of its CPU. Records as record_conn does.
pair_round()
{
	local wl=$1 bdest=$2 r=$3 v load s0 s1 dest rc
	shift 3
	local -A u0 pid
	read -r load _ </proc/loadavg
	s0=$(steal_ms)
	for v in "$@"; do
		u0[$v]=$(pair_usage_us "$v")
	done
	for v in "$@"; do
		dest=$bdest
		[[ $v == B ]] || dest=${PAIR_ADDR[$v]}:443
		timeout -k 5 900 "${IN_CG_NS[@]}" "$CGP/$(variant_cgroup "$v")" "$NS" "${PIN_CLIENT[@]}" \
			"$LOADGEN" conn -d "$dest" "${CONN_ARGS[@]}" -t "$PAIR_SECS" \
			>"$TMP/pair.$v.out" 2>"$TMP/pair.$v.err" &
		pid[$v]=$!
	done
	for v in "$@"; do
		rc=0
		wait "${pid[$v]}" || rc=$?
		((rc == 0)) || die "loadgen conn (pair $wl, variant $v) exited with $rc: $(cat "$TMP/pair.$v.err")"
	done
	s1=$(steal_ms)
	for v in "$@"; do
		record_conn "$wl" "$v" "$r" "$(cat "$TMP/pair.$v.out") steal_ms=$((s1 - s0)) load1=$load \
bpf_stats=$(sysctl -n kernel.bpf_stats_enabled) cpu_us=$(($(pair_usage_us "$v") - ${u0[$v]}))"
	done
}

# pair_rounds WL BDEST VARIANTS... → PAIR_ROUNDS rounds of pair_round
pair_rounds()
{
	local wl=$1 dest=$2 r
	shift 2
	for ((r = 0; r < PAIR_ROUNDS; r++)); do
		pair_round "$wl" "$dest" "$r" "$@"
		[[ "${BENCH_VERBOSE:-0}" == 1 ]] &&
			log "  round $r: $(awk -F'\t' -v wl="$wl" -v r="$r" '$1 == wl && $3 == r && $4 == "cpu_us_conn" { printf "%s %s  ", $2, $5 }' "$RAW")"
	done
	return 0
}

# per_gb OUT → CPU ms per GB moved of a bulk run (client + server cgroups)
per_gb() { awk -v c="$(kv "$1" cpu_us)" -v n="$(kv "$1" bytes)" 'BEGIN { if (n > 0) printf "%.2f", c * 1e6 / n; else print "" }'; }

# bulk_rounds VARIANTS... → ROUNDS rounds of one bulk flow to the protected :8443, alternating:
# Gbit/s and CPU ms per GB (what the flow costs; on this kind of VM both move by 20-30 % from
# round to round, too much for a 1 % target: bulk_perf_rounds measures that one)
bulk_rounds()
{
	local r v out
	for ((r = 0; r < ROUNDS; r++)); do
		for v in $(rotate "$r" "$@"); do
			out=$(lg "$v" bulk -d "$PROT:8443" -t "$SECS")
			record bulk "$v" "$r" gbit_s "$(kv "$out" gbit_s)"
			record bulk "$v" "$r" cpu_ms_gb "$(per_gb "$out")"
			record bulk "$v" "$r" steal_ms "$(kv "$out" steal_ms)"
			if [[ ${BENCH_ONLY:-} == bulk ]]; then
				log "  round $r $v: $(per_gb "$out") CPU ms/GB, $(kv "$out" gbit_s) Gbit/s"
			fi
		done
	done
}

# hook_share PERFDATA → the share (%) of loadgen's samples (client and server, with the
# softirq work that runs in their context) whose call chain passes through the cgroup skb hook
hook_share()
{
	perf script -i "$1" -F comm,ip,sym 2>/dev/null | awk '
		function fin() { if (comm == "loadgen") { n++; if (hit) h++ } insamp = 0 }
		/^[^\t]/ { if (insamp) fin(); comm = $1; insamp = 1; hit = 0; next }
		/^\t/ { if ($2 == "__cgroup_bpf_run_filter_skb") hit = 1; next }
		/^$/ { if (insamp) fin() }
		END { if (insamp) fin(); if (n) printf "%.4f %d %d\n", 100 * h / n, n, h }'
}

# bulk_perf_rounds VARIANTS... → BULK_PERF_ROUNDS rounds of the bulk flow under `perf record -a -g`:
# the share of the workload's CPU spent in the cgroup skb hook (dispatch, programs, helpers).
# One run measures both sides of the comparison (the hook against everything else on the
# same CPUs), so it decides what the throughput ratio's ±20 % per round cannot.
BULK_PERF_ROUNDS=${BENCH_BULK_PERF_ROUNDS:-5}
bulk_perf_rounds()
{
	local r v out share pct n h ms_gb
	if ! command -v perf >/dev/null; then
		meta note "perf is not installed: the bulk flow's CPU share in the hook (target 3's headline) was not measured."
		return 0
	fi
	for ((r = 0; r < BULK_PERF_ROUNDS; r++)); do
		for v in $(rotate "$r" "$@"); do
			perf record -a -g -e cpu-clock -c 100000 -o "$TMP/bulk.perf" -- sleep "$SECS" >"$TMP/perf.log" 2>&1 &
			out=$(lg "$v" bulk -d "$PROT:8443" -t "$SECS")
			wait $! || die "perf record failed: $(cat "$TMP/perf.log")"
			share=$(hook_share "$TMP/bulk.perf")
			rm -f "$TMP/bulk.perf" "$TMP/bulk.perf.old"
			[[ -n $share ]] || die "perf recorded no loadgen samples in the bulk round of $v"
			read -r pct n h <<<"$share"
			record bulk_perf "$v" "$r" hook_pct "$pct"
			record bulk_perf "$v" "$r" samples "$n"
			# ms in the hook per GB moved: one sample per 0.1 ms of CPU (-c 100000 ns) over the run's bytes
			ms_gb=$(awk -v h="$h" -v b="$(kv "$out" bytes)" 'BEGIN { printf "%.3f", h * 0.1 / (b / 1e9) }')
			record bulk_perf "$v" "$r" hook_ms_gb "$ms_gb"
			record bulk_perf "$v" "$r" cpu_ms_gb "$(per_gb "$out")"
			[[ ${BENCH_ONLY:-} == bulk ]] || continue
			log "  perf round $r $v: $pct % of the workload's $n samples in the hook, $ms_gb ms/GB in it, $(per_gb "$out") CPU ms/GB, $(kv "$out" gbit_s) Gbit/s"
		done
	done
}

# the spread of the B−A CPU per connection that asks for more rounds (the targets are 1 and 3.5 µs)
SPREAD_LIMIT_US=${BENCH_SPREAD_LIMIT_US:-6}

workload_throughput()
{
	local r v out
	log "workloads 1 and 8: short connections to the protected destination (A/B/N/E/S x $ROUNDS+, ${SECS}s)"
	conn_rounds conn_prot "$PROT:443" A B N E S
	log "workload 2: short connections to the unprotected destination (A/B/E x $ROUNDS+)"
	conn_rounds conn_other "$OTHER:443" A B E
	log "workloads 1 and 2 in concurrent pairs (A, B, E, S at once, x $PAIR_ROUNDS, ${PAIR_SECS}s)"
	pair_rounds pair_prot "$PROT:443" A B E S
	pair_rounds pair_other "$OTHER:443" A B E
	log "workloads 3 and 8: one bulk flow after its ClientHello (A/B/N/E x $ROUNDS)"
	bulk_rounds A B N E
	log "workload 3: the bulk flow's CPU in the cgroup skb hook, by perf (A/B/D/E x $BULK_PERF_ROUNDS)"
	bulk_perf_rounds A B D E
	log "workload 4: connect latency ($LAT_N sequential connections, A/B x $ROUNDS)"
	for ((r = 0; r < ROUNDS; r++)); do
		for v in $(rotate "$r" A B); do
			out=$(lg "$v" latency -d "$PROT:443" -n "$LAT_N" -t 30)
			local k
			for k in connect_p50_us connect_p99_us txn_p50_us txn_p99_us; do
				record latency "$v" "$r" "$k" "$(kv "$out" "$k")"
			done
		done
	done

	# the B runs must have been tracked and classified, the unprotected ones not
	status_json
	local tracked tls
	tracked=$(counter flows_tracked)
	tls=$(counter tls)
	log "agent counters: flows_tracked=$tracked tls=$tls"
	[[ "${tracked:-0}" -gt 0 && "${tls:-0}" -gt 0 ]] ||
		die "variant B did not measure the classification path: flows_tracked=$tracked, TLS verdicts=$tls (the sink answers every ClientHello with a TLS 1.3 ServerHello)"
}

workload_bpf_stats()
{
	local r v
	TG_PROGS=$(progs "$CGP/tg")
	EMPTY_PROGS=$(progs "$CGP/empty")
	log "workload 5: BPF run time per invocation (B/E x $SMALL_ROUNDS)"
	stats_on
	for ((r = 0; r < SMALL_ROUNDS; r++)); do
		for v in $(rotate "$r" B E); do
			stats_round stats_bulk_prot "$v" "$r" bulk -d "$PROT:8443" -t "$SMALL_SECS"
			stats_round stats_bulk_other "$v" "$r" bulk -d "$OTHER:8443" -t "$SMALL_SECS"
			stats_round stats_conn_prot "$v" "$r" conn -d "$PROT:443" "${CONN_ARGS[@]}" -t "$SMALL_SECS"
			stats_round stats_conn_other "$v" "$r" conn -d "$OTHER:443" "${CONN_ARGS[@]}" -t "$SMALL_SECS"
		done
	done
	stats_off
}

workload_events()
{
	local r out lines0 lines1 cpu0 cpu1 t0 t1 peak s n prev i lgpid viol
	stop_agent
	py policy "$POLICY" audit "/$ID/tg" "$EVENTS" 1 "[80, 443, 8443]" "$PROT"
	must_start_agent "$POLICY"
	sleep 1
	record rss B 0 rest_kib "$(rss_kib "$AGENT_PID" VmRSS)"
	log "workload 7: agent VmRSS at rest $(rss_kib "$AGENT_PID" VmRSS) kB"
	log "workload 6: plaintext violations in audit mode -> events file (x $SMALL_ROUNDS, ${SECS}s)"
	local perf_pid=""
	if [[ -n "${BENCH_PERF:-}" ]]; then
		# shellcheck disable=SC2086 # BENCH_PERF_OPTS is a list of perf options
		perf record ${BENCH_PERF_OPTS:--g} -o "$BENCH_PERF" -p "$AGENT_PID" >"$TMP/perf.log" 2>&1 &
		perf_pid=$!
		sleep 0.5
	fi
	for ((r = 0; r < SMALL_ROUNDS; r++)); do
		lines0=$(wc -l <"$EVENTS")
		cpu0=$(cpu_ns "$AGENT_PID")
		t0=$(date +%s%N)
		lg B conn -d "$PROT:80" -p http "${CONN_ARGS[@]}" -t "$SECS" >"$TMP/events-lg.out" &
		lgpid=$!
		peak=0
		while kill -0 "$lgpid" 2>/dev/null; do
			s=$(rss_kib "$AGENT_PID" VmRSS)
			((s > peak)) && peak=$s
			sleep 0.2
		done
		wait "$lgpid" || die "event generator failed"
		out=$(cat "$TMP/events-lg.out")
		viol=$(kv "$out" conns)
		# the agent may still be writing: wait until the file stops growing
		prev=-1
		for ((i = 0; i < 50; i++)); do
			n=$(wc -l <"$EVENTS")
			[[ $n -eq $prev ]] && break
			prev=$n
			t1=$(date +%s%N)
			sleep 0.1
		done
		lines1=$(wc -l <"$EVENTS")
		cpu1=$(cpu_ns "$AGENT_PID")
		n=$((lines1 - lines0))
		record events B "$r" violations "$viol"
		record events B "$r" events "$n"
		record events B "$r" lost "$((viol - n))"
		record events B "$r" rate "$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / ((b - a) / 1e9) }')"
		record events B "$r" cpu_pct "$(awk -v c="$((cpu1 - cpu0))" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", c / (b - a) * 100 }')"
		if ((n > 0 && cpu1 > cpu0)); then
			record events B "$r" per_cpu_s "$(awk -v n="$n" -v c="$((cpu1 - cpu0))" 'BEGIN { printf "%.1f", n / (c / 1e9) }')"
			record events B "$r" us_per_event "$(awk -v n="$n" -v c="$((cpu1 - cpu0))" 'BEGIN { printf "%.3f", c / 1e3 / n }')"
		fi
		record rss B "$r" flood_kib "$peak"
		log "  round $r: $viol violations, $n events, agent CPU $(((cpu1 - cpu0) / 1000000)) ms"
	done
	if [[ -n "$perf_pid" ]]; then
		kill -INT "$perf_pid" 2>/dev/null
		wait "$perf_pid" 2>/dev/null || true
		log "perf data of the agent during the flood: $BENCH_PERF"
	fi
	record rss B 0 hwm_kib "$(rss_kib "$AGENT_PID" VmHWM)"
	status_json
	meta note "Event flood: the agent's own counters after it: events_emitted=$(counter events_emitted), events_lost=$(counter events_lost), plaintext=$(counter plaintext)."
	[[ "$(counter plaintext)" -gt 0 ]] || die "no plaintext verdict during the event flood"
}

# The App Insights journal's cost on the agent thread (bench/ai_sink: submit +
# group commit per 64 events, one write + fdatasync each), against the same
# without the journal. No network, no kernel: the sink's own work only.
workload_journal()
{
	local out line r r_var
	[[ -x "$BENCHDIR/ai_sink" ]] || { meta note "bench/ai_sink not built: no journal figures"; return 0; }
	log "workload 6b: App Insights submit + commit, with and without the journal"
	for ((r = 0; r < SMALL_ROUNDS; r++)); do
		out=$(cd "$TMP" && "$BENCHDIR/ai_sink" "${BENCH_AI_EVENTS:-50000}" 2>&1) || die "bench/ai_sink failed: $out"
		while IFS= read -r line; do
			case $line in
			"pipeline (3 encrypted"*)
				record ai_pipeline B "$r" per_core "$(sed -n 's/.*= \([0-9]*\) events\/s per core.*/\1/p' <<<"$line")"
				record ai_pipeline B "$r" us_per_event "$(sed -n 's/.*per core, \([0-9.]*\) us\/event.*/\1/p' <<<"$line")"
				continue
				;;
			"submit + commit"*"no journal"*) r_var=A ;;
			"submit + commit"*"journal on"*) r_var=B ;;
			*) continue ;;
			esac
			record journal "$r_var" "$r" cpu_rate "$(sed -n 's/.*: \([0-9]*\) events\/s CPU.*/\1/p' <<<"$line")"
			record journal "$r_var" "$r" wall_rate "$(sed -n 's/.*event), \([0-9]*\) events\/s wall.*/\1/p' <<<"$line")"
			record journal "$r_var" "$r" us_per_event "$(sed -n 's/.*(\([0-9.]*\) us\/event).*/\1/p' <<<"$line")"
		done <<<"$out"
		log "  round $r: $(grep -m1 '^pipeline (3' <<<"$out" | sed 's/.*= //')"
	done
}

workload_prefixes()
{
	local p r v out
	EMPTY_PROGS=$(progs "$CGP/empty")
	meta prefixes "${PREFIXES[*]}"
	for p in "${PREFIXES[@]}"; do
		stop_agent
		py policy "$POLICY.$p" enforce "/$ID/tg" "$EVENTS" "$p" "[443, 8443]" "$PROT"
		if ! start_agent "$POLICY.$p"; then
			log "growth: $p prefixes: the agent refused: $LAST_AGENT_ERROR"
			meta "prefix_${p}_error" "$LAST_AGENT_ERROR"
			continue
		fi
		sleep 1
		record "prefix_$p" B 0 ready_s "$AGENT_READY_S"
		record "prefix_$p" B 0 rss_kib "$(rss_kib "$AGENT_PID" VmRSS)"
		log "growth: $p prefixes: agent ready in ${AGENT_READY_S}s, VmRSS $(rss_kib "$AGENT_PID" VmRSS) kB"
		for ((r = 0; r < SMALL_ROUNDS; r++)); do
			for v in $(rotate "$r" A B); do
				out=$(lg "$v" conn -d "$PROT:443" "${CONN_ARGS[@]}" -t "$SMALL_SECS")
				record "prefix_$p" "$v" "$r" rate "$(kv "$out" rate)"
			done
		done
		TG_PROGS=$(progs "$CGP/tg")
		stats_on
		for ((r = 0; r < SMALL_ROUNDS; r++)); do
			for v in $(rotate "$r" B E); do
				stats_round "prefix_$p" "$v" "$r" conn -d "$PROT:443" "${CONN_ARGS[@]}" -t 1
			done
		done
		stats_off
	done
	stop_agent
}

workload_open_flows()
{
	local n r v out
	meta open_flows "${OPEN_FLOWS[*]}"
	py policy "$POLICY" enforce "/$ID/tg" "$EVENTS" 1 "[443, 8443]" "$PROT"
	must_start_agent "$POLICY"
	for n in "${OPEN_FLOWS[@]}"; do
		log "growth: workload 1 with $n open tracked flows (A/B x $SMALL_ROUNDS)"
		for ((r = 0; r < SMALL_ROUNDS; r++)); do
			for v in $(rotate "$r" A B); do
				out=$(lg "$v" conn -d "$PROT:443" "${CONN_ARGS[@]}" -t "$SMALL_SECS" \
					--open "$n" --open-to "$PROT:8443")
				record "open_$n" "$v" "$r" rate "$(kv "$out" rate)"
			done
		done
	done
	stop_agent
}

# ---- main --------------------------------------------------------------------------------

LOAD0=$(cut -d' ' -f1 /proc/loadavg)
meta date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
meta machine "$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo), $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
meta kernel "$(uname -sr)"
meta tlsguard "$("$TLSGUARD" version 2>/dev/null | head -n 1)"
if command -v git >/dev/null && git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
	dirty=""
	[[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]] && dirty=" + uncommitted changes"
	meta commit "$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$dirty"
fi
meta secs "$SECS"
meta ncpu "$(nproc)"
meta run "$ROUNDS rounds x ${SECS}s (growth and bpf_stats: $SMALL_ROUNDS x ${SMALL_SECS}s), $CONC connections in flight, IPv4 over lo in a netns"
meta bpf_stats_before "$(sysctl -n kernel.bpf_stats_enabled)"
meta spread_limit_us "$SPREAD_LIMIT_US"
meta pair_rounds "$PAIR_ROUNDS"
meta pair_secs "$PAIR_SECS"
meta pinning "$(if [[ ${#PIN_CLIENT[@]} -gt 0 ]]; then echo "client ${PIN_CLIENT[*]}, server ${PIN_SERVER[*]}"; else echo none; fi)"
mitig=""
for f in spectre_v2 retbleed spec_rstack_overflow; do
	[[ -r /sys/devices/system/cpu/vulnerabilities/$f ]] &&
		mitig+="$f: $(cut -c1-60 /sys/devices/system/cpu/vulnerabilities/$f); "
done
meta mitigations "${mitig%; }"
meta dns_hooks "${BENCH_DNS_HOOKS:-auto} ($(if "$TLSGUARD" version | grep -q '^  tail calls with subprograms: *yes'; then echo "this kernel can chain"; else echo "this kernel cannot chain: separate"; fi))"
[[ "$(sysctl -n kernel.bpf_stats_enabled)" != 0 ]] &&
	meta note "kernel.bpf_stats_enabled was already on when the run started (another user?): every BPF invocation paid two extra clock reads during the A/B rounds too."

# profile_variants KEY MODE ARGS... → with BENCH_PERF=FILE, one more loadgen run of each variant
# in BENCH_PERF_VARIANTS (default "A B") under `perf record -a` into FILE.VARIANT; logs KEY
profile_variants()
{
	local key=$1 v out
	shift
	[[ -n "${BENCH_PERF:-}" ]] || return 0
	for v in ${BENCH_PERF_VARIANTS:-A B}; do
		# shellcheck disable=SC2086 # BENCH_PERF_OPTS is a list of perf options
		perf record -a ${BENCH_PERF_OPTS:--g} -o "$BENCH_PERF.$v" -- sleep "$SECS" >"$TMP/perf.log" 2>&1 &
		out=$(lg "$v" "$@")
		wait $! || die "perf record failed: $(cat "$TMP/perf.log")"
		log "  perf of $v (the whole machine): $BENCH_PERF.$v, $key=$(kv "$out" "$key")"
	done
}

# print_medians WL KEY... → per variant and key, the median over the rounds of WL
print_medians()
{
	local wl=$1
	shift
	awk -F'\t' -v wl="$wl" -v keys=" $* " '$1 == wl && index(keys, " " $4 " ") { print $2, $4, $5 }' "$RAW" |
		sort -k1,1 -k2,2 -k3,3g | awk '
		{ k = $1 " " $2; v[k, ++n[k]] = $3 }
		END { for (k in n) { m = n[k]; med = m % 2 ? v[k, (m + 1) / 2] : (v[k, m / 2] + v[k, m / 2 + 1]) / 2
			printf "median %s: %.3f (%d rounds)\n", k, med, m } }' | sort
}

# section 6 alone: its figures per round on stdout, RESULTS_MD untouched
only_events()
{
	setup
	workload_events
	stop_agent
	workload_journal
	awk -F'\t' '$1 == "events" || $1 == "journal" { print $1, $2, "round", $3, $4 "=" $5 }' "$RAW"
	awk -F'\t' '$1 == "events" && $4 == "per_cpu_s" { s += $5; n++ }
		END { if (n) printf "events per agent CPU-second, mean of %d rounds: %.0f\n", n, s / n }' "$RAW"
	grep '^note=' "$META" | cut -d= -f2-
	exit 0
}
# bpf_stats of short connections to the protected destination alone (B/D/E/S/H/P alternating,
# BENCH_ROUNDS rounds): per program, ns per invocation and invocations per connection
only_stats()
{
	local r v
	setup
	py policy "$POLICY" enforce "/$ID/tg" "$EVENTS" 1 "[443, 8443]" "$PROT"
	must_start_agent "$POLICY"
	attach_empty
	TG_PROGS=$(progs "$CGP/tg")
	EMPTY_PROGS=$(progs "$CGP/empty")
	FLOOR_PROGS=$(progs "$CGP/floor")
	HFLOOR_PROGS=$(progs "$CGP/hfloor")
	PFLOOR_PROGS=$(progs "$CGP/pfloor")
	NODNS_PROGS=$(progs "$CGP/nodns")
	stats_on
	for ((r = 0; r < ROUNDS; r++)); do
		for v in $(rotate "$r" B D E S H P); do
			stats_round stats_conn_prot "$v" "$r" conn -d "$PROT:443" "${CONN_ARGS[@]}" -t "$SECS"
		done
	done
	stats_off
	stop_agent
	awk -F'\t' '$1 == "stats_conn_prot" { print $2, "round", $3, $4 "=" $5 }' "$RAW"
	exit 0
}
# workload 1 alone (A/B/D/E/S/H/P alternating, BENCH_ROUNDS rounds): per round and as medians,
# CPU µs per connection (client + server cgroups) and conn/s
only_conn()
{
	local r v out
	setup
	py policy "$POLICY" enforce "/$ID/tg" "$EVENTS" 1 "[443, 8443]" "$PROT"
	must_start_agent "$POLICY"
	attach_empty
	for ((r = 0; r < ROUNDS; r++)); do
		for v in $(rotate "$r" A B D E S H P); do
			out=$(lg "$v" conn -d "$PROT:443" "${CONN_ARGS[@]}" -t "$SECS")
			record_conn conn_prot "$v" "$r" "$out"
			log "  round $r $v: $(per_conn "$out") µs/conn, $(kv "$out" rate) conn/s"
		done
	done
	profile_variants conns conn -d "$PROT:443" "${CONN_ARGS[@]}" -t "$SECS"
	stop_agent
	print_medians conn_prot cpu_us_conn rate
	exit 0
}
# workload 3 alone (A/B/E alternating, BENCH_ROUNDS rounds): per round and as medians,
# CPU ms per GB (client + server cgroups) and Gbit/s
only_bulk()
{
	setup
	py policy "$POLICY" enforce "/$ID/tg" "$EVENTS" 1 "[443, 8443]" "$PROT"
	must_start_agent "$POLICY"
	attach_empty
	bulk_rounds A B E
	bulk_perf_rounds A B D E
	profile_variants gbit_s bulk -d "$PROT:8443" -t "$SECS"
	stop_agent
	print_medians bulk cpu_ms_gb gbit_s
	print_medians bulk_perf hook_pct hook_ms_gb
	exit 0
}
# workloads 1 and 2 in concurrent pairs alone (BENCH_PAIR_ROUNDS rounds): per round, then
# the medians of the per-round differences and ratios against A
# (pairs-calibrate: the same with no program anywhere, so every variant is "without" and
# the differences are the method's own bias between the clients' servers and addresses)
only_pairs()
{
	local calibrate=$1
	setup
	if ((!calibrate)); then
		py policy "$POLICY" enforce "/$ID/tg" "$EVENTS" 1 "[443, 8443]" "$PROT"
		must_start_agent "$POLICY"
		attach_empty
	fi
	BENCH_VERBOSE=1 pair_rounds pair_prot "$PROT:443" A B E S
	BENCH_VERBOSE=1 pair_rounds pair_other "$OTHER:443" A B E
	((calibrate)) || stop_agent
	py pairs "$RAW"
	exit 0
}
case "${BENCH_ONLY:-}" in
"") ;;
events) only_events ;;
stats) only_stats ;;
conn) only_conn ;;
bulk) only_bulk ;;
pairs) only_pairs 0 ;;
pairs-calibrate) only_pairs 1 ;;
*) die "BENCH_ONLY=$BENCH_ONLY: only 'events', 'stats', 'conn', 'bulk', 'pairs' and 'pairs-calibrate' are known" ;;
esac

setup
py policy "$POLICY" enforce "/$ID/tg" "$EVENTS" 1 "[443, 8443]" "$PROT"
must_start_agent "$POLICY"
log "agent ready in ${AGENT_READY_S}s (pid $AGENT_PID)"
attach_empty
workload_throughput
workload_bpf_stats
workload_events
stop_agent
workload_journal
workload_prefixes
workload_open_flows

LOAD1=$(cut -d' ' -f1 /proc/loadavg)
meta load "$LOAD0 / $LOAD1 ($(nproc) CPUs)"
meta duration "$(($(date +%s) - T_START)) s"
if awk -v a="$LOAD0" -v b="$LOAD1" -v n="$(nproc)" 'BEGIN { exit !(a > 0.5 || b > n + 0.5) }'; then
	meta note "The machine was not idle (load average $LOAD0 before the run): other jobs compete for the same CPUs, so expect noise; compare the spread columns before reading much into a ratio."
fi
py report "$RAW" "$META" "$RESULTS"
# the DNS programs per packet: crafted packets, no workload (bench/dns_cost.c)
"$BENCHDIR/dns_cost" "$BENCHDIR/../dns.bpf.o" "$EMPTY_OBJ" >"$RESULTS.dns" ||
	die "bench/dns_cost failed"
{ echo; cat "$RESULTS.dns"; } >>"$RESULTS"
rm -f "$RESULTS.dns"
# judging per segment: the verdict code on crafted segments, no workload (bench/verdict_cost.c)
"$BENCHDIR/verdict_cost" >"$RESULTS.verdict" || die "bench/verdict_cost failed"
{ echo; cat "$RESULTS.verdict"; } >>"$RESULTS"
rm -f "$RESULTS.verdict"
log "wrote $RESULTS"
