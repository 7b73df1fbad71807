#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The App Insights queue at its bound (events.application_insights.queue_max,
# docs/operations.md "Bounded resources"): with the endpoint stalled, the
# sender thread waits on one request and the queue fills; events that do not
# fit are counted as lost (status lost.queue_full, an `agent` loss event, the
# Prometheus counter), the event file still gets every one, and the agent does
# not spin reporting the loss of its own loss reports. After the endpoint
# recovers, every event is accounted for exactly: accepted by the stand-in or
# counted as lost, none twice.
set -euo pipefail
# shellcheck source=tests/integration/lib.sh disable=SC2119
. "$(dirname "$0")/lib.sh"
# shellcheck source=tests/integration/ai_lib.sh disable=SC2119
. "$(dirname "$0")/ai_lib.sh"
trap tg_cleanup EXIT
tg_setup

QUEUE_MAX=3
VIOLATIONS=8

ai_start_standin
ai_script '[{"hold": true}]'	# the first request (the start event) stalls until released
ai_write_policy "$TG_TMP/policy.yaml" "flood_window: 0" "metrics_interval: 0" \
	"queue_max: $QUEUE_MAX" "timeout: 30s"
metrics_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'metrics:\n  listen: "127.0.0.1:%s"\n' "$metrics_port" >>"$TG_TMP/policy.yaml"
tg_start_agent audit "$TG_TMP/policy.yaml"
ai_wait_stat held 1 10	# the sender thread is stuck in its first request

ai_violations "$VIOLATIONS"
assert_event_count "$TG_EVENTS" "e.get('type') == 'plaintext'" "$VIOLATIONS" \
	"plaintext events in the file while the queue is full (complete)"
# the losses are reported as `agent` loss events (the agent thread drains them)
expect_event "$TG_EVENTS" "e.get('type') == 'agent' and e.get('action') == 'loss' and \
'events.application_insights.queue_max' in (e.get('message') or '')" 10 "queue_full loss event" >/dev/null

st=$(ai_sink_status)
lost=$(json_get "$st" lost.queue_full)
# the queue holds QUEUE_MAX of the VIOLATIONS (and of the loss events): the rest is lost
assert_cmp "$lost" -ge $((VIOLATIONS - QUEUE_MAX)) "lost.queue_full with the endpoint stalled"
# queued = the queue (at most queue_max) + the batch being sent (the start event)
assert_cmp "$(json_get "$st" queued)" -le $((QUEUE_MAX + 1)) "queued with the endpoint stalled"

# A loss event that does not fit in the full queue is counted, but it does not
# raise another loss event by itself: the file stops growing while nothing happens.
n1=$(count_events "$TG_EVENTS" "True")
sleep 1.5
n2=$(count_events "$TG_EVENTS" "True")
assert_eq "$n1" "$n2" "events in the file while the stalled agent is idle (no loss-event loop)"
reported=$(ai_lost_reported)
lost=$(json_get "$(ai_sink_status)" lost.queue_full)
assert_cmp "$reported" -ge 1 "items reported lost by agent loss events"
assert_cmp "$reported" -le "$lost" "items reported lost by agent loss events (at most lost.queue_full)"

# Prometheus: the same count as status
m=$(curl -sS --max-time 5 "http://127.0.0.1:$metrics_port/metrics") ||
	tg_fail "cannot scrape metrics on 127.0.0.1:$metrics_port"
prom=$(sed -n 's/^tlsguard_sink_lost_total{sink="appinsights",reason="queue_full"} \([0-9]*\)$/\1/p' <<<"$m")
assert_eq "$lost" "$prom" 'tlsguard_sink_lost_total{reason="queue_full"} = status lost.queue_full'

# Recovery: the held request is answered, the queue drains. Then, exactly:
# accepted by the stand-in + spooled + queued + lost = events in the file.
ai_ctl /release -X POST >/dev/null
for ((i = 0; i < 100; i++)); do
	st=$(ai_sink_status)
	events=$(count_events "$TG_EVENTS" "True")
	accepted=$(ai_stat accepted)
	if [[ $(json_get "$st" queued) == 0 && $(json_get "$st" spooled) == 0 &&
		$(json_get "$st" state) == ok && $((accepted + $(json_get "$st" failed))) -eq $events ]]; then
		break
	fi
	sleep 0.1
done
tg_log "drained: $(ai_ctl /stats)"
tg_log "sink: $st"
lost=$(json_get "$st" lost.queue_full)
assert_eq "$lost" "$(json_get "$st" failed)" "every loss is a queue_full loss"
assert_field "$st" queued 0
assert_field "$st" spooled 0
assert_field "$st" sent "$accepted"
assert_eq "$events" $((accepted + lost)) "events in the file = accepted by the stand-in + spooled (0) + lost"
assert_cmp "$lost" -ge $((VIOLATIONS - QUEUE_MAX)) "lost.queue_full after recovery"
# every loss is reported once the agent had room to say so
for ((i = 0; i < 50; i++)); do
	[[ $(ai_lost_reported) -eq $lost ]] && break
	sleep 0.1
done
assert_eq "$lost" "$(ai_lost_reported)" "items reported lost by agent loss events"
tg_stop_agent
ai_assert_no_invalid
# the stop event too: which events were lost is exact, not just how many
ai_assert_exactly_once "$lost"
assert_events_valid
