#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Pod attribution from a stand-in Kubernetes API (k8s_standin.py: HTTPS with a
# CA made here, bearer token, PodList + chunked watch stream in the real JSON
# shapes) and the workloads.kubernetes selector:
#  - cgroups under the test's cgroup named the way the kubelet names them
#    (systemd driver + containerd, cgroupfs driver, CRI-O) are attributed to
#    their pod, namespace and container;
#  - a pod that arrives through the watch stream, outside the selector (other
#    namespace), and a pod in the namespace but without the label are not
#    watched: no event from either;
#  - a pod the API does not know is attributed from the /var/log/pods names;
#  - a systemd service's cgroup gives workload.unit;
#  - a MODIFIED event that drops the label takes the pod out of the selection;
#  - when the API forgets its history the agent gets 410 Gone and lists again.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

trap tg_cleanup EXIT
tg_setup

# mk_cg VAR REL : mkdir -p REL under the test cgroup (tg_cleanup removes it);
# VAR gets the absolute path.
mk_cg()
{
	printf -v "$1" '%s/%s' "$TG_CG" "$2"
	mkdir -p "${!1}"
}

newuid() { python3 -c 'import uuid; print(uuid.uuid4())'; }
newcid() { openssl rand -hex 32; }

NODE="tg-node-$$"
UID_A=$(newuid) UID_B=$(newuid) UID_C=$(newuid) UID_D=$(newuid) UID_X=$(newuid)
CID_A=$(newcid) CID_B=$(newcid) CID_C=$(newcid) CID_D=$(newcid) CID_X=$(newcid)

# A: selected (azureml + label), systemd driver, containerd, BestEffort.
mk_cg CG_A "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${UID_A//-/_}.slice/cri-containerd-$CID_A.scope"
# B: namespace "default" (outside), cgroupfs driver, Burstable; arrives by watch.
mk_cg CG_B "kubepods/burstable/pod$UID_B/$CID_B"
# C: azureml but without the label (outside), CRI-O, Guaranteed.
mk_cg CG_C "kubepods.slice/kubepods-pod${UID_C//-/_}.slice/crio-$CID_C.scope"
# D: unknown to the API; only /var/log/pods knows it.
mk_cg CG_D "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${UID_D//-/_}.slice/cri-containerd-$CID_D.scope"
# U: a systemd service on a VM.
mk_cg CG_U "system.slice/nginx.service"

# ---- the stand-in API: CA, server certificate, token ----------------------------
SA="$TG_TMP/sa"
API="$TG_TMP/api"
mkdir -p "$SA" "$API"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$API/ca.key" -out "$SA/ca.crt" -days 2 -subj "/CN=tg-test-kubernetes-ca" \
	-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
	>"$API/openssl.log" 2>&1 || tg_fail "making the test CA: $(cat "$API/openssl.log")"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$API/server.key" -out "$API/server.csr" -subj "/CN=kube-apiserver" \
	>>"$API/openssl.log" 2>&1 || tg_fail "making the API server key: $(cat "$API/openssl.log")"
printf 'subjectAltName=IP:127.0.0.1,DNS:kubernetes.default.svc\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$API/ext.cnf"
openssl x509 -req -in "$API/server.csr" -CA "$SA/ca.crt" -CAkey "$API/ca.key" -CAcreateserial \
	-out "$API/server.crt" -days 2 -extfile "$API/ext.cnf" \
	>>"$API/openssl.log" 2>&1 || tg_fail "signing the API server certificate: $(cat "$API/openssl.log")"
openssl rand -hex 24 >"$SA/token"
chmod 0600 "$SA/token"

# pod JSON as the API serves it (what matters for attribution, in the real shape)
pod_json()
{
	local name=$1 ns=$2 uid=$3 node=$4 labels=$5 container=$6 cid=$7 runtime=${8:-containerd}
	python3 - "$name" "$ns" "$uid" "$node" "$labels" "$container" "$cid" "$runtime" <<'EOF'
import json, sys
name, ns, uid, node, labels, container, cid, runtime = sys.argv[1:]
print(json.dumps({
    "kind": "Pod", "apiVersion": "v1",
    "metadata": {"name": name, "namespace": ns, "uid": uid, "labels": json.loads(labels),
                 "creationTimestamp": "2026-11-22T18:00:00Z"},
    "spec": {"nodeName": node, "containers": [{"name": container, "image": "mlregistry.azurecr.io/%s:1" % container}]},
    "status": {"phase": "Running", "podIP": "10.244.1.7",
               "containerStatuses": [{"name": container, "ready": True, "restartCount": 0,
                                      "state": {"running": {"startedAt": "2026-11-22T18:00:05Z"}},
                                      "image": "mlregistry.azurecr.io/%s:1" % container,
                                      "imageID": "", "containerID": "%s://%s" % (runtime, cid),
                                      "started": True}]}}))
EOF
}

LBL_SEL='{"app": "trainer", "ml.azure.com/compute": "gpu-cluster"}'
POD_A=$(pod_json train-0 azureml "$UID_A" "$NODE" "$LBL_SEL" trainer "$CID_A")
POD_B=$(pod_json web-5d8f default "$UID_B" "$NODE" "$LBL_SEL" web "$CID_B")
POD_C=$(pod_json score-0 azureml "$UID_C" "$NODE" '{"app": "scorer"}' scorer "$CID_C" cri-o)
POD_X=$(pod_json elsewhere-0 azureml "$UID_X" other-node "$LBL_SEL" trainer "$CID_X")
printf '[%s, %s, %s]\n' "$POD_A" "$POD_C" "$POD_X" >"$API/pods.json"

python3 "$(dirname "$0")/k8s_standin.py" --cert "$API/server.crt" --key "$API/server.key" \
	--token-file "$SA/token" --pods "$API/pods.json" --state-dir "$API" \
	>"$API/standin.log" 2>&1 &
TG_PIDS+=($!)
for ((i = 0; i < 100; i++)); do
	[[ -s "$API/port" ]] && break
	kill -0 "${TG_PIDS[-1]}" 2>/dev/null || tg_fail "stand-in API exited: $(cat "$API/standin.log")"
	sleep 0.1
done
[[ -s "$API/port" ]] || tg_fail "stand-in API did not start: $(cat "$API/standin.log")"
PORT=$(cat "$API/port")
tg_log "stand-in Kubernetes API on https://127.0.0.1:$PORT (node $NODE)"

standin() { curl -sS --fail --cacert "$SA/ca.crt" -X POST --data-binary @- "https://127.0.0.1:$PORT/_test/$1"; }

# ---- /var/log/pods for D --------------------------------------------------------
LOGS="$TG_TMP/log"
mkdir -p "$LOGS/pods/azureml_legacy-0_$UID_D/worker" "$LOGS/containers"
: >"$LOGS/containers/legacy-0_azureml_worker-$CID_D.log"

# ---- policy and agent -------------------------------------------------------------
cat >"$TG_TMP/policy.yaml" <<EOF
# written by $TG_TEST_NAME
mode: audit
workloads:
  cgroups: ["$TG_CG_REL"]
  kubernetes:
    namespaces: ["azureml"]
    labels: {"ml.azure.com/compute": "*"}
    node_name: "$NODE"
    log_dir: "$LOGS"
    api:
      server: "https://127.0.0.1:$PORT"
      token_file: "$SA/token"
      ca_file: "$SA/ca.crt"
destinations:
  - name: storage
    cidrs: ["$TG_PROT4/32", "$TG_PROT6/128"]
    ports: [80, 443]
events:
  file: "$TG_EVENTS"
EOF
"$TLSGUARD" policy check "$TG_TMP/policy.yaml" >/dev/null || tg_fail "policy check failed"

tg_start_plain_server web "$TG_PROT4" 80
tg_start_agent audit "$TG_TMP/policy.yaml"

status_get()
{
	"$TLSGUARD" status --socket "$TG_SOCK" -o json 2>/dev/null |
		python3 -c "$TG_PY_PRELUDE
v = get(json.load(sys.stdin), sys.argv[1], '<missing>')
print(v if isinstance(v, str) else json.dumps(v))" "$1"
}

# wait_status PATH PYEXPR(v) TIMEOUT WHAT
wait_status()
{
	local path=$1 expr=$2 timeout=$3 what=$4 v i
	for ((i = 0; i < timeout * 10; i++)); do
		v=$(status_get "$path" || true)
		if python3 -c "import json,sys; v=json.loads(sys.argv[1]) if sys.argv[1][:1] in '[{0123456789tfn\"' else sys.argv[1]; sys.exit(0 if ($expr) else 1)" "$v" 2>/dev/null; then
			tg_log "ok: $what (status $path = $v)"
			return 0
		fi
		sleep 0.1
	done
	"$TLSGUARD" status --socket "$TG_SOCK" -o json >&2 || true
	tg_fail "$what: status $path = '$v' within ${timeout}s"
}

wait_status workloads.kubernetes_api.state 'v == "watching"' 10 "agent listed and is watching pods"
wait_status workloads.kubernetes_api.pods 'v == 2' 5 "the field selector left out the other node's pod"

# B arrives through the watch stream
printf '{"type": "ADDED", "object": %s}' "$POD_B" | standin event >/dev/null
wait_status workloads.kubernetes_api.pods 'v == 3' 10 "pod B arrived by watch"
# B and C, pod and container level each, are outside the selector
wait_status workloads.unwatched_cgroups 'v == 4' 10 "B and C are not watched"

url=$(tg_url http "$TG_PROT4")
declare -A PIDS=()
for who in B C A D U; do
	cg_var="CG_$who"
	tg_capture "curl-$who" run_in_cg_ns "${!cg_var}" "$TG_NS" curl -sS --max-time 5 "$url"
	assert_rc 0 "plain HTTP from $who"
	PIDS[$who]=$TG_CLIENT_PID
done

P_PLAIN="e.get('type') == 'plaintext'"
ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and '$UID_A'.replace('-', '_') in get(e, 'workload.cgroup', '')" 5 "event from pod A")
assert_field "$ev" workload.pod train-0
assert_field "$ev" workload.namespace azureml
assert_field "$ev" workload.container trainer
assert_field "$ev" workload.pid "${PIDS[A]}"
assert_field "$ev" action flagged

ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and '$UID_D'.replace('-', '_') in get(e, 'workload.cgroup', '')" 5 "event from pod D")
assert_field "$ev" workload.pod legacy-0
assert_field "$ev" workload.namespace azureml
assert_field "$ev" workload.container worker

ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and get(e, 'workload.cgroup', '').endswith('/system.slice/nginx.service')" 5 "event from the unit")
assert_field "$ev" workload.unit nginx.service
assert_field "$ev" workload.pod '<missing>'

# B and C ran first: their events, had there been any, would be in the file by now
assert_event_count "$TG_EVENTS" "$P_PLAIN and '$UID_B' in get(e, 'workload.cgroup', '')" 0 "events from pod B (other namespace)"
assert_event_count "$TG_EVENTS" "$P_PLAIN and '$UID_C'.replace('-', '_') in get(e, 'workload.cgroup', '')" 0 "events from pod C (no label)"
assert_event_count "$TG_EVENTS" "$P_PLAIN" 3 "plaintext events"
# With the kernel's unwatched-cgroup map, B and C are not even tracked; without
# it (older BPF objects) they are tracked and the agent does not report them.
if [[ "$(status_get workloads.kernel_filter)" == true ]]; then
	assert_eq 3 "$(status_get counters.flows_tracked)" "flows tracked (A, D, U; not B, C)"
	assert_eq 0 "$(status_get workloads.events_not_reported)" "events held back"
else
	assert_eq 5 "$(status_get counters.flows_tracked)" "flows tracked (no kernel filter)"
	assert_eq 2 "$(status_get workloads.events_not_reported)" "events of unselected pods held back"
fi

# A loses its label: out of the selection, and its next flow is not reported
POD_A2=$(pod_json train-0 azureml "$UID_A" "$NODE" '{"app": "trainer"}' trainer "$CID_A")
printf '{"type": "MODIFIED", "object": %s}' "$POD_A2" | standin event >/dev/null
wait_status workloads.unwatched_cgroups 'v == 6' 10 "A left the selection"
tg_capture curl-A2 run_in_cg_ns "$CG_A" "$TG_NS" curl -sS --max-time 5 "$url"
assert_rc 0 "plain HTTP from A after the label change"
tg_capture curl-D2 run_in_cg_ns "$CG_D" "$TG_NS" curl -sS --max-time 5 "$url"
expect_event "$TG_EVENTS" "$P_PLAIN and get(e, 'workload.pid') == $TG_CLIENT_PID" 5 "second event from D" >/dev/null
assert_event_count "$TG_EVENTS" "$P_PLAIN and '$UID_A'.replace('-', '_') in get(e, 'workload.cgroup', '')" 1 "events from pod A"

# 410 Gone: the API forgets its history and drops the watch; the agent lists again
echo '{}' | standin expire >/dev/null
wait_status workloads.kubernetes_api.lists 'v >= 2' 15 "re-listed after 410 Gone"
wait_status workloads.kubernetes_api.state 'v == "watching"' 10 "watching again"

tg_stop_agent
assert_events_valid

# every API request: authenticated, for this node only; the watch resumed from the list
python3 - "$API/requests.jsonl" "$NODE" <<'EOF' || tg_fail "API requests not as expected"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
api = [r for r in reqs if r["path"] == "/api/v1/pods"]
lists = [r for r in api if "watch" not in r["query"]]
watches = [r for r in api if "watch" in r["query"]]
bad = []
for r in api:
    if not r.get("auth_ok"):
        bad.append("unauthenticated request %r" % r)
    if r["query"].get("fieldSelector") != ["spec.nodeName=" + sys.argv[2]]:
        bad.append("request without the node's field selector: %r" % r)
if len(lists) < 2 or not watches:
    bad.append("expected >= 2 lists and some watches, got %d and %d" % (len(lists), len(watches)))
for w in watches:
    if not w["query"].get("resourceVersion", [""])[0]:
        bad.append("watch without resourceVersion: %r" % w)
if any(r["query"].get("resourceVersion", [""])[0] == "0" for r in watches):
    bad.append("watch from resourceVersion 0")
print("\n".join(bad), file=sys.stderr)
print("# %d list(s), %d watch(es), all with the bearer token and spec.nodeName" % (len(lists), len(watches)), file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
tg_log "ok: API requests"
