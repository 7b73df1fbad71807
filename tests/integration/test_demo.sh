#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `make demo` runs in CI: its sandbox shows the three outcomes (allowed TLS,
# flagged plaintext, blocked plaintext and a refused connect), prints events
# and a healthy status, and leaves nothing behind.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
tg_require_root
out=$(mktemp /tmp/tg-it-demo.XXXXXX)
trap 'rm -f "$out"' EXIT

rc=0
"$TG_ROOT/scripts/demo.sh" "$TLSGUARD" >"$out" 2>&1 || rc=$?
if [[ $rc -ne 0 ]]; then
	cat "$out" >&2
	tg_fail "demo exited with status $rc"
fi
expect()
{
	grep -Eq -- "$1" "$out" || { cat "$out" >&2; tg_fail "demo output lacks: $2"; }
	tg_log "ok: demo shows $2"
}
expect 'TLS +https://acct\.blob\.core\.windows\.net/ .*-> succeeded .*HTTP 200 over TLS' "allowed TLS"
expect 'plain +http://mlregistry\.azurecr\.io/ \(audit\) .*-> succeeded' "flagged plaintext goes through"
expect 'plain +http://acct\.blob\.core\.windows\.net/ \(enforce\) .*-> FAILED after [0-9]+ ms: .*connection abort' "blocked plaintext fails fast"
expect 'port not allowed\) .*-> FAILED' "refused connect"
expect 'plaintext +flagged +registry +mlregistry\.azurecr\.io:80' "flagged event"
expect 'plaintext +blocked +storage +acct\.blob\.core\.windows\.net:80 .*http PUT Host=acct\.blob\.core\.windows\.net' "blocked event"
expect 'blocked_connect +blocked +scoring' "refused-connect event"
expect '^  tlsguard [0-9.]+ +healthy' "a healthy status"
id=$(grep -Eo 'tg-demo-[0-9]+' "$out" | head -n1)
[[ -n "$id" ]] || tg_fail "cannot find the demo's sandbox name"
if ip netns list | grep -q "$id" || [[ -e "/sys/fs/bpf/$id" ]] || [[ -e "/etc/netns/$id" ]] ||
	[[ -e "$(tg_cgroup2_mount)/$id" ]]; then
	tg_fail "demo left $id behind"
fi
tg_log "ok: demo cleaned up $id"
