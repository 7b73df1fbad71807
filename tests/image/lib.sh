# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Helpers of tests/image/test_*.sh, on top of tests/integration/lib.sh: run the
# image ($TG_IMAGE, `make image`) as the DaemonSet's containers, with the
# arguments tests/image/pod.py reads from deploy/kubernetes/daemonset.yaml.
#
#   tgi_run NAME CONTAINER [pod.py options] -- [extra args]   podman run -d
#   tgi_wait_ready NAME                                        "tlsguard: ready" in its log
#   tgi_probe NAME [KIND]                                      the probe's exec, TG_RC/TG_OUT set
#
# Every container is named tg-it-...-NAME and removed by tgi_cleanup (the EXIT
# trap, which then runs tg_cleanup).

# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"

: "${TG_IMAGE:?TG_IMAGE is the image to test (make image-test sets it)}"
TGI_PODMAN="$TG_ROOT/scripts/podman.sh"
TGI_MANIFEST="$TG_ROOT/deploy/kubernetes/daemonset.yaml"
TGI_CONTAINERS=()

tgi_pod() { python3 "$TG_ROOT/tests/image/pod.py" "$TGI_MANIFEST" "$@"; }

tgi_podman() { "$TGI_PODMAN" "$@"; }

# The directories of the pod's host paths, this test's own: the node's
# /run/tlsguard, spool and logs are not touched. cgroup2 is the host's (the
# DaemonSet mounts the node's /sys/fs/cgroup, a cgroup2 mount on AKS).
tgi_dirs()
{
	mkdir -p "$TG_TMP/run" "$TG_TMP/spool" "$TG_TMP/config" "$TG_TMP/pods" "$TG_TMP/containers"
	chmod 0700 "$TG_TMP/run" "$TG_TMP/spool"
	TGI_HOSTS=(--host "/sys/fs/cgroup=$TG_CG2" --host "/run/tlsguard=$TG_TMP/run"
		--host "/var/lib/tlsguard=$TG_TMP/spool" --host "/var/log/pods=$TG_TMP/pods"
		--host "/var/log/containers=$TG_TMP/containers" --volume "config=$TG_TMP/config")
}

# tgi_policy MODE : the test's policy as the ConfigMap would project it, events
# to the control directory (the host sees them in $TG_TMP/run).
tgi_policy()
{
	local mode=$1
	TG_EVENTS=/run/tlsguard/events.jsonl
	tg_write_policy "$TG_TMP/config/tlsguard.yaml" "$mode" "[80, 443]" true
	TG_EVENTS=$TG_TMP/run/events.jsonl
	TG_SOCK=$TG_TMP/run/tlsguard.sock
}

# tgi_run NAME CONTAINER [pod.py options...] [-- extra args...] : detached.
tgi_run()
{
	local name=$1 ctr=$2 line seen=0 cname
	shift 2
	local opts=() extra=() pre=() args=()
	while [[ $# -gt 0 && $1 != -- ]]; do opts+=("$1"); shift; done
	[[ ${1:-} == -- ]] && shift
	extra=("$@")
	while IFS= read -r line; do
		if [[ $line == -- ]]; then seen=1; continue; fi
		if [[ $seen == 0 ]]; then pre+=("$line"); else args+=("$line"); fi
	done < <(tgi_pod "$ctr" run-args "${opts[@]}")
	[[ ${#pre[@]} -gt 0 ]] || tg_fail "pod.py gave no podman arguments for $ctr"
	cname="$TG_ID-$name"
	TGI_CONTAINERS+=("$cname")
	tg_log "podman run $cname: ${pre[*]} $TG_IMAGE ${args[*]} ${extra[*]}"
	tgi_podman run -d --name "$cname" "${pre[@]}" "$TG_IMAGE" "${args[@]}" "${extra[@]}" >/dev/null ||
		tg_fail "podman run $cname failed"
}

tgi_logs() { tgi_podman logs "$TG_ID-$1" 2>&1; }

# tgi_wait_exit NAME TIMEOUT → prints the container's exit status
tgi_wait_exit()
{
	local name=$1 timeout=$2 i
	for ((i = 0; i < timeout * 10; i++)); do
		[[ $(tgi_podman inspect -f '{{.State.Running}}' "$TG_ID-$name" 2>/dev/null) == false ]] && break
		sleep 0.1
	done
	tgi_podman inspect -f '{{.State.ExitCode}} {{.State.Running}}' "$TG_ID-$name" | {
		read -r code running
		[[ $running == false ]] || { echo "still running"; return 1; }
		echo "$code"
	}
}

tgi_wait_ready()
{
	local name=$1 i
	for ((i = 0; i < TG_AGENT_READY_TIMEOUT * 10; i++)); do
		tgi_logs "$name" | grep -q 'tlsguard: ready' && { tg_log "container $name ready"; return 0; }
		if [[ $(tgi_podman inspect -f '{{.State.Running}}' "$TG_ID-$name" 2>/dev/null) != true ]]; then
			tgi_logs "$name" | grep -v '^libbpf: ' >&2
			tg_fail "container $name exited before 'tlsguard: ready'"
		fi
		sleep 0.1
	done
	tgi_logs "$name" | grep -v '^libbpf: ' | tail -n 40 >&2
	tg_fail "container $name not ready within ${TG_AGENT_READY_TIMEOUT}s"
}

# tgi_probe NAME [KIND] : the manifest's probe command, run as the kubelet runs it
tgi_probe()
{
	local name=$1 kind=${2:-livenessProbe} cmd=()
	mapfile -t cmd < <(tgi_pod agent probe "$kind")
	[[ ${#cmd[@]} -gt 0 ]] || tg_fail "no exec command in the agent's $kind"
	tg_capture "probe-$name" tgi_podman exec "$TG_ID-$name" "${cmd[@]}"
}

tgi_cleanup()
{
	local rc=$? c
	for c in "${TGI_CONTAINERS[@]}"; do
		tgi_podman rm -f -t 2 "$c" >/dev/null 2>&1
		tgi_podman container exists "$c" 2>/dev/null && echo "FAIL: cleanup left container $c" >&2 && rc=1
	done
	# the pins of agents a test started beside the main one ($TG_PIN-*)
	for c in "$TG_PIN"-*; do
		[[ -d $c ]] || continue
		"$TLSGUARD" uninstall --pin-path "$c" >/dev/null 2>&1
		rm -rf "$c"
		[[ ! -e $c ]] || { echo "FAIL: cleanup left pins $c" >&2; rc=1; }
	done
	(exit "$rc")
	tg_cleanup
}
