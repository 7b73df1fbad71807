#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The unit really starts the agent under systemd, with all its hardening:
# `systemctl start` returns once the agent says READY=1 (sd_notify) and
# answers on its control socket, `systemctl reload` reloads the policy,
# `systemctl stop` stops the agent and leaves the programs pinned (they are
# then removed with `tlsguard uninstall`).
#
# The unit is the one `make install` writes (a DESTDIR install of this tree),
# run under a unique name with its own cgroup, pin directory, control socket
# and policy, so nothing of a real tlsguard on the host is touched.
#
# Where systemd is not PID 1 (this CI machine, containers), the test boots one:
# a Debian bookworm container made from scripts/image-base.sh's base
# (tests/image/Containerfile.systemd, cached in podman) runs systemd as PID 1
# (podman --systemd=always, its own cgroup namespace, the host's bpffs, the
# capabilities the unit grants), and this script runs again inside it.
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

# ---- outside: install, then find or boot a systemd ---------------------------
if [[ -z ${TG_SD_STAGE:-} ]]; then
	bin=""
	for b in "$root/build/tlsguard" "${TLSGUARD:-}"; do
		[[ -n $b && -x $b ]] && { bin=$b; break; }
	done
	[[ -n $bin ]] || fail "no tlsguard binary: run 'make' first"
	export TG_SD_ID=tg-deploy-$$-$RANDOM
	export TG_SD_STAGE=/tmp/$TG_SD_ID.stage
	outer_cleanup()
	{
		[[ -n ${ctr:-} ]] && "$root/scripts/podman.sh" rm -f -t 5 "$ctr" >/dev/null 2>&1
		[[ -e /sys/fs/bpf/$TG_SD_ID ]] && "$bin" uninstall --pin-path "/sys/fs/bpf/$TG_SD_ID" >/dev/null 2>&1
		rm -rf "/sys/fs/bpf/$TG_SD_ID" "$TG_SD_STAGE"
	}
	trap outer_cleanup EXIT
	make -s -C "$root" --no-print-directory install DESTDIR="$TG_SD_STAGE" PREFIX=/usr/local \
		INSTALL_BIN="$bin" INSTALL_POLICY="$TG_SD_STAGE.policy.yaml" >/dev/null ||
		fail "make install DESTDIR=$TG_SD_STAGE failed"
	rm -f "$TG_SD_STAGE.policy.yaml"
	if [[ -d /run/systemd/system ]]; then
		bash "$0"
		exit $?
	fi
	state=$(systemctl is-system-running 2>&1 | head -n 1)
	echo "# systemd is not PID 1 here (PID 1 is '$(ps -o comm= -p 1 2>/dev/null)', is-system-running: '${state:-?}'): booting one in a container"
	command -v podman >/dev/null || skip "systemd is not PID 1 and podman is not installed (make image-test installs it)"
	cache=${TG_IMAGE_CACHE:-$root/build/image-cache}
	base=$("$root/scripts/image-base.sh" "$(dpkg --print-architecture)" "$cache") ||
		fail "no base image (scripts/image-base.sh)"
	sdimage=localhost/tlsguard-systemd:bookworm
	"$root/scripts/podman.sh" build --network host -f "$root/tests/image/Containerfile.systemd" \
		--build-arg BASE="$base" -t "$sdimage" "$root/tests/image" >"$TG_SD_STAGE.build.log" 2>&1 ||
		{ tail -n 20 "$TG_SD_STAGE.build.log" >&2; fail "building $sdimage failed"; }
	rm -f "$TG_SD_STAGE.build.log"
	ctr=$TG_SD_ID
	"$root/scripts/podman.sh" run -d --name "$ctr" --systemd=always --cgroupns=private --network=none \
		--cap-add=SYS_ADMIN,NET_ADMIN,SYS_PTRACE -v /sys/fs/bpf:/sys/fs/bpf \
		-v "$root:$root:ro" -v "$TG_SD_STAGE:$TG_SD_STAGE:ro" "$sdimage" >/dev/null ||
		fail "podman run --systemd=always $sdimage failed"
	# until systemd listens on its private bus, systemctl cannot ask it
	for ((i = 0; i < 300; i++)); do
		state=$(timeout 60 "$root/scripts/podman.sh" exec "$ctr" systemctl is-system-running --wait 2>&1)
		[[ $state == *"connect to bus"* ]] || break
		sleep 0.2
	done
	[[ $state == running || $state == degraded ]] ||
		fail "systemd in the container is '$state' ($("$root/scripts/podman.sh" logs "$ctr" 2>&1 | tail -n 5))"
	echo "# systemd $("$root/scripts/podman.sh" exec "$ctr" systemctl --version | head -n 1 | cut -d' ' -f2) is PID 1 in container $ctr ($state)"
	"$root/scripts/podman.sh" exec -e TG_SD_ID -e TG_SD_STAGE -e CI="${CI:-}" "$ctr" bash "$0"
	exit $?
fi

# ---- inside: systemd is PID 1 -------------------------------------------------
[[ -d /run/systemd/system ]] || fail "systemd is not PID 1 where the test runs"
bin=$TG_SD_STAGE/usr/local/sbin/tlsguard
installed_unit=$TG_SD_STAGE/usr/local/lib/systemd/system/tlsguard.service
[[ -x $bin && -f $installed_unit ]] || fail "make install wrote no $bin and $installed_unit"

cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[[ -n $cg2 ]] || skip "no cgroup2 mount"

id=$TG_SD_ID
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
sed -e "s|/usr/local/sbin/tlsguard agent --config /etc/tlsguard/tlsguard.yaml|/usr/local/sbin/tlsguard agent --config /run/$id-bin/policy.yaml --pin-path $pin --socket $sock|" \
	-e "s|/etc/tlsguard/tlsguard.yaml|/run/$id-bin/policy.yaml|g" \
	-e "s|/usr/local/sbin/tlsguard|/run/$id-bin/tlsguard|g" \
	-e "s|/run/tlsguard/tlsguard.sock|$sock|g" \
	-e "s|^RuntimeDirectory=tlsguard|RuntimeDirectory=$id|" \
	-e "s|^StateDirectory=tlsguard|StateDirectory=$id|" \
	-e "s|^LogsDirectory=tlsguard|LogsDirectory=$id|" \
	-e "s|/run/tlsguard|/run/$id|g" \
	-e "s|/var/lib/tlsguard|/var/lib/$id|g" \
	"$installed_unit" >"$unitfile"
grep -q "^ExecStart=/run/$id-bin/tlsguard agent --config /run/$id-bin/policy.yaml --pin-path $pin " "$unitfile" ||
	fail "the installed unit's ExecStart= is not the one make install writes: $(grep ^ExecStart= "$installed_unit")"
systemctl daemon-reload

start=$(date +%s)
if ! timeout 90 systemctl start "$name"; then
	journalctl -u "$name" --no-pager -n 50 >&2
	fail "systemctl start $name failed (journal above)"
fi
echo "ok: systemctl start returned after $(($(date +%s) - start)) s"
systemctl is-active --quiet "$name" || fail "$name is not active after start"
# Type=notify: start returned on READY=1; the agent's STATUS= line is shown
status_text=$(systemctl show -p StatusText --value "$name")
[[ -n $status_text ]] || fail "no STATUS= from the agent (sd_notify) in systemctl show $name"
echo "ok: sd_notify status: $status_text"
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
