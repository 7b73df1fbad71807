#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The first connect to a freshly resolved wildcard name is judged (#15): a
# client resolves and connects at once (getaddrinfo, connect, send, as every
# HTTP client does), so its connect() races the agent's learning of the
# answer. dnsmasq inside the test netns answers N fresh names under
# "*.blob.core.windows.net", each with an address of its own that no map
# lists yet (all local to the netns), half of them through a CNAME to a
# privatelink name. In enforce with fail_mode closed, every plaintext
# connection must be blocked with 0 bytes at the server and reported, over
# UDP and TCP DNS (the kernel learns each answer's addresses before the
# client has it), and for answers of more records than the kernel reads (it
# stamps the cgroup: the connect's payload waits for the agent); a second
# connect to each too. A name no policy host covers is resolved and reached
# as before, and not held.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
trap tg_cleanup EXIT
tg_require_cmd dnsmasq
tg_setup

N_UDP=${TG_DNS_RACE_NAMES:-200}
N_TCP=${TG_DNS_RACE_TCP_NAMES:-50}
N_WIDE=${TG_DNS_RACE_WIDE_NAMES:-20}
WIDE_RRS=17		# one more A record than the kernel reads (DNS_MAX_RRS)
NET_UDP=203.0.113	# names resolved over UDP: $NET_UDP.1 ...
NET_TCP=198.18.0	# over TCP: $NET_TCP.1 ...
NET_WIDE=198.19		# the wide answers: $NET_WIDE.N.1 .. $NET_WIDE.N.17
((N_UDP <= 250 && N_TCP <= 250 && N_WIDE <= 250)) || tg_fail "at most 250 names each"

# every address of these prefixes is local to the netns: one server on 0.0.0.0:80 gets them all
ip -n "$TG_NS" route add local "$NET_UDP.0/24" dev lo
ip -n "$TG_NS" route add local "$NET_TCP.0/24" dev lo
ip -n "$TG_NS" route add local "$NET_WIDE.0.0/16" dev lo
ip -n "$TG_NS" addr add 192.0.2.80/32 dev lo

# ---- dnsmasq, inside the netns --------------------------------------------------
names_udp=() names_tcp=() names_wide=()
{
	printf 'local-ttl=300\nhost-record=www.unlisted.example,192.0.2.80\n'
	for ((i = 1; i <= N_UDP + N_TCP; i++)); do
		if ((i <= N_UDP)); then
			name="u$i-$RANDOM.blob.core.windows.net" ip="$NET_UDP.$i"
		else
			name="t$i-$RANDOM.blob.core.windows.net" ip="$NET_TCP.$((i - N_UDP))"
		fi
		if ((i % 2)); then
			printf 'host-record=%s,%s\n' "$name" "$ip"
		else
			pl="${name%%.blob.core.windows.net}.privatelink.blob.core.windows.net"
			printf 'host-record=%s,%s\ncname=%s,%s\n' "$pl" "$ip" "$name" "$pl"
		fi
		if ((i <= N_UDP)); then names_udp+=("$name"); else names_tcp+=("$name"); fi
	done
	# answers with more records than the kernel reads: only the agent learns them
	for ((i = 1; i <= N_WIDE; i++)); do
		name="w$i-$RANDOM.blob.core.windows.net"
		names_wide+=("$name")
		for ((r = 1; r <= WIDE_RRS; r++)); do
			printf 'host-record=%s,%s\n' "$name" "$NET_WIDE.$i.$r"
		done
	done
} >"$TG_TMP/records.conf"
tg_start_dnsmasq "$TG_TMP/records.conf"

tg_start_plain_server web 0.0.0.0 80
tg_start_plain_server unlisted 192.0.2.80 8080
cat >"$TG_TMP/policy.yaml" <<EOF
# written by $TG_TEST_NAME
mode: enforce
fail_mode: closed
workloads:
  cgroups: ["$TG_CG_REL"]
destinations:
  - name: storage
    hosts: ["*.blob.core.windows.net"]
    ports: [80, 443]
events:
  file: "$TG_EVENTS"
EOF
tg_start_agent enforce "$TG_TMP/policy.yaml"

kernel_counter() { tg_status_get "kernel_counters.$1"; }
dns_kernel_counter() { tg_status_get "policy.dns.kernel.$1"; }

# Every name of the round resolved and connected, and not one answered by the server.
check_round()
{
	local what=$1 results=$2
	shift 2
	python3 - "$results" "$what" "$@" <<'PY'
import json, sys
path, what, names = sys.argv[1], sys.argv[2], sys.argv[3:]
recs = [json.loads(l) for l in open(path)]
bad = [r for r in recs if r["result"] in ("answered", "resolve_failed") or r["ip"] is None]
if len(recs) != len(names) or bad:
    print("FAIL: %s: %d of %d names got through or did not resolve: %s"
          % (what, len(bad), len(names), json.dumps(bad[:5])), file=sys.stderr)
    sys.exit(1)
ms = sorted(r["ms"] for r in recs)
kinds = {k: sum(1 for r in recs if r["result"] == k) for k in sorted({r["result"] for r in recs})}
print("# ok: %s: %d connects, none answered; %s; ms median %.0f, max %.0f"
      % (what, len(recs), json.dumps(kinds), ms[len(ms) // 2], ms[-1]), file=sys.stderr)
PY
}

# Every connect reported: WANT blocked plaintext events for each address of RESULTS.
check_events()
{
	local what=$1 results=$2 want=$3
	python3 - "$TG_EVENTS" "$results" "$what" "$want" <<'PY'
import json, sys
events_path, results, what, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ips = {json.loads(l)["ip"] for l in open(results)}
seen = {}
for line in open(events_path):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("type") == "plaintext" and e.get("action") == "blocked":
        ip = (e.get("destination") or {}).get("ip")
        seen[ip] = seen.get(ip, 0) + 1
missing = sorted(ip for ip in ips if seen.get(ip, 0) < want)
if missing:
    print("FAIL: %s: %d of %d addresses without %d blocked plaintext event(s): %s"
          % (what, len(missing), len(ips), want, missing[:5]), file=sys.stderr)
    sys.exit(1)
print("# ok: %s: each of %d addresses reported blocked %d time(s)" % (what, len(ips), want),
      file=sys.stderr)
PY
}

# race NAME [--port P] HOST... : the client in the watched cgroup, results in $TG_TMP/NAME.jsonl
race() { tg_client "$1" python3 "$TG_ROOT/tests/integration/dns_race_client.py" "$TG_TMP/$1.jsonl" "${@:2}"; }

# ---- UDP DNS: fresh names, resolve-and-connect-at-once ------------------------------
race udp1 "${names_udp[@]}"
assert_rc 0 "the race client over UDP DNS"
check_round "first connects, UDP DNS" "$TG_TMP/udp1.jsonl" "${names_udp[@]}"
# the kernel learned each answer's address before the client had it: no connect waited
hits=$(kernel_counter dns_learned_in_kernel_hit)
tg_log "first connects: $hits found their class where the kernel learned it," \
	"$(kernel_counter dns_held) held for the agent"
assert_cmp "$hits" -gt 0 "connects classified from the kernel's own learning (dns_learned_in_kernel_hit)"
assert_eq 0 "$(kernel_counter dns_held)" "connects held (every UDP answer was learned in the kernel)"
assert_cmp "$(dns_kernel_counter answers_policy)" -ge "$N_UDP" "answers the kernel read as naming a policy host"
assert_cmp "$(dns_kernel_counter learned_in_kernel)" -ge "$N_UDP" "addresses the kernel learned"
assert_eq 0 "$(dns_kernel_counter answers_unread)" "UDP answers the kernel could not read"

# a second connect to each: learned by now, blocked the ordinary way
race udp2 "${names_udp[@]}"
check_round "second connects, UDP DNS" "$TG_TMP/udp2.jsonl" "${names_udp[@]}"
sleep 1	# the events of the last connects
check_events "UDP DNS" "$TG_TMP/udp1.jsonl" 2

# ---- a name no policy host covers: reached, its connect not held ---------------------
held=$(kernel_counter dns_held)
race unlisted --port 8080 www.unlisted.example
assert_file_contains "$TG_TMP/unlisted.jsonl" '"result": "answered"' "plaintext to an unlisted name"
assert_eq "$held" "$(kernel_counter dns_held)" "connects held after an answer no policy host is in"

# ---- an answer the kernel cannot read whole: the connect waits for the agent ----------
race wide1 "${names_wide[@]}"
check_round "first connects, answers of $WIDE_RRS records" "$TG_TMP/wide1.jsonl" "${names_wide[@]}"
held=$(kernel_counter dns_held)
tg_log "wide answers: held $held connects: $(kernel_counter dns_held_protected) released into a" \
	"class, $(kernel_counter dns_held_unlisted) without, $(kernel_counter dns_held_segments)" \
	"segments held, $(kernel_counter dns_hold_timeout) timeouts"
assert_cmp "$(dns_kernel_counter err_learn_in_kernel)" -ge "$N_WIDE" "answers whose addresses the kernel could not learn"
assert_cmp "$held" -gt 0 "connects held for the agent's learning (dns_held)"
assert_eq 0 "$(kernel_counter dns_held_unlisted)" "held connects released without a class"
assert_eq 0 "$(kernel_counter dns_hold_timeout)" "holds that ran out before the agent caught up"
sleep 1
check_events "answers of $WIDE_RRS records" "$TG_TMP/wide1.jsonl" 1

# ---- TCP DNS (use-vc): a segment that is one whole answer is read like a datagram ------
printf 'nameserver 127.0.0.1\noptions use-vc attempts:2 timeout:1\n' >"/etc/netns/$TG_NS/resolv.conf"
hits=$(kernel_counter dns_learned_in_kernel_hit)
race tcp1 "${names_tcp[@]}"
check_round "first connects, TCP DNS" "$TG_TMP/tcp1.jsonl" "${names_tcp[@]}"
tg_log "TCP DNS: $(($(kernel_counter dns_learned_in_kernel_hit) - hits)) first connects classified" \
	"where the kernel learned the answer; $(kernel_counter dns_held) held in all"
assert_cmp "$(kernel_counter dns_learned_in_kernel_hit)" -gt "$hits" "TCP answers learned in the kernel"
assert_eq 0 "$(kernel_counter dns_hold_timeout)" "holds that ran out before the agent caught up"
race tcp2 "${names_tcp[@]}"
check_round "second connects, TCP DNS" "$TG_TMP/tcp2.jsonl" "${names_tcp[@]}"
sleep 1
check_events "TCP DNS" "$TG_TMP/tcp1.jsonl" 2
assert_cmp "$(tg_status_get policy.dns.tcp.messages)" \
	-ge "$N_TCP" "DNS messages the agent reassembled from TCP"

tg_stop_agent
# every connection was accepted (the TCP handshake is not judged); not one byte got in
tg_stop_server web
assert_eq 0 "$(tg_server_bytes web)" "plaintext bytes at the server (of $(tg_server_conns web) connections)"
assert_events_valid
