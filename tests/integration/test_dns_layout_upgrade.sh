#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Upgrade across dns pin layouts (TG_DNS_PIN_LAYOUT_VERSION, docs/operations.md,
# "Upgrades"): the old-layout agent of `make test-build` (dns layout 1002)
# learns a wildcard host's address from a DNS answer and is stopped (its pins
# stay). The new agent replaces the dns pins instead of refusing them: it
# starts, carries the learned address over (a connect to it right after the
# upgrade is judged and named, with no DNS answer in between), switches the
# pinned dns links to its own programs (one dns program per hook on the
# cgroup) and drops, with a warning, an old map whose form it cannot take
# (here: a queries map with another value size put in place of the old one).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_require_cmd dnsmasq
tg_setup

# TG_OLD_TLSGUARD / TG_OLD_DNS_LAYOUT: an agent of a real older release instead
OLD_DNS_LAYOUT=${TG_OLD_DNS_LAYOUT:-1002}
NEW_DNS_LAYOUT=$(sed -n 's/^#define TG_DNS_PIN_LAYOUT_VERSION[[:space:]]*\([0-9]*\).*/\1/p' \
	"$TG_ROOT/include/tlsguard/dns.h")
OLD_TLSGUARD=${TG_OLD_TLSGUARD:-"$(dirname "$TLSGUARD")/helpers/tlsguard-layout1003"}
[[ -x "$OLD_TLSGUARD" ]] || tg_fail "$OLD_TLSGUARD is missing (make test-build builds it)"
assert_ne "$OLD_DNS_LAYOUT" "$NEW_DNS_LAYOUT" "the two dns layouts"
NAME=acct.blob.core.windows.net
P_PLAIN="e.get('type') == 'plaintext'"

cat >"$TG_TMP/records.conf" <<EOF
host-record=$NAME,$TG_PROT4
local-ttl=600
EOF
tg_start_dnsmasq "$TG_TMP/records.conf"
tg_start_plain_server web "$TG_PROT4" 80
tg_write_policy_hosts "$TG_TMP/policy.yaml" audit '["*.blob.core.windows.net"]'

# dns_prog_ids → the ids of the dns programs that run on the cgroup, sorted,
# one line: chained, those in the verdict programs' slots (and none may be
# attached); else the attached ones
dns_prog_ids()
{
	local attached
	attached=$(bpftool -j cgroup show "$TG_CG" | python3 -c '
import json, sys
print(" ".join(sorted(str(p["id"]) for p in json.load(sys.stdin) if p.get("name", "").startswith("tg_dns_"))))')
	if tg_dns_chained; then
		[[ -z "$attached" ]] || tg_fail "chained, yet dns programs attached to $TG_CG: $attached"
		printf '%s\n' "$(tg_chain_prog_id "$TG_PIN" tg_dns_chain_ingress)" \
			"$(tg_chain_prog_id "$TG_PIN" tg_dns_chain_egress)" | sort | tr '\n' ' ' | sed 's/ *$//'
		echo
	else
		echo "$attached"
	fi
}

tg_log "---- dns layout $OLD_DNS_LAYOUT learns $NAME"
TLSGUARD=$OLD_TLSGUARD tg_start_agent audit "$TG_TMP/policy.yaml"
assert_eq "$OLD_DNS_LAYOUT" "$(tg_layout_of "$TG_PIN/dns")" "dns layout marker of the old agent's pins"
tg_resolve_learned "$NAME" "$TG_PROT4" "LPM entry for $TG_PROT4 learned by the old agent"
old_ids=$(dns_prog_ids)
old_learned=$(bpftool -j map show pinned "$TG_PIN/dns/tg_dns_learned" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
tg_stop_agent

# an old map of a form the new layout cannot take: not carried, said so, no failure
rm -f "$TG_PIN/dns/tg_dns_queries"
bpftool map create "$TG_PIN/dns/tg_dns_queries" type hash key 32 value 16 entries 16 name tg_dns_queries

tg_log "---- dns layout $NEW_DNS_LAYOUT over the layout $OLD_DNS_LAYOUT pins"
TG_AGENT_UPGRADING=1 tg_start_agent audit "$TG_TMP/policy.yaml"
assert_file_contains "$TG_AGENT_LOG" \
	"dns: pins of layout $OLD_DNS_LAYOUT replaced by layout $NEW_DNS_LAYOUT: 1 learned address.* and 0 queries in flight carried" \
	"the dns pins replaced, the learned address carried over"
assert_file_contains "$TG_AGENT_LOG" "dns: the queries in flight of dns layout $OLD_DNS_LAYOUT do not fit" \
	"the odd queries map named, not carried"
assert_file_contains "$TG_AGENT_LOG" 'dns: kept 1 learned address' "the carried address in the agent's table"
assert_eq "$NEW_DNS_LAYOUT" "$(tg_layout_of "$TG_PIN/dns")" "dns layout marker after the upgrade"
new_learned=$(bpftool -j map show pinned "$TG_PIN/dns/tg_dns_learned" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
assert_ne "$old_learned" "$new_learned" "the learned map is a new one"
new_ids=$(dns_prog_ids)
tg_log "dns programs on $TG_CG: before $old_ids, after $new_ids"
assert_eq 2 "$(wc -w <<<"$old_ids")" "dns programs of the old agent (ingress, egress)"
assert_eq 2 "$(wc -w <<<"$new_ids")" "dns programs on the cgroup (ingress, egress)"
[[ " $new_ids " != *" ${old_ids%% *} "* && " $new_ids " != *" ${old_ids##* } "* ]] ||
	tg_fail "an old dns program is still attached: before $old_ids, after $new_ids"
if tg_dns_chained && [[ -d "$TG_PIN/retiring" ]]; then
	# the old generation drains with its verdict programs, but learns no more
	for m in tg_dns_chain_ingress tg_dns_chain_egress; do
		assert_eq "" "$(tg_chain_prog_id "$TG_PIN/retiring" "$m")" "retiring/$m emptied"
	done
fi

tg_log "---- the carried address is judged and named at once, no answer in between"
queries=$(grep -c "query\[.*$NAME" "$TG_TMP/dnsmasq.log") || true
tg_client curl curl -4 -sS --max-time 5 "http://$TG_PROT4/"
assert_rc 0 "plain HTTP to $TG_PROT4 in audit mode"
ev=$(expect_event "$TG_EVENTS" "$P_PLAIN and get(e, 'workload.pid') == $TG_CLIENT_PID" 5 "plaintext event")
assert_field "$ev" action flagged
assert_field "$ev" destination.class storage
assert_field "$ev" destination.name "$NAME"
assert_eq "$queries" "$(grep -c "query\[.*$NAME" "$TG_TMP/dnsmasq.log" || true)" "DNS queries for $NAME since the upgrade"
tg_stop_agent
assert_events_valid

tg_log "---- uninstall"
tg_assert_uninstalled
