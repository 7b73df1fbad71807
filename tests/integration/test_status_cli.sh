#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The operator's interface against a live agent after known traffic:
# `status -o json` field by field (counters equal the traffic sent), the text
# view, `--check` healthy and degraded, `events` with filters and --follow,
# the one-line error when no agent answers, and /metrics matching status.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

# ---- no agent: one line that names the socket, exit 1
tg_capture no-agent "$TLSGUARD" status --socket "$TG_TMP/nobody.sock"
assert_rc 1 "status without an agent"
assert_eq 1 "$(wc -l <"$TG_OUT")" "lines printed without an agent"
assert_file_contains "$TG_OUT" "$TG_TMP/nobody.sock" "error names the socket"
assert_file_contains "$TG_OUT" "agent running" "error says what to do"
tg_capture no-agent-check "$TLSGUARD" status --check --socket "$TG_TMP/nobody.sock"
assert_rc 1 "status --check without an agent"
tg_capture bad-usage "$TLSGUARD" status -o yaml --socket "$TG_SOCK"
assert_rc 2 "status -o yaml is a usage error"

# ---- agent with metrics on a loopback port
tg_start_plain_server web "$TG_PROT4" 80
tg_start_plain_server alt "$TG_PROT4" 8080
tg_start_tls_server tls "$TG_PROT4" 443
metrics_port=$((20000 + RANDOM % 20000))
tg_write_policy "$TG_TMP/policy.yaml" enforce "[80, 443]"
printf 'metrics:\n  listen: "127.0.0.1:%s"\n' "$metrics_port" >>"$TG_TMP/policy.yaml"
tg_start_agent enforce "$TG_TMP/policy.yaml"

# (events_emitted counts every event written: the agent's start event and the 2 violations)
# ---- known traffic: 2 TLS flows, 1 plaintext (blocked), 1 refused connect
for i in 1 2; do
	tg_client "tls$i" curl -sS -k --max-time 5 -o /dev/null "$(tg_url https "$TG_PROT4")"
	assert_rc 0 "TLS request $i"
done
tg_client plain curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
assert_rc_nonzero "plaintext request"
tg_client refused curl -sS --max-time 5 "$(tg_url http "$TG_PROT4" 8080)"
assert_rc 7 "connect to a port the class does not allow"
expect_event "$TG_EVENTS" "e.get('type') == 'blocked_connect'" 5 "blocked_connect event" >/dev/null
expect_event "$TG_EVENTS" "e.get('type') == 'plaintext'" 5 "plaintext event" >/dev/null

# ---- status -o json, field by field
tg_capture status-json "$TLSGUARD" status --socket "$TG_SOCK" -o json
assert_rc 0 "status -o json"
cp "$TG_OUT" "$TG_TMP/status.json"
chained=false
tg_dns_chained && chained=true
python3 - "$TG_TMP/status.json" "$TG_AGENT_PID" "$TG_TMP/policy.yaml" "$TG_CG_REL" "$TG_PIN" "$TG_EVENTS" \
	"$chained" <<'PY' ||
import hashlib, json, sys
path, pid, policy, cg, pin, events, chained = sys.argv[1:]
s = json.load(open(path))
want = {
    "agent.pid": int(pid), "agent.mode": "enforce", "agent.fail_mode": "closed",
    "agent.pin_path": pin, "agent.version": None,
    "policy.source": policy, "policy.sha256": hashlib.sha256(open(policy, "rb").read()).hexdigest(),
    "policy.destinations": 1, "policy.exceptions": 1,
    "counters.flows_tracked": 3, "counters.tls": 2, "counters.plaintext": 1,
    "counters.blocked": 2, "counters.connect_blocked": 1, "counters.flagged": 0,
    "counters.weak_tls": 0, "counters.events_emitted": 3, "counters.events_lost": 0,
    "counters.sockets_destroyed": 1, "health.state": "healthy",
    "kernel_counters.plaintext_blocked": 1, "kernel_counters.verdict_tls": 2,
    "flows.max": 262144, "flows.untracked.flow_cap": 0, "flows.untracked.storage": 0,
}
bad = []
def get(o, p):
    for k in p.split("."):
        o = o[k]
    return o
for k, v in want.items():
    try:
        got = get(s, k)
    except (KeyError, TypeError):
        bad.append(f"{k}: missing"); continue
    if v is not None and got != v:
        bad.append(f"{k}: expected {v!r}, got {got!r}")
hooks = s["hooks"]
if sorted(h["name"] for h in hooks) != ["connect4", "connect6", "dns_egress", "dns_ingress", "egress", "ingress", "release", "sendmsg4", "sendmsg6", "sock_create"]:
    bad.append(f"hooks: {[h['name'] for h in hooks]}")
for h in hooks:
    if not h["attached"] or h["cgroup"] != cg or not h["pinned"].startswith(pin + "/"):
        bad.append(f"hook {h}")
    # DNS learning runs inside the verdict program of its direction where the kernel allows it
    want_in = h["name"][4:] if h["name"].startswith("dns_") and chained == "true" else None
    if h.get("chained_in", "<missing>") != want_in:
        bad.append(f"hook {h['name']}: chained_in {h.get('chained_in', '<missing>')!r}, expected {want_in!r}")
cls = s["policy"]["classes"]
if len(cls) != 1 or cls[0]["name"] != "storage" or cls[0]["ports"] != "80,443":
    bad.append(f"classes: {cls}")
elif cls[0]["flows"] != {"tracked": 3, "tls": 2, "plaintext_flagged": 0, "plaintext_blocked": 1,
                         "connect_flagged": 0, "connect_blocked": 1, "weak_tls": 0, "sni_mismatch": 0}:
    bad.append(f"class flows: {cls[0]['flows']}")
sink = s["sinks"][0]
if sink["name"] != "file" or sink["state"] != "ok" or sink["sent"] != 3 or sink["target"] != events:
    bad.append(f"sink: {sink}")
top = s["top"]["workloads"]
if not top or top[0]["violations"] != 2 or cg not in top[0]["workload"]:
    bad.append(f"top workloads: {top}")
for k in ("agent", "hooks", "policy", "counters", "sinks"):
    if k not in s:
        bad.append(f"section {k} missing")
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
	tg_fail "status -o json does not match the traffic sent (see above)"
tg_log "ok: status -o json matches the traffic"

# ---- the text view has every section
tg_capture status-text "$TLSGUARD" status --socket "$TG_SOCK"
assert_rc 0 "status (text)"
for section in Agent "Kernel hooks" Policy "Counters since the agent started" Sinks \
	"Top violating workloads" "Top violated destinations"; do
	assert_file_contains "$TG_OUT" "^$section\$" "text section '$section'"
done
assert_file_contains "$TG_OUT" 'healthy' "text shows health"
if grep -q $'\033' "$TG_OUT"; then tg_fail "colour codes written to a non-terminal"; fi

# ---- --check healthy
tg_capture check "$TLSGUARD" status --check --socket "$TG_SOCK"
assert_rc 0 "status --check on a healthy agent"
assert_file_contains "$TG_OUT" '^healthy$' "--check says healthy"

# ---- events: recent, filtered, json
tg_capture events-json "$TLSGUARD" events --socket "$TG_SOCK" -o json
assert_rc 0 "events -o json"
assert_eq 3 "$(wc -l <"$TG_OUT")" "recent events (agent start + 2 violations)"
tg_capture events-agent "$TLSGUARD" events --socket "$TG_SOCK" -o json --type agent
assert_file_contains "$TG_OUT" '"type":"agent","action":"start"' "agent start event"
tg_capture events-type "$TLSGUARD" events --socket "$TG_SOCK" -o json --type plaintext
assert_eq 1 "$(wc -l <"$TG_OUT")" "events --type plaintext"
tg_capture events-wl "$TLSGUARD" events --socket "$TG_SOCK" -o json --workload no-such-workload
assert_eq 0 "$(wc -l <"$TG_OUT")" "events --workload that matches nothing"
tg_capture events-wl2 "$TLSGUARD" events --socket "$TG_SOCK" --workload curl
assert_eq 2 "$(wc -l <"$TG_OUT")" "events --workload curl (text)"
assert_file_contains "$TG_OUT" 'plaintext +blocked +storage' "text event line"

# ---- events --follow sees a new event live
"$TLSGUARD" events --socket "$TG_SOCK" --follow -o json --type plaintext >"$TG_TMP/follow.out" 2>&1 &
follow_pid=$!
TG_PIDS+=("$follow_pid")
sleep 0.5
tg_client plain2 curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
for _ in $(seq 50); do
	[[ $(wc -l <"$TG_TMP/follow.out") -ge 2 ]] && break
	sleep 0.1
done
kill "$follow_pid" 2>/dev/null || true
wait "$follow_pid" 2>/dev/null || true
assert_eq 2 "$(wc -l <"$TG_TMP/follow.out")" "events --follow: the recent one plus the live one"

# ---- metrics: scraped, parsed, equal to status
status_after=$("$TLSGUARD" status --socket "$TG_SOCK" -o json)
curl -sS --max-time 5 "http://127.0.0.1:$metrics_port/metrics" >"$TG_TMP/metrics.txt" ||
	tg_fail "cannot scrape metrics on 127.0.0.1:$metrics_port"
python3 - "$TG_TMP/metrics.txt" "$status_after" <<'PY' || tg_fail "metrics do not match status (see above)"
import json, re, sys
text, status = open(sys.argv[1]).read(), json.loads(sys.argv[2])
samples, typed = {}, set()
for line in text.splitlines():
    if line.startswith("# TYPE "):
        typed.add(line.split()[2]); continue
    if line.startswith("#") or not line.strip():
        continue
    m = re.fullmatch(r'([a-z_]+)(\{[^}]*\})? (\S+)', line)
    if not m:
        print("bad line:", line); sys.exit(1)
    samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
k, c = status["kernel_counters"], status["counters"]
want = {
    'tlsguard_violations_total{type="plaintext",action="blocked"}': k["plaintext_blocked"],
    'tlsguard_violations_total{type="blocked_connect",action="blocked"}': k["connect_blocked"],
    'tlsguard_flows_total{class="storage",verdict="tls"}': status["policy"]["classes"][0]["flows"]["tls"],
    'tlsguard_flows_total{class="storage",verdict="tracked"}': status["policy"]["classes"][0]["flows"]["tracked"],
    'tlsguard_events_emitted_total': c["events_emitted"],
    'tlsguard_sink_up{sink="file"}': 1,
    'tlsguard_sink_sent_total{sink="file"}': status["sinks"][0]["sent"],
    'tlsguard_sockets_destroyed_total': c["sockets_destroyed"],
    'tlsguard_tracked_flows': status["flows"]["live"],
    'tlsguard_tracked_flows_max': status["flows"]["max"],
    'tlsguard_untracked_flows_total{reason="flow_cap"}': k["untracked_flow_cap"],
    'tlsguard_untracked_flows_total{reason="storage"}': k["err_storage"],
}
bad = [f"{n}: metrics {samples.get(n)} vs status {v}" for n, v in want.items() if samples.get(n) != v]
if k["plaintext_blocked"] != 2:
    bad.append(f"expected 2 plaintext blocked by now, status says {k['plaintext_blocked']}")
for name in {n.split("{")[0] for n in samples}:
    if not name.startswith("tlsguard_") or name not in typed:
        bad.append(f"{name}: no tlsguard_ prefix or no TYPE line")
print("\n".join(bad)); sys.exit(1 if bad else 0)
PY
tg_log "ok: metrics match status"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$metrics_port/other")
assert_eq 404 "$code" "metrics: unknown path"

# ---- degraded: a second watched cgroup disappears, so its hooks detach
tg_stop_agent
mkdir "$TG_CG/extra"
tg_start_agent enforce "$TG_TMP/policy.yaml" --cgroup "$TG_CG/extra"
rmdir "$TG_CG/extra"
for _ in $(seq 50); do
	"$TLSGUARD" status --check --socket "$TG_SOCK" >/dev/null 2>&1 || break
	sleep 0.1
done
tg_capture check-degraded "$TLSGUARD" status --check --socket "$TG_SOCK"
assert_rc 1 "status --check with a vanished cgroup"
assert_file_contains "$TG_OUT" '^degraded: [0-9]+ hook\(s\) not attached' "--check says why"
tg_stop_agent
