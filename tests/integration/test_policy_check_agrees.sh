#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# `tlsguard policy check` reports what `tlsguard agent` would refuse at start,
# with the same messages (both run agent/policy/prepare.c): for every policy of
# tests/policies/ and tests/fuzz/corpus/policy/, and for generated ones (100,000
# CIDRs, exactly 65,536 map entries, 16 MiB of nested YAML, a file over
# 16 MiB), run both and compare. An accepted policy: check exits 0 and the
# agent gets ready (in audit mode, on the test's cgroup), with the same
# warnings. A refused one: both exit 2 and print the same lines.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

here=$(cd "$(dirname "$0")/../.." && pwd)
work="$TG_TMP/policies"
mkdir -p "$work"
echo "not a connection string, nor JSON" >"$TG_TMP/garbage.txt"

# the files, placeholders filled in
for f in "$here"/tests/policies/*.yaml "$here"/tests/fuzz/corpus/policy/*; do
	sed -e "s|@PROT4@|$TG_PROT4|g" -e "s|@DATA@|$here/tests/unit/data|g" -e "s|@TMP@|$TG_TMP|g" \
		-e "s|@ID@|$TG_ID|g" "$f" >"$work/$(basename "$f")"
done
# generated: beyond the destination map, exactly at it, nested, too large
python3 - "$work" "$TG_PROT4" <<'PY'
import sys
work, p4 = sys.argv[1:]
def cidrs(path, n, expect):
    with open(path, "w") as f:
        f.write("# expect: %s\ndestinations:\n  - name: storage\n    cidrs: [\"%s/32\"]\n" % (expect, p4))
        f.write("  - name: filler\n    cidrs:\n")
        f.writelines('      - "10.%d.%d.%d/32"\n' % (i >> 16 & 255, i >> 8 & 255, i & 255) for i in range(n))
cidrs(work + "/gen-100k-cidrs.yaml", 100000, "refused")
cidrs(work + "/gen-65536-entries.yaml", 65535, "ok")
head = "# expect: refused\nmode: "
n = ((16 << 20) - len(head)) // 2
open(work + "/gen-nested-16mib.yaml", "w").write(head + "[" * n + "]" * n)
open(work + "/gen-over-16mib.yaml", "w").write("# expect: refused\n#" + "x" * (16 << 20) + "\n")
PY

# run_agent FILE ARGS...: 0 when it got ready (then it is stopped and its pins removed),
# else its exit status; its output in $TG_TMP/agent.out
run_agent()
{
	local file=$1 pid rc=0 i
	shift
	rm -f "$TG_TMP/agent.out"	# not the last run's "ready"
	"$TLSGUARD" agent --config "$file" "$@" --pin-path "$TG_PIN" --events-file "$TG_TMP/events.json" \
		--socket "$TG_SOCK" --mode audit </dev/null >"$TG_TMP/agent.out" 2>&1 &
	pid=$!
	TG_PIDS+=("$pid")
	for ((i = 0; i < 600; i++)); do
		if grep -q '^tlsguard: ready' "$TG_TMP/agent.out" 2>/dev/null; then
			kill -TERM "$pid"
			wait "$pid" || tg_fail "$(basename "$file"): the agent failed to stop: $(tail -5 "$TG_TMP/agent.out")"
			"$TLSGUARD" uninstall --pin-path "$TG_PIN" >/dev/null 2>&1 || true
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	wait "$pid" || rc=$?
	[[ $rc -ne 0 ]] || tg_fail "$(basename "$file"): the agent exited 0 without getting ready"
	[[ ! -e "$TG_PIN" ]] || tg_fail "$(basename "$file"): a refused policy left pins"
	return $rc
}

ok=0 refused=0
for f in "$work"/*; do
	name=$(basename "$f")
	args=(--cgroup "$TG_CG")
	grep -q '^# cgroups: from the policy' "$f" && args=()
	expect=$(sed -n '1s/^# expect: \([a-z]*\).*/\1/p' "$f")
	crc=0
	"$TLSGUARD" policy check "${args[@]}" "$f" >"$TG_TMP/check.out" 2>"$TG_TMP/check.err" || crc=$?
	arc=0
	run_agent "$f" "${args[@]}" || arc=$?
	_tg_check_sanitizers "$TG_TMP/agent.out"
	tg_log "$name: policy check exit $crc, agent exit $arc ($(head -c 200 "$TG_TMP/check.err" | tr '\n' ' '))"
	if [[ $crc -eq 0 ]]; then
		[[ $arc -eq 0 ]] || { cat "$TG_TMP/agent.out" >&2; tg_fail "$name: policy check says ok, the agent exits $arc"; }
		# every warning of the check, the agent said too
		while IFS= read -r line; do
			grep -qxF -- "$line" "$TG_TMP/agent.out" ||
				tg_fail "$name: policy check warns '$line'; the agent does not"
		done <"$TG_TMP/check.err"
		ok=$((ok + 1))
	else
		[[ $crc -eq 2 && $arc -eq 2 ]] ||
			{ cat "$TG_TMP/check.err" "$TG_TMP/agent.out" >&2; tg_fail "$name: policy check exits $crc, the agent $arc (want 2 and 2)"; }
		diff -u "$TG_TMP/check.err" "$TG_TMP/agent.out" >&2 ||
			tg_fail "$name: the agent's messages differ from policy check's (diff above)"
		[[ -s "$TG_TMP/check.err" ]] || tg_fail "$name: refused without a message"
		refused=$((refused + 1))
	fi
	case "$expect" in
	ok) [[ $crc -eq 0 ]] || { cat "$TG_TMP/check.err" >&2; tg_fail "$name: expected to be accepted"; } ;;
	refused) [[ $crc -ne 0 ]] || tg_fail "$name: expected to be refused" ;;
	esac
done
tg_log "ok: $ok accepted and $refused refused policies, each judged alike by policy check and the agent"
want_ok=$(grep -l '^# expect: ok' "$work"/* | wc -l)
[[ $ok -ge $want_ok && $((ok + refused)) -eq $(find "$work" -type f | wc -l) ]] ||
	tg_fail "compared $ok accepted and $refused refused policies; $want_ok are expected to be accepted"
