#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# contrib/tlsguard-cluster-status: the kubectl exec loop over the DaemonSet's
# pods, with a kubectl stand-in that lists three pods (Running with a real
# agent behind `exec`, Running with a failing exec, Pending) and runs the real
# `tlsguard status -o json` for the first. One line per node, the first one's
# health, mode, blocked, flagged and lost equal to the agent's own status;
# the others say what went wrong; exit 1 since not every node is healthy.
# Then the parser alone on the real status of a degraded agent (its watched
# cgroup removed): degraded, the reason, exit 1.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup
script=$TG_ROOT/contrib/tlsguard-cluster-status

tg_start_plain_server web "$TG_PROT4" 80
tg_write_policy "$TG_TMP/policy.yaml" audit "[80, 443]"
tg_start_agent audit "$TG_TMP/policy.yaml"
for i in 1 2; do
	tg_client "plain-$i" curl -sS --max-time 5 -o /dev/null "$(tg_url http "$TG_PROT4")"
	assert_rc 0 "plain HTTP $i (audit)"
done
expect_event "$TG_EVENTS" "e.get('type') == 'plaintext'" 5 "plaintext event" >/dev/null
sleep 0.3

cat >"$TG_TMP/kubectl" <<EOF
#!/usr/bin/env bash
# kubectl stand-in: -n NS get pods ... | -n NS exec POD -c agent -- CMD...
args="\$*"
case \$args in
*" get pods "*)
	[[ \$args == *"-l app.kubernetes.io/name=tlsguard,app.kubernetes.io/component=agent"* ]] || exit 3
	printf 'node-b tlsguard-bbbbb Running\nnode-a tlsguard-aaaaa Running\nnode-c tlsguard-ccccc Pending\n' ;;
*" exec tlsguard-aaaaa -c agent -- tlsguard status -o json")
	exec "$TLSGUARD" status --socket "$TG_SOCK" -o json ;;
*" exec tlsguard-bbbbb "*)
	echo "error: unable to upgrade connection: container not found (\"agent\")" >&2; exit 1 ;;
*) echo "kubectl stand-in: unexpected: \$args" >&2; exit 3 ;;
esac
EOF
chmod +x "$TG_TMP/kubectl"

rc=0
KUBECTL=$TG_TMP/kubectl "$script" >"$TG_TMP/out.txt" 2>&1 || rc=$?
cat "$TG_TMP/out.txt" >&2
assert_eq 1 "$rc" "exit status with two nodes not healthy"
assert_eq 4 "$(wc -l <"$TG_TMP/out.txt")" "lines (header + one per node)"
head -n 1 "$TG_TMP/out.txt" | grep -Eq '^NODE +POD +HEALTH +MODE +BLOCKED +FLAGGED +LOST +REASONS$' ||
	tg_fail "header: $(head -n 1 "$TG_TMP/out.txt")"
# sorted by node; node-a's numbers are the agent's own
status=$("$TLSGUARD" status --socket "$TG_SOCK" -o json)
read -r node pod health mode blocked flagged lost reasons <<<"$(sed -n 2p "$TG_TMP/out.txt")"
assert_eq node-a "$node" "first line's node"
assert_eq tlsguard-aaaaa "$pod" "first line's pod"
assert_eq "$(json_get "$status" health.state)" "$health" "node-a health"
assert_eq healthy "$health" "node-a health"
assert_eq "$(json_get "$status" agent.mode)" "$mode" "node-a mode"
assert_eq "$(json_get "$status" counters.blocked)" "$blocked" "node-a blocked"
assert_eq "$(json_get "$status" counters.flagged)" "$flagged" "node-a flagged"
assert_eq 2 "$flagged" "node-a flagged (two plain requests)"
assert_eq "$(json_get "$status" counters.events_lost)" "$lost" "node-a lost (no sink but the file)"
assert_eq - "$reasons" "node-a reasons"
sed -n 3p "$TG_TMP/out.txt" | grep -Eq '^node-b +tlsguard-bbbbb +error .*kubectl exec failed: error: unable to upgrade' ||
	tg_fail "node-b line: $(sed -n 3p "$TG_TMP/out.txt")"
sed -n 4p "$TG_TMP/out.txt" | grep -Eq '^node-c +tlsguard-ccccc +error .*pod is Pending' ||
	tg_fail "node-c line: $(sed -n 4p "$TG_TMP/out.txt")"

tg_log "---- a degraded agent: its watched cgroup removed"
tg_stop_server web
rmdir "$TG_CG" || tg_fail "cannot remove the (empty) watched cgroup $TG_CG"
for ((i = 0; i < 50; i++)); do
	"$TLSGUARD" status --socket "$TG_SOCK" --check >/dev/null 2>&1 || break
	sleep 0.1
done
"$TLSGUARD" status --socket "$TG_SOCK" -o json >"$TG_TMP/degraded.json" || true
rc=0
line=$("$script" --parse node-x tlsguard-xxxxx <"$TG_TMP/degraded.json") || rc=$?
tg_log "$line"
assert_eq 1 "$rc" "--parse exit status for a degraded agent"
grep -Eq '^node-x +tlsguard-xxxxx +degraded +audit .*hook\(s\) not attached' <<<"$line" ||
	tg_fail "degraded line: $line"
tg_stop_agent
