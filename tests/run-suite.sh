#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run cmocka test binaries as one suite:
#
#   tests/run-suite.sh NAME BIN...
#
# Counts test cases from cmocka's "[  PASSED  ] N test(s)." and
# "[  FAILED  ] M test(s)" lines; a binary that fails without saying so (crash,
# sanitizer report) counts as one failure. Shows a failing binary's output and
# ends with "NAME: N passed, M failed". Exit status 1 when any failed.
# TG_RUNNER is a command line put before each binary (qemu-aarch64 for the
# arm64 build: mk/cross.mk). TG_SUITE_TIMEOUT (s, default 300) bounds one
# binary: a hung test fails with "timed out" instead of holding CI.
set -uo pipefail

if [[ $# -lt 1 ]]; then
	echo "usage: $0 NAME BIN..." >&2
	exit 2
fi
name=$1
shift

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:print_summary=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

out=$(mktemp /tmp/tg-suite.XXXXXX)
trap 'rm -f "$out"' EXIT

passed=0 failed=0 skipped=0
for bin in "$@"; do
	if [[ ! -x "$bin" ]]; then
		echo "FAIL $(basename "$bin"): not an executable: $bin"
		failed=$((failed + 1))
		continue
	fi
	# shellcheck disable=SC2086 # TG_RUNNER is a command line
	start=$(date +%s)
	timeout -k 10 "${TG_SUITE_TIMEOUT:-300}" ${TG_RUNNER:-} "$bin" >"$out" 2>&1 </dev/null
	rc=$?
	if [[ $rc -eq 124 || $rc -eq 137 ]]; then
		echo "(timed out after ${TG_SUITE_TIMEOUT:-300}s)" >>"$out"
	fi
	p=$(awk '/^\[  PASSED  \] [0-9]+ test/ { s += $4 } END { print s + 0 }' "$out")
	f=$(awk '/^\[  FAILED  \] [0-9]+ test/ { s += $4 } END { print s + 0 }' "$out")
	k=$(awk '/^\[  SKIPPED \] [0-9]+ test/ { s += $4 } END { print s + 0 }' "$out")
	if [[ $rc -ne 0 && $f -eq 0 ]]; then
		f=1 # crashed or failed outside a test case
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + k))
	if [[ $rc -ne 0 || $f -gt 0 ]]; then
		echo "FAIL $(basename "$bin") (exit $rc)"
		sed 's/^/    /' "$out"
	else
		echo "PASS $(basename "$bin") ($p test(s)$( ((k)) && echo ", $k skipped"), $(($(date +%s) - start))s)"
	fi
done

echo "$name: $passed passed, $failed failed$( ((skipped)) && echo ", $skipped skipped")"
[[ $failed -eq 0 ]]
