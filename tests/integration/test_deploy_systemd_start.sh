#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The unit really starts the agent under systemd, with all its hardening:
# `systemctl start` returns once the agent answers on its control socket,
# `systemctl reload` reloads the policy, `systemctl stop` stops the agent and
# leaves the programs pinned (they are then removed with `tlsguard uninstall`).
#
# Runs a copy of the unit under a unique name with its own cgroup, pin
# directory, control socket and policy, so nothing of a real tlsguard on the
# host is touched. Needs systemd as PID 1: skipped otherwise, with the reason.
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

[[ $(id -u) -eq 0 ]] || skip "needs root to start a system unit"
if [[ ! -d /run/systemd/system ]]; then
	state=$(systemctl is-system-running 2>&1 | head -n 1)
	skip "systemd is not PID 1 here (PID 1 is '$(ps -o comm= -p 1 2>/dev/null)', systemctl is-system-running: '${state:-?}'); the unit is only verified (test_deploy_systemd_verify.sh)"
fi

bin=""
for b in "$root/build/tlsguard" "${TLSGUARD:-}"; do
	[[ -n $b && -x $b ]] && { bin=$b; break; }
done
[[ -n $bin ]] || fail "no tlsguard binary: run 'make' first"

cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $cg2 ]] || skip "no cgroup2 mount"

id=tg-deploy-$$-$RANDOM
name=$id.service
tmp=$(mktemp -d /tmp/$id.XXXXXX)
cg=$cg2/$id
pin=/sys/fs/bpf/$id
sock=/run/$id/tlsguard.sock
unitfile=/run/systemd/system/$name

cleanup()
{
	systemctl stop "$name" >/dev/null 2>&1
	rm -f "$unitfile"
	systemctl daemon-reload >/dev/null 2>&1
	"$tmp/tlsguard" uninstall --pin-path "$pin" >/dev/null 2>&1
	rmdir "$cg" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

# The binary outside /tmp's PrivateTmp shadow: the unit gets its own /tmp.
mkdir -p "/run/$id-bin"
cp "$bin" "/run/$id-bin/tlsguard"
cp "$bin" "$tmp/tlsguard"
trap 'cleanup; rm -rf "/run/$id-bin" "/var/lib/$id" "/var/log/$id"' EXIT
mkdir "$cg" || fail "cannot create cgroup $cg"
cat >"/run/$id-bin/policy.yaml" <<EOF
mode: audit
workloads:
  cgroups: ["/$id"]
destinations:
  - name: storage
    cidrs: ["198.51.100.10/32"]
    ports: [443]
control:
  socket: $sock
EOF

# The installed unit, renamed: its paths point at this test's files.
sed -e "s|/usr/sbin/tlsguard agent --config /etc/tlsguard/tlsguard.yaml|/usr/sbin/tlsguard agent --config /run/$id-bin/policy.yaml --pin-path $pin --socket $sock|" \
	-e "s|/etc/tlsguard/tlsguard.yaml|/run/$id-bin/policy.yaml|g" \
	-e "s|/usr/sbin/tlsguard|/run/$id-bin/tlsguard|g" \
	-e "s|/run/tlsguard/tlsguard.sock|$sock|g" \
	-e "s|^RuntimeDirectory=tlsguard|RuntimeDirectory=$id|" \
	-e "s|^StateDirectory=tlsguard|StateDirectory=$id|" \
	-e "s|^LogsDirectory=tlsguard|LogsDirectory=$id|" \
	-e "s|/run/tlsguard|/run/$id|g" \
	-e "s|/var/lib/tlsguard|/var/lib/$id|g" \
	"$root/deploy/systemd/tlsguard.service" >"$unitfile"
systemctl daemon-reload

start=$(date +%s)
if ! timeout 90 systemctl start "$name"; then
	journalctl -u "$name" --no-pager -n 50 >&2
	fail "systemctl start $name failed (journal above)"
fi
echo "ok: systemctl start returned after $(($(date +%s) - start)) s"
systemctl is-active --quiet "$name" || fail "$name is not active after start"
"$tmp/tlsguard" status --socket "$sock" >"$tmp/status.txt" 2>&1 ||
	{ cat "$tmp/status.txt" >&2; fail "tlsguard status did not answer on $sock"; }
[[ -d $pin ]] || fail "no pins under $pin while the service runs"

systemctl reload "$name" || { journalctl -u "$name" --no-pager -n 20 >&2; fail "systemctl reload failed"; }
sleep 1
systemctl is-active --quiet "$name" || fail "$name died on reload"
echo "ok: reload"

systemctl stop "$name" || fail "systemctl stop failed"
[[ -d $pin ]] || fail "pins under $pin were removed on stop; they must outlive the agent"
"$tmp/tlsguard" uninstall --pin-path "$pin" >/dev/null || fail "tlsguard uninstall --pin-path $pin failed"
[[ ! -e $pin ]] || fail "$pin still exists after tlsguard uninstall"
echo "ok: stop keeps the pins, uninstall removes them"
exit 0
