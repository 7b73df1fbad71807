# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Globals are read by the tests that source this; optional arguments are optional.
# shellcheck disable=SC2034,SC2119,SC2120
#
# Integration test helpers, sourced by tests/integration/test_*.sh:
#
#   set -euo pipefail
#   . "$(dirname "$0")/lib.sh"
#   trap tg_cleanup EXIT
#   tg_setup                      # netns + cgroup + pin dir name + temp dir
#
# Every test gets its own network namespace (lo up, documentation addresses on
# lo), its own cgroup under the cgroup2 mount and its own bpffs pin directory,
# all named tg-it-<pid>-<random>. Servers run inside the netns but outside the
# watched cgroup; clients run inside both (run_in_cg_ns). tg_cleanup removes
# everything, also when the test fails, and fails the test if something is left.
#
# Environment: TLSGUARD (agent binary, default build/san/tlsguard), TG_TESTSRV
# (default next to it: helpers/tg-testsrv), TG_CERT_DIR (cert.pem/key.pem made
# once per run by run.sh; made per test when unset), TG_KEEP_TMP=1 keeps the
# temp dir, TG_AGENT_READY_TIMEOUT (s, default 30).

TG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${TLSGUARD:=$TG_ROOT/build/san/tlsguard}"
: "${TG_TESTSRV:=$(dirname "$TLSGUARD")/helpers/tg-testsrv}"
: "${TG_AGENT_READY_TIMEOUT:=30}"
TG_TEST_NAME=$(basename "$0" .sh)

# Sanitizer builds: report everything, fail hard, keep the report in the log.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:print_summary=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Addresses on lo inside the test netns (documentation ranges, RFC 5737/3849).
TG_PROT4=198.51.100.10		# in the policy ("storage")
TG_OTHER4=198.51.100.20		# not in the policy
TG_PROT6=2001:db8::10
TG_OTHER6=2001:db8::20

# Event predicates (Python expressions over the event `e`; get(e, "a.b") is nested get).
TG_P_VIOLATION="e.get('type') in ('plaintext', 'blocked_connect', 'weak_tls', 'sni_mismatch')"

TG_ID=""		# tg-it-<pid>-<random>: netns, cgroup and pin dir name
TG_CG2=""		# cgroup2 mount
TG_NS=""		# netns name
TG_CG=""		# absolute cgroup path
TG_CG_REL=""		# the same, relative to the cgroup2 mount ("/tg-it-...")
TG_PIN=""		# /sys/fs/bpf/tg-it-...
TG_TMP=""		# per-test temp dir
TG_EVENTS=""		# the agent's --events-file
TG_AGENT_PID=""
TG_AGENT_LOG=""
TG_AGENT_STARTS=0
TG_RC=0			# of the last tg_client / tg_capture
TG_MS=0			# its wall time in milliseconds
TG_OUT=""		# file with its stdout+stderr
TG_CLIENT_PID=""	# pid of the last client run through run_in_cg_ns / run_in_ns
TG_CLEANED=0
TG_PIDS=()		# background processes this test started
declare -A TG_SERVER_PID=() TG_SERVER_LOG=()

trap 'exit 130' INT
trap 'exit 143' TERM

# Say where an unexpected failure happened (set -e would otherwise exit silently).
set -o errtrace
_tg_on_err()
{
	local rc=$1 line=$2 src=$3 cmd=$4
	printf 'FAIL: command failed with exit status %s at %s:%s: %s\n' \
		"$rc" "$(basename "$src")" "$line" "$cmd" >&2
}
trap '_tg_on_err $? $LINENO "${BASH_SOURCE[0]}" "$BASH_COMMAND"' ERR

# ---- messages and assertions ------------------------------------------------

tg_log() { printf '# %s\n' "$*" >&2; }

tg_fail()
{
	printf 'FAIL: %s\n' "$*" >&2
	exit 1
}

# Exit status 77 + "SKIP: reason" is what run.sh reports as SKIP. Under CI=true
# a test that cannot run is a failure with its reason: a skip there would let CI
# pass without exercising what the test covers.
tg_skip()
{
	if [[ "${CI:-}" == true ]]; then
		printf 'FAIL: cannot run (CI=true turns a skip into a failure): %s\n' "$*" >&2
		exit 1
	fi
	printf 'SKIP: %s\n' "$*"
	exit 77
}

assert_eq()
{
	local expected=$1 got=$2 what=$3
	[[ "$got" == "$expected" ]] || tg_fail "$what: expected '$expected', got '$got'"
	tg_log "ok: $what = '$got'"
}

assert_ne()
{
	local unexpected=$1 got=$2 what=$3
	[[ "$got" != "$unexpected" ]] || tg_fail "$what: expected anything but '$unexpected', got it"
	tg_log "ok: $what = '$got' (not '$unexpected')"
}

# assert_cmp A OP B WHAT, OP one of -eq -lt -le -gt -ge (integers)
assert_cmp()
{
	local a=$1 op=$2 b=$3 what=$4
	[[ "$a" =~ ^-?[0-9]+$ ]] || tg_fail "$what: '$a' is not a number"
	local ok=0
	case $op in
	-eq) ((a == b)) && ok=1 ;;
	-lt) ((a < b)) && ok=1 ;;
	-le) ((a <= b)) && ok=1 ;;
	-gt) ((a > b)) && ok=1 ;;
	-ge) ((a >= b)) && ok=1 ;;
	*) tg_fail "assert_cmp: unknown operator $op" ;;
	esac
	[[ $ok -eq 1 ]] || tg_fail "$what: expected $a $op $b, it is not"
	tg_log "ok: $what: $a $op $b"
}

assert_file_contains()
{
	local file=$1 regex=$2 what=$3
	if ! grep -Eq -- "$regex" "$file" 2>/dev/null; then
		printf -- '--- %s ---\n' "$file" >&2
		cat "$file" >&2 2>/dev/null || echo "(missing)" >&2
		tg_fail "$what: expected a line matching /$regex/ in $file"
	fi
	tg_log "ok: $what"
}

# Exit status of the last tg_client/tg_capture, with its output on failure.
assert_rc()
{
	local expected=$1 what=$2
	if [[ "$TG_RC" != "$expected" ]]; then
		printf -- '--- output of the command ---\n' >&2
		cat "$TG_OUT" >&2 2>/dev/null
		tg_fail "$what: expected exit status $expected, got $TG_RC (after ${TG_MS} ms)"
	fi
	tg_log "ok: $what: exit status $TG_RC (${TG_MS} ms)"
}

assert_rc_nonzero()
{
	local what=$1
	if [[ "$TG_RC" == 0 ]]; then
		printf -- '--- output of the command ---\n' >&2
		cat "$TG_OUT" >&2 2>/dev/null
		tg_fail "$what: expected the command to fail, it succeeded (after ${TG_MS} ms)"
	fi
	tg_log "ok: $what: failed with exit status $TG_RC (${TG_MS} ms)"
}

tg_require_root()
{
	[[ $(id -u) -eq 0 ]] || tg_fail "integration tests need root (netns, cgroups, BPF)"
}

tg_require_cmd()
{
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 || tg_skip "command '$c' not installed"
	done
}

# ---- events (JSON lines) ----------------------------------------------------

TG_PY_PRELUDE='
import json, sys, time
def get(e, path, default=None):
    cur = e
    for k in path.split("."):
        if isinstance(cur, dict) and k in cur:
            cur = cur[k]
        else:
            return default
    return cur
def load(path):
    evs = []
    try:
        f = open(path)
    except FileNotFoundError:
        return evs
    with f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                evs.append(json.loads(line))
            except ValueError:
                pass  # a line still being written; the schema check reports real garbage
    return evs
def match(pred, evs):
    out = []
    for e in evs:
        try:
            if eval(pred, {"get": get, "e": e}):
                out.append(e)
        except Exception:
            pass
    return out
'

# count_events FILE PREDICATE → prints the number of events matching.
count_events()
{
	python3 -c "$TG_PY_PRELUDE
print(len(match(sys.argv[2], load(sys.argv[1]))))" "$1" "$2"
}

# wait_for_event FILE PREDICATE TIMEOUT_S → prints the first matching event
# (JSON) and returns 0, or prints the events seen to stderr and returns 1.
wait_for_event()
{
	python3 -c "$TG_PY_PRELUDE
path, pred, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
deadline = time.monotonic() + timeout
while True:
    m = match(pred, load(path))
    if m:
        print(json.dumps(m[0]))
        sys.exit(0)
    if time.monotonic() > deadline:
        break
    time.sleep(0.05)
print('no event matching: %s within %ss in %s' % (pred, sys.argv[3], path), file=sys.stderr)
print('events seen:', file=sys.stderr)
for e in load(path):
    print('  ' + json.dumps(e), file=sys.stderr)
sys.exit(1)" "$1" "$2" "$3"
}

# json_get JSON PATH → the value: strings raw, everything else as JSON (null, 80, true).
json_get()
{
	python3 -c "$TG_PY_PRELUDE
v = get(json.loads(sys.argv[1]), sys.argv[2], '<missing>')
print(v if isinstance(v, str) else json.dumps(v))" "$1" "$2"
}

tg_dump_events()
{
	local file=${1:-$TG_EVENTS}
	printf -- '--- events (%s) ---\n' "$file" >&2
	cat "$file" >&2 2>/dev/null || echo "(no events file)" >&2
}

# assert_event_count FILE PREDICATE EXPECTED WHAT
assert_event_count()
{
	local file=$1 pred=$2 expected=$3 what=$4 got
	got=$(count_events "$file" "$pred")
	if [[ "$got" != "$expected" ]]; then
		tg_dump_events "$file"
		tg_fail "$what: expected $expected event(s) matching [$pred], got $got"
	fi
	tg_log "ok: $what: $got event(s)"
}

# expect_event FILE PREDICATE TIMEOUT WHAT → prints the event (use in $(...)).
expect_event()
{
	local file=$1 pred=$2 timeout=$3 what=$4 ev
	if ! ev=$(wait_for_event "$file" "$pred" "$timeout"); then
		tg_fail "$what: no event matching [$pred] within ${timeout}s"
	fi
	printf '%s\n' "$ev"
}

# assert_field EVENT_JSON PATH EXPECTED (strings raw, numbers/null as JSON)
assert_field()
{
	local ev=$1 path=$2 expected=$3 got
	got=$(json_get "$ev" "$path")
	[[ "$got" == "$expected" ]] ||
		tg_fail "event field $path: expected '$expected', got '$got' in $ev"
	tg_log "ok: event $path = $got"
}

# Every line is a JSON object of schema tlsguard.event/v1 with a known type and
# an event_id, and violations carry action flagged|blocked.
assert_events_valid()
{
	local file=${1:-$TG_EVENTS} out
	if ! out=$(python3 -c "$TG_PY_PRELUDE
import re
bad, ids = [], {}
try:
    lines = open(sys.argv[1]).read().splitlines()
except FileNotFoundError:
    lines = []
for n, line in enumerate(lines, 1):
    if not line.strip():
        continue
    try:
        e = json.loads(line)
    except ValueError as x:
        bad.append('line %d: not JSON (%s): %s' % (n, x, line)); continue
    if not isinstance(e, dict):
        bad.append('line %d: not an object' % n); continue
    if e.get('schema') != 'tlsguard.event/v1':
        bad.append('line %d: schema %r' % (n, e.get('schema')))
    t = e.get('type')
    if t not in ('plaintext', 'weak_tls', 'sni_mismatch', 'blocked_connect', 'tls', 'agent'):
        bad.append('line %d: unknown type %r' % (n, t))
    if t in ('plaintext', 'weak_tls', 'sni_mismatch', 'blocked_connect') and e.get('action') not in ('flagged', 'blocked'):
        bad.append('line %d: %s with action %r' % (n, t, e.get('action')))
    # event_id: 32 hex digits; a second line with it is the same event read again (docs/events.md)
    eid = e.get('event_id')
    if not isinstance(eid, str) or not re.fullmatch('[0-9a-f]{32}', eid):
        bad.append('line %d: event_id %r' % (n, eid))
    else:
        same = (t, e.get('time'), (e.get('flow') or {}).get('cookie'))
        if ids.setdefault(eid, same) != same:
            bad.append('line %d: event_id %s of another event' % (n, eid))
print('\n'.join(bad))
sys.exit(1 if bad else 0)" "$file"); then
		tg_dump_events "$file"
		tg_fail "events file is not valid tlsguard.event/v1 JSON lines:"$'\n'"$out"
	fi
	local n
	n=$(grep -c . "$file" 2>/dev/null) || true
	tg_log "ok: events file is valid (${n:-0} line(s))"
}

# ---- environment ------------------------------------------------------------

tg_cgroup2_mount()
{
	awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts
}

tg_now_ms() { echo $(($(date +%s%N) / 1000000)); }

# tg_hostport ADDR PORT → 1.2.3.4:80 or [2001:db8::1]:80
tg_hostport()
{
	if [[ $1 == *:* ]]; then echo "[$1]:$2"; else echo "$1:$2"; fi
}

# tg_url SCHEME ADDR [PORT] → http://[2001:db8::10]:8080/
tg_url()
{
	local host=$2
	[[ $host == *:* ]] && host="[$host]"
	echo "$1://$host${3:+:$3}/"
}

tg_make_netns()
{
	TG_NS=$TG_ID
	ip netns add "$TG_NS" || tg_fail "ip netns add $TG_NS"
	ip -n "$TG_NS" link set lo up
	ip -n "$TG_NS" addr add "$TG_PROT4/32" dev lo
	ip -n "$TG_NS" addr add "$TG_OTHER4/32" dev lo
	ip -n "$TG_NS" addr add "$TG_PROT6/128" dev lo nodad
	ip -n "$TG_NS" addr add "$TG_OTHER6/128" dev lo nodad
	mkdir -p "/etc/netns/$TG_NS"
	cat >"/etc/netns/$TG_NS/hosts" <<-EOF
		127.0.0.1	localhost
		::1	localhost
		$TG_PROT4	storage.test
		$TG_PROT6	storage.test
		$TG_OTHER4	other.test
		$TG_OTHER6	other.test
	EOF
}

tg_make_cgroup()
{
	TG_CG2=$(tg_cgroup2_mount)
	[[ -n "$TG_CG2" ]] || tg_skip "no cgroup2 mount in /proc/mounts"
	TG_CG_REL="/$TG_ID"
	TG_CG="$TG_CG2$TG_CG_REL"
	mkdir "$TG_CG" || tg_fail "mkdir $TG_CG"
}

# A self-signed cert for the TLS servers; run.sh makes one per run.
tg_make_cert()
{
	if [[ -n "${TG_CERT_DIR:-}" && -s "$TG_CERT_DIR/cert.pem" && -s "$TG_CERT_DIR/key.pem" ]]; then
		return 0
	fi
	TG_CERT_DIR=${1:-$TG_TMP}
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$TG_CERT_DIR/key.pem" -out "$TG_CERT_DIR/cert.pem" -days 2 \
		-subj "/CN=storage.test" \
		-addext "subjectAltName=DNS:storage.test,IP:$TG_PROT4,IP:$TG_PROT6" \
		>"$TG_CERT_DIR/openssl-req.log" 2>&1 ||
		tg_fail "making a test certificate: $(cat "$TG_CERT_DIR/openssl-req.log")"
}

# tg_setup: everything a test needs; call after `trap tg_cleanup EXIT`.
tg_setup()
{
	tg_require_root
	tg_require_cmd ip curl openssl python3 bpftool
	[[ -x "$TLSGUARD" ]] || tg_fail "agent binary not found: $TLSGUARD (build it: make build/san/tlsguard)"
	[[ -x "$TG_TESTSRV" ]] || tg_fail "test server not found: $TG_TESTSRV (make build/san/helpers/tg-testsrv)"
	TG_ID="tg-it-$$-$RANDOM"
	TG_TMP=$(mktemp -d "/tmp/$TG_ID.XXXXXX")
	TG_EVENTS="$TG_TMP/events.jsonl"
	TG_PIN="/sys/fs/bpf/$TG_ID"
	TG_SOCK="$TG_TMP/tlsguard.sock"
	# no bpffs at /sys/fs/bpf is no reason to skip: the agent mounts it (agent/kernel/mounts.h)
	tg_make_netns
	tg_make_cgroup
	tg_log "test $TG_TEST_NAME: netns $TG_NS, cgroup $TG_CG, pins $TG_PIN, tmp $TG_TMP"
}

# ---- clients ------------------------------------------------------------------

# run_in_cg_ns CG NS CMD... : CMD as a member of cgroup CG (absolute, or relative
# to the cgroup2 mount) inside netns NS. Joins the cgroup first (ip netns exec
# hides the cgroup2 mount), and keeps one pid throughout (sh → exec ip → exec
# CMD), written to $TG_TMP/last.pid so the test knows the client's pid.
run_in_cg_ns()
{
	local cg=$1 ns=$2
	shift 2
	[[ $cg == "$TG_CG2"/* ]] || cg="$TG_CG2/${cg#/}"
	sh -c 'echo $$ >"$1/cgroup.procs" || exit 125
echo $$ >"$2"
ns=$3; shift 3
exec ip netns exec "$ns" "$@"' tg-run "$cg" "$TG_TMP/last.pid" "$ns" "$@"
}

# run_in_ns NS CMD... : the same without joining a cgroup (stays in ours).
run_in_ns()
{
	local ns=$1
	shift
	sh -c 'echo $$ >"$1"
ns=$2; shift 2
exec ip netns exec "$ns" "$@"' tg-run "$TG_TMP/last.pid" "$ns" "$@"
}

# tg_capture NAME CMD... : run CMD (stdin from $TG_STDIN or /dev/null), output
# to $TG_TMP/NAME.out; sets TG_RC, TG_MS, TG_OUT, TG_CLIENT_PID. Never fails.
tg_capture()
{
	local name=$1 t0 t1
	shift
	TG_OUT="$TG_TMP/$name.out"
	rm -f "$TG_TMP/last.pid"
	t0=$(date +%s%N)
	TG_RC=0
	"$@" <"${TG_STDIN:-/dev/null}" >"$TG_OUT" 2>&1 || TG_RC=$?
	t1=$(date +%s%N)
	TG_MS=$(((t1 - t0) / 1000000))
	TG_CLIENT_PID=$(cat "$TG_TMP/last.pid" 2>/dev/null || echo "")
	tg_log "$name: exit $TG_RC in ${TG_MS} ms (pid ${TG_CLIENT_PID:-?}): $*"
}

# tg_client NAME CMD... : tg_capture of CMD run in the watched cgroup + netns.
tg_client()
{
	local name=$1
	shift
	tg_capture "$name" run_in_cg_ns "$TG_CG" "$TG_NS" "$@"
}

# tg_outsider NAME CMD... : in the test netns but NOT in the watched cgroup.
tg_outsider()
{
	local name=$1
	shift
	tg_capture "$name" run_in_ns "$TG_NS" "$@"
}

# ---- servers (inside the netns, outside the watched cgroup) -------------------

_tg_wait_for_file_line()
{
	local file=$1 regex=$2 pid=$3 timeout_ds=$4 what=$5 i
	for ((i = 0; i < timeout_ds * 10; i++)); do
		grep -Eq -- "$regex" "$file" 2>/dev/null && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			cat "$file" >&2 2>/dev/null
			tg_fail "$what exited before it was ready"
		fi
		sleep 0.1
	done
	cat "$file" >&2 2>/dev/null
	tg_fail "$what not ready within ${timeout_ds}s"
}

# tg_status_get PATH : one value of `tlsguard status -o json` (strings raw, the rest JSON).
tg_status_get()
{
	"$TLSGUARD" status --socket "$TG_SOCK" -o json | python3 -c "$TG_PY_PRELUDE
v = get(json.load(sys.stdin), sys.argv[1], '<missing>')
print(v if isinstance(v, str) else json.dumps(v))" "$1"
}

# tg_lpm_entry ADDR : the pinned destination map's class id for ADDR/128 (IPv4 as
# ::ffff:ADDR), "" when there is no such entry.
tg_lpm_entry()
{
	bpftool -j map dump pinned "$TG_PIN/tg_dests" 2>/dev/null | python3 -c '
import json, sys, socket
a = sys.argv[1]
addr = socket.inet_pton(socket.AF_INET6, a) if ":" in a else bytes(10) + b"\xff\xff" + socket.inet_aton(a)
want = [128, 0, 0, 0] + list(addr)
for e in json.load(sys.stdin):
    key = e.get("key")
    if isinstance(key, list) and [int(b, 16) for b in key] == want:
        print(int(e["value"][0], 16) | int(e["value"][1], 16) << 8)' "$1"
}

# tg_start_dnsmasq CONF : dnsmasq with the config file CONF (its body: records and
# options; listening on 127.0.0.1:53 is added) as the test netns' resolver, its
# queries logged to $TG_TMP/dnsmasq.log; resolv.conf of the netns points at it.
# tg_layout_of DIR → entry 0 of DIR/layout (the pin layout marker)
tg_layout_of()
{
	bpftool -j map dump pinned "$1/layout" | python3 -c '
import json, sys
def num(x):
    return int.from_bytes(bytes(int(b, 16) for b in x), "little") if isinstance(x, list) else int(x)
for e in json.load(sys.stdin):
    if num(e["key"]) == 0:
        print(num(e["value"]))'
}

tg_start_dnsmasq()
{
	local conf=$1 i
	{
		printf 'no-resolv\nno-hosts\nno-poll\nbind-interfaces\nlisten-address=127.0.0.1\nport=53\n'
		printf 'log-queries\nlog-facility=%s\n' "$TG_TMP/dnsmasq.log"
		cat "$conf"
	} >"$TG_TMP/dnsmasq.conf"
	ip netns exec "$TG_NS" dnsmasq --keep-in-foreground --conf-file="$TG_TMP/dnsmasq.conf" \
		--pid-file="$TG_TMP/dnsmasq.pid" --user=root </dev/null >"$TG_TMP/dnsmasq.out" 2>&1 &
	TG_PIDS+=("$!")
	for ((i = 0; i < 50; i++)); do
		ip netns exec "$TG_NS" ss -lnu 2>/dev/null | grep -q '127.0.0.1:53 ' && break
		sleep 0.1
	done
	ip netns exec "$TG_NS" ss -lnu | grep -q '127.0.0.1:53 ' ||
		tg_fail "dnsmasq not listening in $TG_NS: $(cat "$TG_TMP/dnsmasq.out")"
	# ip netns exec bind-mounts this over /etc/resolv.conf for every command it runs
	printf 'nameserver 127.0.0.1\noptions attempts:2 timeout:1\n' >"/etc/netns/$TG_NS/resolv.conf"
	tg_log "dnsmasq in $TG_NS on 127.0.0.1:53"
}

# tg_start_plain_server NAME ADDR PORT : tg-testsrv --http; log truncated.
tg_start_plain_server()
{
	local name=$1 addr=$2 port=$3 log out pid
	log="$TG_TMP/srv-$name.log"
	out="$TG_TMP/srv-$name.out"
	rm -f "$log" "$out"
	ip netns exec "$TG_NS" "$TG_TESTSRV" --listen "$(tg_hostport "$addr" "$port")" \
		--log "$log" --http </dev/null >"$out" 2>&1 &
	pid=$!
	TG_PIDS+=("$pid")
	TG_SERVER_PID[$name]=$pid
	TG_SERVER_LOG[$name]=$log
	_tg_wait_for_file_line "$out" '^listening' "$pid" 5 "plain server $name ($addr:$port)"
	tg_log "plain server $name on $(tg_hostport "$addr" "$port") (pid $pid)"
}

# tg_start_testsrv NAME ADDR PORT [tg-testsrv args...] : tg-testsrv without --http
# (--greet TEXT: speaks first; --reply TEXT: answers the first bytes).
tg_start_testsrv()
{
	local name=$1 addr=$2 port=$3 log out pid
	shift 3
	log="$TG_TMP/srv-$name.log"
	out="$TG_TMP/srv-$name.out"
	rm -f "$log" "$out"
	ip netns exec "$TG_NS" "$TG_TESTSRV" --listen "$(tg_hostport "$addr" "$port")" \
		--log "$log" "$@" </dev/null >"$out" 2>&1 &
	pid=$!
	TG_PIDS+=("$pid")
	TG_SERVER_PID[$name]=$pid
	TG_SERVER_LOG[$name]=$log
	_tg_wait_for_file_line "$out" '^listening' "$pid" 5 "test server $name ($addr:$port)"
	tg_log "test server $name on $(tg_hostport "$addr" "$port") (pid $pid): $*"
}

# tg_start_tls_server NAME ADDR [PORT] : openssl s_server -www, TLS 1.2 and 1.3.
tg_start_tls_server()
{
	local name=$1 addr=$2 port=${3:-443} out pid
	tg_make_cert
	out="$TG_TMP/srv-$name.out"
	rm -f "$out"
	ip netns exec "$TG_NS" openssl s_server -accept "$(tg_hostport "$addr" "$port")" \
		-cert "$TG_CERT_DIR/cert.pem" -key "$TG_CERT_DIR/key.pem" -www \
		</dev/null >"$out" 2>&1 &
	pid=$!
	TG_PIDS+=("$pid")
	TG_SERVER_PID[$name]=$pid
	TG_SERVER_LOG[$name]=$out
	_tg_wait_for_file_line "$out" '^ACCEPT' "$pid" 5 "TLS server $name ($addr:$port)"
	tg_log "TLS server $name on $(tg_hostport "$addr" "$port") (pid $pid)"
}

# tg_stop_server NAME : SIGTERM and wait; tg-testsrv then logs the connections
# that were still open, so its log is complete afterwards.
tg_stop_server()
{
	local name=$1 pid=${TG_SERVER_PID[$1]:-} i
	[[ -n "$pid" ]] || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 50; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	TG_SERVER_PID[$name]=""
	return 0
}

tg_server_log() { echo "${TG_SERVER_LOG[$1]}"; }

# Connections the plain server logged, and the bytes it received on all of them.
tg_server_conns()
{
	local n
	n=$(grep -c '^conn bytes=' "${TG_SERVER_LOG[$1]}" 2>/dev/null) || true
	echo "${n:-0}"
}

tg_server_bytes()
{
	local log=${TG_SERVER_LOG[$1]}
	if [[ -e "$log" ]]; then
		awk -F'bytes=' '/^conn bytes=/ { s += $2 } END { print s + 0 }' "$log"
	else
		echo 0
	fi
}

# assert_server NAME CONNS BYTES_OP BYTES : stops the server, then checks what
# it received, e.g. assert_server web 1 -eq 0 / assert_server web 1 -gt 0.
assert_server()
{
	local name=$1 conns=$2 op=$3 bytes=$4 got_c got_b
	tg_stop_server "$name"
	got_c=$(tg_server_conns "$name")
	got_b=$(tg_server_bytes "$name")
	if [[ "$got_c" != "$conns" ]] || ! (assert_cmp "$got_b" "$op" "$bytes" "bytes" 2>/dev/null); then
		printf -- '--- server %s log ---\n' "$name" >&2
		cat "${TG_SERVER_LOG[$name]}" >&2 2>/dev/null
		tg_fail "server $name: expected $conns connection(s) with bytes $op $bytes, got $got_c connection(s), $got_b bytes"
	fi
	tg_log "ok: server $name: $got_c connection(s), $got_b bytes received"
}

# ---- policy and agent -----------------------------------------------------------

# tg_write_policy FILE MODE [PORTS] [LOG_TLS]
#   PORTS: YAML list such as "[80, 443]", or "" for no ports key (every port)
#   LOG_TLS: true|false (events.log_tls_flows), default false
# One destination "storage" = the two protected addresses, one exception, the
# test cgroup as workload, events to $TG_EVENTS (the same as --events-file).
tg_write_policy()
{
	local file=$1 mode=$2 ports=${3-"[80, 443]"} log_tls=${4:-false}
	{
		echo "# written by $TG_TEST_NAME"
		echo "mode: $mode"
		echo "workloads:"
		echo "  cgroups: [\"$TG_CG_REL\"]"
		echo "destinations:"
		echo "  - name: storage"
		echo "    cidrs: [\"$TG_PROT4/32\", \"$TG_PROT6/128\"]"
		[[ -n "$ports" ]] && echo "    ports: $ports"
		echo "    mode: $mode"
		echo "exceptions:"
		echo "  - cidrs: [\"192.0.2.99/32\"]"
		echo "events:"
		echo "  file: \"$TG_EVENTS\""
		echo "  log_tls_flows: $log_tls"
	} >"$file"
}

# tg_write_policy_hosts FILE MODE HOSTS : one destination "storage" named by HOSTS
# (a YAML list such as '["*.blob.core.windows.net"]', learned from DNS), ports 80
# and 443, the test cgroup as workload, events to $TG_EVENTS.
tg_write_policy_hosts()
{
	{
		echo "# written by $TG_TEST_NAME"
		echo "mode: $2"
		echo "workloads:"
		echo "  cgroups: [\"$TG_CG_REL\"]"
		echo "destinations:"
		echo "  - name: storage"
		echo "    hosts: $3"
		echo "    ports: [80, 443]"
		echo "events:"
		echo "  file: \"$TG_EVENTS\""
	} >"$1"
}

# tg_start_agent MODE POLICY [extra agent args] : background, waits for
# "tlsguard: ready" on stderr; fails with the log shown when it does not come.
# MODE "policy": no --mode flag (the policy's modes and overrides decide).
# How tests run the agent's DNS programs (agent --dns-hooks): auto unless a
# test asks for chained or separate.
TG_DNS_HOOKS=${TG_DNS_HOOKS:-auto}

# tg_dns_chained → success when the agent runs DNS learning inside its
# egress/ingress programs (--dns-hooks, and for auto what `tlsguard version`
# says of this kernel), so the cgroup carries one program per skb hook.
tg_dns_chained()
{
	case $TG_DNS_HOOKS in
	chained) return 0 ;;
	separate) return 1 ;;
	esac
	"$TLSGUARD" version | grep -q '^  tail calls with subprograms: *yes'
}

# tg_skb_progs [GENERATIONS] → the programs one attach type of cgroup_skb
# carries with GENERATIONS (1) agents' verdict programs on it: one more when
# DNS learning runs as programs of its own (one, the newest agent's).
tg_skb_progs()
{
	local gens=${1:-1}
	if tg_dns_chained; then echo "$gens"; else echo $((gens + 1)); fi
}

# tg_chain_prog_id DIR MAP → the id of the program in slot 0 of the program array
# pinned as DIR/MAP, or nothing (empty slot, no pin)
tg_chain_prog_id()
{
	{ bpftool -j map lookup pinned "$1/$2" key 0 0 0 0 2>/dev/null || true; } | python3 -c '
import json, sys
text = sys.stdin.read().strip()
v = json.loads(text).get("value") if text else None
if isinstance(v, list):
    v = int.from_bytes(bytes(int(b, 16) for b in v), "little")
print(v or "")'
}

# tg_resolve_learned NAME ADDR WHAT → the client resolves NAME (getent), and
# ADDR is in the destination map within 5 s: learned from the answer
tg_resolve_learned()
{
	local name=$1 addr=$2 what=$3 i
	tg_client resolve getent ahostsv4 "$name"
	assert_rc 0 "getent ahostsv4 $name"
	for ((i = 0; i < 50; i++)); do
		[[ -n "$(tg_lpm_entry "$addr")" ]] && break
		sleep 0.1
	done
	assert_ne "" "$(tg_lpm_entry "$addr")" "$what"
}

tg_start_agent()
{
	local mode=$1 policy=$2 i mode_args=()
	shift 2
	[[ $mode == policy ]] || mode_args=(--mode "$mode")
	[[ -z "$TG_AGENT_PID" ]] || tg_fail "tg_start_agent: agent already running (pid $TG_AGENT_PID)"
	TG_AGENT_STARTS=$((TG_AGENT_STARTS + 1))
	TG_AGENT_LOG="$TG_TMP/agent.$TG_AGENT_STARTS.log"
	# `tlsguard policy check` judges a policy with the agent's own start checks
	# (agent/policy/prepare.c): every policy a test starts the agent with, it accepts
	if ! "$TLSGUARD" policy check --cgroup "${TG_AGENT_CGROUP_ARG:-$TG_CG}" "$policy" \
		>"$TG_TMP/check.$TG_AGENT_STARTS.log" 2>&1; then
		cat "$TG_TMP/check.$TG_AGENT_STARTS.log" >&2
		tg_fail "tlsguard policy check refuses $policy, which the agent is started with"
	fi
	# shellcheck disable=SC2086 # TG_AGENT_WRAPPER is a command line (e.g. valgrind ...)
	${TG_AGENT_WRAPPER:-} "$TLSGUARD" agent --config "$policy" --cgroup "${TG_AGENT_CGROUP_ARG:-$TG_CG}" \
		--pin-path "$TG_PIN" --events-file "$TG_EVENTS" --socket "$TG_SOCK" "${mode_args[@]}" \
		--dns-hooks "$TG_DNS_HOOKS" -v "$@" \
		</dev/null >"$TG_AGENT_LOG" 2>&1 &
	TG_AGENT_PID=$!
	for ((i = 0; i < TG_AGENT_READY_TIMEOUT * 10; i++)); do
		grep -q 'tlsguard: ready' "$TG_AGENT_LOG" 2>/dev/null && break
		if ! kill -0 "$TG_AGENT_PID" 2>/dev/null; then
			local rc=0
			wait "$TG_AGENT_PID" || rc=$?
			TG_AGENT_PID=""
			printf -- '--- agent log (%s) ---\n' "$TG_AGENT_LOG" >&2
			cat "$TG_AGENT_LOG" >&2
			tg_fail "agent exited with status $rc before 'tlsguard: ready'"
		fi
		sleep 0.1
	done
	if ! grep -q 'tlsguard: ready' "$TG_AGENT_LOG"; then
		printf -- '--- agent log (%s) ---\n' "$TG_AGENT_LOG" >&2
		cat "$TG_AGENT_LOG" >&2
		tg_fail "agent not ready within ${TG_AGENT_READY_TIMEOUT}s"
	fi
	tg_log "agent ready in $mode mode (pid $TG_AGENT_PID, log $TG_AGENT_LOG)"
	# during an upgrade two generations share the cgroup for a while (TG_AGENT_UPGRADING=1)
	[[ "${TG_AGENT_UPGRADING:-0}" == 1 ]] ||
		tg_assert_one_prog_per_type "agent start #$TG_AGENT_STARTS" >/dev/null
}

# tg_assert_one_prog_per_type WHAT → prints the "attach_type count" lines.
# However often the agent was started over the same pins, the cgroup carries
# each tlsguard program exactly once (two programs may share an attach type:
# ingress and egress have the verdict's and, unless chained, DNS learning's),
# and connect4/6 and the egress programs (tg_skb_progs).
tg_assert_one_prog_per_type()
{
	local what=$1 progs twice t
	progs=$(tg_cgroup_progs)
	tg_log "programs on $TG_CG ($what): $(echo "$progs" | tr '\n' ' ')"
	twice=$({ bpftool -j cgroup show "$TG_CG" 2>/dev/null || true; } | python3 -c '
import json, sys, collections
text = sys.stdin.read().strip()
c = collections.Counter((p.get("attach_type"), p.get("name")) for p in (json.loads(text) if text else []))
print(" ".join("%s/%s" % k for k, n in sorted(c.items()) if n != 1))')
	if [[ -z "$progs" || -n "$twice" ]]; then
		bpftool cgroup show "$TG_CG" >&2
		tg_fail "$what: expected each program once on $TG_CG, got: $(echo "$progs" | tr '\n' ' ')${twice:+ (more than once: $twice)}"
	fi
	for t in "cgroup_inet4_connect 1" "cgroup_inet6_connect 1" \
		"cgroup_inet_egress $(tg_skb_progs)" "cgroup_inet_ingress $(tg_skb_progs)"; do
		# a here-string, not echo | grep -q: under pipefail grep's early exit fails echo (SIGPIPE)
		grep -q "^$t$" <<<"$progs" || tg_fail "$what: expected '$t' on $TG_CG"
	done
	printf '%s\n' "$progs"
}

_tg_check_sanitizers()
{
	if grep -Eq 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$1" 2>/dev/null; then
		printf -- '--- agent log (%s) ---\n' "$1" >&2
		cat "$1" >&2
		tg_fail "sanitizer report in the agent log"
	fi
}

# tg_stop_agent [SIGNAL] : SIGTERM (or SIGNAL, e.g. INT), wait (10 s), assert
# exit status 0 and no sanitizer report.
tg_stop_agent()
{
	local sig=${1:-TERM} pid=$TG_AGENT_PID rc=0 i
	[[ -n "$pid" ]] || tg_fail "tg_stop_agent: no agent running"
	kill -"$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null || true
		TG_AGENT_PID=""
		printf -- '--- agent log (%s) ---\n' "$TG_AGENT_LOG" >&2
		cat "$TG_AGENT_LOG" >&2
		tg_fail "agent did not exit within 10s of SIG$sig"
	fi
	wait "$pid" || rc=$?
	TG_AGENT_PID=""
	if [[ $rc -ne 0 ]]; then
		printf -- '--- agent log (%s) ---\n' "$TG_AGENT_LOG" >&2
		cat "$TG_AGENT_LOG" >&2
		tg_fail "agent exit status after SIG$sig: expected 0, got $rc"
	fi
	_tg_check_sanitizers "$TG_AGENT_LOG"
	tg_log "ok: agent stopped cleanly by SIG$sig (exit 0)"
}

# tg_kill_agent : SIGKILL, as a crash would.
tg_kill_agent()
{
	local pid=$TG_AGENT_PID
	[[ -n "$pid" ]] || tg_fail "tg_kill_agent: no agent running"
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	TG_AGENT_PID=""
	tg_log "agent killed with SIGKILL (pid $pid)"
}

# tg_assert_uninstalled : `tlsguard uninstall --pin-path $TG_PIN` exits 0 and
# leaves no pin under $TG_PIN and no program on $TG_CG.
tg_assert_uninstalled()
{
	local left
	TG_RC=0
	"$TLSGUARD" uninstall --pin-path "$TG_PIN" >"$TG_TMP/uninstall.out" 2>&1 || TG_RC=$?
	TG_OUT="$TG_TMP/uninstall.out" TG_MS=0
	assert_rc 0 "tlsguard uninstall --pin-path $TG_PIN"
	left=$(find "$TG_PIN" -mindepth 1 -maxdepth 1 -printf '%f ' 2>/dev/null || true)
	assert_eq "" "$left" "pins left under $TG_PIN after uninstall"
	assert_eq "" "$(tg_cgroup_progs)" "programs on $TG_CG after uninstall"
}

# tg_cgroup_progs [CG] → "attach_type count" lines, sorted (bpftool cgroup show).
tg_cgroup_progs()
{
	local cg=${1:-$TG_CG}
	{ bpftool -j cgroup show "$cg" 2>/dev/null || true; } | python3 -c '
import json, sys, collections
text = sys.stdin.read().strip()
progs = json.loads(text) if text else []
c = collections.Counter(p.get("attach_type", "?") for p in progs)
for t in sorted(c):
    print(t, c[t])'
}

# ---- cleanup ------------------------------------------------------------------

_tg_kill_pid()
{
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 30; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

_tg_empty_cgroup()
{
	local cg=$1 i pid
	[[ -d "$cg" ]] || return 0
	for ((i = 0; i < 50; i++)); do
		[[ -s "$cg/cgroup.procs" ]] || return 0
		if [[ -e "$cg/cgroup.kill" ]]; then
			echo 1 >"$cg/cgroup.kill" 2>/dev/null
		else
			while read -r pid; do
				kill -KILL "$pid" 2>/dev/null
			done <"$cg/cgroup.procs"
		fi
		sleep 0.1
	done
}

# tg_cleanup: the EXIT trap. Removes the agent, servers, clients, pins, cgroup,
# netns and /etc/netns entry; a leftover turns the result into a failure.
tg_cleanup()
{
	local rc=$? leftovers=() pid i
	set +e
	trap - ERR
	[[ $TG_CLEANED -eq 1 ]] && return
	TG_CLEANED=1

	if [[ -n "$TG_AGENT_PID" ]]; then
		_tg_kill_pid "$TG_AGENT_PID"
		TG_AGENT_PID=""
	fi
	for pid in "${TG_PIDS[@]}"; do
		_tg_kill_pid "$pid"
	done
	[[ -n "$TG_CG" ]] && _tg_empty_cgroup "$TG_CG"
	if [[ -n "$TG_NS" ]] && ip netns list | grep -qw -- "$TG_NS"; then
		for pid in $(ip netns pids "$TG_NS" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
	fi
	if [[ -n "$TG_PIN" && -e "$TG_PIN" ]]; then
		if [[ -x "$TLSGUARD" ]]; then
			"$TLSGUARD" uninstall --pin-path "$TG_PIN" >"$TG_TMP/uninstall.log" 2>&1 ||
				echo "WARN: cleanup: '$TLSGUARD uninstall --pin-path $TG_PIN' failed: $(cat "$TG_TMP/uninstall.log")" >&2
		fi
		rm -rf "$TG_PIN"
	fi
	if [[ -n "$TG_CG" && -d "$TG_CG" ]]; then
		# cgroups a test made below its own (pod-shaped ones), deepest first
		local cg
		while read -r cg; do
			_tg_empty_cgroup "$cg"
			rmdir "$cg" 2>/dev/null
		done < <(find "$TG_CG" -mindepth 1 -depth -type d 2>/dev/null)
		for ((i = 0; i < 30; i++)); do
			rmdir "$TG_CG" 2>/dev/null && break
			_tg_empty_cgroup "$TG_CG"
			sleep 0.1
		done
	fi
	if [[ -n "$TG_NS" ]]; then
		ip netns del "$TG_NS" 2>/dev/null
		rm -rf "/etc/netns/$TG_NS"
	fi

	[[ -n "$TG_NS" ]] && ip netns list | grep -qw -- "$TG_NS" && leftovers+=("netns $TG_NS")
	[[ -n "$TG_NS" && -e "/etc/netns/$TG_NS" ]] && leftovers+=("/etc/netns/$TG_NS")
	[[ -n "$TG_CG" && -e "$TG_CG" ]] && leftovers+=("cgroup $TG_CG")
	[[ -n "$TG_PIN" && -e "$TG_PIN" ]] && leftovers+=("pins $TG_PIN")
	for pid in "${TG_PIDS[@]}"; do
		kill -0 "$pid" 2>/dev/null && leftovers+=("process $pid")
	done

	if [[ $rc -ne 0 && $rc -ne 77 && -n "$TG_TMP" ]]; then
		local f
		for f in "$TG_TMP"/agent.*.log; do
			[[ -e "$f" ]] || continue
			printf -- '--- %s (last 60 lines, libbpf debug left out) ---\n' "$f" >&2
			grep -v '^libbpf: ' "$f" | tail -n 60 >&2
		done
		[[ -s "$TG_EVENTS" ]] && tg_dump_events "$TG_EVENTS"
	fi
	if [[ -n "$TG_TMP" && -d "$TG_TMP" ]]; then
		if [[ "${TG_KEEP_TMP:-0}" == 1 ]]; then
			echo "# kept $TG_TMP" >&2
		else
			rm -rf "$TG_TMP"
		fi
	fi
	if [[ ${#leftovers[@]} -gt 0 ]]; then
		echo "FAIL: cleanup left: ${leftovers[*]}" >&2
		[[ $rc -eq 0 || $rc -eq 77 ]] && rc=1
	fi
	exit "$rc"
}

# ---- handshake helpers (TLS versions, SNI, STARTTLS, proxies) --------------------

# tg_start_tls_server_args NAME ADDR PORT [s_server args...] : like
# tg_start_tls_server, with extra openssl s_server arguments (versions, ciphers).
tg_start_tls_server_args()
{
	local name=$1 addr=$2 port=$3 out pid
	shift 3
	tg_make_cert
	out="$TG_TMP/srv-$name.out"
	rm -f "$out"
	ip netns exec "$TG_NS" openssl s_server -accept "$(tg_hostport "$addr" "$port")" \
		-cert "$TG_CERT_DIR/cert.pem" -key "$TG_CERT_DIR/key.pem" -www "$@" \
		</dev/null >"$out" 2>&1 &
	pid=$!
	TG_PIDS+=("$pid")
	TG_SERVER_PID[$name]=$pid
	TG_SERVER_LOG[$name]=$out
	_tg_wait_for_file_line "$out" '^ACCEPT' "$pid" 5 "TLS server $name ($addr:$port)"
	tg_log "TLS server $name on $(tg_hostport "$addr" "$port") (pid $pid): $*"
}

# tg_builtin_class NAME: the built-in policy's ports and protocol of class NAME,
# as EXTRA_DEST_YAML for tg_write_policy_hs (the test then exercises the class
# as shipped: tlsguard policy show-default).
tg_builtin_class()
{
	"$TLSGUARD" policy show-default | python3 -c "
import sys, yaml
d = [d for d in yaml.safe_load(sys.stdin)['destinations'] if d['name'] == sys.argv[1]][0]
print('    ports: ' + yaml.safe_dump(d['ports'], default_flow_style=True).strip())
print('    protocol: ' + d.get('protocol', 'tls'))" "$1"
}

# tg_write_policy_hs FILE MODE EXTRA_DEST_YAML [TOP_YAML] : one destination
# "storage" (the protected addresses, ports 80/443/5432/3306 and whatever
# EXTRA_DEST_YAML adds: lines indented by four spaces), TOP_YAML at the top
# level (min_tls_version, proxies), events to $TG_EVENTS with log_tls_flows.
tg_write_policy_hs()
{
	local file=$1 mode=$2 extra=$3 top=${4:-}
	{
		echo "# written by $TG_TEST_NAME"
		echo "mode: $mode"
		[[ -n "$top" ]] && printf '%s\n' "$top"
		echo "workloads:"
		echo "  cgroups: [\"$TG_CG_REL\"]"
		echo "destinations:"
		echo "  - name: storage"
		echo "    cidrs: [\"$TG_PROT4/32\", \"$TG_PROT6/128\"]"
		[[ -n "$extra" ]] && printf '%s\n' "$extra"
		echo "    mode: $mode"
		echo "events:"
		echo "  file: \"$TG_EVENTS\""
		echo "  log_tls_flows: true"
	} >"$file"
}
