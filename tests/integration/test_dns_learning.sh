#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Wildcard hosts learned from DNS answers. dnsmasq inside the test netns
# (on its loopback only) answers acct.blob.core.windows.net with a CNAME to
# the privatelink name and its A record, TTL 2 s; the policy's only storage
# host is "*.blob.core.windows.net". A client that resolves and then sends
# plaintext is flagged with destination.name; the learned /128 survives an
# agent restart (pinned copy); after TTL + grace it is gone from the pinned
# LPM map. DNS over TCP (resolv.conf use-vc) is learned the same way.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_require_cmd dnsmasq
tg_setup

NAME=acct.blob.core.windows.net
TTL=2
GRACE=8

# ---- dnsmasq, inside the netns ------------------------------------------------
cat >"$TG_TMP/records.conf" <<EOF
host-record=acct.privatelink.blob.core.windows.net,$TG_PROT4,$TG_PROT6
cname=$NAME,acct.privatelink.blob.core.windows.net
local-ttl=$TTL
EOF
tg_start_dnsmasq "$TG_TMP/records.conf"

tg_start_plain_server web "$TG_PROT4" 80
tg_start_plain_server web6 "$TG_PROT6" 80
cat >"$TG_TMP/policy.yaml" <<EOF
# written by $TG_TEST_NAME
mode: audit
workloads:
  cgroups: ["$TG_CG_REL"]
dns:
  grace: ${GRACE}s
destinations:
  - name: storage
    hosts: ["*.blob.core.windows.net"]
    ports: [80, 443]
events:
  file: "$TG_EVENTS"
EOF

# ---- helpers ---------------------------------------------------------------------

P_PLAIN="e.get('type') == 'plaintext'"

# ---- learned from an answer, flagged with the name ---------------------------------
# Learning is asynchronous: the answer reaches the client and, a moment later,
# the agent (docs/policy.md, "dns"). The client resolves first (getent), then
# curl resolves again and sends plaintext over the learned addresses.
wait_entry()
{
	local addr=$1 want=$2 i
	for ((i = 0; i < 50; i++)); do
		if [[ $want == present && -n "$(tg_lpm_entry "$addr")" ]] ||
			[[ $want == absent && -z "$(tg_lpm_entry "$addr")" ]]; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

tg_start_agent audit "$TG_TMP/policy.yaml"
if grep -q 'not enforced yet' "$TG_AGENT_LOG"; then
	tg_fail "the agent still warns that wildcard hosts are not enforced"
fi
assert_eq "" "$(tg_lpm_entry "$TG_PROT4")" "LPM entry for $TG_PROT4 before any answer"
assert_eq "" "$(tg_lpm_entry "$TG_PROT6")" "LPM entry for $TG_PROT6 before any answer"

tg_client resolve getent ahosts "$NAME"
assert_rc 0 "getent ahosts $NAME (A and AAAA through the CNAME)"
assert_file_contains "$TG_OUT" "^$TG_PROT4 " "the A record"
grep -q "acct.privatelink.blob.core.windows.net is $TG_PROT4" "$TG_TMP/dnsmasq.log" ||
	tg_fail "dnsmasq did not answer: $(cat "$TG_TMP/dnsmasq.log")"
wait_entry "$TG_PROT4" present || tg_fail "no LPM entry for $TG_PROT4 within 5 s of the answer"
wait_entry "$TG_PROT6" present || tg_fail "no LPM entry for $TG_PROT6 within 5 s of the answer"
tg_log "ok: learned $TG_PROT4 and $TG_PROT6 from the answers"

tg_client curl curl -4 -sS --max-time 5 "http://$NAME/"
assert_rc 0 "plain HTTP to $NAME in audit mode"
assert_file_contains "$TG_OUT" 'tg-testsrv ok' "curl reached the server through the learned name"
curl_pid=$TG_CLIENT_PID
ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and get(e, 'workload.pid') == $curl_pid" 5 "plaintext event")
assert_field "$ev" action flagged
assert_field "$ev" destination.class storage
assert_field "$ev" destination.ip "$TG_PROT4"
assert_field "$ev" destination.port 80
assert_field "$ev" destination.name "$NAME"
assert_field "$ev" protocol.host "$NAME"

t_answer=$(tg_now_ms)	# the last answer for $TG_PROT6 comes after this
tg_client curl6 curl -6 -sS --max-time 5 "http://$NAME/"
assert_rc 0 "plain HTTP to $NAME over IPv6"
ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and get(e, 'workload.pid') == $TG_CLIENT_PID" 5 \
	"plaintext event (IPv6)")
assert_field "$ev" destination.ip "$TG_PROT6"
assert_field "$ev" destination.name "$NAME"

assert_eq 2 "$(tg_status_get policy.learned_ips)" "status: policy.learned_ips"
assert_eq 0 "$(tg_status_get policy.learned_evicted)" "status: policy.learned_evicted"
assert_cmp "$(tg_status_get policy.dns.kernel.copied)" -ge 2 "status: DNS packets copied by the kernel"
assert_cmp "$(tg_status_get policy.dns.answers_matched)" -ge 2 "status: answers that matched the policy"

# ---- a restart keeps what was learned (pinned), the map never loses the entry ----------
tg_stop_agent
assert_ne "" "$(tg_lpm_entry "$TG_PROT4")" "LPM entry while no agent runs"
tg_start_agent audit "$TG_TMP/policy.yaml"
assert_file_contains "$TG_AGENT_LOG" 'dns: kept 2 learned address' "restarted agent kept the learned addresses"
assert_ne "" "$(tg_lpm_entry "$TG_PROT4")" "LPM entry after the restart"
assert_eq 2 "$(tg_status_get policy.learned_ips)" "status after the restart: policy.learned_ips"

# ---- TTL + grace later, gone ------------------------------------------------------------
for ((i = 0; i < 200; i++)); do
	[[ -z "$(tg_lpm_entry "$TG_PROT6")" ]] && break
	sleep 0.1
done
t_gone=$(tg_now_ms)
assert_eq "" "$(tg_lpm_entry "$TG_PROT6")" "LPM entry for $TG_PROT6 $((t_gone - t_answer)) ms after its last answer"
# not before TTL + grace (counted from just before curl asked)
assert_cmp $((t_gone - t_answer)) -ge $(((TTL + GRACE) * 1000)) "expiry after TTL + grace (ms)"
wait_entry "$TG_PROT4" absent || tg_fail "LPM entry for $TG_PROT4 still there after TTL + grace"
assert_eq 0 "$(tg_status_get policy.learned_ips)" "status: policy.learned_ips after expiry"
assert_cmp "$(tg_status_get policy.dns.expired)" -ge 2 "status: expired learned addresses"

# ---- DNS over TCP ------------------------------------------------------------------------
printf 'nameserver 127.0.0.1\noptions use-vc attempts:2 timeout:1\n' >"/etc/netns/$TG_NS/resolv.conf"
tg_client resolve-tcp getent ahostsv4 "$NAME"
assert_rc 0 "getent ahostsv4 $NAME over TCP"
wait_entry "$TG_PROT4" present || tg_fail "no LPM entry for $TG_PROT4 within 5 s of the TCP answer"
assert_cmp "$(tg_status_get policy.dns.tcp.messages)" -ge 1 "status: DNS messages reassembled from TCP"
tg_client curl-tcp curl -4 -sS --max-time 5 "http://$NAME/"
assert_rc 0 "plain HTTP to $NAME, resolved over TCP"
ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and get(e, 'workload.pid') == $TG_CLIENT_PID" 5 \
	"plaintext event (answer over TCP)")
assert_field "$ev" destination.name "$NAME"
assert_field "$ev" destination.class storage

tg_stop_agent
assert_server web 2 -gt 0
assert_server web6 1 -gt 0
assert_events_valid
