#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The kernel matrix: run tests/kernel/kmatrix on the host kernel and, under
# qemu-system-x86_64, on Debian's newest cloud kernel of each series in
# KT_SERIES, then rewrite the generated table in DOC.
#
#   tests/kernel/kernel-test.sh DIR KMATRIX DOC
#
# DIR keeps the downloaded kernel packages (apt-get download; fetched again only
# when apt knows a newer one), their unpacked vmlinuz/config, each run's serial
# console log and the initramfs. The guest is a busybox initramfs whose /init
# mounts what the agent needs and runs kmatrix; its one "KMATRIX ..." line,
# read from the serial console, is the result. Exit status 1 unless every
# kernel says PASS. Environment: KT_SERIES (default "6.1 6.12"), KT_TIMEOUT (seconds
# per guest, default 240), KT_MEM (guest MiB, default 512), KT_ACCEL (tcg).
set -euo pipefail

if [[ $# -ne 3 ]]; then
	echo "usage: $0 DIR KMATRIX DOC" >&2
	exit 2
fi
dir=$1 kmatrix=$2 doc=$3
series=${KT_SERIES:-6.1 6.12}
timeout_s=${KT_TIMEOUT:-240}
mem=${KT_MEM:-512}
start=$(date +%s)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
results="$dir/results.txt"	# one "KMATRIX ..." line per kernel, plus its extras
: >"$results"

log() { echo "kernel-test: $*"; }

# ---- kernels ---------------------------------------------------------------

# Newest cloud kernel package of a series that apt can download: Debian names
# them linux-image-6.1.0-N-cloud-amd64-unsigned or, for the 6.12 backport in
# bookworm-security, linux-image-6.12.P+deb12-cloud-amd64-unsigned.
newest_pkg() {
	local re="^linux-image-${1//./\\.}\\.[0-9]+(-[0-9]+|\\+deb[0-9]+)-cloud-amd64-unsigned\$" pkg

	for pkg in $(apt-cache search --names-only "$re" 2>/dev/null | awk '{ print $1 }' | sort -rV); do
		# not `| grep -q`: under pipefail, apt-cache dying of SIGPIPE would fail it
		if [[ "$(apt-cache policy "$pkg")" == *"Candidate: "[0-9]* ]]; then
			echo "$pkg"
			return 0
		fi
	done
}

# Prints the path of the kernel package for a series, downloading it if needed.
fetch_kernel() {
	local s=$1 pkg ver deb

	pkg=$(newest_pkg "$s")
	if [[ -z "$pkg" ]]; then
		log "apt knows no $s cloud kernel; running apt-get update" >&2
		apt-get update -qq >&2 || true
		pkg=$(newest_pkg "$s")
	fi
	if [[ -z "$pkg" ]]; then
		# offline and nothing listed: fall back on what an earlier run fetched
		deb=""
		for f in "$dir"/linux-image-"$s".[0-9]*-cloud-amd64-unsigned_*.deb; do
			[[ -s "$f" ]] && deb=$f	# one per series: newer ones replace older
		done
		[[ -n "$deb" ]] && { echo "$deb"; return 0; }
		log "no linux-image-$s.*-cloud-amd64-unsigned package in apt's lists" >&2
		return 1
	fi
	ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ { print $2 }')
	deb="$dir/${pkg}_${ver//:/%3a}_amd64.deb"
	if [[ ! -s "$deb" ]]; then
		log "downloading $pkg $ver" >&2
		(cd "$dir" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$ver" >&2)
		# older packages of the same series are superseded
		for old in "$dir"/linux-image-"$s".[0-9]*-cloud-amd64-unsigned_*.deb; do
			[[ "$old" == "$deb" || ! -e "$old" ]] || rm -rf "$old" "${old%.deb}"
		done
	fi
	[[ -s "$deb" ]] || { log "apt-get download $pkg left no $deb" >&2; return 1; }
	echo "$deb"
}

# Unpacks vmlinuz and config (nothing else) next to the package; prints the dir.
unpack_kernel() {
	local deb=$1 kdir="${1%.deb}"

	if [[ ! -d "$kdir/lib" ]]; then
		rm -rf "$kdir.tmp"
		mkdir -p "$kdir.tmp"
		# sock_diag for TCP (the enforcer's SOCK_DESTROY) is a module in Debian's
		# cloud kernels, and the guest has no modprobe to load it on demand
		dpkg-deb --fsys-tarfile "$deb" |
			tar -x -C "$kdir.tmp" --wildcards './boot/vmlinuz-*' './boot/config-*' \
				'./lib/modules/*/kernel/net/ipv4/inet_diag.ko*' \
				'./lib/modules/*/kernel/net/ipv4/tcp_diag.ko*'
		find "$kdir.tmp/lib" -name '*.ko.xz' -exec xz -d {} +
		rm -rf "$kdir"
		mv "$kdir.tmp" "$kdir"
	fi
	echo "$kdir"
}

# ---- guest -------------------------------------------------------------------

# make_initramfs [KDIR]: prints the path of an initramfs with busybox,
# kmatrix and KDIR's sock_diag modules (none for the host).
make_initramfs() {
	local kdir=${1:-} root="$dir/initramfs" out="$dir/initramfs.cpio.gz"

	rm -rf "$root"
	mkdir -p "$root"/{bin,dev,proc,sys,tmp,modules}
	cp /bin/busybox "$root/bin/busybox"
	cp "$kmatrix" "$root/kmatrix"
	if [[ -n "$kdir" ]]; then
		find "$kdir/lib" -name '*_diag.ko' -exec cp {} "$root/modules/" \;
	fi
	cat >"$root/init" <<'EOF'
#!/bin/busybox sh
# kernel-matrix guest: mount what tlsguard needs, run kmatrix, power off.
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
# inet_diag before tcp_diag, which needs it
for m in inet_diag tcp_diag; do
	[ -e /modules/$m.ko ] && insmod /modules/$m.ko
done
echo "KMATRIX-BOOT uptime=$(cut -d' ' -f1 /proc/uptime)"
/kmatrix
echo "KMATRIX-EXIT rc=$? uptime=$(cut -d' ' -f1 /proc/uptime)"
poweroff -f
EOF
	chmod 755 "$root/init"
	(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"
	echo "$out"
}

# Software emulation by default: the guest needs ~5 s under TCG, and KVM on
# this kind of (nested) machine either aborts on an MSR or hangs silently.
# KT_ACCEL=kvm opts in where KVM works.
accel() {
	echo "${KT_ACCEL:-tcg}"
}

cpu() {
	[[ "$(accel)" == kvm* ]] && echo host || echo max
}

# run_guest KDIR INITRAMFS LOG: boots the kernel, serial console to LOG.
run_guest() {
	local kdir=$1 initrd=$2 out=$3 rc=0

	timeout --kill-after=10 "$timeout_s" qemu-system-x86_64 \
		-machine "q35,accel=$(accel)" -cpu "$(cpu)" -smp 2 -m "$mem" \
		-nographic -no-reboot -nic none \
		-kernel "$kdir"/boot/vmlinuz-* -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 quiet loglevel=4 rdinit=/init" \
		</dev/null >"$out" 2>&1 || rc=$?
	sed -i 's/\r$//' "$out"
	if [[ $rc -eq 124 || $rc -eq 137 ]]; then
		log "guest did not finish within ${timeout_s} s (serial log: $out)"
	elif [[ $rc -ne 0 ]]; then
		log "qemu exited with $rc (serial log: $out)"
	fi
}

# config_of KERNEL_CONFIG_FILE_OR_EMPTY OPTION: y, m, no or unknown
config_of() {
	local file=$1 opt=$2 v

	if [[ -z "$file" ]]; then
		echo unknown
		return
	fi
	v=$( { if [[ "$file" == *.gz ]]; then zcat "$file"; else cat "$file"; fi; } |
		sed -n "s/^CONFIG_$opt=//p")
	echo "${v:-no}"
}

# problems LOG: what went wrong, one short phrase each, joined by "; "
problems() {
	grep -a -E '^(KMATRIX-(PROG .*error=|ERROR|LIVE .*ok=no)|\[  ERROR   \] .*GROUP SETUP|\[  FAILED  \] test_)' "$1" |
		grep -v '^KMATRIX-ERROR loading the tlsguard object' |
		sed -E 's/^KMATRIX-PROG name=([^ ]*) loaded=no error="(.*)"$/\1 rejected at load: \2/
			s/^KMATRIX-PROG name=([^ ]*) attached=no error="(.*)"$/\1 not attached: \2/
			s/^KMATRIX-LIVE case=([^ ]*) received=([^ ]*) destroyed=([^ ]*) ok=no$/live case \1 failed (server received \2 bytes, client socket destroyed: \3)/
			s/^KMATRIX-LIVE case=([^ ]*) received=([^ ]*) ok=no$/live case \1 failed (server received \2 bytes)/
			s/^KMATRIX-ERROR //
			s/^\[  ERROR   \] ([^:]*): GROUP SETUP$/\1 tests could not start: their BPF object did not load/
			s/^\[  FAILED  \] (test_[^ ]*)$/verdict test \1 failed/' |
		tr '\t' ' ' | awk '!seen[$0]++ { out = out (out == "" ? "" : "; ") $0 } END { print out }' ||
		true
}

# record WHERE LOG CONFIG: appends the kernel's result to $results.
record() {
	local where=$1 out=$2 config=$3 line feats probs

	line=$(grep -a '^KMATRIX ' "$out" | tail -n 1 || true)
	feats=$(grep -a '^KMATRIX-FEATURES ' "$out" | tail -n 1 || true)
	probs=$(problems "$out")
	if [[ -z "$line" ]]; then
		local kernel
		kernel=$(grep -a -o 'Linux version [^ ]*' "$out" | head -n 1 | cut -d' ' -f3 || true)
		line="KMATRIX kernel=${kernel:-?} programs_loaded=? attached=? live=? tests=? FAIL"
		probs="no result line: $(grep -a -v '^$' "$out" | tail -n 3 | paste -sd ' ' | cut -c1-200 || true)"
	fi
	printf '%s\t%s\t%s\t%s\t%s\n' "$where" "$line" "$feats" \
		"$(config_of "$config" INET_DIAG_DESTROY)" "$probs" >>"$results"
	log "$where: ${line#KMATRIX }"
}

# ---- the matrix --------------------------------------------------------------

# host first: it is quick and tells whether the binary works at all
host_config=""
for c in "/boot/config-$(uname -r)" /proc/config.gz; do
	[[ -r "$c" ]] && { host_config=$c; break; }
done
"$kmatrix" >"$dir/host.log" 2>&1 || true
record host "$dir/host.log" "$host_config"

for s in $series; do
	if ! deb=$(fetch_kernel "$s"); then
		printf '%s\t%s\t\t\t%s\n' "qemu" "KMATRIX kernel=$s.? programs_loaded=? attached=? live=? tests=? FAIL" \
			"kernel package not available" >>"$results"
		continue
	fi
	kdir=$(unpack_kernel "$deb")
	initrd=$(make_initramfs "$kdir")
	name=$(basename "$kdir"/boot/vmlinuz-*)
	name=${name#vmlinuz-}
	t0=$(date +%s)
	run_guest "$kdir" "$initrd" "$dir/serial-$name.log"
	log "$name booted and ran in $(( $(date +%s) - t0 )) s under qemu ($(accel))"
	record "qemu ($(basename "$deb" .deb | cut -d_ -f2))" "$dir/serial-$name.log" \
		"$(echo "$kdir"/boot/config-*)"
done

# ---- the table -----------------------------------------------------------------

field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<"$2"; }

table() {
	echo "| kernel | where | programs loaded | attached | live enforce | BPF tests | BTF | pid/comm at connect | cgroup id at connect | bpf_sock_destroy | INET_DIAG_DESTROY | upgrade census | result |"
	echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	while IFS=$'\t' read -r where line feats diag _; do
		printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
			"$(field kernel "$line")" "$where" "$(field programs_loaded "$line")" \
			"$(field attached "$line")" "$(field live "$line")" "$(field tests "$line")" \
			"$(field btf "$feats")" "$(field current_task "$feats")" \
			"$(field current_cgroup "$feats")" "$(field sock_destroy_kfunc "$feats")" \
			"$diag" "$(field census "$line")" "${line##* }"
	done <"$results"
	if awk -F'\t' '$5 != "" { found = 1 } END { exit !found }' "$results"; then
		echo
		echo "Problems:"
		echo
		awk -F'\t' '$5 != "" {
			split($2, w, " "); sub(/^kernel=/, "", w[2])
			print "- " w[2] " (" $1 "):"
			n = split($5, p, "; ")
			for (i = 1; i <= n; i++)
				print "  - `" p[i] "`"
		}' "$results"
	fi
}

begin='<!-- BEGIN GENERATED: make kernel-test -->'
end='<!-- END GENERATED: make kernel-test -->'
gen="$dir/matrix.md"
table >"$gen"
if [[ -f "$doc" ]] && grep -qF "$begin" "$doc" && grep -qF "$end" "$doc"; then
	awk -v b="$begin" -v e="$end" -v gen="$gen" '
		$0 == b { print; while ((getline l < gen) > 0) print l; skip = 1; next }
		$0 == e { skip = 0 }
		!skip { print }' "$doc" >"$doc.tmp"
	mv "$doc.tmp" "$doc"
else
	{
		echo "# Kernel matrix"
		echo
		echo "Written by \`make kernel-test\`."
		echo
		echo "$begin"
		cat "$gen"
		echo "$end"
	} >"$doc"
fi

passed=$(awk -F'\t' '$2 ~ / PASS$/' "$results" | wc -l)
failed=$(awk -F'\t' '$2 !~ / PASS$/' "$results" | wc -l)
log "table written to $doc; took $(( $(date +%s) - start )) s"
echo "kernel-test: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
