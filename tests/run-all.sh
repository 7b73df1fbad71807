#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Every suite against the sanitizer build, in order: lint (include layers), unit, bpf, integration,
# fuzz (a short libFuzzer run of every parser of untrusted bytes).
#
#   tests/run-all.sh SANDIR
#
# Each suite's last line "[NAME: ]N passed, M failed[, K skipped]" is summed
# into the final line "N passed, M failed[, K skipped]". Exit status 1 when
# any suite failed (or ended without a summary).
set -uo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 SANDIR" >&2
	exit 2
fi
sandir=$1
here=$(cd "$(dirname "$0")" && pwd)
shopt -s nullglob

total_p=0 total_f=0 total_s=0 bad=0
out=$(mktemp /tmp/tg-all.XXXXXX)
trap 'rm -f "$out"' EXIT

run_suite()
{
	local label=$1 rc summary p f s
	shift
	echo "== $label"
	"$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	summary=$(grep -E '([A-Za-z0-9_-]+: )?[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	if [[ -z "$summary" ]]; then
		echo "$label: no summary line (exit $rc), counted as 1 failure"
		total_f=$((total_f + 1))
		bad=1
		return
	fi
	p=$(sed -E 's/.*\b([0-9]+) passed.*/\1/' <<<"$summary")
	f=$(sed -E 's/.*\b([0-9]+) failed.*/\1/' <<<"$summary")
	s=0
	[[ $summary =~ ([0-9]+)\ skipped ]] && s=${BASH_REMATCH[1]}
	total_p=$((total_p + p))
	total_f=$((total_f + f))
	total_s=$((total_s + s))
	if [[ $rc -ne 0 ]]; then
		bad=1
		# A failing exit without failed tests still has to count.
		[[ $f -eq 0 ]] && total_f=$((total_f + 1))
	fi
}

# the include rules of docs/architecture.md (no build needed)
run_suite lint "$here/lint/layers.sh"
run_suite unit "$here/run-suite.sh" unit "$sandir"/unit/*
run_suite bpf "$here/run-suite.sh" bpf "$sandir"/bpftest/*
run_suite integration "$here/integration/run.sh" "$sandir"
# libFuzzer targets, briefly (mk/fuzz.mk; BUILD is the directory above SANDIR)
run_suite fuzz make -C "$here/.." --no-print-directory BUILD="$(cd "$sandir/.." && pwd)" fuzz-smoke

summary="$total_p passed, $total_f failed"
[[ $total_s -gt 0 ]] && summary+=", $total_s skipped"
echo "$summary"
[[ $bad -eq 0 && $total_f -eq 0 ]]
