#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A workload that answers itself cannot lower anyone's protection (#15). A
# victim cgroup learns a storage name from the sandbox resolver; then an
# attacker, in a cgroup of its own below it, floods itself with forged
# answers for other matching names from a socket on port 53:
#  - answers nobody asked for (what anyone can send to an open UDP port):
#    not one is learned;
#  - answers to queries it did send (its own resolver): with
#    dns.max_learned 200 and dns.max_learned_per_cgroup 50 it gets 50
#    entries, the rest is refused and counted (status degraded, with why).
# The victim's learned address stays (never evicted before TTL + grace),
# plaintext to it stays blocked, and the victim still learns new names.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_require_cmd dnsmasq
tg_setup

FORGED=2000
ATTACKER="$TG_CG/attacker"
mkdir "$ATTACKER"

cat >"$TG_TMP/records.conf" <<EOF
host-record=victim.blob.core.windows.net,$TG_PROT4
host-record=victim2.blob.core.windows.net,$TG_OTHER4
local-ttl=300
EOF
tg_start_dnsmasq "$TG_TMP/records.conf"

tg_start_plain_server web "$TG_PROT4" 80
tg_start_plain_server web2 "$TG_OTHER4" 80
cat >"$TG_TMP/policy.yaml" <<EOF
# written by $TG_TEST_NAME
mode: enforce
fail_mode: closed
workloads:
  cgroups: ["$TG_CG_REL"]
dns:
  max_learned: 200
  max_learned_per_cgroup: 50
destinations:
  - name: storage
    hosts: ["*.blob.core.windows.net"]
    ports: [80, 443]
events:
  file: "$TG_EVENTS"
EOF
tg_start_agent enforce "$TG_TMP/policy.yaml"

wait_lpm()
{
	local i
	for ((i = 0; i < 50; i++)); do
		[[ -n "$(tg_lpm_entry "$1")" ]] && return 0
		sleep 0.1
	done
	return 1
}

# ---- the victim learns its storage name ---------------------------------------------
tg_client victim curl -4 -sS --max-time 5 http://victim.blob.core.windows.net/
assert_rc_nonzero "plaintext to the victim's storage name (enforce)"
wait_lpm "$TG_PROT4" || tg_fail "victim.blob.core.windows.net ($TG_PROT4) not learned"

# ---- the attacker floods itself with forged answers ---------------------------------
cat >"$TG_TMP/forger.py" <<'PY'
import socket, struct, sys

def labels(name):
    return b"".join(bytes([len(l)]) + l for l in name.split(b".")) + b"\0"

n, ask = int(sys.argv[1]), sys.argv[2] == "ask"
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
srv.bind(("127.0.0.2", 53))			# "its own resolver"
cli = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
cli.bind(("127.0.0.1", 0))
cli.settimeout(2)
for i in range(n):
    q = b"f%d-%s.blob.core.windows.net" % (i, sys.argv[2].encode())
    question = labels(q) + b"\0\1\0\1"
    if ask:		# a real query first: the answer then answers it
        cli.sendto(struct.pack(">HHHHHH", i & 0xffff, 0x0100, 1, 0, 0, 0) + question,
                   ("127.0.0.2", 53))
        srv.recv(2048)
    msg = (struct.pack(">HHHHHH", i & 0xffff, 0x8180, 1, 1, 0, 0) + question
           + b"\xc0\x0c\0\1\0\1" + struct.pack(">IH", 3600, 4) + bytes([10, 77, i >> 8 & 255, i & 255]))
    srv.sendto(msg, cli.getsockname())
    cli.recv(2048)
print("sent", n)
PY
# answers nobody asked for: copied, counted, never learned
tg_capture forger-unasked run_in_cg_ns "$ATTACKER" "$TG_NS" python3 "$TG_TMP/forger.py" "$FORGED" unasked
assert_rc 0 "the forger, unasked"
for ((i = 0; i < 100; i++)); do
	[[ $(tg_status_get policy.dns.unsolicited) -ge $FORGED ]] && break
	sleep 0.1
done
assert_cmp "$(tg_status_get policy.dns.unsolicited)" -ge "$FORGED" "answer records nobody asked for (agent)"
assert_cmp "$(tg_status_get policy.dns.kernel.unsolicited)" -ge "$FORGED" "answers nobody asked for (kernel)"
assert_eq 1 "$(tg_status_get policy.learned_ips)" "learned addresses after the unasked flood (the victim's)"

# answers to its own queries: learned up to the attacker cgroup's share
tg_capture forger run_in_cg_ns "$ATTACKER" "$TG_NS" python3 "$TG_TMP/forger.py" "$FORGED" ask
assert_rc 0 "the forger, asking its own resolver"
for ((i = 0; i < 100; i++)); do
	[[ $(tg_status_get policy.dns.answers) -ge $((FORGED + 1)) ]] && break
	sleep 0.1
done
assert_cmp "$(tg_status_get policy.dns.answers)" -ge $((FORGED + 1)) "answers the agent read"

assert_cmp "$(tg_status_get policy.dns.refused_quota)" -ge $((FORGED - 50)) "forged addresses refused (the attacker's quota)"
assert_cmp "$(tg_status_get policy.learned_ips)" -le 200 "learned addresses (dns.max_learned)"
assert_eq 0 "$(tg_status_get policy.dns.evicted)" "learned addresses dropped before they expired"
assert_ne "" "$(tg_lpm_entry "$TG_PROT4")" "the victim's learned address after the flood"
assert_eq degraded "$(tg_status_get health.state)" "health after refused learning"
tg_status_get health.reasons >"$TG_TMP/reasons.json"
assert_file_contains "$TG_TMP/reasons.json" 'not learned since start' "health reason names the refused learning"

# ---- the victim is still protected, and still learns ------------------------------------
tg_client victim-again curl -4 -sS --max-time 5 http://victim.blob.core.windows.net/
assert_rc_nonzero "plaintext to the victim's storage after the flood"
tg_client victim-new curl -4 -sS --max-time 5 http://victim2.blob.core.windows.net/
assert_rc_nonzero "plaintext to a name the victim resolves after the flood"
wait_lpm "$TG_OTHER4" || tg_fail "the victim could not learn a new name after the attacker's flood"

tg_stop_agent
assert_server web 2 -eq 0
assert_server web2 1 -eq 0
assert_events_valid
