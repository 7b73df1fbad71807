#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# tlsguard demo: a throw-away sandbox (its own network namespace, cgroup, pins
# and stand-in endpoints named like Azure storage, registry and scoring hosts)
# where a workload makes an allowed TLS request, a flagged plaintext request
# and two blocked ones. Everything is removed at the end, also on failure.
# Usage: scripts/demo.sh path/to/tlsguard      (as root; `make demo` does this)
set -euo pipefail

TLSGUARD=$(realpath "${1:-build/tlsguard}")
ID="tg-demo-$$"
WORK=$(mktemp -d "/tmp/$ID.XXXX")
PINS="/sys/fs/bpf/$ID"
NS="$ID"
CG_MOUNT=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
CG=""
CG_MOUNTED=""	# the demo mounted cgroup2 itself (a machine without one)
AGENT_PID=""

STORAGE=acct.blob.core.windows.net
REGISTRY=mlregistry.azurecr.io
SCORING=churn-model.westeurope.inference.ml.azure.com

bold() { if [[ -t 1 ]]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
step() { echo; bold "== $*"; }

cleanup() {
	set +e
	[[ -n "$AGENT_PID" ]] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
	"$TLSGUARD" uninstall --pin-path "$PINS" >/dev/null 2>&1
	rm -rf "$PINS"
	for pid in $(ip netns pids "$NS" 2>/dev/null); do kill "$pid" 2>/dev/null; done
	if [[ -d "$CG" ]]; then
		for pid in $(cat "$CG/cgroup.procs" 2>/dev/null); do kill "$pid" 2>/dev/null; done
		sleep 0.2
		rmdir "$CG" 2>/dev/null
	fi
	ip netns del "$NS" 2>/dev/null
	[[ -n "$CG_MOUNTED" ]] && umount "$CG_MOUNT" && rmdir "$CG_MOUNT"
	rm -rf "/etc/netns/$NS" "$WORK"
}
trap cleanup EXIT

[[ $(id -u) -eq 0 ]] || { echo "demo: run as root (it loads BPF programs)" >&2; exit 1; }
# No bpffs at /sys/fs/bpf is fine: the agent mounts it. No cgroup2 at all (no
# systemd, a v1-only host): the sandbox's cgroup needs one before the agent runs.
if [[ -z "$CG_MOUNT" ]]; then
	CG_MOUNT=$(mktemp -d "/tmp/$ID-cgroup2.XXXX")
	mount -t cgroup2 none "$CG_MOUNT" || { echo "demo: no cgroup2 mount, and mounting one failed" >&2; exit 1; }
	CG_MOUNTED=1
fi
CG="$CG_MOUNT/$ID"

step "Sandbox: network namespace $NS with three stand-in endpoints"
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" addr add 198.51.100.10/32 dev lo   # storage
ip -n "$NS" addr add 198.51.100.11/32 dev lo   # registry
ip -n "$NS" addr add 198.51.100.12/32 dev lo   # scoring
cat > "$WORK/hosts" <<HOSTS
127.0.0.1 localhost
198.51.100.10 $STORAGE
198.51.100.11 $REGISTRY
198.51.100.12 $SCORING
HOSTS
mkdir -p "/etc/netns/$NS"
cp "$WORK/hosts" "/etc/netns/$NS/hosts"
echo "nameserver 127.0.0.1" > "/etc/netns/$NS/resolv.conf"
printf '  %-48s %s\n' "$STORAGE" 198.51.100.10 "$REGISTRY" 198.51.100.11 "$SCORING" 198.51.100.12

openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
	-days 1 -subj "/CN=$STORAGE" >/dev/null 2>&1
mkdir -p "$WORK/www" && echo "hello from a stand-in endpoint" > "$WORK/www/index.html"
for ip in 198.51.100.10 198.51.100.11 198.51.100.12; do
	ip netns exec "$NS" openssl s_server -quiet -www -accept "$ip:443" \
		-cert "$WORK/cert.pem" -key "$WORK/key.pem" >/dev/null 2>&1 &
	ip netns exec "$NS" python3 -m http.server 80 --bind "$ip" --directory "$WORK/www" \
		>/dev/null 2>&1 &
done

# wait until every stand-in answers (from outside the watched cgroup)
for ip in 198.51.100.10 198.51.100.11 198.51.100.12; do
	for port in 80 443; do
		for _ in $(seq 100); do
			ip netns exec "$NS" bash -c "exec 3<>/dev/tcp/$ip/$port" 2>/dev/null && break
			sleep 0.1
		done
	done
done

step "Policy: storage and scoring enforced, registry audited (flag only)"
cat > "$WORK/policy.yaml" <<POLICY
mode: audit
destinations:
  - name: storage
    hosts: ["$STORAGE"]
    ports: [80, 443]
    mode: enforce
  - name: registry
    hosts: ["$REGISTRY"]
    ports: [80, 443]
  - name: scoring
    hosts: ["$SCORING"]
    ports: [443]          # anything else is refused at connect()
    mode: enforce
POLICY
sed 's/^/  /' "$WORK/policy.yaml"

step "Start the agent, watching only the sandbox's cgroup $ID"
mkdir "$CG"
# The agent resolves the policy's host names; give it the sandbox's hosts file
# (and no DNS server) in a private mount namespace, so nothing leaves the host.
echo "nameserver 127.0.0.1" > "$WORK/resolv.conf"
unshare -m --propagation private sh -c \
	"mount --bind '$WORK/hosts' /etc/hosts && mount --bind '$WORK/resolv.conf' /etc/resolv.conf &&
	 exec '$TLSGUARD' agent --config '$WORK/policy.yaml' --cgroup '$ID' --pin-path '$PINS' \
	      --events-file '$WORK/events.json' --socket '$WORK/tlsguard.sock'" 2> "$WORK/agent.log" &
AGENT_PID=$!
for _ in $(seq 100); do grep -q "ready" "$WORK/agent.log" && break; sleep 0.1; done
grep -q "ready" "$WORK/agent.log" || { cat "$WORK/agent.log"; echo "demo: agent did not start" >&2; exit 1; }
sed 's/^/  /' "$WORK/agent.log"

# A workload: joins the watched cgroup, then enters the sandbox's network.
workload() {
	sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec ip netns exec "$@"' sh "$CG" "$NS" "$@"
}
try() {
	local label=$1; shift
	local start end out rc
	start=$(date +%s%N)
	out=$(workload "$@" 2>&1) && rc=0 || rc=$?
	end=$(date +%s%N)
	printf '  %-62s ' "$label"
	if [[ $rc -eq 0 ]]; then
		echo "-> succeeded ($(( (end - start) / 1000000 )) ms): $(echo "$out" | head -c 60)"
	else
		echo "-> FAILED after $(( (end - start) / 1000000 )) ms: $(echo "$out" | tail -n1 | head -c 70)"
	fi
}

step "A workload talks to the endpoints"
try "TLS    https://$STORAGE/" curl -sS -k -m 5 "https://$STORAGE/" -o /dev/null -w 'HTTP %{http_code} over TLS'
try "plain  http://$REGISTRY/ (audit)" curl -sS -m 5 "http://$REGISTRY/"
try "plain  http://$STORAGE/ (enforce)" curl -sS -m 5 -X PUT "http://$STORAGE/container/model.bin"
try "plain  http://$SCORING:80/ (port not allowed)" curl -sS -m 5 "http://$SCORING/score"
sleep 0.5

step "What tlsguard reported: tlsguard events"
"$TLSGUARD" events --socket "$WORK/tlsguard.sock" | sed 's/^/  /'
echo
echo "  one event as written to the events file (JSON lines):"
head -n 2 "$WORK/events.json" | tail -n 1 | sed 's/^/  /'

step "What an operator sees: tlsguard status"
"$TLSGUARD" status --socket "$WORK/tlsguard.sock" | sed 's/^/  /'

step "Done: the sandbox, cgroup, pins and processes are being removed"
