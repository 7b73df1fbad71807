#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The KQL of docs/queries.md, deploy/azure/tlsguard-workbook.json and
# deploy/azure/tlsguard-alerts.json against the items the agent really sends:
# a pod (kubelet-named cgroup, attributed from the kubelet's log directory)
# resolves a storage account through DNS, speaks plain HTTP to it, offers
# TLS 1.1 to it and connects to a port its class does not allow; the agent
# sends those events (and its counters) to the Application Insights stand-in.
# Every customDimensions / customMeasurements key, event name and metric name
# a query uses must be in those items; every query's table and columns must be
# the ones the items map to (customEvents, customMetrics, cloud_RoleInstance),
# and Kusto's own parser and binder (Kusto.Language, from npm) accept each query
# against those tables' columns.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ai_lib.sh
. "$(dirname "$0")/ai_lib.sh"
trap tg_cleanup EXIT
tg_require_cmd dnsmasq
tg_setup

NAME=acct.blob.core.windows.net
POD_UID=$(python3 -c 'import uuid; print(uuid.uuid4())')
CID=$(openssl rand -hex 32)
POD_CG="$TG_CG/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${POD_UID//-/_}.slice/cri-containerd-$CID.scope"
mkdir -p "$POD_CG"
LOGS="$TG_TMP/log"
mkdir -p "$LOGS/pods/ml_train-0_$POD_UID/trainer" "$LOGS/containers"
: >"$LOGS/containers/train-0_ml_trainer-$CID.log"

cat >"$TG_TMP/records.conf" <<EOF
host-record=$NAME,$TG_PROT4
local-ttl=60
EOF
tg_start_dnsmasq "$TG_TMP/records.conf"
sed -i "/$TG_PROT4/d" "/etc/netns/$TG_NS/hosts"	# the name only through DNS

ai_start_standin
tg_start_plain_server web "$TG_PROT4" 80
tg_start_tls_server_args tls "$TG_PROT4" 443 -cipher DEFAULT@SECLEVEL=0
cat >"$TG_TMP/policy.yaml" <<EOF
mode: audit
min_tls_version: "1.2"
workloads:
  cgroups: ["$TG_CG_REL"]
  kubernetes:
    log_dir: "$LOGS"
destinations:
  - name: storage
    hosts: ["*.blob.core.windows.net"]
    ports: [80, 443]
events:
  file: "$TG_EVENTS"
  application_insights:
    connection_string_file: "$(ai_connstr)"
    ca_file: "$AI_CA"
    batch_age: 1s
    retry_base: 1s
    metrics_interval: 1s
EOF
tg_start_agent audit "$TG_TMP/policy.yaml"

pod() { tg_capture "$1" run_in_cg_ns "$POD_CG" "$TG_NS" "${@:2}"; }
# learning is asynchronous (docs/policy.md, "dns"): resolve, wait until learned
pod resolve getent hosts "$NAME"
assert_rc 0 "the pod resolves $NAME"
for ((i = 0; i < 50; i++)); do
	learned=$("$TLSGUARD" status --socket "$TG_SOCK" -o json | python3 -c 'import json, sys
print(json.load(sys.stdin)["policy"].get("learned_ips", 0))')
	[[ $learned -ge 1 ]] && break
	sleep 0.1
done
assert_cmp "$learned" -ge 1 "addresses the agent learned from the pod's DNS answer"
pod plain curl -sS --max-time 5 "http://$NAME/"
assert_rc 0 "plain HTTP from the pod (audit)"
printf 'GET / HTTP/1.0\r\n\r\n' >"$TG_TMP/get.txt"
TG_STDIN="$TG_TMP/get.txt" pod weak timeout 10 openssl s_client -connect "$NAME:443" -servername "$NAME" \
	-tls1_1 -cipher DEFAULT@SECLEVEL=0 -ign_eof
pod port curl -sS --max-time 3 "http://$NAME:8080/" || true
for t in plaintext weak_tls blocked_connect; do
	ev=$(expect_event "$TG_EVENTS" "e.get('type') == '$t'" 10 "$t event")
	assert_field "$ev" workload.pod train-0
	assert_field "$ev" destination.name "$NAME"
done
# a second of counters, then everything delivered
sleep 2
tg_stop_agent
ai_wait_stat accepted 6 20

python3 - "$AI_RECORDS" "$TG_ROOT/docs/queries.md" "$TG_ROOT/deploy/azure/tlsguard-workbook.json" \
	"$TG_ROOT/deploy/azure/tlsguard-alerts.json" <<'PY' || tg_fail "the queries do not fit the items the agent sent"
import json, re, sys
records, md, workbook, alerts = sys.argv[1:]
dims, meas, names, metrics, tags = set(), set(), set(), set(), set()
for line in open(records):
    item = json.loads(line)["item"]
    tags |= set(item.get("tags", {}))
    base = item["data"]["baseData"]
    if item["data"]["baseType"] == "EventData":
        names.add(base["name"])
        dims |= set(base.get("properties", {}))
        meas |= set(base.get("measurements", {}))
    elif item["data"]["baseType"] == "MetricData":
        metrics |= {m["name"] for m in base["metrics"]}
print(f"items: events {sorted(names)}, {len(dims)} properties, measurements {sorted(meas)}, "
      f"{len(metrics)} metrics, tags {sorted(tags)}", file=sys.stderr)

queries = [("docs/queries.md", q) for q in re.findall(r"```kusto\n(.*?)```", open(md).read(), re.S)]
wb = json.load(open(workbook))
queries += [("workbook " + it["name"], it["content"]["query"]) for it in wb["items"] if it["type"] == 3]
arm = json.load(open(alerts))
for r in arm["resources"]:
    assert r["type"] == "Microsoft.Insights/scheduledQueryRules", r["type"]
    queries += [("alert " + r["name"], c["query"]) for c in r["properties"]["criteria"]["allOf"]]
bad = []
if len(queries) < 8:
    bad.append(f"only {len(queries)} queries found")
# the columns an item becomes: ai.cloud.roleInstance is cloud_RoleInstance
if "ai.cloud.roleInstance" not in tags:
    bad.append("items carry no ai.cloud.roleInstance tag (cloud_RoleInstance)")
KEY = r"""\[\s*["']([^"']+)["']\s*\]"""
for where, q in queries:
    table = q.strip().split()[0]
    if table not in ("customEvents", "customMetrics"):
        bad.append(f"{where}: table {table} (the agent sends custom events and metrics)")
    # d = customDimensions aliases
    aliases = set(re.findall(r"\b(\w+)\s*=\s*customDimensions\b", q)) | {"customDimensions"}
    for a in aliases:
        for k in re.findall(r"\b" + re.escape(a) + KEY, q):
            if k not in dims:
                bad.append(f"{where}: customDimensions[{k!r}] is in no item")
        if re.search(r"\b" + re.escape(a) + r"\.\w", q):
            bad.append(f"{where}: {a}.x: the keys are dotted, use {a}[\"x.y\"]")
    for k in re.findall(r"\bcustomMeasurements" + KEY, q):
        if k not in meas:
            bad.append(f"{where}: customMeasurements[{k!r}] is in no item")
    quoted = lambda s: re.findall(r'"([^"]+)"', s)
    for m in re.finditer(r"\bname\s*(==|in)\s*(\([^)]*\)|\"[^\"]*\")", q):
        for n in quoted(m.group(2)):
            pool = metrics if table == "customMetrics" else names
            if n not in pool:
                bad.append(f"{where}: name {n!r} is no {'metric' if table == 'customMetrics' else 'event'} the agent sent")
for b in bad:
    print("FAIL: " + b, file=sys.stderr)
print(f"ok: {len(queries)} queries checked", file=sys.stderr)
json.dump([{"where": w, "query": q} for w, q in queries], open(sys.argv[1] + ".queries.json", "w"))
sys.exit(1 if bad else 0)
PY

# The same queries through Kusto's own parser and binder (npm
# @kusto/language-service-next, installed once into build/kql).
tg_require_cmd node npm
kql=${TG_KQL_DIR:-$TG_ROOT/build/kql}
if [[ ! -d $kql/node_modules/@kusto/language-service-next ]]; then
	mkdir -p "$kql"
	npm install --prefix "$kql" --no-save --no-audit --no-fund --no-package-lock \
		@kusto/language-service-next@12.4.1 >"$TG_TMP/npm.log" 2>&1 ||
		tg_fail "npm install @kusto/language-service-next: $(tail -n 5 "$TG_TMP/npm.log")"
fi
node "$TG_ROOT/tests/integration/kql_check.js" "$kql" <"$AI_RECORDS.queries.json" >&2 ||
	tg_fail "Kusto's analyzer finds errors in the queries (above)"
tg_assert_uninstalled
