#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Azure service tags: a ServiceTags_*.json file (the published format) with a
# handful of prefixes is loaded into a class and enforced; a tag the file does
# not have stops the agent with a message naming it.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup

cat >"$TG_TMP/ServiceTags_Public.json" <<JSON
{"changeNumber": 1, "cloud": "Public", "values": [
  {"name": "Storage.WestEurope", "id": "Storage.WestEurope",
   "properties": {"changeNumber": 1, "region": "westeurope", "platform": "Azure",
                  "systemService": "AzureStorage",
                  "addressPrefixes": ["203.0.113.0/24", "198.51.100.0/28", "2001:db8::/64"]}},
  {"name": "AzureContainerRegistry", "id": "AzureContainerRegistry",
   "properties": {"addressPrefixes": ["192.0.2.0/24"]}}
]}
JSON
write_policy()	# TAG
{
	{
		echo "mode: enforce"
		echo "destinations:"
		echo "  - name: storage"
		echo "    service_tags:"
		echo "      file: \"$TG_TMP/ServiceTags_Public.json\""
		echo "      tags: [$1]"
		echo "events:"
		echo "  file: \"$TG_EVENTS\""
	} >"$TG_TMP/policy.yaml"
}

tg_start_plain_server web "$TG_PROT4" 80		# 198.51.100.10, inside 198.51.100.0/28
tg_start_plain_server other "$TG_OTHER4" 80	# 198.51.100.20, outside it
write_policy Storage.WestEurope
tg_start_agent enforce "$TG_TMP/policy.yaml"
tg_client tagged curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
assert_rc_nonzero "plaintext to an address of the service tag"
ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'plaintext'" 5 "plaintext event")
assert_field "$ev" destination.class storage
assert_field "$ev" action blocked
tg_client untagged curl -sS --max-time 5 "$(tg_url http "$TG_OTHER4")"
assert_rc 0 "plaintext to an address outside the tag's prefixes"
tg_stop_agent
assert_server web 1 -eq 0
assert_server other 1 -gt 0

write_policy Storage.MarsNorth
tg_capture bad-tag "$TLSGUARD" agent --config "$TG_TMP/policy.yaml" --cgroup "$TG_CG" \
	--pin-path "$TG_PIN" --socket "$TG_SOCK" --events-file "$TG_EVENTS"
assert_rc_nonzero "agent with a tag the file lacks"
assert_file_contains "$TG_OUT" 'service tag Storage\.MarsNorth is not in' "the agent names the missing tag"

# ---- the policy-wide file (the built-in policy's backstop): status says loaded, how old ----
write_wide_policy()	# FILE
{
	{
		echo "mode: enforce"
		echo "service_tags: {file: \"$1\", optional: true}"
		echo "destinations:"
		echo "  - name: storage_tag"
		echo "    service_tags: {tags: [Storage.WestEurope]}"
		echo "events:"
		echo "  file: \"$TG_EVENTS\""
	} >"$TG_TMP/policy.yaml"
}
status_get()
{
	"$TLSGUARD" status --socket "$TG_SOCK" -o json | python3 -c "$TG_PY_PRELUDE
v = get(json.load(sys.stdin), sys.argv[1], '<missing>')
print(v if isinstance(v, str) else json.dumps(v))" "$1"
}
touch -d '3 days ago' "$TG_TMP/ServiceTags_Public.json"
write_wide_policy "$TG_TMP/ServiceTags_Public.json"
tg_start_plain_server web "$TG_PROT4" 80
tg_start_agent enforce "$TG_TMP/policy.yaml"
assert_eq true "$(status_get policy.service_tags.loaded)" "status: service tags loaded"
assert_eq 3 "$(status_get policy.service_tags.prefixes)" "status: prefixes from the file"
age=$(status_get policy.service_tags.age_s)
assert_cmp "$age" -ge $((3 * 86400 - 60)) "status: the file's age (s)"
"$TLSGUARD" status --socket "$TG_SOCK" >"$TG_TMP/status.txt"
assert_file_contains "$TG_TMP/status.txt" "service tags .*ServiceTags_Public.json: 3 prefixes, file 3 day\(s\) old" \
	"status text: the service tags line"
tg_client wide curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
assert_rc_nonzero "plaintext to an address of the policy-wide tag file"
tg_stop_agent
assert_server web 1 -eq 0

# absent and optional: the agent starts, status says why it is not loaded
write_wide_policy "$TG_TMP/no-such-ServiceTags.json"
tg_start_agent enforce "$TG_TMP/policy.yaml"
assert_eq false "$(status_get policy.service_tags.loaded)" "status: service tags without the file"
assert_eq "No such file or directory" "$(status_get policy.service_tags.reason)" "status: why not"
"$TLSGUARD" status --socket "$TG_SOCK" >"$TG_TMP/status.txt"
assert_file_contains "$TG_TMP/status.txt" "service tags .*no-such-ServiceTags.json: not loaded \(No such file or directory\)" \
	"status text: not loaded"
tg_stop_agent
