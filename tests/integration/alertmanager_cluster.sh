#!/usr/bin/env bash
# High availability end to end: three real Alertmanagers in one gossip cluster, two
# collectors each configured with all three, and one webhook receiver (webhook_receiver.py)
# that the test runs. Each collector gets its own agent replaying segment-a.pcap with the
# same agent id and segment, so both raise the same alerts with identical labels: every
# Alertmanager lists each alert once (the two collectors' copies merged), and the cluster's
# notification log lets exactly one Alertmanager notify each alert group, once.
#
# Synchronisation without sleeps: an Alertmanager queries its notification log once per group
# flush (DedupStage), after waiting its turn (peer position x --cluster.peer-timeout). When
# every Alertmanager's alertmanager_nflog_queries_total has reached the number of groups,
# every one of them has decided whether to notify; the webhook receiver has then received
# everything once its line count equals the notifications the three Alertmanagers counted.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
[[ -f "$SEGMENT_A" ]] || fail "segment-a.pcap not found at $SEGMENT_A (../shared/testdata is needed)"
for t in prometheus-alertmanager jq; do
  command -v "$t" >/dev/null || fail "$t not installed (scripts/install-deps.sh)"
done
[[ -x /usr/bin/python3 ]] || fail "/usr/bin/python3 not found"
T0=$SECONDS
# The alerts segment-a raises with the shipped rules (rules_segment_a.sh checks each).
EXPECTED="agent_disconnected dns_tunnel_long_labels port_scan_vertical ssh_password_guessing syn_flood"
PEER_TIMEOUT=5  # seconds an Alertmanager waits per peer position before its dedup check

# Six distinct loopback ports, free when chosen (the cluster ports for TCP and UDP both).
PORTS=()
while ((${#PORTS[@]} < 6)); do
  p=$(cw_free_port both)
  [[ " ${PORTS[*]} " == *" $p "* ]] || PORTS+=("$p")
done
AM_WEB=("${PORTS[@]:0:3}")
AM_CLUSTER=("${PORTS[@]:3:3}")

# The webhook receiver.
cw_spawn "$WORK/webhook.log" /usr/bin/python3 "$SRC_DIR/tests/integration/webhook_receiver.py" \
  "$WORK/webhook.jsonl" "$WORK/webhook.ready"
webhook_ready() { [[ -s "$WORK/webhook.ready" ]]; }
cw_wait_until 100 "the webhook receiver's ready file" webhook_ready
HOOK_PORT=$(jq -r .port "$WORK/webhook.ready")
[[ "$HOOK_PORT" =~ ^[1-9][0-9]*$ ]] || fail "bad webhook ready file: $(cat "$WORK/webhook.ready")"
: >"$WORK/webhook.jsonl"

# Three Alertmanagers, one cluster. One notification per group: a few seconds of group_wait,
# group_interval and repeat_interval far beyond the test.
cat >"$WORK/am.yml" <<EOF
route:
  receiver: webhook
  group_by: [alertname]
  group_wait: 3s
  group_interval: 10m
  repeat_interval: 12h
receivers:
  - name: webhook
    webhook_configs:
      - url: http://127.0.0.1:$HOOK_PORT/
        send_resolved: true
EOF
AM_PIDS=()
for i in 0 1 2; do
  peers=()
  for j in 0 1 2; do ((j == i)) || peers+=("--cluster.peer=127.0.0.1:${AM_CLUSTER[j]}"); done
  cw_spawn "$WORK/alertmanager-$i.log" prometheus-alertmanager --config.file="$WORK/am.yml" \
    --storage.path="$WORK/am-data-$i" --web.listen-address="127.0.0.1:${AM_WEB[i]}" \
    --web.external-url="http://127.0.0.1:${AM_WEB[i]}" \
    --cluster.listen-address="127.0.0.1:${AM_CLUSTER[i]}" "${peers[@]}" \
    --cluster.gossip-interval=100ms --cluster.pushpull-interval=2s \
    --cluster.settle-timeout=3s --cluster.peer-timeout="${PEER_TIMEOUT}s"
  AM_PIDS[i]=$CW_LAST_PID
done
am() { curl -sf --max-time 5 "http://127.0.0.1:${AM_WEB[$1]}$2"; }
# Ready, its gossip settled, and all three members known to it.
cluster_ready() {
  local i
  for i in 0 1 2; do
    kill -0 "${AM_PIDS[i]}" 2>/dev/null || fail "alertmanager $i exited: $(tail -n 5 "$WORK/alertmanager-$i.log")"
    am "$i" /api/v2/status | jq -e '.cluster.status == "ready" and (.cluster.peers | length) == 3' \
      >/dev/null || return 1
  done
}
cw_wait_until 300 "three alertmanagers ready in one cluster of 3" cluster_ready
cw_log "alertmanagers on 127.0.0.1:${AM_WEB[*]} (cluster ${AM_CLUSTER[*]}), webhook on 127.0.0.1:$HOOK_PORT, cluster formed after $((SECONDS - T0)) s"

# Two collectors, each with all three Alertmanagers, and one agent each, same id and segment.
cw_certs "$WORK/pki" seg-a-agent
URLS="http://127.0.0.1:${AM_WEB[0]}, http://127.0.0.1:${AM_WEB[1]}, http://127.0.0.1:${AM_WEB[2]}"
declare -A COL_METRICS AGENT_PIDS SENT
RECEIVED=()
for c in a b; do
  cw_collector_config "$WORK/collector-$c.yaml" "$WORK/pki" "$WORK/state-$c" "rules:
  files: [$SRC_DIR/rules]
alerts:
  jsonl: $WORK/alerts-$c.jsonl
  alertmanager:
    urls: [$URLS]"
  cw_start_collector "collector-$c" "$WORK/collector-$c.yaml"
  COL_METRICS[$c]=$METRICS_PORT
  cw_agent_config "$WORK/agent-$c.yaml" "$WORK/pki" seg-a-agent "$INGEST_PORT" "$WORK/spool-$c"
done
for c in a b; do
  cw_spawn "$WORK/agent-$c.log" "$AGENT_BIN" --config "$WORK/agent-$c.yaml" -r "$SEGMENT_A"
  AGENT_PIDS[$c]=$CW_LAST_PID
done
for c in a b; do
  cw_wait_exit "${AGENT_PIDS[$c]}" 600
  ((CW_EXIT == 0)) || fail "agent replaying into collector-$c exited with $CW_EXIT"
done

# Each collector raised the expected alerts; the last is agent_disconnected (session closed).
for c in a b; do
  disconnected() { [[ -f "$WORK/alerts-$1.jsonl" ]] && grep -q '"rule":"agent_disconnected"' "$WORK/alerts-$1.jsonl"; }
  cw_wait_until 300 "agent_disconnected in collector-$c's alert log" disconnected "$c"
  rules=$(jq -r 'select(.state=="firing") | .rule' "$WORK/alerts-$c.jsonl" | sort -u | xargs)
  cw_expect "collector-$c's firing rules" "$rules" "$EXPECTED"
done
# The same label sets from both collectors: what lets Alertmanager merge their copies.
label_sets() {
  jq -c 'select(.state=="firing") | .labels + {alertname: .rule, severity: .severity, source: "citywatch"}' \
    "$WORK/alerts-$1.jsonl" | jq -scS 'sort'
}
[[ "$(label_sets a)" == "$(label_sets b)" ]] ||
  fail "the two collectors' alerts differ in their labels: a: $(label_sets a) b: $(label_sets b)"

# Each collector delivered everything to all three: nothing queued, dropped or failed (every
# alert is queued for each Alertmanager, and leaves the queue only when that one took it).
for c in a b; do
  drained() {
    local text
    text=$(cw_scrape "${COL_METRICS[$1]}") || return 1
    [[ "$(cw_sum citywatch_alert_sink_queue_length 'sink="alertmanager"' <<<"$text")" == 0 &&
       "$(cw_sum citywatch_alert_sink_sent_total 'sink="alertmanager"' <<<"$text")" -ge 15 ]]
  }
  cw_wait_until 300 "collector-$c's alertmanager queues drained" drained "$c"
  text=$(cw_scrape "${COL_METRICS[$c]}")
  SENT[$c]=$(cw_sum citywatch_alert_sink_sent_total 'sink="alertmanager"' <<<"$text")
  cw_expect "collector-$c alertmanager sink failures" \
    "$(cw_sum citywatch_alert_sink_failures_total 'sink="alertmanager"' <<<"$text")" 0
  cw_expect "collector-$c alertmanager sink drops" \
    "$(cw_sum citywatch_alert_sink_dropped_total 'sink="alertmanager"' <<<"$text")" 0
done

# Every Alertmanager lists each alert once (two copies merged into one), active, and counted
# the firing alerts of both collectors.
for i in 0 1 2; do
  listed() {
    am "$1" /api/v2/alerts | jq -e --arg want "$EXPECTED" '
      [.[] | select(.status.state == "active" and .labels.source == "citywatch")] |
      (map(.labels.alertname) | sort | join(" ")) == $want' >/dev/null
  }
  cw_wait_until 300 "alertmanager $i lists the five alerts, each once" listed "$i"
  received=$(am "$i" /metrics | cw_sum alertmanager_alerts_received_total 'status="firing"')
  ((received >= 10)) ||
    fail "alertmanager $i received $received firing alerts, expected at least 10 (5 from each collector)"
  RECEIVED[i]=$received
done
# The three list the same label sets as the collectors logged.
for i in 0 1 2; do
  am_sets=$(am "$i" /api/v2/alerts | jq -cS '[.[] | .labels] | sort')
  [[ "$am_sets" == "$(label_sets a)" ]] ||
    fail "alertmanager $i lists other labels than the collectors sent: $am_sets vs $(label_sets a)"
done

# Every Alertmanager has flushed each group and made its dedup decision; then the receiver
# has everything the three sent.
GROUPS_N=$(am 0 /api/v2/alerts/groups | jq length)
cw_expect "alert groups" "$GROUPS_N" 5
all_decided() {
  local i q
  for i in 0 1 2; do
    q=$(am "$i" /metrics | cw_sum alertmanager_nflog_queries_total) || return 1
    ((q >= GROUPS_N)) || return 1
    DEDUP[i]=$q
  done
}
DEDUP=()
cw_wait_until $((10 * (3 * PEER_TIMEOUT + 20))) "each alertmanager's dedup decision for every group" all_decided
sent_by_ams() {
  local i total=0 n f
  for i in 0 1 2; do
    n=$(am "$i" /metrics | cw_sum alertmanager_notifications_total 'integration="webhook"') || return 1
    f=$(am "$i" /metrics | cw_sum alertmanager_notifications_failed_total 'integration="webhook"') || return 1
    total=$((total + n - f))
  done
  echo "$total"
}
received_all() {
  local s
  s=$(sent_by_ams) || return 1
  ((s > 0 && s == $(wc -l <"$WORK/webhook.jsonl")))
}
cw_wait_until 300 "the webhook receiver has every notification the alertmanagers sent" received_all

# One dedup check per group and Alertmanager: each flushed each group once.
for i in 0 1 2; do cw_expect "alertmanager $i notification log queries" "${DEDUP[i]}" "$GROUPS_N"; done

# Exactly one firing notification per group, for each of the five groups, and nothing else.
per_group=$(jq -sc 'group_by(.groupKey) | map({group: .[0].groupLabels.alertname,
  firing: map(select(.status == "firing")) | length, resolved: map(select(.status == "resolved")) | length,
  alerts: map(.alerts | length), from: map(.externalURL)})' "$WORK/webhook.jsonl")
cw_log "notifications per group: $per_group"
notifications=$(wc -l <"$WORK/webhook.jsonl")
groups_notified=$(jq 'length' <<<"$per_group")
cw_expect "groups notified" "$groups_notified" "$GROUPS_N"
bad=$(jq -c '.[] | select(.firing != 1 or .resolved != 0)' <<<"$per_group")
[[ -z "$bad" ]] || fail "groups not notified exactly once: $bad"
cw_expect "notifications received" "$notifications" "$GROUPS_N"
notified=$(jq -r '.groupLabels.alertname' "$WORK/webhook.jsonl" | sort | xargs)
cw_expect "alertnames notified" "$notified" "$EXPECTED"
# One alert per notification: the two collectors' copies are one alert.
per_notification=$(jq -r '.alerts | length' "$WORK/webhook.jsonl" | sort | uniq -c | awk '{printf "%s%s x %s", sep, $1, $2; sep=", "}')
multi=$(jq -c 'select((.alerts | length) != 1) | [.groupLabels.alertname, (.alerts | length)]' "$WORK/webhook.jsonl")
[[ -z "$multi" ]] || fail "notifications with other than one alert: $multi"
senders=$(jq -r '.externalURL' "$WORK/webhook.jsonl" | sort | uniq -c | awk '{printf "%s%s from %s", sep, $1, $2; sep=", "}')

# Stop the Alertmanagers one at a time (bounded): stopped all at once, as cw_cleanup would, the
# last one waits for its departed peers to acknowledge its leaving until it is killed.
for i in 0 1 2; do
  kill -TERM "${AM_PIDS[i]}" 2>/dev/null
  for ((k = 0; k < 50; k++)); do kill -0 "${AM_PIDS[i]}" 2>/dev/null || break; sleep "$CW_POLL"; done
done
echo "PASS: 3 clustered alertmanagers, 2 collectors: $GROUPS_N groups, $notifications notifications (1 firing per group; alerts per notification: $per_notification; $senders); each alertmanager lists the 5 alerts once and checked its notification log ${DEDUP[0]}/${DEDUP[1]}/${DEDUP[2]} times, received ${RECEIVED[0]}/${RECEIVED[1]}/${RECEIVED[2]} firing; collectors sent ${SENT[a]}/${SENT[b]} to alertmanagers, no failure; $((SECONDS - T0)) s"
