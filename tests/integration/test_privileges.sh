#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Privileges after attach (agent/kernel/privileges.h): started as root with every
# capability, the agent keeps only CAP_NET_ADMIN, CAP_SYS_ADMIN and
# CAP_SYS_PTRACE, in every thread, with no_new_privs and nothing inheritable
# or ambient; and what it still has to do works with that set: destroying
# the blocked socket of a client that runs as another user in another
# network namespace (setns, /proc/PID/ns/net, SOCK_DESTROY), and a reload
# that rewrites the maps.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup
tg_require_cmd setpriv

# CAP_NET_ADMIN 12, CAP_SYS_ADMIN 21, CAP_SYS_PTRACE 19
KEPT=$(printf '%016x' $(((1 << 12) | (1 << 21) | (1 << 19))))

tg_start_plain_server web "$TG_PROT4" 80
tg_write_policy "$TG_TMP/policy.yaml" enforce "[80, 443]"
# a host name gives the agent its refresh thread; localhost resolves from
# /etc/hosts (no DNS query), and port 9 in audit is never used here
add_class() # NAME ENTRY MODE PORT: inserted before "exceptions:"
{
	python3 - "$TG_TMP/policy.yaml" "$@" >"$TG_TMP/policy.new" <<'PY'
import sys
path, name, entry, mode, port = sys.argv[1:]
out = []
for line in open(path).read().splitlines():
    if line.startswith("exceptions:"):
        out += ["  - name: " + name, "    " + entry, "    ports: [%s]" % port, "    mode: " + mode]
    out.append(line)
print("\n".join(out))
PY
	mv "$TG_TMP/policy.new" "$TG_TMP/policy.yaml"
}
add_class loopback 'hosts: ["localhost"]' audit 9
[[ $(awk '/^CapEff:/ { print $2 }' /proc/self/status) != "$KEPT" ]] ||
	tg_fail "the test runs with only the kept capabilities already: it could not tell a drop"
tg_start_agent enforce "$TG_TMP/policy.yaml"
assert_file_contains "$TG_AGENT_LOG" 'programs attached: dropped [0-9]+ capabilities, kept CAP_NET_ADMIN CAP_SYS_ADMIN CAP_SYS_PTRACE' \
	"the agent says what it kept"

# every thread: the drop happens before the first thread starts
threads=0
for st in /proc/"$TG_AGENT_PID"/task/*/status; do
	tid=$(awk '/^Pid:/ { print $2 }' "$st")
	for field in CapEff CapPrm; do
		assert_eq "$KEPT" "$(awk -v f="$field:" '$1 == f { print $2 }' "$st")" "thread $tid $field"
	done
	for field in CapInh CapAmb; do
		assert_eq 0000000000000000 "$(awk -v f="$field:" '$1 == f { print $2 }' "$st")" "thread $tid $field"
	done
	assert_eq 1 "$(awk '/^NoNewPrivs:/ { print $2 }' "$st")" "thread $tid NoNewPrivs"
	bnd=$(awk '/^CapBnd:/ { print $2 }' "$st")
	assert_eq "$KEPT" "$bnd" "thread $tid bounding set (root started it with CAP_SETPCAP)"
	threads=$((threads + 1))
done
assert_cmp "$threads" -ge 2 "agent threads inspected (main + host refresh at least)"

# a client of another user: the agent needs CAP_SYS_PTRACE for its netns link,
# CAP_SYS_ADMIN to enter it and CAP_NET_ADMIN to destroy the socket there
tg_client nobody-curl setpriv --reuid=65534 --regid=65534 --clear-groups \
	curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
assert_rc_nonzero "plain HTTP from another user in enforce mode"
assert_cmp "$TG_MS" -lt 1000 "curl failure time (ms): the socket was destroyed, not left to time out"
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'plaintext'" 5 "plaintext event")
assert_field "$ev" action blocked
assert_server web 1 -eq 0

# a reload after the drop rewrites the maps: a class for another address appears
tg_start_plain_server other "$TG_OTHER4" 80
tg_client before-reload curl -sS --max-time 5 -o /dev/null "$(tg_url http "$TG_OTHER4")"
assert_rc 0 "plain HTTP to an unlisted address before the reload"
sleep 0.3	# the server logs a connection when it closes
before=$(tg_server_bytes other)
assert_cmp "$before" -gt 0 "bytes the unlisted server got before the reload"
add_class registry "cidrs: [\"$TG_OTHER4/32\"]" enforce 80
# the agent watches the policy file: the rename is the reload
expect_event "$TG_EVENTS" "e.get('type') == 'agent' and e.get('action') == 'reload'" 10 "reload event" >/dev/null
tg_client after-reload curl -sS --max-time 5 -o /dev/null "$(tg_url http "$TG_OTHER4")"
assert_rc_nonzero "plain HTTP to the class the reload added"
expect_event "$TG_EVENTS" "e.get('type') == 'plaintext' and get(e, 'destination.class') == 'registry'" 5 \
	"event for the new class" >/dev/null
assert_server other 2 -eq "$before"

tg_stop_agent
assert_events_valid
