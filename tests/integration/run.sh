#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Run the integration tests against the sanitizer build:
#
#   tests/integration/run.sh SANDIR [NAME_SUBSTRING...]
#
# Each tests/integration/test_*.sh runs in its own process with a timeout;
# prints PASS/FAIL/SKIP per test (a failing test's output below it) and ends
# with "N passed, M failed[, K skipped]". Exit status 1 when any failed.
# TG_TEST_TIMEOUT (s, default 120) bounds one test (a test may ask for more with
# a header line "# tg-timeout: SECONDS"); TG_VERBOSE=1 shows the
# output of passing tests too; TG_TESTS_DIR runs the test_*.sh of another
# directory (tests/image: `make image-test`).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)

if [[ $# -lt 1 ]]; then
	echo "usage: $0 SANDIR [NAME_SUBSTRING...]" >&2
	exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "integration: these tests need root (they create network namespaces and cgroups" \
	     "and load BPF programs); run them as root, e.g. 'sudo make integration'" >&2
	echo "0 passed, 1 failed"
	exit 1
fi

sandir=$(cd "$1" 2>/dev/null && pwd) || { echo "integration: no such directory: $1" >&2; exit 2; }
shift
export TLSGUARD="$sandir/tlsguard"
export TG_TESTSRV="$sandir/helpers/tg-testsrv"

for bin in "$TLSGUARD" "$TG_TESTSRV"; do
	[[ -x "$bin" ]] || echo "integration: warning: $bin is missing; tests will fail" >&2
done

runtmp=$(mktemp -d /tmp/tg-it-run.XXXXXX)
trap 'rm -rf "$runtmp"' EXIT

# One self-signed certificate for every TLS server of this run.
export TG_CERT_DIR="$runtmp/cert"
mkdir -p "$TG_CERT_DIR"
if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
	-keyout "$TG_CERT_DIR/key.pem" -out "$TG_CERT_DIR/cert.pem" -days 2 \
	-subj "/CN=storage.test" \
	-addext "subjectAltName=DNS:storage.test,IP:198.51.100.10,IP:2001:db8::10" \
	>"$runtmp/cert.log" 2>&1; then
	cat "$runtmp/cert.log" >&2
	unset TG_CERT_DIR # each test makes its own
fi

# A test's bound: TG_TEST_TIMEOUT, or more where its header asks for it with a
# line "# tg-timeout: SECONDS" (tests that kill and restart agents under load).
test_timeout()
{
	local want
	want=$(sed -n 's/^# tg-timeout: \([0-9][0-9]*\)$/\1/p' "$1" | head -n 1)
	local base=${TG_TEST_TIMEOUT:-120}
	echo $((${want:-0} > base ? want : base))
}

passed=0 failed=0 skipped=0
for t in "${TG_TESTS_DIR:-$here}"/test_*.sh; do
	[[ -e "$t" ]] || continue
	name=$(basename "$t" .sh)
	if [[ $# -gt 0 ]]; then
		want=0
		for pat in "$@"; do
			[[ $name == *"$pat"* ]] && want=1
		done
		[[ $want -eq 1 ]] || continue
	fi
	log="$runtmp/$name.log"
	limit=$(test_timeout "$t")
	start=$(date +%s)
	timeout -k 10 "$limit" bash "$t" >"$log" 2>&1 </dev/null
	rc=$?
	secs=$(($(date +%s) - start))
	case $rc in
	0)
		echo "PASS $name (${secs}s)"
		passed=$((passed + 1))
		[[ "${TG_VERBOSE:-0}" == 1 ]] && sed 's/^/    /' "$log"
		;;
	77)
		reason=$(grep '^SKIP: ' "$log" | tail -n 1 | sed 's/^SKIP: //')
		echo "SKIP $name: ${reason:-no reason given}"
		skipped=$((skipped + 1))
		;;
	*)
		[[ $rc -eq 124 || $rc -eq 137 ]] && echo "    (timed out after ${limit}s)" >>"$log"
		echo "FAIL $name (exit $rc, ${secs}s)"
		sed 's/^/    /' "$log"
		failed=$((failed + 1))
		;;
	esac
done

summary="$passed passed, $failed failed"
[[ $skipped -gt 0 ]] && summary+=", $skipped skipped"
echo "$summary"
[[ $failed -eq 0 ]]
