#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make deb`: the package builds; its control fields are right (Depends covers
# every shared library the binary loads); it contains exactly the files the
# "Debian package" column of docs/install-vm.md lists (plus copyright and
# changelog), owned by root; its maintainer scripts parse; lintian reports no
# error. Then, in a throw-away overlay of this host's root (nothing on the host
# changes; a private bpffs), it installs, the agent runs from it, and
# `dpkg -r` detaches and unpins the programs, `dpkg -P` removes the rest.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }

command -v dpkg-deb >/dev/null || fail "dpkg-deb is missing (Debian package dpkg)"
tmp=$(mktemp -d /tmp/tg-deploy-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# Build with the binary this run already has, in a private build directory:
# the test never rebuilds (or races) the tree's build/.
mkdir -p "$tmp/bin" "$tmp/build"
for b in "$root/build/tlsguard" "${TLSGUARD:-}"; do
	if [[ -n $b && -x $b ]]; then
		cp "$b" "$tmp/bin/tlsguard"
		break
	fi
done
[[ -x $tmp/bin/tlsguard ]] || fail "no tlsguard binary to package: run 'make' first"

version=$(cat "$root/VERSION")
arch=$(dpkg --print-architecture)
deb=$tmp/build/tlsguard_${version}_$arch.deb
if ! make -C "$root" --no-print-directory deb BUILD="$tmp/build" \
	INSTALL_BIN="$tmp/bin/tlsguard" INSTALL_POLICY="$tmp/bin/tlsguard.yaml" >"$tmp/make.log" 2>&1; then
	cat "$tmp/make.log" >&2
	fail "make deb failed (log above)"
fi
[[ -f $deb ]] || fail "make deb did not produce $deb (made: $(ls "$tmp/build"))"
echo "ok: make deb -> $(basename "$deb")"

# ---- control fields ---------------------------------------------------------
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == tlsguard ]] || fail "Package: $(field Package)"
[[ $(field Version) == "$version" ]] || fail "Version: $(field Version), VERSION says $version"
[[ $(field Architecture) == "$arch" ]] || fail "Architecture: $(field Architecture), expected $arch"
[[ -n $(field Maintainer) ]] || fail "no Maintainer field"
[[ -n $(field Description) ]] || fail "no Description field"
[[ $(field Section) == net && $(field Priority) == optional ]] || fail "Section/Priority: $(field Section)/$(field Priority)"
[[ $(field Installed-Size) =~ ^[0-9]+$ ]] || fail "Installed-Size: $(field Installed-Size)"
depends=$(field Depends)
dpkg-deb -x "$deb" "$tmp/x"
# every library the packaged binary links (DT_NEEDED) comes from a package in Depends
ldd "$tmp/x/usr/sbin/tlsguard" >"$tmp/ldd" || fail "ldd /usr/sbin/tlsguard failed"
while read -r lib; do
	pkg=$(dpkg -S "$(readlink -f "$lib")" 2>/dev/null | head -n 1 | cut -d: -f1)
	[[ -n $pkg ]] || pkg=$(dpkg -S "$lib" 2>/dev/null | head -n 1 | cut -d: -f1)
	[[ -n $pkg ]] || fail "no Debian package owns $lib, needed by /usr/sbin/tlsguard"
	[[ ", $depends," == *", $pkg "* || ", $depends," == *", $pkg,"* ]] ||
		fail "Depends ($depends) lacks $pkg, which provides $lib"
done < <(readelf -d "$tmp/x/usr/sbin/tlsguard" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' |
	while read -r soname; do awk -v n="$soname" '$1 == n && $2 == "=>" { print $3 }' "$tmp/ldd"; done)
echo "ok: control fields; Depends: $depends"

# ---- contents -----------------------------------------------------------------
dpkg-deb -c "$deb" >"$tmp/contents"
awk '$2 != "root/root" { print }' "$tmp/contents" | grep -q . &&
	fail "files not owned by root/root: $(awk '$2 != "root/root"' "$tmp/contents")"
awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' "$tmp/contents" | sort >"$tmp/files"
# the "Debian package" column of the table in docs/install-vm.md
awk '/<!-- installed-files/ { on = 1 } on && /^\|/ { print } on && /^$/ && seen { exit } /^\|/ { seen = on }' \
	"$root/docs/install-vm.md" | awk -F'|' 'NR > 2 { print $4 }' |
	grep -o '`/[^`]*`' | tr -d '`' | sort -u >"$tmp/documented"
[[ -s $tmp/documented ]] || fail "no installed-files table found in docs/install-vm.md"
{ cat "$tmp/documented"; printf '%s\n' /usr/share/doc/tlsguard/copyright /usr/share/doc/tlsguard/changelog.gz; } |
	sed '/\/$/d' | sort -u >"$tmp/expected"
if ! diff -u "$tmp/expected" "$tmp/files" >"$tmp/files.diff"; then
	cat "$tmp/files.diff" >&2
	fail "package files differ from docs/install-vm.md's 'Debian package' column (- documented, + packaged)"
fi
grep -q '^-rwxr-xr-x .* \./usr/sbin/tlsguard$' "$tmp/contents" || fail "/usr/sbin/tlsguard is not -rwxr-xr-x"
grep -qx 'ExecStart=/usr/sbin/tlsguard agent --config /etc/tlsguard/tlsguard.yaml' \
	"$tmp/x/lib/systemd/system/tlsguard.service" || fail "packaged unit does not run /usr/sbin/tlsguard"
if readelf -S "$tmp/x/usr/sbin/tlsguard" | grep -qE '\.symtab|\.debug_'; then
	fail "/usr/sbin/tlsguard is not stripped"
fi
echo "ok: contents match docs/install-vm.md ($(wc -l <"$tmp/files") files)"

# ---- control archive ------------------------------------------------------------
dpkg-deb -e "$deb" "$tmp/control"
[[ $(cat "$tmp/control/conffiles") == /etc/tlsguard/tlsguard.yaml ]] ||
	fail "conffiles is '$(cat "$tmp/control/conffiles")', expected /etc/tlsguard/tlsguard.yaml"
[[ -s $tmp/control/md5sums ]] || fail "no md5sums"
for s in postinst prerm postrm; do
	[[ -x $tmp/control/$s ]] || fail "maintainer script $s missing or not executable"
	sh -n "$tmp/control/$s" || fail "maintainer script $s does not parse"
	grep -qx 'set -e' "$tmp/control/$s" || fail "maintainer script $s lacks 'set -e'"
	grep -q '/run/systemd/system' "$tmp/control/$s" || [[ $s == prerm ]] ||
		fail "$s does not check whether systemd runs (/run/systemd/system)"
done
grep -q 'tlsguard uninstall' "$tmp/control/prerm" || fail "prerm does not run 'tlsguard uninstall' on removal"
echo "ok: conffiles, md5sums, maintainer scripts"

# ---- lintian ----------------------------------------------------------------------
if ! command -v lintian >/dev/null; then
	"$root/scripts/install-deps.sh" lintian >/dev/null || fail "lintian is missing and could not be installed"
fi
lintian --fail-on error --display-info "$deb" >"$tmp/lintian.log" 2>&1
rc=$?
grep -v 'running with root privileges' "$tmp/lintian.log" | sed 's/^/    lintian: /'
[[ $rc -eq 0 ]] || fail "lintian reports errors (above)"
grep -q '^E: ' "$tmp/lintian.log" && fail "lintian reports errors (above)"
echo "ok: lintian: no error"

# ---- install, run, remove, purge in a throw-away root -------------------------------
why=""
[[ $(id -u) -eq 0 ]] || why="not root"
command -v unshare >/dev/null || why="no unshare"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || true
grep -qw overlay /proc/filesystems || why="no overlayfs"
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $cg2 ]] || why="no cgroup2 mount"
if [[ -n $why ]]; then
	echo "note: package install/remove not exercised: $why"
	exit 0
fi

id=tg-deploy-deb-$$
cg=$cg2/$id
mkdir "$cg" || fail "cannot create cgroup $cg"
trap 'rmdir "$cg" 2>/dev/null; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/ov"
cp "$deb" "$tmp/pkg.deb"
cat >"$tmp/inside.sh" <<EOF
set -u
step() { echo "# \$*"; }
step dpkg -i
dpkg -i /tmp/pkg.deb || { echo "FAIL: dpkg -i failed"; exit 1; }
for d in /etc/tlsguard/secrets /var/lib/tlsguard; do
	[ "\$(stat -c %a \$d 2>/dev/null)" = 700 ] || { echo "FAIL: postinst did not create \$d 0700"; exit 1; }
done
[ -L /etc/systemd/system/multi-user.target.wants/tlsguard.service ] ||
	{ echo "FAIL: postinst did not enable tlsguard.service"; exit 1; }
tlsguard policy check /etc/tlsguard/tlsguard.yaml || { echo "FAIL: packaged policy is invalid"; exit 1; }
step agent from the package, watching $cg
tlsguard agent --cgroup $cg --socket /tmp/tg.sock --events-file /dev/null >/tmp/agent.log 2>&1 &
pid=\$!
i=0
until tlsguard status --socket /tmp/tg.sock >/dev/null 2>&1; do
	i=\$((i + 1))
	if [ \$i -gt 100 ] || ! kill -0 \$pid 2>/dev/null; then
		cat /tmp/agent.log; echo "FAIL: the packaged agent did not come up"; exit 1
	fi
	sleep 0.1
done
kill \$pid; wait \$pid 2>/dev/null
[ -d /sys/fs/bpf/tlsguard ] || { echo "FAIL: no pins under /sys/fs/bpf/tlsguard after the agent stopped"; exit 1; }
bpftool cgroup show $cg 2>/dev/null | grep -q tg_ || { echo "FAIL: no tlsguard program attached to $cg"; exit 1; }
step dpkg -r
dpkg -r tlsguard || { echo "FAIL: dpkg -r failed"; exit 1; }
[ ! -e /sys/fs/bpf/tlsguard ] || { echo "FAIL: pins left after dpkg -r"; exit 1; }
if bpftool cgroup show $cg 2>/dev/null | grep -q tg_; then echo "FAIL: programs still attached to $cg after dpkg -r"; exit 1; fi
[ -f /etc/tlsguard/tlsguard.yaml ] || { echo "FAIL: dpkg -r removed the conffile"; exit 1; }
step dpkg -P
dpkg -P tlsguard || { echo "FAIL: dpkg -P failed"; exit 1; }
[ ! -e /etc/tlsguard ] && [ ! -e /var/lib/tlsguard ] || { echo "FAIL: dpkg -P left /etc/tlsguard or /var/lib/tlsguard"; exit 1; }
echo "inside: ok"
EOF
unshare -m --propagation private bash -c '
	set -e
	ov=$1
	mount -t tmpfs tmpfs "$ov"
	mkdir "$ov/u" "$ov/w" "$ov/m"
	mount -t overlay overlay -o "lowerdir=/,upperdir=$ov/u,workdir=$ov/w" "$ov/m"
	for d in proc sys dev; do mount --rbind "/$d" "$ov/m/$d"; done
	mount -t bpf bpf "$ov/m/sys/fs/bpf"      # private: the host pins stay out of reach
	mount -t tmpfs tmpfs "$ov/m/run"
	mount -t tmpfs tmpfs "$ov/m/tmp"
	cp "$2" "$ov/m/tmp/pkg.deb"
	cp "$3" "$ov/m/tmp/inside.sh"
	exec chroot "$ov/m" /bin/sh /tmp/inside.sh
' _ "$tmp/ov" "$tmp/pkg.deb" "$tmp/inside.sh" >"$tmp/inside.log" 2>&1
rc=$?
if [[ $rc -ne 0 ]] || ! grep -q '^inside: ok$' "$tmp/inside.log"; then
	sed 's/^/    /' "$tmp/inside.log" >&2
	fail "install/run/remove/purge of the package in a throw-away root failed (exit $rc, log above)"
fi
echo "ok: dpkg -i enables the service and creates its directories; dpkg -r unpins and detaches; dpkg -P purges"
exit 0
