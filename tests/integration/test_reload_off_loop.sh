#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Reloads do not stall the agent, whatever the file (docs/operations.md,
# "Reloads"). A status prober times every answer of the control socket while:
#  1. the policy file becomes 16 MiB of nested YAML: `tlsguard policy check`
#     refuses it in under a second (CPU time) with FILE:LINE:COL, the agent's
#     reload refuses it, the old policy keeps blocking;
#  2. it becomes a valid policy of 65,533 prefixes (prepared on the reload
#     thread for seconds under ASan, written into the maps in slices): status
#     says "reloading" meanwhile, the old class keeps blocking plaintext
#     throughout, then the new policy is in force;
#  3. back to the small policy (65,530 entries leave the maps);
#  4. two SIGHUPs and a file change during a reload: one more reload runs
#     after it, and the file's last content is what ends up in force.
# Every status answer takes less than 100 ms; the slowest is reported. And no
# step of a reload on the agent's event loop (a slice of map writes, the commit)
# takes 100 ms, as the agent logs it. This VM runs other tests at the same time:
# the agent's loop thread and the prober run at nice -5 so that what is measured
# is the agent (its reload thread runs at nice 10 of its own), not the neighbours.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

POLICY="$TG_TMP/policy.yaml"
LIMIT_MS=100

# write_policy FILE FILLER [EXTRA_CLASS]: "storage" (enforce) plus FILLER /32s
write_policy()
{
	python3 - "$1.tmp" "$2" "${3:-}" "$TG_CG_REL" "$TG_PROT4" "$TG_OTHER4" "$TG_EVENTS" <<'PY'
import sys
path, n, extra, cg, p4, o4, events = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
with open(path, "w") as f:
    f.write('mode: enforce\nworkloads:\n  cgroups: ["%s"]\ndestinations:\n' % cg)
    f.write('  - name: storage\n    cidrs: ["%s/32"]\n    ports: [80, 443]\n' % p4)
    if extra:
        f.write('  - name: %s\n    cidrs: ["%s/32"]\n' % (extra, o4))
    if n:
        f.write('  - name: filler\n    cidrs:\n')
        f.writelines('      - "10.%d.%d.%d/32"\n' % (i >> 16 & 255, i >> 8 & 255, i & 255) for i in range(n))
    f.write('events:\n  file: "%s"\n' % events)
PY
	mv "$1.tmp" "$1"	# the way editors and ConfigMaps replace files
}

count_agent() { count_events "$TG_EVENTS" "e.get('type') == 'agent' and e.get('action') == '$1'"; }
wait_agent_count()	# ACTION N SECONDS
{
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		[[ $(count_agent "$1") -ge $2 ]] && return 0
		sleep 0.1
	done
	tg_dump_events
	tg_fail "no $2th agent '$1' event within $3 s"
}

# probe_start / probe_stop NAME: status answers timed meanwhile (status_probe.py)
probe_start()
{
	rm -f "$TG_TMP/probe.stop" "$TG_TMP/probe.ready"
	nice -n -5 python3 "$(dirname "$0")/status_probe.py" --socket "$TG_SOCK" --stop "$TG_TMP/probe.stop" \
		--ready "$TG_TMP/probe.ready" --slow-ms "$LIMIT_MS" >"$TG_TMP/probe.out" 2>&1 &
	PROBE_PID=$!
	TG_PIDS+=("$PROBE_PID")
	for _ in $(seq 100); do
		[[ -e "$TG_TMP/probe.ready" ]] && return 0
		sleep 0.05
	done
	tg_fail "the status prober got no answer: $(cat "$TG_TMP/probe.out")"
}
probe_stop()	# NAME MIN_RELOADING
{
	touch "$TG_TMP/probe.stop"
	wait "$PROBE_PID" || tg_fail "status prober failed: $(cat "$TG_TMP/probe.out")"
	tg_log "$1: status answers: $(cat "$TG_TMP/probe.out")"
	python3 - "$TG_TMP/probe.out" "$1" "$LIMIT_MS" "$2" <<'PY' || tg_fail "$1: status was slow or failed (above)"
import json, sys
r, what, limit, min_reloading = json.load(open(sys.argv[1])), sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
bad = []
if r["errors"]:
    bad.append("errors: %s" % r["errors"])
if r["n"] < 5:
    bad.append("only %d answers" % r["n"])
if r["max_ms"] is not None and r["max_ms"] >= limit:
    bad.append("slowest answer %.1f ms (>= %g ms): %s" % (r["max_ms"], limit, r["slow"]))
if r["reloading"] < min_reloading:
    bad.append("%d answers during the reload (want at least %d)" % (r["reloading"], min_reloading))
if bad:
    sys.exit("%s: %s" % (what, "; ".join(bad)))
PY
}

plain_blocked()	# WHAT
{
	tg_client plain curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
	assert_rc_nonzero "plaintext to storage $1"
}

tg_start_plain_server web "$TG_PROT4" 80
write_policy "$POLICY" 0
tg_start_agent enforce "$POLICY"
wait_agent_count start 1 10
renice -n -5 -p "$TG_AGENT_PID" >/dev/null	# the main thread only: the event loop

# ---- 1. 16 MiB of nested YAML
python3 -c '
import sys
n = ((16 << 20) - len("mode: ")) // 2
open(sys.argv[1], "w").write("mode: " + "[" * n + "]" * n)' "$TG_TMP/nested.yaml"
assert_eq $((16 << 20)) "$(stat -c %s "$TG_TMP/nested.yaml")" "size of the nested file"
python3 - "$TLSGUARD" "$TG_TMP/nested.yaml" >"$TG_TMP/check-nested.out" <<'PY' ||
import resource, subprocess, sys, time
t0 = time.monotonic()
p = subprocess.run([sys.argv[1], "policy", "check", sys.argv[2]], capture_output=True, text=True)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print("rc=%d cpu=%.3f wall=%.3f err=%s" % (p.returncode, ru.ru_utime + ru.ru_stime, wall, p.stderr.strip()))
PY
	tg_fail "policy check did not run"
tg_log "policy check of 16 MiB nested YAML: $(cat "$TG_TMP/check-nested.out")"
assert_file_contains "$TG_TMP/check-nested.out" '^rc=2 ' "policy check refuses it with exit 2"
assert_file_contains "$TG_TMP/check-nested.out" \
	"err=tlsguard: $TG_TMP/nested.yaml:1:38: lists and mappings nested more than 32 deep$" \
	"one clear message with FILE:LINE:COL"
cpu=$(sed -E 's/.* cpu=([0-9.]+) .*/\1/' "$TG_TMP/check-nested.out")
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 1.0 else 1)" "$cpu" ||
	tg_fail "policy check took $cpu s of CPU time for 16 MiB of nested YAML (limit 1 s)"

probe_start
cp "$TG_TMP/nested.yaml" "$POLICY.tmp"
mv "$POLICY.tmp" "$POLICY"
wait_agent_count reload_failed 1 20
sleep 0.5
probe_stop "reload of 16 MiB nested YAML" 0
assert_file_contains "$TG_AGENT_LOG" "$POLICY:1:38: lists and mappings nested more than 32 deep" \
	"the agent says why"
plain_blocked "after the refused reload"

# ---- 2. a valid policy of 65,533 prefixes, prepared and applied while status answers
write_policy "$TG_TMP/big.yaml" 65532 registry
probe_start
mv "$TG_TMP/big.yaml" "$POLICY"
# plaintext keeps being blocked while the reload runs
for i in 1 2 3; do
	plain_blocked "during the reload ($i)"
done
wait_agent_count reload 1 60
sleep 0.3
probe_stop "reload of 65,533 prefixes" 1
st=$("$TLSGUARD" status --socket "$TG_SOCK" -o json)
assert_eq 65534 "$(json_get "$st" policy.map_entries)" "map entries after the big reload"
assert_eq false "$(json_get "$st" policy.reloading)" "policy.reloading once done"
assert_eq "$(sha256sum "$POLICY" | cut -d' ' -f1)" "$(json_get "$st" policy.sha256)" "sha256 of the policy in force"
plain_blocked "after the big reload"

# ---- 3. back to the small policy: 65,532 entries leave
write_policy "$TG_TMP/small.yaml" 0
probe_start
mv "$TG_TMP/small.yaml" "$POLICY"
wait_agent_count reload 2 60
sleep 0.3
probe_stop "reload back to one prefix" 0
assert_eq 1 "$(json_get "$("$TLSGUARD" status --socket "$TG_SOCK" -o json)" policy.map_entries)" \
	"map entries after the reload back"

# ---- 4. reloads on top of a reload: the last content wins
write_policy "$TG_TMP/big.yaml" 65532 registry
probe_start
mv "$TG_TMP/big.yaml" "$POLICY"
sleep 0.2
kill -HUP "$TG_AGENT_PID"
kill -HUP "$TG_AGENT_PID"
write_policy "$TG_TMP/last.yaml" 0 database
mv "$TG_TMP/last.yaml" "$POLICY"
want=$(sha256sum "$POLICY" | cut -d' ' -f1)
for _ in $(seq 600); do
	st=$("$TLSGUARD" status --socket "$TG_SOCK" -o json)
	[[ $(json_get "$st" policy.sha256) == "$want" && $(json_get "$st" policy.reloading) == false ]] && break
	sleep 0.1
done
probe_stop "reloads during a reload" 1
assert_eq "$want" "$(json_get "$st" policy.sha256)" "the last file is in force"
assert_eq 2 "$(json_get "$st" policy.map_entries)" "map entries of the last file"
python3 - "$st" <<'PY' || tg_fail "classes after the reloads"
import json, sys
names = sorted(c["name"] for c in json.loads(sys.argv[1])["policy"]["classes"])
assert names == ["database", "storage"], names
PY
n=$(count_agent reload)
[[ $n -ge 3 && $n -le 5 ]] || tg_fail "$n reload events after the reloads during a reload (want 3 to 5)"
assert_eq 1 "$(json_get "$st" policy.reload_failures)" "reload failures (the nested file only)"
plain_blocked "after the reloads"

# the agent's own account of each apply: no step of the loop near the bound
grep -E 'reload: policy .* in force \(.*the longest [0-9.]+ ms\)' "$TG_AGENT_LOG" >"$TG_TMP/applies" ||
	tg_fail "the agent logged no apply"
tg_log "applies: $(sed -E 's/.*in force \((.*)\)$/\1/' "$TG_TMP/applies" | tr '\n' ';')"
python3 - "$TG_TMP/applies" "$LIMIT_MS" <<'PY' || tg_fail "a step of a reload took the event loop too long (above)"
import re, sys
limit = float(sys.argv[2])
for line in open(sys.argv[1]):
    ms = float(re.search(r"the longest ([0-9.]+) ms", line).group(1))
    if ms >= limit:
        sys.exit("%s: a step of %.1f ms" % (line.strip(), ms))
PY
tg_stop_agent
assert_server web 6 -eq 0
assert_events_valid
