#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Signals reach the event loop, not a helper thread: with an exact host name
# in the policy (the resolver thread runs), SIGHUP reloads and SIGTERM stops
# the agent cleanly (exit 0), many times over.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

# "localhost" resolves from /etc/hosts: the resolver thread runs, no DNS query leaves
{
	echo "mode: audit"
	echo "destinations:"
	echo "  - name: local"
	echo "    hosts: [\"localhost\"]"
} >"$TG_TMP/policy.yaml"
for round in 1 2 3; do
	tg_start_agent audit "$TG_TMP/policy.yaml"
	kill -HUP "$TG_AGENT_PID"
	expect_event "$TG_EVENTS" "e.get('type') == 'agent' and e.get('action') == 'reload'" 5 \
		"reload in round $round" >/dev/null
	tg_stop_agent	# asserts exit status 0 after SIGTERM
	: >"$TG_EVENTS"
done
