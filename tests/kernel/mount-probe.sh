#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Are the sockets of kernel CIFS and NFS mounts judged by tlsguard's cgroup
# programs? For each Debian cloud kernel `make kernel-test` downloaded
# (DIR/linux-image-*.deb), boots a busybox guest with the kernel's cifs and
# nfs modules and tests/kernel/kmount as the experiment. smbd listens on the
# host's 127.0.0.1 only; qemu's user network is restricted (the guest reaches
# nothing but the guestfwd ports: 10.0.2.100:445 → smbd, 10.0.2.100:2049 → a
# plain listener on 127.0.0.1 standing in for an NFS server). Prints the
# guest's KMOUNT lines per kernel and keeps the serial logs in DIR.
#
#   tests/kernel/mount-probe.sh DIR KMOUNT
set -euo pipefail

dir=$(cd "$1" && pwd) kmount=$2
timeout_s=${KT_TIMEOUT:-300}
smb_port=${KM_SMB_PORT:-44445} nfs_port=${KM_NFS_PORT:-42049}
work=$(mktemp -d /tmp/tg-kmount.XXXXXX)
pids=()

cleanup()
{
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
log() { echo "mount-probe: $*"; }

for c in smbd smbpasswd socat depmod qemu-system-x86_64 busybox cpio; do
	command -v "$c" >/dev/null || { log "$c is not installed"; exit 1; }
done

# ---- the servers, on the host's loopback ------------------------------------
mkdir -p "$work"/smb/{share,private,lock,state,cache,run,log}
chmod 777 "$work/smb/share"
echo "kmount" >"$work/smb/share/a.txt"
cat >"$work/smb/smb.conf" <<EOF
[global]
  server role = standalone server
  interfaces = 127.0.0.1
  bind interfaces only = yes
  smb ports = $smb_port
  disable netbios = yes
  private dir = $work/smb/private
  lock directory = $work/smb/lock
  state directory = $work/smb/state
  cache directory = $work/smb/cache
  pid directory = $work/smb/run
  ncalrpc dir = $work/smb/run/ncalrpc
  log file = $work/smb/log/log.%m
  passdb backend = tdbsam:$work/smb/private/passdb.tdb
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
[share]
  path = $work/smb/share
  read only = no
EOF
printf 'secret\nsecret\n' | smbpasswd -c "$work/smb/smb.conf" -s -a root >/dev/null
# its own session: smbd signals its process group when it stops
setsid smbd -F -s "$work/smb/smb.conf" --no-process-group </dev/null >"$work/smbd.log" 2>&1 &
pids+=($!)
python3 -c "
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', $nfs_port)); s.listen(8)
log = open('$work/nfs.log', 'a', buffering=1)
while True:
    c, _ = s.accept(); c.settimeout(5); n = 0
    try:
        while True:
            b = c.recv(4096)
            if not b: break
            n += len(b)
    except OSError: pass
    log.write('conn bytes=%d\n' % n); c.close()" &
pids+=($!)
for _ in $(seq 50); do
	ss -ltn | grep -q "127.0.0.1:$smb_port " && break
	sleep 0.1
done
ss -ltn | grep -q "127.0.0.1:$smb_port " || { log "smbd did not start: $(tail -3 "$work/smbd.log")"; exit 1; }

# ---- a guest per kernel ----------------------------------------------------------
modules_for() # KDIR ROOT: the modules the experiment needs, with depmod's index
{
	local kdir=$1 root=$2 ver
	ver=$(ls "$kdir/lib/modules")
	mkdir -p "$root/lib/modules/$ver"
	(cd "$kdir/lib/modules/$ver" && find kernel/crypto kernel/lib kernel/fs/smb kernel/fs/netfs \
		kernel/fs/fscache kernel/fs/nls kernel/fs/nfs kernel/fs/nfs_common kernel/fs/lockd \
		kernel/net/sunrpc kernel/net/dns_resolver kernel/drivers/virtio \
		kernel/drivers/net/virtio_net.ko* kernel/drivers/net/net_failover.ko* \
		kernel/net/core/failover.ko* kernel/net/ipv4/inet_diag.ko* kernel/net/ipv4/tcp_diag.ko* \
		-name '*.ko*' 2>/dev/null || true) |	# fs/fscache is part of netfs from 6.x on
		(cd "$kdir/lib/modules/$ver" && cpio -pdm --quiet "$root/lib/modules/$ver")
	cp "$kdir/lib/modules/$ver"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$ver/" 2>/dev/null || true
	find "$root/lib/modules/$ver" -name '*.ko.xz' -exec xz -d {} +
	depmod -b "$root" "$ver"
}

for deb in "$dir"/linux-image-*-cloud-amd64-unsigned_*.deb; do
	[[ -s "$deb" ]] || continue
	kdir="$work/$(basename "$deb" .deb)"
	mkdir -p "$kdir"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$kdir" --wildcards './boot/vmlinuz-*' './lib/modules/*'
	name=$(basename "$kdir"/boot/vmlinuz-*)
	name=${name#vmlinuz-}
	root="$work/root-$name"
	mkdir -p "$root"/{bin,dev,proc,sys,tmp,mnt}
	cp /bin/busybox "$root/bin/busybox"
	cp "$kmount" "$root/kmount"
	modules_for "$kdir" "$root"
	cat >"$root/init" <<'EOF'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
# request_module() (cifs asks for ccm(aes), cmac(aes), ...) runs busybox modprobe
echo /bin/modprobe >/proc/sys/kernel/modprobe
for m in virtio_pci virtio_net inet_diag tcp_diag cifs nfsv4; do
	modprobe $m || echo "KMOUNT-ERROR modprobe $m failed"
done
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
echo "KMOUNT-BOOT kernel=$(uname -r) modules=$(wc -l </proc/modules)"
/kmount 10.0.2.100 share root secret
poweroff -f
EOF
	chmod 755 "$root/init"
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd-$name.gz"
	log "$name: booting (initramfs $(du -h "$work/initrd-$name.gz" | cut -f1))"
	timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 -machine q35,accel=tcg -cpu max -smp 2 -m 1024 \
		-nographic -no-reboot \
		-netdev "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:445-cmd:socat - TCP:127.0.0.1:$smb_port,guestfwd=tcp:10.0.2.100:2049-cmd:socat - TCP:127.0.0.1:$nfs_port" \
		-device virtio-net-pci,netdev=n0 \
		-kernel "$kdir"/boot/vmlinuz-* -initrd "$work/initrd-$name.gz" \
		-append "console=ttyS0 panic=-1 quiet loglevel=4 rdinit=/init" \
		</dev/null >"$dir/mount-probe-$name.log" 2>&1 || true
	sed -i 's/\r$//' "$dir/mount-probe-$name.log"
	grep -a -E '^KMOUNT' "$dir/mount-probe-$name.log" || log "$name: no KMOUNT lines (serial log: $dir/mount-probe-$name.log)"
done
if [[ -s "$work/nfs.log" ]]; then
	log "NFS stand-in received: $(paste -sd' ' "$work/nfs.log")"
fi
log "serial logs in $dir/mount-probe-*.log"

# What docs/verdicts.md ("Kernel mounts") says, checked per kernel.
python3 - "$dir"/mount-probe-*.log <<'EOF'
import re, sys
want = {
    'cifs-seal-watched': lambda c, ev: c['mount'] == 'ok' and c['tracked'] == 1 and c['smb_encrypted'] == 1,
    'cifs-clear-watched-audit': lambda c, ev: c['mount'] == 'ok' and c['plaintext_flagged'] == 1,
    'cifs-clear-watched-enforce': lambda c, ev: c['mount'] != 'ok' and c['plaintext_blocked'] == 1 and
        all(e['comm'] != 'cifsd' for e in ev),
    'cifs-clear-root-enforce': lambda c, ev: c['mount'] != 'ok' and c['plaintext_blocked'] >= 2 and
        any(e['comm'] == 'cifsd' and e['cgroup'] == '1' for e in ev),
    'cifs-seal-root-enforce': lambda c, ev: c['mount'] == 'ok' and c['smb_encrypted'] == 1,
    'nfs-watched-audit': lambda c, ev: c['tracked'] == 0,
    'nfs-root-audit': lambda c, ev: c['plaintext_flagged'] == 1 and
        any(e['comm'].startswith('kworker') and e['cgroup'] == '1' for e in ev),
}
passed = failed = 0
for path in sys.argv[1:]:
    cases, events = {}, {}
    for line in open(path, errors='replace'):
        kv = dict(re.findall(r'(\w+)=(\S+)', line))
        if line.startswith('KMOUNT case='):
            kv['mount'] = line.split('mount=')[1].split(' tracked=')[0]
            for k in ('tracked', 'smb_encrypted', 'plaintext_flagged', 'plaintext_blocked'):
                kv[k] = int(kv[k])
            cases[kv['case']] = kv
        elif line.startswith('KMOUNT-EVENT'):
            events.setdefault(kv['case'], []).append(kv)
    for name, ok in want.items():
        good = name in cases and ok(cases[name], events.get(name, []))
        passed += good
        failed += not good
        if not good:
            print('mount-probe: %s: %s: not as documented: %s' % (path, name, cases.get(name)))
print('mount-probe: %d passed, %d failed' % (passed, failed))
sys.exit(1 if failed or not passed else 0)
EOF
