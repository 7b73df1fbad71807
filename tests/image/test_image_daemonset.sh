#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The image, run as deploy/kubernetes/daemonset.yaml runs its agent container
# (tests/image/pod.py reads the manifest: every capability dropped and the
# manifest's added back, host PID namespace, the pod's own network namespace,
# read-only root, no_new_privs, bpffs HostToContainer, the host's cgroup2
# read-only, control and spool host paths, the ConfigMap's policy), against a
# workload in a watched cgroup on the host in this test's netns:
#   - plaintext blocked, 0 bytes at the server, the event names the client's
#     host pid; TLS allowed; the liveness probe from inside the container
#     healthy before and after
#   - the image holds no shell, package manager or compiler
#   - each added capability removed in turn: the agent exits 1 with one line
#     naming it, so the manifest's list is the minimum that works
set -euo pipefail
# shellcheck source=tests/image/lib.sh
. "$(dirname "$0")/lib.sh"
trap tgi_cleanup EXIT
tg_setup
tgi_dirs
tgi_policy enforce

tg_log "---- the image holds the agent and its libraries, nothing to install or compile with"
cid=$(tgi_podman create --name "$TG_ID-files" "$TG_IMAGE")
TGI_CONTAINERS+=("$TG_ID-files")
files=$(tgi_podman export "$cid" | tar -t)
grep -qx 'usr/sbin/tlsguard' <<<"$files" || tg_fail "no usr/sbin/tlsguard in $TG_IMAGE"
bad=$(grep -E '^(usr/)?s?bin/(sh|bash|dash|dpkg|apt|apt-get|gcc|cc|clang|ld|make)$' <<<"$files" || true)
assert_eq "" "$bad" "shells, package managers and compilers in the image"
size=$(tgi_podman image inspect -f '{{.Size}}' "$TG_IMAGE")
tg_log "image $TG_IMAGE: $((size / 1000000)) MB, $(wc -l <<<"$files") files"

tg_log "---- the agent container as the DaemonSet runs it"
tg_start_plain_server web "$TG_PROT4" 80
tg_start_tls_server tls "$TG_PROT4" 443
tgi_run agent agent "${TGI_HOSTS[@]}" -- --pin-path "$TG_PIN"
tgi_wait_ready agent
logs=$(tgi_logs agent)
grep -q 'mounted bpffs' <<<"$logs" && tg_fail "the agent mounted bpffs inside its container: the host's was not there"
[[ -d $TG_PIN ]] || tg_fail "no pins under $TG_PIN on the host"
kept=$(grep -o 'kept [A-Z_ ]*(no_new_privs)' <<<"$logs" || true)
tg_log "agent: $kept"
tgi_probe agent livenessProbe
assert_rc 0 "liveness probe (tlsguard status --check) inside the container"

tg_client plain curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
assert_rc_nonzero "plain HTTP from the watched cgroup"
assert_cmp "$TG_MS" -lt 1000 "time to the failure (ms): the socket was destroyed from the container"
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'plaintext'" 5 "plaintext event")
assert_field "$ev" action blocked
assert_field "$ev" workload.pid "$TG_CLIENT_PID"
assert_field "$ev" workload.comm curl
assert_field "$ev" workload.cgroup "$TG_CG_REL"
assert_field "$ev" host tg-image-test
assert_server web 1 -eq 0

tg_client tls curl -sS -k --max-time 5 -o /dev/null -w '%{http_code}' "$(tg_url https "$TG_PROT4")"
assert_rc 0 "curl over TLS from the watched cgroup"
assert_eq 200 "$(cat "$TG_OUT")" "HTTP status over TLS"
expect_event "$TG_EVENTS" "e.get('type') == 'tls' and e.get('action') == 'allowed'" 5 "allowed TLS event" >/dev/null

tgi_probe agent readinessProbe
assert_rc 0 "readiness probe after the traffic"
tg_capture status-json tgi_podman exec "$TG_ID-agent" /usr/sbin/tlsguard status -o json
assert_rc 0 "tlsguard status -o json inside the container"
assert_eq healthy "$(json_get "$(cat "$TG_OUT")" health.state)" "health inside the container"

tgi_podman stop -t 10 "$TG_ID-agent" >/dev/null
assert_eq 0 "$(tgi_wait_exit agent 15)" "agent container exit status after SIGTERM"
[[ -d $TG_PIN ]] || tg_fail "the pins went with the container"
tg_log "ok: the pins outlive the container"
assert_events_valid "$TG_EVENTS"

tg_log "---- each added capability, removed alone"
mapfile -t caps < <(tgi_pod agent caps)
assert_cmp "${#caps[@]}" -gt 0 "capabilities the manifest adds"
for cap in "${caps[@]}"; do
	tgi_run "no-$cap" agent "${TGI_HOSTS[@]}" --drop-cap "$cap" -- --pin-path "$TG_PIN-no-$cap"
	code=$(tgi_wait_exit "no-$cap" 20) || {
		tgi_logs "no-$cap" | grep -v '^libbpf: ' | tail -n 20 >&2
		tg_fail "without CAP_$cap the agent runs: the manifest adds a capability it does not need"
	}
	out=$(tgi_logs "no-$cap" | grep -v '^libbpf: ')
	assert_eq 1 "$code" "agent exit status without CAP_$cap"
	lacks=$(grep -c 'lacks CAP_' <<<"$out" || true)
	assert_eq 1 "$lacks" "lines saying what the agent lacks without CAP_$cap"
	grep -q "^tlsguard: the agent lacks CAP_$cap: " <<<"$out" ||
		tg_fail "without CAP_$cap the agent says: $out"
	[[ ! -e "$TG_PIN-no-$cap" ]] || tg_fail "without CAP_$cap the agent still made $TG_PIN-no-$cap"
	tg_log "ok: without CAP_$cap: $(grep 'lacks CAP_' <<<"$out")"
done
tg_assert_uninstalled
