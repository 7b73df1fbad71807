#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The DaemonSet's mount-bpffs init container on a node without bpffs: run as
# the manifest says (privileged, /sys/fs/bpf Bidirectional), it mounts bpffs
# on the node; the agent container (HostToContainer) then finds it, mounts
# nothing itself, and its pins are on the node: a second agent container
# adopts them (ready ... (adopted)) and the block path works through both.
#
# "The node" is a private mount namespace of this machine where /sys/fs/bpf is
# unmounted and / is shared (as on a systemd node); nothing of the host's
# mounts changes.
set -euo pipefail

if [[ "${TG_FRESH_NS:-}" != 1 ]]; then
	[[ $(id -u) -eq 0 ]] || { echo "FAIL: needs root (mount namespace, netns, BPF)" >&2; exit 1; }
	TG_FRESH_NS=1 exec unshare -m --propagation private bash "$0" "$@"
fi

# shellcheck source=tests/image/lib.sh
. "$(dirname "$0")/lib.sh"
while grep -q ' /sys/fs/bpf bpf ' /proc/mounts; do
	umount /sys/fs/bpf || tg_fail "cannot unmount /sys/fs/bpf in the private namespace"
done
# a systemd node's mounts are shared; Bidirectional needs that of its source
mount --make-rshared / || tg_fail "mount --make-rshared / in the private namespace"
tg_log "ok: no bpffs at /sys/fs/bpf on this \"node\""

trap tgi_cleanup EXIT
tg_setup
tgi_dirs
tgi_policy enforce

tg_log "---- the init container"
tgi_run init mount-bpffs
code=$(tgi_wait_exit init 30) || tg_fail "the mount-bpffs container did not exit"
out=$(tgi_logs init)
assert_eq 0 "$code" "mount-bpffs exit status ($out)"
grep -q ' /sys/fs/bpf bpf ' /proc/mounts || tg_fail "no bpffs at /sys/fs/bpf on the node after the init container: $out"
grep -q 'is shared with its peers' <<<"$out" || tg_fail "the init container did not see its mount propagate: $out"
grep -q 'warning' <<<"$out" && tg_fail "the init container warned: $out"
tg_log "ok: the init container mounted bpffs on the node: $out"

tg_log "---- the agent container finds it"
tg_start_plain_server web "$TG_PROT4" 80
tgi_run agent agent "${TGI_HOSTS[@]}" -- --pin-path "$TG_PIN"
tgi_wait_ready agent
tgi_logs agent | grep -q 'mounted bpffs' && tg_fail "the agent mounted bpffs itself: $(tgi_logs agent | grep 'mounted bpffs')"
[[ -d $TG_PIN ]] || tg_fail "the agent's pins are not on the node ($TG_PIN)"
tg_client plain-1 curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
assert_rc_nonzero "plain HTTP with the first agent container"
assert_server web 1 -eq 0

tg_log "---- a new agent container adopts the pins"
tgi_podman stop -t 10 "$TG_ID-agent" >/dev/null
assert_eq 0 "$(tgi_wait_exit agent 15)" "first agent container exit status"
[[ -d $TG_PIN ]] || tg_fail "the pins went with the container"
tgi_run agent2 agent "${TGI_HOSTS[@]}" -- --pin-path "$TG_PIN"
tgi_wait_ready agent2
tgi_logs agent2 | grep -q 'ready: .*(adopted)' || tg_fail "the second agent did not adopt the pins: $(tgi_logs agent2 | grep 'ready:')"
assert_eq 1 "$(grep -c ' /sys/fs/bpf bpf ' /proc/mounts)" "bpffs mounts at /sys/fs/bpf on the node"
tg_start_plain_server web "$TG_PROT4" 80
tg_client plain-2 curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
assert_rc_nonzero "plain HTTP with the second agent container"
assert_server web 1 -eq 0
tgi_podman stop -t 10 "$TG_ID-agent2" >/dev/null
tg_assert_uninstalled
