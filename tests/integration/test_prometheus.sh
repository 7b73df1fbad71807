#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# deploy/prometheus and deploy/grafana against a real agent and a real
# Prometheus (Debian's, on loopback, its own data directory and port):
#   - promtool check rules and promtool test rules (the unit tests) pass
#   - every tlsguard_* metric the rules, the Grafana dashboard and the
#     ServiceMonitor's relabelling name is one the agent exports: the set is
#     read from the agent's own /metrics, not from a list
#   - Prometheus scrapes the agent (up == 1); after a real plaintext connection
#     TlsguardViolations fires with type=plaintext, action=flagged,
#     while TlsguardAgentDown and TlsguardBpfProgramDetached stay quiet
#     (audit mode, Application Insights to tests/integration/ai_standin.py)
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ai_lib.sh
. "$(dirname "$0")/ai_lib.sh"
trap tg_cleanup EXIT
tg_require_cmd prometheus promtool
rules=$TG_ROOT/deploy/prometheus/tlsguard-rules.yaml
dashboard=$TG_ROOT/deploy/grafana/tlsguard-dashboard.json

tg_log "---- promtool"
promtool check rules "$rules" >&2 || tg_fail "promtool check rules $rules"
(cd "$TG_ROOT/deploy/prometheus" && promtool test rules tests/tlsguard-rules.test.yaml >&2) ||
	tg_fail "promtool test rules deploy/prometheus/tests/tlsguard-rules.test.yaml"

tg_setup
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
mport=$(free_port)
pport=$(free_port)
# audit mode, events also to Application Insights (the stand-in): every
# sink metric family is there
ai_start_standin
ai_write_policy "$TG_TMP/policy.yaml"
printf 'metrics:\n  listen: "127.0.0.1:%s"\n' "$mport" >>"$TG_TMP/policy.yaml"
tg_start_agent audit "$TG_TMP/policy.yaml"

tg_log "---- what the agent exports"
curl -sS --max-time 5 "http://127.0.0.1:$mport/metrics" >"$TG_TMP/metrics.txt" ||
	tg_fail "no /metrics on 127.0.0.1:$mport"
exported=$(sed -n 's/^# TYPE \(tlsguard_[a-z0-9_]*\) .*/\1/p' "$TG_TMP/metrics.txt" | sort -u)
assert_cmp "$(wc -l <<<"$exported")" -ge 10 "metric families on /metrics"
python3 - "$TG_TMP/metrics.txt" "$rules" "$dashboard" \
	"$TG_ROOT/deploy/kubernetes/monitoring/podmonitor.yaml" <<'PY' || tg_fail "queries name metrics the agent does not export"
import json, re, sys
metrics, rules, dashboard, monitor = sys.argv[1:]
exported = set(re.findall(r"^# TYPE (tlsguard_\w+) ", open(metrics).read(), re.M))
series = open(metrics).read()
def names(text):
    return set(re.findall(r"\btlsguard_[a-z0-9_]+", text))
d = json.load(open(dashboard))       # valid JSON, or this fails
exprs = []
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k in ("expr", "query") and isinstance(v, str):
                exprs.append(v)
            walk(v)
    elif isinstance(o, list):
        for v in o:
            walk(v)
walk(d)
bad = []
for what, used in (("rules", names(open(rules).read())), ("dashboard", names(" ".join(exprs))),
                   ("podmonitor", names(open(monitor).read()))):
    missing = sorted(used - exported)
    if missing:
        bad.append(f"{what}: {missing} not exported")
    print(f"ok: {what}: {len(used)} metrics, all exported", file=sys.stderr)
if not exprs:
    bad.append("the dashboard has no queries")
# the labels the dashboard groups by exist on the series
for label in set(re.findall(r"by \(([^)]*)\)", " ".join(exprs))):
    for l in (x.strip() for x in label.split(",")):
        if l in ("instance", "job", "pod", "node"):
            continue
        if not re.search(r"[{,]" + re.escape(l) + r'="', series):
            bad.append(f"dashboard groups by {l!r}, which no exported series carries")
print("\n".join(bad), file=sys.stderr)
sys.exit(1 if bad else 0)
PY

tg_log "---- a real Prometheus scraping the agent"
cat >"$TG_TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $rules
scrape_configs:
  - job_name: tlsguard
    static_configs:
      - targets: ["127.0.0.1:$mport"]
EOF
promtool check config "$TG_TMP/prometheus.yml" >&2 || tg_fail "promtool check config"
prometheus --config.file="$TG_TMP/prometheus.yml" --storage.tsdb.path="$TG_TMP/prom-data" \
	--web.listen-address="127.0.0.1:$pport" --log.level=warn </dev/null >"$TG_TMP/prometheus.log" 2>&1 &
TG_PIDS+=("$!")
prom_pid=$!

# query EXPR → the instant vector as JSON (data.result)
query()
{
	curl -sS --max-time 5 --get --data-urlencode "query=$1" "http://127.0.0.1:$pport/api/v1/query" |
		python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["data"]["result"]))'
}
# wait_for EXPR TIMEOUT : until the query returns a non-empty vector
wait_for()
{
	local expr=$1 timeout=$2 i out
	for ((i = 0; i < timeout * 5; i++)); do
		kill -0 "$prom_pid" 2>/dev/null || { cat "$TG_TMP/prometheus.log" >&2; tg_fail "prometheus exited"; }
		out=$(query "$expr" 2>/dev/null) || out="[]"
		[[ $out != "[]" ]] && { printf '%s\n' "$out"; return 0; }
		sleep 0.2
	done
	cat "$TG_TMP/prometheus.log" >&2
	tg_fail "no result for '$expr' within ${timeout}s"
}

# two scrapes before the violation: increase() needs the counter at 0 first
wait_for 'count_over_time(up{job="tlsguard"}[1m]) >= 2 and up{job="tlsguard"} == 1' 30 >/dev/null
tg_log "ok: Prometheus scrapes the agent (up == 1)"
before=$(query 'sum(tlsguard_violations_total{type="plaintext",action="flagged"})')
assert_eq 0 "$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[0]["value"][1])' "$before")" "flagged plaintext violations before"

ai_violations 1
expect_event "$TG_EVENTS" "e.get('type') == 'plaintext' and e.get('action') == 'flagged'" 5 "plaintext event" >/dev/null

wait_for 'tlsguard_violations_total{type="plaintext",action="flagged"} >= 1' 20 >/dev/null
alert=$(wait_for 'ALERTS{alertname="TlsguardViolations",alertstate="firing"}' 30)
tg_log "firing: $alert"
assert_eq plaintext "$(json_get "$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])[0]["metric"]))' "$alert")" type)" "TlsguardViolations type"
assert_eq flagged "$(json_get "$(python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1])[0]["metric"]))' "$alert")" action)" "TlsguardViolations action"
for quiet in TlsguardAgentDown TlsguardBpfProgramDetached TlsguardSinkDown; do
	assert_eq "[]" "$(query "ALERTS{alertname=\"$quiet\"}")" "$quiet alerts"
done
attached=$(query 'count(tlsguard_hook_attached == 1)')
tg_log "attached hooks Prometheus sees: $attached"
[[ $attached != "[]" ]] || tg_fail "no tlsguard_hook_attached == 1 series"
tg_stop_agent
tg_assert_uninstalled
