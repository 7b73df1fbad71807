#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The built-in policy's `files` class (its YAML, with the test address added
# under cidrs) in front of a real smbd in the test netns, real smbclient
# runs, and tcpdump on the netns loopback to see what reached the server:
#
#  - SMB 3.1.1 with session encryption (server smb encrypt = required, or
#    the client asking for it) works in enforce mode: the file comes back;
#  - a session without encryption is blocked at its first message after
#    session setup: the server receives nothing but NEGOTIATE and
#    SESSION_SETUP (0 bytes past the negotiation);
#  - a server that offers only SMB 2.1, and an SMB1 client, are blocked at
#    the negotiation itself;
#  - audit mode flags the unencrypted session and lets it work;
#  - NFS to 2049 without TLS (a plain TCP client) is blocked with the
#    class's note naming the fix.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup
tg_require_cmd smbd smbclient smbpasswd tcpdump

smb="$TG_TMP/smb"
mkdir -p "$smb"/{share,private,lock,state,cache,run,log}
chmod 711 "$TG_TMP" "$smb"
chmod 777 "$smb/share"
echo "tlsguard smb3 test $$" >"$smb/share/a.txt"

# smb_conf "GLOBAL LINES": smbd on the protected address only
smb_conf()
{
	cat <<-EOF
		[global]
		  server role = standalone server
		  interfaces = $TG_PROT4
		  bind interfaces only = yes
		  smb ports = 445
		  disable netbios = yes
		  private dir = $smb/private
		  lock directory = $smb/lock
		  state directory = $smb/state
		  cache directory = $smb/cache
		  pid directory = $smb/run
		  ncalrpc dir = $smb/run/ncalrpc
		  log file = $smb/log/log.%m
		  passdb backend = tdbsam:$smb/private/passdb.tdb
		  load printers = no
		  printing = bsd
		  printcap name = /dev/null
		  disable spoolss = yes
		$1
		[share]
		  path = $smb/share
		  read only = no
	EOF
}
smb_conf "" >"$smb/smb.conf"
# root in the test's own passdb: no system account is made
printf 'secret\nsecret\n' | smbpasswd -c "$smb/smb.conf" -s -a root >/dev/null

smbd_pid=""
smbd_start() # NAME "GLOBAL LINES"
{
	smb_conf "$2" >"$smb/$1.conf"
	# a session of its own: smbd signals its process group when it stops
	setsid ip netns exec "$TG_NS" smbd -F --debug-stdout -s "$smb/$1.conf" --no-process-group \
		</dev/null >"$smb/smbd-$1.log" 2>&1 &
	smbd_pid=$!
	TG_PIDS+=("$smbd_pid")
	for _ in $(seq 100); do
		ip netns exec "$TG_NS" ss -ltn | grep -q "$TG_PROT4:445 " && break
		sleep 0.1
	done
	ip netns exec "$TG_NS" ss -ltn | grep -q "$TG_PROT4:445 " ||
		tg_fail "smbd ($1) did not listen: $(tail -5 "$smb/smbd-$1.log")"
}
smbd_stop() { kill "$smbd_pid" 2>/dev/null || true; wait "$smbd_pid" 2>/dev/null || true; }

cap_pid=""
capture_start() # NAME: what crosses the netns loopback to or from 445
{
	ip netns exec "$TG_NS" tcpdump --immediate-mode -i lo -w "$TG_TMP/$1.pcap" -U \
		"tcp port 445" >"$TG_TMP/$1.tcpdump" 2>&1 &
	cap_pid=$!
	TG_PIDS+=("$cap_pid")
	for _ in $(seq 50); do
		grep -q listening "$TG_TMP/$1.tcpdump" 2>/dev/null && break
		sleep 0.1
	done
	sleep 0.3
}
capture_stop() { sleep 0.5; kill "$cap_pid" 2>/dev/null || true; wait "$cap_pid" 2>/dev/null || true; }

# server_saw NAME: the payload bytes the server received past the negotiation
# (after its NEGOTIATE and SESSION_SETUP messages), then the SMB messages it
# received, one word each (NEGOTIATE, SESSION_SETUP, TREE_CONNECT, TRANSFORM,
# SMB1, ...; "-" for none).
server_saw()
{
	python3 - "$TG_TMP/$1.pcap" <<-'EOF'
		import struct, sys
		d = open(sys.argv[1], 'rb').read()
		skip = {1: 14, 113: 16, 276: 20}.get(struct.unpack('<I', d[20:24])[0], 0)
		off, isn, segs = 24, None, {}
		while off + 16 <= len(d):
		    n = struct.unpack('<I', d[off + 8:off + 12])[0]
		    pkt = d[off + 16:off + 16 + n][skip:]
		    off += 16 + n
		    ihl = (pkt[0] & 15) * 4
		    tcp = pkt[ihl:struct.unpack('>H', pkt[2:4])[0]]
		    sp, dp, seq = struct.unpack('>HHI', tcp[:8])
		    if dp != 445:
		        continue
		    if tcp[13] & 2:
		        isn = seq + 1
		    elif isn is not None and len(tcp) > (tcp[12] >> 4) * 4:
		        segs[(seq - isn) & 0xffffffff] = tcp[(tcp[12] >> 4) * 4:]
		b = bytearray()
		for o in sorted(segs):
		    b[o:o + len(segs[o])] = segs[o]
		names = {0: 'NEGOTIATE', 1: 'SESSION_SETUP', 3: 'TREE_CONNECT'}
		p, seen, past = 0, [], 0
		while p + 8 <= len(b):
		    ln = int.from_bytes(b[p + 1:p + 4], 'big')
		    m = b[p + 4:p + 4 + ln]
		    if m[:4] == b'\xfeSMB':
		        cmd = struct.unpack('<H', m[12:14])[0]
		        seen.append(names.get(cmd, 'SMB2-%d' % cmd))
		    else:
		        seen.append({b'\xfdSMB': 'TRANSFORM', b'\xffSMB': 'SMB1'}.get(bytes(m[:4]), '?'))
		    if seen[-1] not in ('NEGOTIATE', 'SESSION_SETUP'):
		        past += 4 + len(m)
		    p += 4 + ln
		print(past, ' '.join(seen) if seen else '-')
	EOF
}

# the built-in policy's files class, with our address added (its hosts stay)
policy() # FILE MODE
{
	"$TLSGUARD" policy show-default | python3 -c "
import sys, yaml
p = yaml.safe_load(sys.stdin)
files = [d for d in p['destinations'] if d['name'] == 'files'][0]
files['cidrs'] = ['$TG_PROT4/32']
out = {'mode': '$2', 'workloads': {'cgroups': ['$TG_CG_REL']}, 'destinations': [files],
       'events': {'file': '$TG_EVENTS', 'log_tls_flows': True}}
yaml.safe_dump(out, sys.stdout, sort_keys=False)" >"$1"
	"$TLSGUARD" policy check "$1" >/dev/null || tg_fail "policy $1 does not validate"
}

smbget() # NAME [smbclient args]: fetch a.txt from the share
{
	local name=$1
	shift
	tg_client "$name" timeout 20 smbclient "//$TG_PROT4/share" -U root%secret "$@" \
		-c "get a.txt $TG_TMP/$name.txt"
}

P_SMB="get(e, 'protocol.detected') == 'smb'"
policy "$TG_TMP/enforce.yaml" enforce
policy "$TG_TMP/audit.yaml" audit
grep -q 'protocol: smb3' "$TG_TMP/enforce.yaml" || tg_fail "the built-in files class has no smb3 port"

tg_log "---- enforce: encrypted sessions work"
tg_start_agent enforce "$TG_TMP/enforce.yaml"
smbd_start required "  server smb encrypt = required"
capture_start enc
smbget enc-server -m SMB3
capture_stop
assert_rc 0 "smbclient -m SMB3 against server smb encrypt = required"
assert_file_contains "$TG_TMP/enc-server.txt" "tlsguard smb3 test $$" "the file came back"
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'tls' and $P_SMB" 5 "allowed smb flow")
assert_field "$ev" action allowed
assert_field "$ev" destination.class files_smb
assert_field "$ev" destination.port 445
assert_field "$ev" protocol.dialect 3.1.1
assert_field "$ev" protocol.encryption aes-128-gcm
assert_field "$ev" tls null
read -r past seen < <(server_saw enc)
tg_log "server saw: $seen"
[[ "$seen" == "NEGOTIATE SESSION_SETUP SESSION_SETUP TRANSFORM"* ]] ||
	tg_fail "expected encrypted messages after session setup, the server saw: $seen"
smbd_stop

smbd_start default ""
: >"$TG_EVENTS"
smbget enc-client -m SMB3 --client-protection=encrypt
assert_rc 0 "smbclient --client-protection=encrypt"
assert_file_contains "$TG_TMP/enc-client.txt" "tlsguard smb3 test $$" "the file came back"
expect_event "$TG_EVENTS" "e.get('type') == 'tls' and $P_SMB" 5 "allowed smb flow" >/dev/null

tg_log "---- enforce: a session without encryption is blocked after session setup"
: >"$TG_EVENTS"
capture_start clear
smbget clear -m SMB3
capture_stop
assert_rc_nonzero "smbclient without encryption in enforce mode"
assert_cmp "$TG_MS" -lt 10000 "time to the failure (ms)"
[[ ! -s "$TG_TMP/clear.txt" ]] || tg_fail "the file came back over an unencrypted session"
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'plaintext' and $P_SMB" 5 "plaintext smb event")
assert_field "$ev" action blocked
assert_field "$ev" protocol.encryption none
assert_field "$ev" workload.comm smbclient
[[ "$(json_get "$ev" protocol.finding)" == *"TREE_CONNECT sent in the clear"* ]] ||
	tg_fail "finding should name the cleartext TREE_CONNECT: $ev"
read -r past seen < <(server_saw clear)
tg_log "server saw: $seen ($past bytes past the negotiation)"
assert_eq "$past" 0 "payload bytes the server received past NEGOTIATE/SESSION_SETUP"
[[ "$seen" == "NEGOTIATE SESSION_SETUP SESSION_SETUP" ]] ||
	tg_fail "the server should have seen the negotiation only, it saw: $seen"
smbd_stop

tg_log "---- enforce: a server that offers only SMB 2.1 is refused at NEGOTIATE"
smbd_start smb21 "  server max protocol = SMB2_10"
: >"$TG_EVENTS"
capture_start smb21
smbget smb21 -m SMB3
capture_stop
assert_rc_nonzero "smbclient against an SMB 2.1 server"
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'plaintext' and $P_SMB" 5 "plaintext smb event")
assert_field "$ev" protocol.dialect 2.1
[[ "$(json_get "$ev" protocol.finding)" == *"SMB 2.x"* ]] || tg_fail "finding should say SMB 2.x: $ev"
read -r past seen < <(server_saw smb21)
assert_eq "$seen" NEGOTIATE "what the server received"
smbd_stop

tg_log "---- enforce: SMB1 is refused at the client's first message"
smbd_start smb1 "  server min protocol = NT1"
: >"$TG_EVENTS"
capture_start smb1
smbget smb1 -m NT1 --option="client min protocol=NT1"
capture_stop
assert_rc_nonzero "smbclient -m NT1"
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'plaintext' and $P_SMB" 5 "plaintext smb event")
assert_field "$ev" protocol.dialect 1
read -r past seen < <(server_saw smb1)
assert_eq "$seen" - "what the server received"
smbd_stop

tg_log "---- enforce: NFS to 2049 without TLS"
tg_start_plain_server nfs "$TG_PROT4" 2049
: >"$TG_EVENTS"
# an RPC NULL call to NFS v4 (program 100003), as a mount would start
tg_client nfs python3 -c "
import socket, struct
s = socket.create_connection(('$TG_PROT4', 2049), timeout=5)
call = struct.pack('>IIIIII', 0x1234, 0, 2, 100003, 4, 0) + b'\0' * 16
s.sendall(struct.pack('>I', 0x80000000 | len(call)) + call)
s.settimeout(3)
print('reply', len(s.recv(100)))"
assert_rc_nonzero "a plaintext NFS call in enforce mode"
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'plaintext' and get(e, 'destination.port') == 2049" 5 "nfs event")
assert_field "$ev" action blocked
assert_field "$ev" protocol.detected nfs
assert_field "$ev" destination.class files_nfs
[[ "$(json_get "$ev" destination.note)" == *"aznfs"* ]] || tg_fail "the note should name the fix: $ev"
assert_server nfs 1 -eq 0
tg_stop_agent
assert_events_valid

tg_log "---- audit: the unencrypted session is flagged and works"
: >"$TG_EVENTS"
tg_start_agent audit "$TG_TMP/audit.yaml"
smbd_start audit ""
smbget audit-clear -m SMB3
assert_rc 0 "smbclient without encryption in audit mode"
assert_file_contains "$TG_TMP/audit-clear.txt" "tlsguard smb3 test $$" "the file came back"
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'plaintext' and $P_SMB" 5 "plaintext smb event")
assert_field "$ev" action flagged
assert_field "$ev" rule.source class
smbd_stop
tg_stop_agent
assert_events_valid
