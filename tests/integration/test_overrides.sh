#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A staged rollout: one policy in audit, one `overrides:` rule that enforces
# one workload. Two workloads send the same plaintext HTTP to the same
# protected server; the enforced one is blocked with 0 bytes at the server,
# the other is flagged and served. Events and status say which rule decided.
#
#  1. by cgroup: cgroups team-a (overridden, and a cgroup made below it after
#     the agent started) and team-b;
#  2. by Kubernetes namespace: two pods (kubelet-shaped cgroups) known to a
#     stand-in API (k8s_standin.py), one in the enforced namespace.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

status_get()
{
	"$TLSGUARD" status --socket "$TG_SOCK" -o json 2>/dev/null |
		python3 -c "$TG_PY_PRELUDE
v = get(json.load(sys.stdin), sys.argv[1], '<missing>')
print(v if isinstance(v, str) else json.dumps(v))" "$1"
}

wait_status() # PATH PYEXPR(v) TIMEOUT WHAT
{
	local path=$1 expr=$2 timeout=$3 what=$4 v i
	for ((i = 0; i < timeout * 10; i++)); do
		v=$(status_get "$path" || true)
		# strings come raw from status_get, everything else as JSON
		if python3 -c "import json,sys; a=sys.argv[1]; v=json.loads(a) if a[:1] in '[{0123456789tfn\"' else a; sys.exit(0 if ($expr) else 1)" "$v" 2>/dev/null; then
			tg_log "ok: $what (status $path = $v)"
			return 0
		fi
		sleep 0.1
	done
	"$TLSGUARD" status --socket "$TG_SOCK" -o json >&2 || true
	tg_fail "$what: status $path = '$v' within ${timeout}s"
}

url=$(tg_url http "$TG_PROT4")
P_PLAIN="e.get('type') == 'plaintext'"

# plain HTTP from cgroup CG (absolute); NAME for the log. Sets TG_RC, TG_CLIENT_PID.
curl_from() { tg_capture "$1" run_in_cg_ns "$2" "$TG_NS" curl -sS --max-time 5 "$url"; }

# blocked_then_flagged ENFORCED_CG AUDITED_CG RULE_NAME WHAT
blocked_then_flagged()
{
	local a=$1 b=$2 rule=$3 what=$4 before ev
	before=$(tg_server_bytes web)
	curl_from "$what-enforced" "$a"
	assert_rc_nonzero "$what: plain HTTP from the enforced workload"
	sleep 0.3
	assert_eq "$before" "$(tg_server_bytes web)" "$what: bytes at the server from the enforced workload"
	ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and get(e, 'workload.pid') == $TG_CLIENT_PID" 5 "$what: blocked event")
	assert_field "$ev" action blocked
	assert_field "$ev" rule.source override
	assert_field "$ev" rule.index 0
	assert_field "$ev" rule.name "$rule"
	assert_field "$ev" rule.mode enforce
	curl_from "$what-audited" "$b"
	assert_rc 0 "$what: plain HTTP from the audited workload"
	assert_file_contains "$TG_OUT" "tg-testsrv" "$what: the audited workload was served"
	ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and get(e, 'workload.pid') == $TG_CLIENT_PID" 5 "$what: flagged event")
	assert_field "$ev" action flagged
	assert_field "$ev" rule.source class
	assert_field "$ev" rule.mode audit
	assert_cmp "$(tg_server_bytes web)" -gt "$before" "$what: bytes at the server from the audited workload"
}

tg_start_plain_server web "$TG_PROT4" 80

# ---- 1. by cgroup ---------------------------------------------------------------
mkdir -p "$TG_CG/team-a" "$TG_CG/team-b"
cat >"$TG_TMP/cgroups.yaml" <<EOF
# written by $TG_TEST_NAME
mode: audit
workloads:
  cgroups: ["$TG_CG_REL"]
destinations:
  - name: storage
    cidrs: ["$TG_PROT4/32", "$TG_PROT6/128"]
    ports: [80, 443]
overrides:
  - name: team-a-first
    cgroups: ["$TG_CG_REL/team-a"]
    mode: enforce
    classes: [storage]
events:
  file: "$TG_EVENTS"
EOF
"$TLSGUARD" policy check "$TG_TMP/cgroups.yaml" >/dev/null || tg_fail "policy check failed"
tg_start_agent policy "$TG_TMP/cgroups.yaml"
wait_status 'workloads.overrides' 'v[0]["cgroups"] == 1 and v[0]["mode"] == "enforce"' 5 \
	"the override selects team-a"
blocked_then_flagged "$TG_CG/team-a" "$TG_CG/team-b" team-a-first cgroup
# a cgroup made under team-a later is enforced once the rescan finds it (at most ~1 s)
mkdir "$TG_CG/team-a/job-2"
wait_status 'workloads.overrides' 'v[0]["cgroups"] == 2' 5 "the new cgroup under team-a"
blocked_then_flagged "$TG_CG/team-a/job-2" "$TG_CG/team-b" team-a-first "cgroup below"
assert_eq "$(status_get counters.plaintext)" 4 "plaintext flows (2 blocked, 2 flagged)"
tg_stop_agent
assert_events_valid

# ---- 2. by namespace, pods known to the (stand-in) API ----------------------------
newuid() { python3 -c 'import uuid; print(uuid.uuid4())'; }
NODE="tg-node-$$"
UID_E=$(newuid) UID_F=$(newuid)
CID_E=$(openssl rand -hex 32) CID_F=$(openssl rand -hex 32)
CG_E="$TG_CG/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_E//-/_}.slice/cri-containerd-$CID_E.scope"
CG_F="$TG_CG/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_F//-/_}.slice/cri-containerd-$CID_F.scope"
mkdir -p "$CG_E" "$CG_F"

SA="$TG_TMP/sa" API="$TG_TMP/api"
mkdir -p "$SA" "$API"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$API/ca.key" -out "$SA/ca.crt" -days 2 -subj "/CN=tg-test-kubernetes-ca" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	>"$API/openssl.log" 2>&1 || tg_fail "making the test CA: $(cat "$API/openssl.log")"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$API/server.key" -out "$API/server.csr" -subj "/CN=kube-apiserver" \
	>>"$API/openssl.log" 2>&1 || tg_fail "making the API server key: $(cat "$API/openssl.log")"
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$API/ext.cnf"
openssl x509 -req -in "$API/server.csr" -CA "$SA/ca.crt" -CAkey "$API/ca.key" -CAcreateserial \
	-out "$API/server.crt" -days 2 -extfile "$API/ext.cnf" \
	>>"$API/openssl.log" 2>&1 || tg_fail "signing the API certificate: $(cat "$API/openssl.log")"
openssl rand -hex 24 >"$SA/token"
chmod 0600 "$SA/token"

pod_json() # NAME NAMESPACE UID CID
{
	python3 - "$@" "$NODE" <<'EOF'
import json, sys
name, ns, uid, cid, node = sys.argv[1:]
print(json.dumps({
    "kind": "Pod", "apiVersion": "v1",
    "metadata": {"name": name, "namespace": ns, "uid": uid, "labels": {"app": "trainer"}},
    "spec": {"nodeName": node, "containers": [{"name": "trainer", "image": "reg.azurecr.io/t:1"}]},
    "status": {"phase": "Running", "containerStatuses": [{"name": "trainer", "ready": True,
               "restartCount": 0, "image": "reg.azurecr.io/t:1", "imageID": "",
               "containerID": "containerd://" + cid, "started": True}]}}))
EOF
}
printf '[%s, %s]\n' "$(pod_json train-0 rollout-wave-1 "$UID_E" "$CID_E")" \
	"$(pod_json train-0 rollout-wave-2 "$UID_F" "$CID_F")" >"$API/pods.json"
python3 "$(dirname "$0")/k8s_standin.py" --cert "$API/server.crt" --key "$API/server.key" \
	--token-file "$SA/token" --pods "$API/pods.json" --state-dir "$API" >"$API/standin.log" 2>&1 &
TG_PIDS+=($!)
for ((i = 0; i < 100; i++)); do
	[[ -s "$API/port" ]] && break
	kill -0 "${TG_PIDS[-1]}" 2>/dev/null || tg_fail "stand-in API exited: $(cat "$API/standin.log")"
	sleep 0.1
done
[[ -s "$API/port" ]] || tg_fail "stand-in API did not start: $(cat "$API/standin.log")"

cat >"$TG_TMP/namespaces.yaml" <<EOF
# written by $TG_TEST_NAME
mode: audit
workloads:
  cgroups: ["$TG_CG_REL"]
  kubernetes:
    node_name: "$NODE"
    log_dir: "$TG_TMP/no-logs"
    api:
      server: "https://127.0.0.1:$(cat "$API/port")"
      token_file: "$SA/token"
      ca_file: "$SA/ca.crt"
destinations:
  - name: storage
    cidrs: ["$TG_PROT4/32", "$TG_PROT6/128"]
    ports: [80, 443]
overrides:
  - name: wave-1
    namespaces: [rollout-wave-1]
    labels: {app: "*"}
    mode: enforce
events:
  file: "$TG_EVENTS"
EOF
"$TLSGUARD" policy check "$TG_TMP/namespaces.yaml" >/dev/null || tg_fail "policy check failed"
: >"$TG_EVENTS"
tg_start_agent policy "$TG_TMP/namespaces.yaml"
wait_status workloads.kubernetes_api.state 'v == "watching"' 10 "the agent watches pods"
# the pod's own cgroup and its container's
wait_status 'workloads.overrides' 'v[0]["cgroups"] == 2 and v[0]["name"] == "wave-1"' 10 \
	"the override selects the pod in rollout-wave-1"
blocked_then_flagged "$CG_E" "$CG_F" wave-1 namespace
ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and get(e, 'action') == 'blocked'" 1 "blocked event")
assert_field "$ev" workload.namespace rollout-wave-1
assert_field "$ev" workload.pod train-0
ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and get(e, 'action') == 'flagged'" 1 "flagged event")
assert_field "$ev" workload.namespace rollout-wave-2
assert_eq "$(status_get counters.flows_tracked)" 2 "flows tracked"
tg_stop_agent
assert_events_valid
