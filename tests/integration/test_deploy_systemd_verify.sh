#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The systemd unit as `make install` writes it: `systemd-analyze verify`
# accepts it without a single warning (binary and man page present, from a
# DESTDIR install), its hardening is what docs/install-vm.md and issue 7 say,
# its capability set equals the table in docs/install-aks.md, the tmpfiles.d
# entry creates its directories 0700, and `systemd-analyze security` rates it
# no worse than "OK". Does not start anything (test_deploy_systemd_start.sh does).
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
# under CI=true a test that cannot run fails with its reason (as tg_skip in lib.sh)
skip()
{
	[[ "${CI:-}" == true ]] && fail "cannot run (CI=true turns a skip into a failure): $*"
	echo "SKIP: $*"
	exit 77
}

command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed (Debian package systemd)"
command -v systemd-tmpfiles >/dev/null || skip "systemd-tmpfiles is not installed (Debian package systemd)"

tmp=$(mktemp -d /tmp/tg-deploy-sd.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
dest=$tmp/root

# The binary this run built (release, else the one the runner tests), copied so
# that make never rebuilds it here: INSTALL_BIN is documented in mk/install.mk.
mkdir -p "$tmp/bin"
for b in "$root/build/tlsguard" "${TLSGUARD:-}"; do
	if [[ -n $b && -x $b ]]; then
		cp "$b" "$tmp/bin/tlsguard"
		break
	fi
done
[[ -x $tmp/bin/tlsguard ]] || fail "no tlsguard binary to install: run 'make' first"

if ! make -C "$root" --no-print-directory install DESTDIR="$dest" \
	INSTALL_BIN="$tmp/bin/tlsguard" INSTALL_POLICY="$tmp/bin/tlsguard.yaml" >"$tmp/make.log" 2>&1; then
	cat "$tmp/make.log" >&2
	fail "make install DESTDIR=$dest failed (log above)"
fi

unit=$dest/usr/local/lib/systemd/system/tlsguard.service
conf=$dest/usr/local/lib/tmpfiles.d/tlsguard.conf
bin=/usr/local/sbin/tlsguard
[[ -f $unit ]] || fail "make install did not install $unit"
[[ -f $conf ]] || fail "make install did not install $conf"
[[ -x $dest$bin ]] || fail "make install did not install $dest$bin"

# ---- systemd-analyze verify: a copy whose binary paths point into DESTDIR ----
mkdir -p "$tmp/verify"
sed "s|$bin|$dest$bin|g" "$unit" >"$tmp/verify/tlsguard.service"
MANPATH=$dest/usr/local/share/man systemd-analyze verify "$tmp/verify/tlsguard.service" \
	>"$tmp/verify.log" 2>&1
rc=$?
if [[ $rc -ne 0 || -s $tmp/verify.log ]]; then
	cat "$tmp/verify.log" >&2
	fail "systemd-analyze verify tlsguard.service: exit $rc, or warnings (above); it must be silent"
fi
echo "ok: systemd-analyze verify is silent"

# ---- the directives --------------------------------------------------------
# value KEY: every value of KEY= in the unit, one per line (empty resets dropped)
value() { sed -n "s/^$1=//p" "$unit"; }
want() {
	local key=$1 expect=$2
	value "$key" | grep -qxF -- "$expect" || fail "$unit: expected $key=$expect, found: $(value "$key" | tr '\n' ' ')"
}

exec_start=$(value ExecStart)
[[ ${exec_start%% *} == "$bin" ]] || fail "ExecStart= runs '${exec_start%% *}', not the installed $bin"
config=$(sed -n 's/.*--config \([^ ]*\).*/\1/p' <<<"$exec_start")
[[ -n $config && -f $dest$config ]] || fail "ExecStart= --config '$config' is not a file make install installed"
for line in $(grep -oE '/usr/local/sbin/[a-z]+' "$unit" | sort -u); do
	[[ -x $dest$line ]] || fail "the unit runs $line, which make install did not install"
done

type=$(value Type)
case $type in
notify)
	want NotifyAccess main
	value WatchdogSec | grep -q . || fail "Type=notify without WatchdogSec= (the agent pings once a second)"
	;;
simple)
	value ExecStartPost | grep -q 'status' ||
		fail "Type=simple without an ExecStartPost= readiness check (tlsguard status)"
	# the shell snippet parses, once systemd has turned $$ into $
	value ExecStartPost | sed -e "s/^\/bin\/sh -c '//" -e "s/'\$//" -e 's/\$\$/$/g' >"$tmp/post.sh"
	sh -n "$tmp/post.sh" || fail "ExecStartPost= shell snippet does not parse: $(cat "$tmp/post.sh")"
	;;
*) fail "Type=$type: expected notify, or simple with a readiness check" ;;
esac
value ExecReload | grep -qxF '/bin/kill -HUP $MAINPID' || fail "no ExecReload=/bin/kill -HUP \$MAINPID"
want Restart on-failure
want NoNewPrivileges yes
want ProtectSystem strict
want ProtectHome yes
want PrivateTmp yes
# ProtectKernelTunables=yes, spelled out: with it systemd 252 makes /sys/fs/bpf
# read-only despite ReadWritePaths= (test_deploy_systemd_start.sh shows it)
value ProtectKernelTunables | grep -qx yes && fail "ProtectKernelTunables=yes makes /sys/fs/bpf read-only (systemd 252)"
ro=" $(value ReadOnlyPaths | tr '\n' ' ') "
for p in /sys /proc/sys -/proc/sysrq-trigger; do
	[[ $ro == *" $p "* ]] || fail "ReadOnlyPaths= lacks $p (has:$ro)"
done
want ProtectControlGroups yes

rw=" $(value ReadWritePaths | tr '\n' ' ') "
for p in /sys/fs/bpf /run/tlsguard /var/lib/tlsguard; do
	[[ $rw == *" $p "* ]] || fail "ReadWritePaths= lacks $p (has:$rw)"
done
fam=" $(value RestrictAddressFamilies | tr '\n' ' ') "
[[ $fam != *"~"* ]] || fail "RestrictAddressFamilies= must be an allow list, is:$fam"
for f in AF_UNIX AF_NETLINK AF_INET AF_INET6; do
	[[ $fam == *" $f "* ]] || fail "RestrictAddressFamilies= lacks $f (has:$fam)"
done
ns=$(value RestrictNamespaces)
[[ $ns == net ]] || fail "RestrictNamespaces= should allow only 'net' (setns into workloads), is '$ns'"

# capabilities: exactly the table in docs/install-aks.md, section "Capabilities"
doc_caps=$(awk '/^## Capabilities/ { on = 1; next } /^## / { on = 0 }
	on && /^\| `CAP_[A-Z_]+`/ { gsub(/[|` ]/, "", $2); print $2 }' FS='|' "$root/docs/install-aks.md" | sort)
[[ -n $doc_caps ]] || fail "no capability table found in docs/install-aks.md, section '## Capabilities'"
unit_caps=$(value CapabilityBoundingSet | tr ' ' '\n' | sed '/^$/d' | sort)
if [[ $doc_caps != "$unit_caps" ]]; then
	fail "CapabilityBoundingSet= ($(echo $unit_caps)) differs from docs/install-aks.md ($(echo $doc_caps))"
fi
[[ -z $(value AmbientCapabilities) ]] || fail "AmbientCapabilities= should be empty (the agent runs as root)"
echo "ok: hardening directives and capabilities ($(echo $unit_caps))"

# ---- tmpfiles.d ------------------------------------------------------------
systemd-tmpfiles --root="$dest" --create tlsguard.conf >"$tmp/tmpfiles.log" 2>&1 ||
	{ cat "$tmp/tmpfiles.log" >&2; fail "systemd-tmpfiles --create tlsguard.conf failed"; }
for d in /run/tlsguard /var/lib/tlsguard; do
	[[ -d $dest$d ]] || fail "tmpfiles.d entry did not create $d"
	mode=$(stat -c %a "$dest$d")
	[[ $mode == 700 ]] || fail "$d created with mode $mode, expected 700"
done
echo "ok: tmpfiles.d creates /run/tlsguard and /var/lib/tlsguard, 0700"

# ---- exposure --------------------------------------------------------------
if systemd-analyze security --offline=yes "$tmp/verify/tlsguard.service" >"$tmp/security.log" 2>&1; then
	score=$(sed -n 's/.*Overall exposure level for tlsguard.service: \([0-9.]*\).*/\1/p' "$tmp/security.log")
	[[ -n $score ]] || { cat "$tmp/security.log" >&2; fail "no exposure level in systemd-analyze security output"; }
	awk -v s="$score" 'BEGIN { exit !(s <= 5.0) }' ||
		fail "systemd-analyze security: exposure $score, worse than 5.0 (OK); a hardening directive was lost"
	echo "ok: systemd-analyze security exposure $score"
else
	echo "note: systemd-analyze security --offline failed; exposure not checked: $(tail -n 1 "$tmp/security.log")"
fi
exit 0
