#!/usr/bin/env bash
# The dashboards answer the same from VictoriaMetrics as from Prometheus (docs/scaling.md,
# "Prometheus HA pair and long-term storage"). A real Prometheus (Debian's 2.42) scrapes a real
# collector and a live agent every second, evaluates the shipped rules (rules/prometheus/)
# every second and remote_writes everything, recording rules included, to a real
# VictoriaMetrics (Debian's victoria-metrics 1.79) the test starts on a loopback port with its
# own -storageDataPath. Prometheus runs as replica "a" of the documented HA pair:
# external_labels {replica: a}, dropped again by write_relabel_configs, so that both replicas
# would write the same series; the test needs the label gone (exact label sets below).
#
# Data, a shorter dashboards_check.sh (no network namespace, no 5-minute wait):
#   - an agent replays segment-a.pcap, then the same capture 10 minutes later (editcap): the
#     rule pack's alerts fire and resolve, the top-talker windows roll;
#   - a live agent: SNMP polls of snmpsim (a recorded Cisco switch; a switch whose uplink
#     counters grow, with errors and discards, and a second port admin up / oper down; two
#     devices, one behind the other, stopped during the test), a linkDown trap, Akvorado's
#     captures of real routers' exports sent to its flow listener;
#   - two years of generated outage history in the collector's store (the target baseline).
#
# Once Prometheus holds 70 s of scrapes and the 1-minute availability rules have run, the test
# picks an instant T, waits until VictoriaMetrics has everything up to T, and
# compare_engines.py evaluates every query of every panel (dashboard_queries.py, substituted
# as dashboards_check does) at T on both /api/v1/query. It prints one line per query (series
# on each side, largest relative difference, verdict) and fails on any difference it cannot
# explain:
#   - identical: same label sets, values within 1e-9 relative (+ VictoriaMetrics' storage
#     precision, 12 significant digits, on the largest input: `time() - timestamp` differs by
#     microseconds);
#   - documented MetricsQL differences, each accepted only where it applies: a NaN result
#     (0/0) is dropped by VictoriaMetrics; avg_over_time() keeps __name__; topk() may pick other
#     series among ties at the k-th value;
#   - rate() and increase(): defined differently by the two engines (Prometheus extrapolates
#     the samples inside [T-w, T] to the window's edges; VictoriaMetrics does not, starts from
#     the last sample before the window, and counts a counter born inside the window from 0).
#     No tolerance would be honest there, so every rate/increase/avg_over_time term is checked
#     on its own: its raw samples are identical on both, and each engine's value, series by
#     series, equals that engine's definition (re-implemented in compare_engines.py from the
#     2.42 and 1.79 sources) applied to them. A query may then differ only where its terms do.
# The template variables' label_values() must list the same values on both (label values and
# series APIs). At least 80 % of the queries must return data on Prometheus ("or vector(0)"
# removed).
# The shared captures are required: without ../shared/testdata the test fails, it does not skip.
# About 90 s.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/snmp_lib.sh"
cw_init "$@"
[[ -f "$SEGMENT_A" ]] || fail "segment-a.pcap not found at $SEGMENT_A (../shared/testdata is needed next to the source tree)"
AKV="$SRC_DIR/../shared/testdata/vendor/akvorado/netflow"
[[ -f "$AKV/samplingrate-template.pcap" ]] || fail "Akvorado captures not found under $AKV (../shared/testdata)"
cw_need_snmp_tools
for tool in prometheus editcap jq; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not found" >&2; exit 77; }
done
command -v victoria-metrics >/dev/null ||
  { echo "SKIP: victoria-metrics not found (scripts/install-deps.sh installs Debian's victoria-metrics)" >&2; exit 77; }
T0=$(date +%s)

# ---- VictoriaMetrics: a private single-node instance ---------------------------------------
# -search.latencyOffset=0s: an instant query at a recent time is not moved 30 s back (the
# default hides the last 30 s, which may be incomplete while samples arrive). The queries
# name their time and run only once everything up to it has arrived. -search.disableCache:
# no result cached while samples still arrive.
VM_PORT=$(cw_free_tcp_port)
cw_spawn "$WORK/victoria-metrics.log" victoria-metrics -httpListenAddr="127.0.0.1:$VM_PORT" \
  -storageDataPath="$WORK/vm-data" -retentionPeriod=1 -search.latencyOffset=0s \
  -search.disableCache -loggerLevel=WARN
VM_PID=$CW_LAST_PID
VM=http://127.0.0.1:$VM_PORT
vm_ready() { [[ "$(curl -sf --max-time 2 "$VM/health")" == OK ]]; }
cw_wait_until 300 "VictoriaMetrics answering on $VM/health" vm_ready
VM_VERSION=$(dpkg-query -W -f='${Version}' victoria-metrics 2>/dev/null || echo unknown)
cw_log "VictoriaMetrics $VM_VERSION pid $VM_PID on $VM"

# ---- snmpsim: a recorded switch, a hot switch, and two devices to stop ----------------------
# (snmp_lib.sh: the hot switch with a pulled-cable port, branch-ups and branch-cam)
cw_dashboard_devices spare

# ---- collector: rule pack, JSONL alerts, uptime by site, outage history --------------------
cw_dashboard_collector

# ---- the live agent: SNMP, traps, flow listener, its own /metrics -------------------------
cw_dashboard_live_agent

# ---- Prometheus: replica "a" of the documented HA pair, remote_write to VictoriaMetrics ------
# Scrapes and rule evaluations every second; remote_write batches sent within 1 s.
PROM_PORT=$(cw_free_tcp_port)
{
  echo "global:"
  echo "  scrape_interval: 1s"
  echo "  evaluation_interval: 1s"
  echo "  external_labels: {replica: a}"
  echo "rule_files:"
  for f in "$SRC_DIR"/rules/prometheus/*.yml; do echo "  - $f"; done
  echo "scrape_configs:"
  echo "  - job_name: citywatch-collector"
  echo "    static_configs: [{targets: ['127.0.0.1:$METRICS_PORT']}]"
  echo "  - job_name: citywatch-agent"
  echo "    static_configs: [{targets: ['127.0.0.1:$LIVE_PORT']}]"
  echo "remote_write:"
  echo "  - url: $VM/api/v1/write"
  echo "    write_relabel_configs:"
  echo "      - {action: labeldrop, regex: replica}"
  echo "    queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}"
} >"$WORK/prometheus.yml"
promtool check config "$WORK/prometheus.yml" >"$WORK/promtool.log" 2>&1 ||
  fail "promtool rejects the Prometheus configuration: $(cat "$WORK/promtool.log")"
cw_spawn "$WORK/prometheus.log" prometheus --config.file="$WORK/prometheus.yml" \
  --storage.tsdb.path="$WORK/tsdb" --web.listen-address="127.0.0.1:$PROM_PORT"
PROM=http://127.0.0.1:$PROM_PORT

# query URL PROMQL: the number of series in the result (now), or "error: ...".
query() {
  curl -sf --max-time 10 "$1/api/v1/query" --data-urlencode "query=$2" |
    jq -r 'if .status == "success" then (.data.result | length) else "error: " + .error end' 2>/dev/null
}
# value URL PROMQL: the first sample's value.
value() {
  curl -sf --max-time 10 "$1/api/v1/query" --data-urlencode "query=$2" | jq -r '.data.result[0].value[1] // empty'
}
devices_up() { [[ "$(query "$PROM" 'sum(citywatch_snmp_device_up)')" == 1 && "$(value "$PROM" 'sum(citywatch_snmp_device_up)')" == 4 ]]; }
cw_wait_until 600 "Prometheus to see all four devices polled and up" devices_up

# Real routers' exports, a linkDown trap, and segment-a replayed twice (snmp_lib.sh).
cw_dashboard_feed

# ---- two devices stop, one behind the other -------------------------------------------------
cw_stop "$SIM2_PID"
device_down() { [[ "$(query "$PROM" 'citywatch_snmp_device_up{device=~"branch-ups|branch-cam"} == 0')" == 2 ]]; }
cw_wait_until 300 "Prometheus to see branch-ups and branch-cam unreachable" device_down
dependent() {
  [[ "$(query "$PROM" 'citywatch_uptime_device_dependent{device="branch-cam"} == 1')" == 1 ]] &&
    [[ "$(query "$PROM" 'root:citywatch_uptime_incident_dependents:open{kind="device",root="branch-ups"} == 1')" == 1 ]]
}
cw_wait_until 300 "branch-cam recorded as a dependent of branch-ups' outage" dependent
# The availability recording rules (a 1-minute group) have run at least once.
recorded() { [[ "$(query "$PROM" 'site:citywatch_uptime_availability:ratio_1d')" =~ ^[1-9] ]]; }
cw_wait_until 900 "the availability recording rules' first evaluation" recorded
# The replaying agent's segment is dark (the agent exited, agent_grace 2 s).
agent_down() { [[ "$(query "$PROM" 'citywatch_uptime_agent_up == 0')" =~ ^[1-9] ]]; }
cw_wait_until 300 "the replaying agent's segment to be seen dark" agent_down
# 70 s of scrapes: the 1-minute windows ($__rate_interval) are full and have a sample before
# them, so VictoriaMetrics' rate() takes its usual path (from the sample before the window), as
# on a Prometheus that has run for a while; the 1-hour and 24-hour windows hold series born
# inside them.
full_minute() { [[ "$(value "$PROM" 'count_over_time(up{job="citywatch-collector"}[5m])')" -ge 70 ]] 2>/dev/null; }
cw_wait_until 1200 "70 s of scrapes in Prometheus" full_minute

# ---- the instant T, and VictoriaMetrics holding everything up to T -------------------------
T=$(date +%s.%3N)
# Prometheus's remote_write has sent samples taken 3 s after T. It reads its WAL in order and
# sends each shard's batch within batch_send_deadline (1 s), so every sample up to T has been
# sent (the gauge, in whole seconds, moves once a batch has been answered). The queue is never
# empty while scrapes go on every second: "nothing pending" is no condition to wait for.
sent() {
  local m
  m=$(curl -sf --max-time 5 "$PROM/metrics") || return 1
  awk -v t="$T" '
    /^prometheus_remote_storage_queue_highest_sent_timestamp_seconds/ { sent = $2 }
    END { exit !(sent > t + 3) }' <<<"$m"
}
cw_wait_until 300 "Prometheus's remote_write to send past T=$T" sent
# VictoriaMetrics answers at T with as many series as Prometheus, and with the collector's last
# scrape before T (ingested rows become searchable about a second after they arrive).
at_t() {  # URL PROMQL: the first value at T
  curl -sf --max-time 10 "$1/api/v1/query" --data-urlencode "query=$2" --data-urlencode "time=$T" \
    --data-urlencode nocache=1 | jq -r '.data.result[0].value[1] // empty'
}
caught_up() {
  local q p v
  for q in 'count({__name__=~".+"})' 'timestamp(up{job="citywatch-collector"})' 'timestamp(up{job="citywatch-agent"})'; do
    p=$(at_t "$PROM" "$q")
    v=$(at_t "$VM" "$q")
    [[ -n "$p" && -n "$v" ]] && awk -v p="$p" -v v="$v" 'BEGIN { exit !(p - v < 0.0005 && v - p < 0.0005) }' || return 1
  done
}
cw_wait_until 300 "VictoriaMetrics to answer at T like Prometheus (series count, last scrapes)" caught_up
cw_log "T=$T: Prometheus and VictoriaMetrics hold $(at_t "$PROM" 'count({__name__=~".+"})') series at T"

# ---- every query of every panel, on both, at T ---------------------------------------------
/usr/bin/python3 "$SRC_DIR/tests/integration/dashboard_queries.py" "$SRC_DIR"/dashboards/*.json \
  >"$WORK/queries.tsv" || fail "reading the dashboards failed"
/usr/bin/python3 "$SRC_DIR/tests/integration/dashboard_queries.py" --variables "$SRC_DIR"/dashboards/*.json \
  >"$WORK/variables.tsv" || fail "reading the dashboards' template variables failed"
/usr/bin/python3 "$SRC_DIR/tests/integration/compare_engines.py" --prometheus "$PROM" \
  --victoria "$VM" --time "$T" --min-data 0.8 --variables "$WORK/variables.tsv" \
  "$WORK/queries.tsv" >"$WORK/compare.txt" 2>&1
rc=$?
cat "$WORK/compare.txt" >&2
((rc == 0)) || fail "the dashboards' queries differ between Prometheus and VictoriaMetrics (table above)"

PROM_VERSION=$(prometheus --version 2>&1 | awk 'NR == 1 { print $3 }')
echo "PASS: dashboards_victoria: Prometheus $PROM_VERSION and VictoriaMetrics $VM_VERSION (fed by its remote_write, HA-pair config) at T=$T: $(grep -m1 '^[0-9]* queries:' "$WORK/compare.txt") $(grep -m1 '^[0-9]* template variables:' "$WORK/compare.txt"); $(($(date +%s) - T0)) s"
