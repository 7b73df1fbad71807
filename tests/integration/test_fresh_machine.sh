#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A fresh machine: nothing has mounted bpffs (no systemd as PID 1) and, in the
# second half, no cgroup2 either. Run in a private mount namespace where both
# are unmounted, the agent mounts what it needs itself and says so; the whole
# block path works there (plaintext blocked with 0 bytes at the server, TLS
# allowed), a restarted agent adopts the pins, `tlsguard uninstall` removes
# them, and `make demo`'s script succeeds. Nothing of the host's mounts changes.
set -euo pipefail

if [[ "${TG_FRESH_NS:-}" != 1 ]]; then
	[[ $(id -u) -eq 0 ]] || { echo "FAIL: needs root (mount namespace, netns, BPF)" >&2; exit 1; }
	command -v unshare >/dev/null || { echo "FAIL: unshare (util-linux) is not installed" >&2; exit 1; }
	private_cg_existed=0
	[[ -e /run/tlsguard/cgroup2 ]] && private_cg_existed=1
	rc=0
	TG_FRESH_NS=1 unshare -m --propagation private bash "$0" "$@" || rc=$?
	# the private cgroup2 mount point the agent made (its mount died with the namespace)
	[[ $private_cg_existed == 1 ]] || rmdir /run/tlsguard/cgroup2 2>/dev/null || true
	rmdir /run/tlsguard 2>/dev/null || true
	exit "$rc"
fi

# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"

# Unmount every bpffs instance under /sys/fs/bpf in this namespace only.
while grep -q ' /sys/fs/bpf bpf ' /proc/mounts; do
	umount /sys/fs/bpf || tg_fail "cannot unmount /sys/fs/bpf in the private namespace"
done
tg_log "ok: no bpffs mounted at /sys/fs/bpf in this mount namespace"

trap tg_cleanup EXIT
tg_setup
[[ ! -e "$TG_PIN" ]] || tg_fail "$TG_PIN exists before the agent ran"

P_BLOCKED="e.get('type') == 'plaintext' and e.get('action') == 'blocked'"
P_TLS="e.get('type') == 'tls' and e.get('action') == 'allowed'"
plain_url=$(tg_url http "$TG_PROT4")
tls_url=$(tg_url https "$TG_PROT4")
tg_write_policy "$TG_TMP/policy.yaml" enforce "[80, 443]" true

# block_path WHAT: plaintext blocked with 0 bytes at the server, TLS allowed.
block_path()
{
	local what=$1
	tg_start_plain_server web "$TG_PROT4" 80
	tg_client "plain-$what" curl -sS --max-time 5 "$plain_url"
	assert_rc_nonzero "plain HTTP ($what)"
	expect_event "$TG_EVENTS" "$P_BLOCKED and get(e, 'workload.pid') == $TG_CLIENT_PID" 5 \
		"blocked event ($what)" >/dev/null
	assert_server web 1 -eq 0
	tg_client "tls-$what" curl -sS -k --max-time 5 -o /dev/null -w '%{http_code}' "$tls_url"
	assert_eq 0 "$TG_RC" "curl over TLS ($what) exit status"
	assert_eq 200 "$(cat "$TG_OUT")" "HTTP status over TLS ($what)"
	expect_event "$TG_EVENTS" "$P_TLS and get(e, 'workload.pid') == $TG_CLIENT_PID" 5 \
		"allowed TLS event ($what)" >/dev/null
}

tg_log "---- bpffs missing and no CAP_SYS_ADMIN: one line that says what to do"
rc=0
setpriv --bounding-set -sys_admin --inh-caps -sys_admin "$TLSGUARD" agent --config "$TG_TMP/policy.yaml" \
	--cgroup "$TG_CG" --pin-path "$TG_PIN" --socket "$TG_SOCK" --events-file "$TG_EVENTS" \
	>"$TG_TMP/nocap.log" 2>&1 || rc=$?
assert_eq 1 "$rc" "agent exit status without CAP_SYS_ADMIN and without bpffs"
# the capability check comes first (agent/kernel/privileges.h): CAP_SYS_ADMIN also mounts bpffs
grep -q 'tlsguard: the agent lacks CAP_SYS_ADMIN: ' \
	"$TG_TMP/nocap.log" || tg_fail "no clear line without CAP_SYS_ADMIN: $(cat "$TG_TMP/nocap.log")"
grep -q ' /sys/fs/bpf bpf ' /proc/mounts && tg_fail "bpffs got mounted without CAP_SYS_ADMIN"

tg_log "---- bpffs missing: the agent mounts it"
tg_start_tls_server tls "$TG_PROT4" 443
tg_start_agent enforce "$TG_TMP/policy.yaml"
grep -q 'tlsguard: mounted bpffs at /sys/fs/bpf' "$TG_AGENT_LOG" ||
	tg_fail "the agent did not say it mounted bpffs: $(grep -m3 tlsguard: "$TG_AGENT_LOG")"
grep -q ' /sys/fs/bpf bpf ' /proc/mounts || tg_fail "no bpffs at /sys/fs/bpf after the agent started"
[[ -d "$TG_PIN" ]] || tg_fail "no pin directory $TG_PIN"
block_path "first agent"

tg_log "---- restart: the same bpffs, the pins adopted"
tg_stop_agent
: >"$TG_EVENTS"
tg_start_agent enforce "$TG_TMP/policy.yaml"
grep -q 'mounted bpffs' "$TG_AGENT_LOG" && tg_fail "the restarted agent mounted bpffs a second time"
grep -q 'ready: .*(adopted)' "$TG_AGENT_LOG" || tg_fail "the restarted agent did not adopt the pins"
assert_eq 1 "$(grep -c ' /sys/fs/bpf bpf ' /proc/mounts)" "bpffs mounts at /sys/fs/bpf"
block_path "restarted agent"
tg_stop_agent
tg_assert_uninstalled

tg_log "---- cgroup2 missing too: the agent mounts one privately"
# the watched cgroup stays (the hierarchy is the kernel's); only this namespace loses the mount
umount "$TG_CG2" || tg_fail "cannot unmount $TG_CG2 in the private namespace"
grep -q ' cgroup2 ' /proc/mounts && tg_fail "a cgroup2 mount is still listed in /proc/mounts"
cg_rel=$TG_CG_REL
TG_CG2=/run/tlsguard/cgroup2
TG_CG=$TG_CG2$cg_rel
TG_AGENT_CGROUP_ARG=$cg_rel
: >"$TG_EVENTS"
tg_start_agent enforce "$TG_TMP/policy.yaml"
grep -q "tlsguard: mounted cgroup2 at $TG_CG2" "$TG_AGENT_LOG" ||
	tg_fail "the agent did not say it mounted cgroup2: $(grep -m3 tlsguard: "$TG_AGENT_LOG")"
[[ -d "$TG_CG" ]] || tg_fail "the watched cgroup is not visible at $TG_CG"
block_path "private cgroup2 mount"
tg_stop_agent
tg_assert_uninstalled

tg_log "---- uninstall where nothing is pinned says so"
out=$("$TLSGUARD" uninstall --pin-path "$TG_PIN" 2>&1) || tg_fail "uninstall of nothing failed: $out"
[[ $out == "nothing to remove"* ]] || tg_fail "uninstall of nothing says: $out"

tg_log "---- the demo, on this machine"
umount /sys/fs/bpf || tg_fail "cannot unmount the agent's bpffs again"
demo_out="$TG_TMP/demo.out"
"$TG_ROOT/scripts/demo.sh" "$TLSGUARD" >"$demo_out" 2>&1 || {
	cat "$demo_out" >&2
	tg_fail "the demo failed without bpffs"
}
grep -Eq 'plain +http://acct\.blob\.core\.windows\.net/ \(enforce\) .*-> FAILED' "$demo_out" ||
	{ cat "$demo_out" >&2; tg_fail "the demo did not show blocked plaintext"; }
tg_log "ok: the demo ran without a bpffs mounted beforehand"
