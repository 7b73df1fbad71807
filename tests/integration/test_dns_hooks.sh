#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# agent --dns-hooks: DNS answer learning runs inside the verdict's egress and
# ingress programs (chained: one program per skb hook on the cgroup), or as
# programs of its own (separate: what kernels without tail calls from
# programs with subprograms get, and what releases before chaining did).
# An agent of each kind takes over the pins of the other: separate, then
# chained (the upgrade to this release), then separate again (the way back).
# In each, a wildcard host resolved in the netns is learned from the answer
# (ingress), its query is recorded (egress), and a plaintext connect to the
# address is judged and named; status says where the DNS programs run.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_require_cmd dnsmasq
tg_setup

NET=203.0.113	# every address of it is local to the netns
ip -n "$TG_NS" route add local "$NET.0/24" dev lo
{
	printf 'local-ttl=300\n'
	for i in 1 2 3; do printf 'host-record=h%d-%d.blob.core.windows.net,%s.%d\n' "$i" "$$" "$NET" "$i"; done
} >"$TG_TMP/records.conf"
tg_start_dnsmasq "$TG_TMP/records.conf"
tg_start_plain_server web 0.0.0.0 80
tg_write_policy_hosts "$TG_TMP/policy.yaml" audit '["*.blob.core.windows.net"]'

if ! "$TLSGUARD" version | grep -q '^  tail calls with subprograms: *yes'; then
	# a kernel that cannot chain: asking for it is refused, by name, before anything is loaded
	tg_capture refused "$TLSGUARD" agent --config "$TG_TMP/policy.yaml" --cgroup "$TG_CG" \
		--pin-path "$TG_PIN" --events-file "$TG_EVENTS" --socket "$TG_SOCK" --dns-hooks chained
	assert_rc 1 "agent --dns-hooks chained on a kernel that cannot chain"
	assert_file_contains "$TG_OUT" "--dns-hooks chained: this kernel does not allow" "the refusal"
	tg_fail "this kernel cannot chain (tlsguard version): only the refusal could be tested"
fi

status_json() { "$TLSGUARD" status --socket "$TG_SOCK" -o json; }

# check_hooks STATUS_JSON → the DNS hooks are attached, and chained into the
# verdict's program of their direction or not as this agent runs them
check_hooks()
{
	local want=null
	tg_dns_chained && want='"chained"'
	python3 - "$1" "$want" "$TG_PIN" <<'PY' || tg_fail "status hooks do not say how DNS learning runs (see above)"
import json, sys
s, chained, pin = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
bad = []
for h in s["hooks"]:
    if not h["name"].startswith("dns_"):
        continue
    host = h["name"][4:]
    want = host if chained else None
    if h["chained_in"] != want or not h["attached"] or not h["prog_id"]:
        bad.append(h)
    if chained and h["pinned"] != f"{pin}/tg_dns_chain_{host}":
        bad.append(h)
    if not chained and not h["pinned"].startswith(f"{pin}/dns/links/"):
        bad.append(h)
if len([h for h in s["hooks"] if h["name"].startswith("dns_")]) != 2:
    bad.append("not two dns hooks")
for b in bad:
    print("bad dns hook:", b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}

# phase MODE N → an agent with --dns-hooks MODE learns h<N>, judges a connect to it
phase()
{
	local mode=$1 n=$2 name ip st q0 q1 ev
	name="h$n-$$.blob.core.windows.net" ip="$NET.$n"
	tg_log "---- --dns-hooks $mode: $name"
	TG_DNS_HOOKS=$mode
	tg_start_agent audit "$TG_TMP/policy.yaml"	# asserts the programs per hook (tg_skb_progs)
	st=$(status_json)
	check_hooks "$st"
	q0=$(json_get "$st" policy.dns.kernel.queries)
	tg_resolve_learned "$name" "$ip" "$ip learned from the answer for $name"
	q1=$(json_get "$(status_json)" policy.dns.kernel.queries)
	((q1 > q0)) || tg_fail "--dns-hooks $mode: the query for $name was not recorded (queries $q0 → $q1)"
	tg_client curl curl -4 -sS --max-time 5 "http://$ip/"
	assert_rc 0 "plain HTTP to $ip in audit mode"
	ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'plaintext' and get(e, 'workload.pid') == $TG_CLIENT_PID" \
		5 "plaintext event for $name")
	assert_field "$ev" action flagged
	assert_field "$ev" destination.name "$name"
	tg_stop_agent
}

phase separate 1
phase chained 2
[[ -z "$(ls "$TG_PIN/dns/links" 2>/dev/null)" ]] ||
	tg_fail "the separate agent's dns links are still pinned after the chained one: $(ls "$TG_PIN/dns/links")"
phase separate 3
for m in tg_dns_chain_ingress tg_dns_chain_egress; do
	assert_eq "" "$(tg_chain_prog_id "$TG_PIN" "$m")" "$m emptied by the separate agent"
done
assert_events_valid

tg_log "---- uninstall"
tg_assert_uninstalled
