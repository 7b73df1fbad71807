#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# A real PostgreSQL server (throwaway cluster, in the test netns) behind the
# built-in policy's postgres class (its ports and protocol, tg_builtin_class):
# `protocol: postgres` destination: psql sslmode=require (SSLRequest, 'S',
# TLS) is allowed; sslmode=disable (a StartupMessage in the clear) is
# flagged in audit and blocked in enforce, where the server never gets a
# startup packet (no "connection authorized" in its log).
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_setup
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -x "$pgbin/initdb" && -x "$pgbin/pg_ctl" ]] || tg_skip "PostgreSQL server binaries not installed"
tg_require_cmd psql
id postgres >/dev/null 2>&1 || tg_skip "no postgres user"

# a cluster owned by postgres under our temp dir; TLS with the test certificate
tg_make_cert
chmod 711 "$TG_TMP"
pg="$TG_TMP/pg"
mkdir -p "$pg"
cp "$TG_CERT_DIR/cert.pem" "$pg/server.crt"
cp "$TG_CERT_DIR/key.pem" "$pg/server.key"
chown -R postgres: "$pg"
chmod 600 "$pg/server.key"
su postgres -s /bin/sh -c "'$pgbin/initdb' -D '$pg/data' -A trust -U postgres" >"$TG_TMP/initdb.log" 2>&1 ||
	tg_fail "initdb failed: $(tail -5 "$TG_TMP/initdb.log")"
echo "host all all 0.0.0.0/0 trust" >>"$pg/data/pg_hba.conf"
ip netns exec "$TG_NS" su postgres -s /bin/sh -c "'$pgbin/pg_ctl' -D '$pg/data' -l '$pg/server.log' -w -t 20 \
	-o \"-p 5432 -c listen_addresses=$TG_PROT4 -c unix_socket_directories=$pg -c ssl=on \
	-c ssl_cert_file=$pg/server.crt -c ssl_key_file=$pg/server.key -c log_connections=on\" start" \
	>"$TG_TMP/pg_ctl.log" 2>&1 || tg_fail "pg_ctl start failed: $(cat "$TG_TMP/pg_ctl.log" "$pg/server.log")"
pg_stop() { ip netns exec "$TG_NS" su postgres -s /bin/sh -c "'$pgbin/pg_ctl' -D '$pg/data' -m immediate stop" >/dev/null 2>&1 || true; }
tg_log "postgres on $TG_PROT4:5432"

psql_to() # NAME SSLMODE
{
	tg_client "$1" timeout 10 psql "host=$TG_PROT4 port=5432 user=postgres dbname=postgres sslmode=$2 connect_timeout=5" \
		-Atc "select 'ssl=' || ssl::text from pg_stat_ssl where pid = pg_backend_pid()"
}
authorized() { grep -c 'connection authorized' "$pg/server.log" || true; }

P_PLAIN="e.get('type') == 'plaintext'"
for mode in audit enforce; do
	tg_log "---- $mode mode"
	: >"$TG_EVENTS"
	# the built-in policy's postgres class: 5432 and PgBouncer's 6432, protocol postgres
	tg_write_policy_hs "$TG_TMP/policy-$mode.yaml" "$mode" "$(tg_builtin_class postgres)"
	tg_start_agent "$mode" "$TG_TMP/policy-$mode.yaml"

	psql_to "require-$mode" require
	assert_rc 0 "psql sslmode=require ($mode)"
	assert_file_contains "$TG_OUT" '^ssl=(t|true)$' "the session is encrypted"
	ev=$(expect_event "$TG_EVENTS" "e.get('type') == 'tls'" 5 "tls event")
	assert_field "$ev" protocol.negotiation postgres-sslrequest
	assert_field "$ev" tls.version 1.3

	before=$(authorized)
	psql_to "disable-$mode" disable
	if [[ $mode == audit ]]; then
		assert_rc 0 "psql sslmode=disable in audit mode"
		assert_file_contains "$TG_OUT" '^ssl=(f|false)$' "the session is in the clear"
	else
		assert_rc_nonzero "psql sslmode=disable in enforce mode"
		assert_cmp "$TG_MS" -lt 3000 "time to the failure (ms)"
		sleep 0.5
		assert_eq "$before" "$(authorized)" "server log: no startup reached the server"
	fi
	ev=$(expect_event "$TG_EVENTS" "$P_PLAIN" 5 "plaintext event")
	assert_field "$ev" action "$([[ $mode == audit ]] && echo flagged || echo blocked)"
	assert_field "$ev" protocol.detected postgres
	assert_field "$ev" destination.port 5432
	assert_field "$ev" workload.comm psql
	tg_stop_agent
	assert_events_valid
done
pg_stop
