#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Enforce mode: a process in the same netns but outside the watched cgroup is
# never affected (plain HTTP works, no event); the same request from inside the
# cgroup right after is blocked, so the agent was enforcing all along.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

tg_start_plain_server web "$TG_PROT4" 80
tg_write_policy "$TG_TMP/policy.yaml" enforce "[80, 443]"
# The relative form of --cgroup (the other tests pass the absolute path).
TG_AGENT_CGROUP_ARG=$TG_CG_REL tg_start_agent enforce "$TG_TMP/policy.yaml"

tg_outsider curl-outside curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
assert_rc 0 "plain HTTP from outside the watched cgroup"
assert_file_contains "$TG_OUT" 'tg-testsrv ok' "curl got the server's answer"
outside_pid=$TG_CLIENT_PID
tg_outsider curl-outside-8080 curl -sS -v --max-time 5 "$(tg_url http "$TG_PROT4" 8080)"
assert_rc 7 "port 8080 from outside: refused by the netns (nothing listens), not by tlsguard"
assert_file_contains "$TG_OUT" 'failed: Connection refused' "connection refused, not EPERM"
sleep 0.5
assert_event_count "$TG_EVENTS" "e.get('type') != 'agent'" 0 "events after traffic from outside the cgroup"
assert_server web 1 -gt 0

tg_start_plain_server web "$TG_PROT4" 80
tg_client curl-inside curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
assert_rc_nonzero "control: plain HTTP from inside the watched cgroup"
expect_event "$TG_EVENTS" "e.get('type') == 'plaintext' and e.get('action') == 'blocked'" 5 \
	"control plaintext/blocked event" >/dev/null
assert_event_count "$TG_EVENTS" "get(e, 'workload.pid') == $outside_pid" 0 "events naming the outside pid"
assert_server web 1 -eq 0
tg_stop_agent INT # SIGINT stops it as cleanly as SIGTERM
assert_events_valid
