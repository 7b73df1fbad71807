#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The built-in policy in enforce mode, class by class: every class and port
# entry of `tlsguard policy show-default` gets an address of its own in the
# test netns (added under its destination's cidrs; its hosts stay), and on
# each of its TLS ports a real TLS server (openssl s_server):
#
#  - openssl s_client (TLS 1.3) is allowed on every TLS port of every class
#    (Blob/ADLS, Files REST and NFS-over-TLS, ACR, scoring, workspace,
#    Batch, Key Vault/Managed HSM, Entra ID, Cosmos DB incl. the Mongo,
#    vCore and Cassandra ports, App Insights);
#  - plaintext to the same port is blocked, with 0 bytes at a plain server;
#  - the audit-only port entries stay flagged although the policy enforces:
#    Blob NFS (111, 2048, "no encryption in transit possible"), Entra ID on
#    80, UDP 5831 to the workspace.
# PostgreSQL, MySQL (test_starttls_*) and SMB (test_smb3) have servers of
# their own; there is no TDS or MongoDB server in Debian: the sql class is
# covered by the BPF verdict tests (TDS PRELOGIN), Mongo is TLS from the
# first byte like every class here.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup
tg_make_cert

# one address per class, 198.51.100.100 and up, on the netns loopback
"$TLSGUARD" policy show-default >"$TG_TMP/builtin.yaml"
python3 - "$TG_TMP/builtin.yaml" "$TG_TMP/policy.yaml" "$TG_TMP/plan" "$TG_CG_REL" "$TG_EVENTS" <<'EOF'
import sys, yaml
src, out, plan, cg, events = sys.argv[1:]
p = yaml.safe_load(open(src))
dests = p['destinations']
n = 100
lines = []
for d in dests:
    if d.get('protocol', 'tls') != 'tls':
        continue		# postgres, mysql, sql: servers of their own
    addr = '198.51.100.%d' % n
    n += 1
    d['cidrs'] = [addr + '/32']
    d.pop('service_tags', None)	# the backstop classes: their test address stands in for the tag
    # a server name the class lists (SNI binding): *.suffix → acct.suffix; any for tag classes
    sni = d['hosts'][0].replace('*', 'acct', 1) if d.get('hosts') else 'acct.blob.core.windows.net'
    for port in d['ports']:
        if isinstance(port, int):
            lines.append('%s %s %d tls enforce - %s' % (d['name'], addr, port, sni))
            continue
        ports = port.get('ports', [port.get('port')])
        for q in ports:
            proto = port.get('protocol', d.get('protocol', 'tls'))
            mode = port.get('mode', 'enforce')
            lines.append('%s %s %d %s %s %s %s' % (port['name'], addr, int(q), proto, mode,
                                                    'note' if port.get('note') else '-', sni))
keep = [d for d in dests if 'cidrs' in d]
out_p = {'mode': 'enforce', 'workloads': {'cgroups': [cg]}, 'destinations': keep,
         'events': {'file': events, 'log_tls_flows': True}}
yaml.safe_dump(out_p, open(out, 'w'), sort_keys=False)
open(plan, 'w').write('\n'.join(lines) + '\n')
EOF
"$TLSGUARD" policy check "$TG_TMP/policy.yaml" || tg_fail "the built-in classes with test addresses do not validate"
tg_log "plan: $(wc -l <"$TG_TMP/plan") ports"
while read -r _ addr _; do
	ip -n "$TG_NS" addr add "$addr/32" dev lo 2>/dev/null || true
done <"$TG_TMP/plan"
tg_start_agent policy "$TG_TMP/policy.yaml"

P_FOR() { echo "get(e, 'destination.ip') == '$1' and get(e, 'destination.port') == $2"; }
tls_ok=0 blocked=0 flagged=0
while read -r cls addr port proto mode note sni; do
	[[ $proto == smb3 ]] && continue	# test_smb3
	if [[ $cls == workspace_udp ]]; then
		# UDP 5831: a datagram that is not QUIC
		tg_client "udp-$port" python3 -c "
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(('$addr', $port)); s.send(b'platform')"
		ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'plaintext' and $(P_FOR "$addr" "$port")" 5 "$cls: udp")
		assert_field "$ev" action flagged
		assert_field "$ev" destination.class "$cls"
		flagged=$((flagged + 1))
		continue
	fi
	if [[ $mode == enforce ]]; then
		tg_start_tls_server "tls-$port-$addr" "$addr" "$port"
		tg_client "tls-$cls-$port" openssl s_client -connect "$addr:$port" -tls1_3 -brief \
			-servername "$sni" </dev/null
		assert_rc 0 "$cls: TLS to $addr:$port"
		ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'tls' and $(P_FOR "$addr" "$port")" 5 "$cls: tls")
		assert_field "$ev" destination.class "$cls"
		tg_stop_server "tls-$port-$addr"
		tls_ok=$((tls_ok + 1))
	fi
	tg_start_plain_server "plain-$port-$addr" "$addr" "$port"
	tg_client "plain-$cls-$port" curl -sS --max-time 5 "http://$addr:$port/"
	ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'plaintext' and $(P_FOR "$addr" "$port")" 5 "$cls: plaintext")
	assert_field "$ev" destination.class "$cls"
	if [[ $mode == enforce ]]; then
		assert_rc_nonzero "$cls: plain HTTP to $addr:$port"
		assert_field "$ev" action blocked
		assert_server "plain-$port-$addr" 1 -eq 0
		blocked=$((blocked + 1))
	else
		assert_rc 0 "$cls: plain HTTP to $addr:$port (an audit port entry)"
		assert_field "$ev" action flagged
		assert_server "plain-$port-$addr" 1 -gt 0
		flagged=$((flagged + 1))
	fi
	if [[ $note == note ]]; then
		[[ "$(json_get "$ev" destination.note)" != '<missing>' ]] || tg_fail "$cls: the event has no note: $ev"
	fi
	[[ $cls == blob_nfs ]] && { [[ "$(json_get "$ev" destination.note)" == *"no encryption in transit possible"* ]] ||
		tg_fail "blob_nfs note: $ev"; }
done <"$TG_TMP/plan"
tg_log "TLS allowed on $tls_ok ports, plaintext blocked on $blocked, flagged on $flagged audit ports"
assert_eq "$(awk '$4 == "tls" && $5 == "enforce"' "$TG_TMP/plan" | wc -l)" "$tls_ok" "TLS ports allowed (every enforced TLS port of the plan)"
assert_cmp "$tls_ok" -ge 14 "TLS ports tried"
assert_cmp "$flagged" -ge 4 "audit port entries tried (blob_nfs 111 and 2048, identity 80, UDP 5831)"
tg_stop_agent
assert_events_valid
