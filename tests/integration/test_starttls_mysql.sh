#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A real MariaDB server (throwaway datadir, in the test netns) behind a
# `protocol: mysql` destination: the client with --ssl (SSL request with
# CLIENT_SSL, then TLS) is allowed; --skip-ssl (HandshakeResponse with the
# user name in the clear) is flagged in audit and blocked in enforce.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup
tg_require_cmd mariadb-install-db mariadbd mariadb

tg_make_cert
db="$TG_TMP/mariadb"
mkdir -p "$db"
mariadb-install-db --no-defaults --datadir="$db/data" --user=root --auth-root-authentication-method=normal \
	--skip-test-db >"$TG_TMP/install-db.log" 2>&1 || tg_fail "mariadb-install-db: $(tail -5 "$TG_TMP/install-db.log")"
ip netns exec "$TG_NS" mariadbd --no-defaults --user=root --datadir="$db/data" --socket="$db/sock" \
	--pid-file="$db/pid" --bind-address="$TG_PROT4" --port=3306 --skip-grant-tables \
	--ssl-cert="$TG_CERT_DIR/cert.pem" --ssl-key="$TG_CERT_DIR/key.pem" \
	--log-error="$db/error.log" </dev/null >"$db/out.log" 2>&1 &
TG_PIDS+=("$!")
for _ in $(seq 100); do
	grep -q 'ready for connections' "$db/error.log" 2>/dev/null && break
	sleep 0.1
done
grep -q 'ready for connections' "$db/error.log" || tg_fail "mariadbd did not start: $(tail -20 "$db/error.log")"

mysql_to() # NAME SSL-FLAG
{
	tg_client "$1" timeout 10 mariadb --no-defaults -h "$TG_PROT4" -P 3306 -u root "$2" \
		--connect-timeout=5 -N -e "show status like 'Ssl_version'"
}

P_PLAIN="e.get('type') == 'plaintext'"
for mode in audit enforce; do
	tg_log "---- $mode mode"
	: >"$TG_EVENTS"
	# the built-in policy's mysql class
	tg_write_policy_hs "$TG_TMP/policy-$mode.yaml" "$mode" "$(tg_builtin_class mysql)"
	tg_start_agent "$mode" "$TG_TMP/policy-$mode.yaml"

	mysql_to "ssl-$mode" --ssl
	assert_rc 0 "mariadb --ssl ($mode)"
	assert_file_contains "$TG_OUT" 'Ssl_version[[:space:]]+TLSv1\.[23]' "the session is encrypted"
	ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'tls'" 5 "tls event")
	assert_field "$ev" protocol.negotiation mysql-ssl-request

	mysql_to "plain-$mode" --skip-ssl
	if [[ $mode == audit ]]; then
		assert_rc 0 "mariadb --skip-ssl in audit mode"
	else
		assert_rc_nonzero "mariadb --skip-ssl in enforce mode"
		assert_cmp "$TG_MS" -lt 3000 "time to the failure (ms)"
	fi
	ev=$(expect_event "$TG_EVENTS" "$P_PLAIN" 5 "plaintext event")
	assert_field "$ev" action "$([[ $mode == audit ]] && echo flagged || echo blocked)"
	assert_field "$ev" protocol.detected mysql
	assert_field "$ev" destination.port 3306
	tg_stop_agent
	assert_events_valid
done
