#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Regenerate the SMB fixtures: real SMB 2/3 conversations between Debian's
# smbd and smbclient in a throw-away network namespace (loopback only),
# captured with tcpdump, cut into messages per direction.
#
#   tests/unit/capture-smb-fixtures.sh
#
# Writes tests/unit/smb_fixtures.h (test_smb.c, tests/bpf/test_verdict.c)
# and tests/fuzz/corpus/preface/smb-*.bin (fuzz_preface's seeds: the
# protocol byte 5 = smb3, then the stream). Needs root, samba, smbclient,
# tcpdump and python3.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
hdr="$root/tests/unit/smb_fixtures.h"
corpus="$root/tests/fuzz/corpus/preface"
ns="tg-smbcap-$$"
tmp=$(mktemp -d "/tmp/$ns.XXXXXX")
user="tg-smbcap-$$"
spid="" tpid=""

cleanup()
{
	[[ -n "$tpid" ]] && kill "$tpid" 2>/dev/null && wait "$tpid" 2>/dev/null
	[[ -n "$spid" ]] && kill "$spid" 2>/dev/null && wait "$spid" 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	id "$user" >/dev/null 2>&1 && userdel "$user"
	[[ -n "${TG_KEEP_TMP:-}" ]] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT

for c in smbd smbclient smbpasswd tcpdump python3; do
	command -v $c >/dev/null || { echo "$c is not installed (apt-get install samba smbclient tcpdump python3)" >&2; exit 1; }
done
ip netns add "$ns"
ip -n "$ns" link set lo up
mkdir -p "$tmp"/{share,private,lock,state,cache,run,log}
chmod 711 "$tmp"
chmod 777 "$tmp/share"
echo fixture >"$tmp/share/a.txt"
useradd -M -s /usr/sbin/nologin "$user"

# conf EXTRA: an smbd configuration on the namespace's loopback
conf()
{
	cat <<CONF
[global]
  server role = standalone server
  interfaces = 127.0.0.1
  bind interfaces only = yes
  smb ports = 445
  disable netbios = yes
  private dir = $tmp/private
  lock directory = $tmp/lock
  state directory = $tmp/state
  cache directory = $tmp/cache
  pid directory = $tmp/run
  ncalrpc dir = $tmp/run/ncalrpc
  log file = $tmp/log/log.%m
  passdb backend = tdbsam:$tmp/private/passdb.tdb
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
$1
[share]
  path = $tmp/share
  read only = no
CONF
}
conf "" >"$tmp/smb.conf"
printf 'secret\nsecret\n' | smbpasswd -c "$tmp/smb.conf" -s -a "$user" >/dev/null

# capture NAME "EXTRA" SMBCLIENT-ARGS...: one conversation into NAME.pcap
capture()
{
	local name=$1 extra=$2
	shift 2
	conf "$extra" >"$tmp/$name.conf"
	# its own session: smbd signals its process group when it stops
	setsid ip netns exec "$ns" smbd -F -s "$tmp/$name.conf" --no-process-group \
		>"$tmp/$name.smbd.log" 2>&1 &
	spid=$!
	for _ in $(seq 100); do
		ip netns exec "$ns" ss -ltn | grep -q ':445 ' && break
		sleep 0.1
	done
	ip netns exec "$ns" tcpdump --immediate-mode -i lo -w "$tmp/$name.pcap" -U "tcp port 445" >"$tmp/$name.tcpdump.log" 2>&1 &
	tpid=$!
	sleep 1
	ip netns exec "$ns" smbclient //127.0.0.1/share -U "$user%secret" "$@" \
		-c 'get a.txt /dev/null' >"$tmp/$name.out" 2>&1 || true
	sleep 1
	kill "$tpid"; wait "$tpid" 2>/dev/null || true; tpid=""
	kill "$spid"; wait "$spid" 2>/dev/null || true; spid=""
}

capture smb311 "" -m SMB3
capture smb311_enc "  server smb encrypt = required" -m SMB3
capture smb311_noenc "  server smb encrypt = off" -m SMB3
capture smb30 "" -m SMB3_00 --client-protection=encrypt
capture smb21 "  server max protocol = SMB2_10" -m SMB3
capture smb2only "" -m SMB2
capture smb1 "  server min protocol = NT1" -m NT1 --option='client min protocol=NT1'

mkdir -p "$corpus"
python3 - "$tmp" "$hdr" "$corpus" <<'PY'
import struct, sys
tmp, hdr, corpus = sys.argv[1:]

def streams(path):
    d = open(path, 'rb').read()
    link = struct.unpack('<I', d[20:24])[0]
    skip = {1: 14, 113: 16, 276: 20}.get(link, 0)
    off, out = 24, {}
    while off + 16 <= len(d):
        incl = struct.unpack('<I', d[off + 8:off + 12])[0]
        pkt = d[off + 16:off + 16 + incl][skip:]
        off += 16 + incl
        if not pkt or pkt[0] >> 4 != 4:
            continue
        ihl = (pkt[0] & 15) * 4
        tcp = pkt[ihl:struct.unpack('>H', pkt[2:4])[0]]
        sp, dp, seq = struct.unpack('>HHI', tcp[:8])
        s = out.setdefault(dp == 445, {'isn': None, 'seg': {}})
        if tcp[13] & 2:
            s['isn'] = seq + 1
            continue
        pl = tcp[(tcp[12] >> 4) * 4:]
        if pl and s['isn'] is not None:
            s['seg'][(seq - s['isn']) & 0xffffffff] = pl
    res = {}
    for client, s in out.items():
        b = bytearray()
        for o in sorted(s['seg']):
            b[o:o + len(s['seg'][o])] = s['seg'][o]
        res[client] = bytes(b)
    return res

def messages(b):
    p, r = 0, []
    while p + 4 <= len(b):
        n = int.from_bytes(b[p + 1:p + 4], 'big')
        r.append(b[p:p + 4 + n])
        p += 4 + n
    return r

c = {}
for name in ('smb311', 'smb311_enc', 'smb311_noenc', 'smb30', 'smb21', 'smb2only', 'smb1'):
    s = streams(f'{tmp}/{name}.pcap')
    c[name] = (messages(s.get(True, b'')), messages(s.get(False, b'')))

def first(name, side, pred=lambda m: True):
    for m in c[name][0 if side == 'c' else 1]:
        if pred(m):
            return m
    raise SystemExit(f'{name}: no such message')

cmd = lambda m: struct.unpack('<H', m[16:18])[0] if m[4:8] == b'\xfeSMB' else None
fix = [
    ('smb_c_negotiate_311', first('smb311', 'c'), 'smbclient -m SMB3: 2.0.2 .. 3.1.1, four ciphers'),
    ('smb_c_negotiate_30', first('smb30', 'c'), 'smbclient -m SMB3_00: 2.0.2 .. 3.0, CAP_ENCRYPTION'),
    ('smb_c_negotiate_2x', first('smb2only', 'c'), 'smbclient -m SMB2: 2.0.2 and 2.1 only'),
    ('smb_c_smb1', first('smb1', 'c'), 'smbclient -m NT1: an SMB1 NEGOTIATE'),
    ('smb_s_negotiate_311', first('smb311', 's'), 'smbd: 3.1.1, AES-128-GCM'),
    ('smb_s_negotiate_311_noenc', first('smb311_noenc', 's'), 'smbd server smb encrypt = off: 3.1.1, no encryption context'),
    ('smb_s_negotiate_30', first('smb30', 's'), 'smbd: 3.0 with CAP_ENCRYPTION'),
    ('smb_s_negotiate_21', first('smb21', 's'), 'smbd server max protocol = SMB2_10: 2.1'),
]
setups = [m for m in c['smb311_enc'][0] if cmd(m) == 1]
fix += [('smb_c_session_setup_1', setups[0], 'NTLMSSP NEGOTIATE'),
        ('smb_c_session_setup_2', setups[1], 'NTLMSSP AUTHENTICATE')]
enc = [m for m in c['smb311_enc'][0] if m[4:8] == b'\xfdSMB']
fix.append(('smb_c_transform', enc[0], 'the first message after session setup, server smb encrypt = required'))
tc = [m for m in c['smb311'][0] if cmd(m) == 3]
fix.append(('smb_c_tree_connect', tc[0], 'TREE_CONNECT in the clear (no session encryption)'))

with open(hdr, 'w') as f:
    f.write('/* SPDX-License-Identifier: MIT */\n')
    f.write('/* Generated by tests/unit/capture-smb-fixtures.sh: real smbd/smbclient messages. */\n')
    f.write('#ifndef TLSGUARD_SMB_FIXTURES_H\n#define TLSGUARD_SMB_FIXTURES_H\n\n')
    for name, m, what in fix:
        f.write(f'/* {what} */\nstatic const unsigned char {name}[] = {{\n')
        for i in range(0, len(m), 12):
            f.write('  ' + ', '.join(f'0x{x:02x}' for x in m[i:i + 12]) + ',\n')
        f.write(f'}};\nstatic const unsigned int {name}_len = {len(m)};\n\n')
    f.write('#endif\n')
# fuzz seeds: protocol byte 5 (smb3), then one direction's stream start
seeds = {'smb-client-311': first('smb311', 'c') + setups[0] + setups[1] + enc[0],
         'smb-client-30': first('smb30', 'c'), 'smb-client-smb1': first('smb1', 'c'),
         'smb-server-311': first('smb311', 's'), 'smb-server-21': first('smb21', 's')}
for name, b in seeds.items():
    open(f'{corpus}/{name}.bin', 'wb').write(bytes([5]) + b)
print(f'{len(fix)} fixtures in {hdr}')
PY
