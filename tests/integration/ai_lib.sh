# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# Globals are read by the tests that source this; optional arguments are optional.
# shellcheck disable=SC2034,SC2119,SC2120
#
# Application Insights test helpers, sourced after lib.sh by test_ai_*.sh:
#
#   . "$(dirname "$0")/lib.sh"; . "$(dirname "$0")/ai_lib.sh"
#   trap tg_cleanup EXIT; tg_setup
#   ai_start_standin                     # HTTPS stand-in on 127.0.0.1 (ai_standin.py)
#   ai_write_policy "$TG_TMP/policy.yaml" "flood_window: 0"   # extra application_insights keys
#   tg_start_agent audit "$TG_TMP/policy.yaml"
#   ai_violations 5                      # five real plaintext violations from curl in the netns
#   ai_wait_accepted 6 20                # the stand-in accepted 6 items
#   tg_stop_agent; ai_assert_exactly_once
#
# The stand-in runs in the root netns (the agent runs there), with a CA and a
# server certificate made per test. Its records (every accepted item) are in
# $AI_RECORDS, its request log in $AI_REQUESTS.

AI_STANDIN="$TG_ROOT/tests/integration/ai_standin.py"
AI_IKEY="1b7e0c42-3f5a-4d8e-9c21-7a6b5d4e3f20"
AI_CA=""
AI_PORT=""		# https
AI_CTL=""		# control (plain HTTP)
AI_OTHER_PORT=""	# https on 127.0.0.2 (other host)
AI_REGIONAL_PORT=""	# https on 127.0.0.3 (a regional ingestion host a redirect leads to)
AI_REGIONAL_NAME="westeurope-5.in.applicationinsights.azure.com"
AI_EVIL_NAME="ingest.example.net"	# named, but not an Azure Monitor host
AI_IMDS_PORT=""
AI_RECORDS=""
AI_REQUESTS=""
AI_KEY=""		# event key file
AI_STANDIN_PID=""
AI_WEB_STARTED=0

# A CA and a server certificate for 127.0.0.1-3 and the redirect names, signed by it.
ai_make_pki()
{
	local d=$TG_TMP/pki
	mkdir -p "$d"
	{
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$d/ca.key" -out "$d/ca.pem" -days 2 -subj "/CN=tlsguard test CA" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign"
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=127.0.0.1"
		printf 'subjectAltName=IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3,DNS:localhost,DNS:%s,DNS:%s\nextendedKeyUsage=serverAuth\n' \
			"$AI_REGIONAL_NAME" "$AI_EVIL_NAME" >"$d/ext"
		openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
			-out "$d/server.pem" -days 2 -extfile "$d/ext"
	} >"$d/openssl.log" 2>&1 || tg_fail "making the test PKI: $(cat "$d/openssl.log")"
	AI_CA="$d/ca.pem"
}

# ai_start_standin [ai_standin.py options...]
ai_start_standin()
{
	local i ports
	[[ -n "$AI_CA" ]] || ai_make_pki
	AI_RECORDS="$TG_TMP/ai-records.jsonl"
	AI_REQUESTS="$TG_TMP/ai-requests.jsonl"
	: >"$AI_RECORDS"
	: >"$AI_REQUESTS"
	rm -f "$TG_TMP/ai-ports.json"
	python3 "$AI_STANDIN" --cert "$TG_TMP/pki/server.pem" --key "$TG_TMP/pki/server.key" \
		--ikey "$AI_IKEY" --records "$AI_RECORDS" --requests "$AI_REQUESTS" \
		--port-file "$TG_TMP/ai-ports.json" --log "$TG_TMP/ai-standin.log" \
		--other-listen 127.0.0.2 --regional-listen 127.0.0.3 --regional-name "$AI_REGIONAL_NAME" \
		--evil-name "$AI_EVIL_NAME" "$@" </dev/null >"$TG_TMP/ai-standin.out" 2>&1 &
	AI_STANDIN_PID=$!
	TG_PIDS+=("$AI_STANDIN_PID")
	for ((i = 0; i < 100; i++)); do
		[[ -s "$TG_TMP/ai-ports.json" ]] && break
		kill -0 "$AI_STANDIN_PID" 2>/dev/null ||
			tg_fail "the App Insights stand-in exited: $(cat "$TG_TMP/ai-standin.out")"
		sleep 0.1
	done
	ports=$(cat "$TG_TMP/ai-ports.json") || tg_fail "stand-in did not start"
	AI_PORT=$(json_get "$ports" https)
	AI_CTL=$(json_get "$ports" control)
	AI_OTHER_PORT=$(json_get "$ports" other)
	AI_IMDS_PORT=$(json_get "$ports" imds)
	AI_REGIONAL_PORT=$(json_get "$ports" regional)
	tg_log "App Insights stand-in: https 127.0.0.1:$AI_PORT, control $AI_CTL (pid $AI_STANDIN_PID)"
}

ai_stop_standin()
{
	[[ -n "$AI_STANDIN_PID" ]] || return 0
	kill -TERM "$AI_STANDIN_PID" 2>/dev/null || true
	wait "$AI_STANDIN_PID" 2>/dev/null || true
	AI_STANDIN_PID=""
}

# ai_connstr [IKEY] → writes the connection string file, prints its path
ai_connstr()
{
	local ikey=${1:-$AI_IKEY} f=$TG_TMP/secrets/connection-string
	mkdir -p "$TG_TMP/secrets"
	chmod 0700 "$TG_TMP/secrets"
	printf 'InstrumentationKey=%s;IngestionEndpoint=https://127.0.0.1:%s/;LiveEndpoint=https://127.0.0.1:1/\n' \
		"$ikey" "$AI_PORT" >"$f"
	chmod 0600 "$f"
	echo "$f"
}

# An event key (32 random bytes, hex) in $AI_KEY.
ai_make_key()
{
	mkdir -p "$TG_TMP/secrets"
	chmod 0700 "$TG_TMP/secrets"
	AI_KEY="$TG_TMP/secrets/event-key"
	openssl rand -hex 32 >"$AI_KEY"
	chmod 0600 "$AI_KEY"
}

# ai_write_policy FILE [YAML lines for events.application_insights...]
# The usual test policy plus Application Insights to the stand-in, the test CA,
# 1 s batches and 1 s retries. Set AI_EVENTS_EXTRA for more events.* keys
# (e.g. encrypt_fields, spool), AI_CONNSTR for another connection string file.
ai_write_policy()
{
	local file=$1 line d
	shift
	tg_write_policy "$file" audit "[80, 443]"
	{
		echo "  application_insights:"
		echo "    connection_string_file: \"${AI_CONNSTR:-$(ai_connstr)}\""
		echo "    ca_file: \"$AI_CA\""
		for d in "batch_age: 1s" "retry_base: 1s" "retry_max: 2s" "timeout: 5s"; do
			[[ " ${*%%:*} " == *" ${d%%:*} "* ]] || echo "    $d"
		done
		for line in "$@"; do
			echo "    $line"
		done
		[[ -n "${AI_EVENTS_EXTRA:-}" ]] && printf '%s\n' "$AI_EVENTS_EXTRA"
	} >>"$file"
	true
}

# ai_violations N : N plain HTTP requests from curl in the watched cgroup (one
# plaintext/flagged event each). Starts the plain server on first use.
ai_violations()
{
	local n=$1 i
	if [[ $AI_WEB_STARTED -eq 0 ]]; then
		tg_start_plain_server web "$TG_PROT4" 80
		AI_WEB_STARTED=1
	fi
	for ((i = 0; i < n; i++)); do
		tg_client "curl-$i" curl -sS --max-time 5 "$(tg_url http "$TG_PROT4")"
		assert_rc 0 "plain HTTP request $i" 2>/dev/null
	done
	tg_log "made $n violation(s)"
}

ai_ctl() { curl -sS --max-time 5 "http://127.0.0.1:$AI_CTL$1" "${@:2}"; }
ai_script() { ai_ctl /script -X POST --data-binary "$1" >/dev/null; }
ai_default() { ai_ctl /default -X POST --data-binary "$1" >/dev/null; }
ai_regional() { ai_ctl /regional -X POST --data-binary "$1" >/dev/null; }

# The policy lines that make the redirect names reach the stand-in's listeners
# (test_resolve: tests only, docs/policy.md).
ai_resolve_lines()
{
	echo "test_resolve: [\"$AI_REGIONAL_NAME:$AI_REGIONAL_PORT:127.0.0.3\", \"$AI_EVIL_NAME:$AI_OTHER_PORT:127.0.0.2\"]"
}
ai_stat() { json_get "$(ai_ctl /stats)" "$1"; }

# ai_wait_stat KEY MIN TIMEOUT_S : until the stand-in's counter KEY >= MIN
ai_wait_stat()
{
	local key=$1 min=$2 timeout=$3 i v
	for ((i = 0; i < timeout * 10; i++)); do
		v=$(ai_stat "$key")
		[[ "$v" =~ ^[0-9]+$ ]] && ((v >= min)) && { tg_log "stand-in $key = $v"; return 0; }
		sleep 0.1
	done
	tg_log "stand-in stats: $(ai_ctl /stats)"
	tg_fail "stand-in $key did not reach $min within ${timeout}s (last: $v)"
}

ai_wait_accepted() { ai_wait_stat accepted "$1" "$2"; }

# ai_violations_accepted : distinct plaintext events the stand-in accepted
ai_violations_accepted() { grep -o '"id": "plaintext|[^"]*"' "$AI_RECORDS" | sort -u | wc -l; }

# ai_wait_sink_idle TIMEOUT_S : until the agent's sink has nothing queued or stored
ai_wait_sink_idle()
{
	local timeout=$1 i st
	for ((i = 0; i < timeout * 10; i++)); do
		st=$(ai_sink_status)
		[[ $(json_get "$st" queued) == 0 && $(json_get "$st" spooled) == 0 ]] && return 0
		sleep 0.1
	done
	tg_fail "the sink did not become idle within ${timeout}s: $st"
}

# ai_wait_violations N TIMEOUT_S : until the stand-in accepted N distinct plaintext events
ai_wait_violations()
{
	local n=$1 timeout=$2 i v
	for ((i = 0; i < timeout * 10; i++)); do
		v=$(ai_violations_accepted)
		((v >= n)) && { tg_log "stand-in accepted $v violation(s)"; return 0; }
		sleep 0.1
	done
	tg_fail "the stand-in accepted $v of $n violations within ${timeout}s"
}

# The agent's appinsights sink, from `tlsguard status -o json`, as JSON.
ai_sink_status()
{
	"$TLSGUARD" status --socket "$TG_SOCK" -o json | python3 -c '
import json, sys
s = json.load(sys.stdin)
print(json.dumps([x for x in s["sinks"] if x["name"] == "appinsights"][0]))'
}

# ai_assert_no_invalid : the stand-in found every item valid.
ai_assert_no_invalid()
{
	local st
	st=$(ai_ctl /stats)
	[[ $(json_get "$st" invalid) == 0 ]] || tg_fail "the stand-in rejected items as invalid: $st"
	tg_log "ok: every item the stand-in received was valid"
}

# ai_assert_exactly_once [LOST] : every event of the events file (the complete
# sink) was accepted by the stand-in exactly once, except exactly LOST (default
# 0) of them, which the agent counted as lost; no item was accepted twice and
# every accepted event item is one of the file's. Flood summaries (count > 1)
# stand for their count of events.
ai_assert_exactly_once()
{
	local lost=${1:-0} out
	if ! out=$(python3 - "$TG_EVENTS" "$AI_RECORDS" "$lost" <<-'EOF'
		import json, sys, collections
		events_path, records_path, lost = sys.argv[1], sys.argv[2], int(sys.argv[3])
		def eid(e):
		    cookie = (e.get("flow") or {}).get("cookie", "")
		    return "%s|%s|%s|%s" % (e["type"], e["time"], cookie, e.get("action", ""))
		want = [eid(json.loads(l)) for l in open(events_path) if l.strip()]
		recs = [json.loads(l) for l in open(records_path) if l.strip()]
		got = collections.Counter(r["id"] for r in recs if not r["id"].startswith("metric|"))
		dups = [k for k, n in got.items() if n > 1]
		extra = [k for k in got if k not in set(want)]
		missing = [k for k in want if k not in got]
		bad = []
		if dups:
		    bad.append("accepted more than once: %s" % dups)
		if extra:
		    bad.append("accepted but not in the events file: %s" % extra)
		if len(missing) != lost:
		    bad.append("%d event(s) never accepted, %d counted as lost: %s" % (len(missing), lost, missing))
		print("%d events, %d accepted once, %d lost" % (len(want), len(want) - len(missing), len(missing)))
		if bad:
		    print("\n".join(bad))
		    sys.exit(1)
		EOF
	); then
		tg_fail "exactly-once check: $out"
	fi
	tg_log "ok: exactly once: $out"
}

# ai_assert_lost_events N : the agent reported N lost items in `agent` loss events.
ai_lost_reported()
{
	python3 -c "$TG_PY_PRELUDE
import re
n = 0
for e in load(sys.argv[1]):
    if e.get('type') == 'agent' and e.get('action') == 'loss':
        m = re.match(r'appinsights: (\d+) item', e.get('message') or '')
        if m:
            n += int(m.group(1))
print(n)" "$TG_EVENTS"
}
