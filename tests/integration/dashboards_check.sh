#!/usr/bin/env bash
# Every query of every panel of every Grafana dashboard in dashboards/ returns data from a real
# Prometheus scraping a real collector and real agents fed real data (issue 12, acceptance 1):
#   - traffic: an agent replays segment-a.pcap, then the same capture shifted 10 minutes
#     later (editcap), so the first replay's alerts resolve and the top-talker windows roll;
#     the rule pack raises its real alerts (JSONL sink);
#   - exporters: Akvorado's captures of real routers (sampled IPFIX with options, interface
#     indexes) sent to a live agent's flow listener;
#   - SNMP: snmpd in a network namespace whose veth link is taken down during the test
#     (admin up, oper down); snmpsim serving the recorded cisco_16_switch walk and a switch
#     whose uplink counters grow at 88 % of its speed with errors and discards (snmpsim's
#     numeric variation); two more devices served by one snmpsim process (branch-ups, and
#     branch-cam behind it: uptime.dependencies names branch-ups as branch-cam's parent),
#     stopped during the test, after the link: branch-ups is the incident and branch-cam a
#     dependent of its outage (the root-cause panels); a linkDown trap;
#   - Prometheus (Debian's) scrapes both agents and the collector every second and evaluates
#     the shipped rule files (rules/prometheus/*.yml).
# The test takes about 5 minutes: utilisation is a 5-minute rate.
# Template variables are replaced as "All" would ($site, $segment, ... -> .*),
# $__rate_interval -> 1m, $__range -> 1h. A panel query's trailing "or vector(0)" (a zero
# instead of "no data" in a healthy network) is removed: the real series must be there
# (dashboard_queries.py, shared with dashboards_victoria.sh).
# An empty answer fails, naming dashboard, panel and query.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/snmp_lib.sh"
cw_init "$@"
cw_need_segment_a
cw_need_snmp_tools
((EUID == 0)) || { echo "SKIP: needs root to create a network namespace" >&2; exit 77; }
for tool in prometheus editcap ip jq; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not found" >&2; exit 77; }
done
AKV="$SRC_DIR/../shared/testdata/vendor/akvorado/netflow"
[[ -f "$AKV/samplingrate-template.pcap" ]] || fail "Akvorado captures not found under $AKV"

# ---- snmpd in a namespace, with a link to take down -------------------------------------------
NS=cwdash-$$ VH=cwdh$$ VN=cwdn$$ L0=cwl0$$ L1=cwl1$$
NET=10.$((200 + $$ % 50)).$(((($$ / 50) + 1) % 250)).
cw_at_exit 'ip netns del "$NS" 2>/dev/null; ip link del "$VH" 2>/dev/null'
ip netns add "$NS" || fail "ip netns add failed"
ip link add "$VH" type veth peer name "$VN" netns "$NS" || fail "veth pair"
ip addr add "${NET}1/30" dev "$VH" && ip link set "$VH" up
ip -n "$NS" link set lo up
ip -n "$NS" addr add "${NET}2/30" dev "$VN" && ip -n "$NS" link set "$VN" up
ip -n "$NS" link add "$L0" type veth peer name "$L1" || fail "inner veth pair"
ip -n "$NS" link set "$L0" alias "Uplink to Main Library"
ip -n "$NS" link set "$L0" up && ip -n "$NS" link set "$L1" up
mkdir -p "$WORK/snmpd-state"
cat >"$WORK/snmpd.conf" <<CONF
agentaddress udp:${NET}2:161
rocommunity cwtest ${NET}1
CONF
SNMP_PERSISTENT_DIR="$WORK/snmpd-state" MIBS="" cw_spawn "$WORK/snmpd.log" \
  ip netns exec "$NS" snmpd -f -Lo -C -c "$WORK/snmpd.conf" -p "$WORK/snmpd.pid"
snmpd_ready() { snmpget -v2c -c cwtest -r 0 -t 0.5 "${NET}2" 1.3.6.1.2.1.1.3.0 >/dev/null 2>&1; }
cw_wait_until 100 "snmpd answering in namespace $NS" snmpd_ready

# ---- snmpsim: a recorded switch, a hot switch, and two devices to stop --------------------------
# (snmp_lib.sh: the hot switch, branch-ups and branch-cam)
cw_dashboard_devices

# ---- collector: rule pack, JSONL alerts, uptime by site, outage history ---------------------
cw_dashboard_collector

# ---- the live agent: SNMP (and the namespace's snmpd), traps, flows, a capture on lo -----------
cw_dashboard_live_agent "
    - {name: core-router, address: ${NET}2, port: 161, community: cwtest, site: city-hall}" "
capture:
  - interface: lo
    filter: udp port 9
    promiscuous: false"
devices_up() { [[ "$(cw_metric "$METRICS_PORT" citywatch_snmp_device_up)" == 5 ]]; }
cw_wait_until 300 "all five devices polled and up" devices_up

# ---- Prometheus with the shipped rules, from now on --------------------------------------------
# Utilisation is a 5-minute rate (rules/prometheus/citywatch-noc.rules.yml): it reads true
# once Prometheus holds 5 minutes of samples, so Prometheus starts before anything else runs.
PROM_PORT=$(cw_free_tcp_port)
{
  echo "global: {scrape_interval: 1s, evaluation_interval: 1s}"
  echo "rule_files:"
  for f in "$SRC_DIR"/rules/prometheus/*.yml; do echo "  - $f"; done
  echo "scrape_configs:"
  echo "  - job_name: citywatch-collector"
  echo "    static_configs: [{targets: ['127.0.0.1:$METRICS_PORT']}]"
  echo "  - job_name: citywatch-agent"
  echo "    static_configs: [{targets: ['127.0.0.1:$LIVE_PORT']}]"
} >"$WORK/prometheus.yml"
cw_spawn "$WORK/prometheus.log" prometheus --config.file="$WORK/prometheus.yml" \
  --storage.tsdb.path="$WORK/tsdb" --web.listen-address="127.0.0.1:$PROM_PORT"
PROM=http://127.0.0.1:$PROM_PORT

# query PROMQL: the number of series in the result, or "error: ...".
query() {
  curl -sf --max-time 10 "$PROM/api/v1/query" --data-urlencode "query=$1" |
    jq -r 'if .status == "success" then (.data.result | length) else "error: " + .error end' 2>/dev/null
}
# value PROMQL: the first sample's value.
value() {
  curl -sf --max-time 10 "$PROM/api/v1/query" --data-urlencode "query=$1" | jq -r '.data.result[0].value[1] // empty'
}
scraped() { [[ "$(query 'count_over_time(up{job=~"citywatch-.*"}[1m]) >= 3')" == 2 ]]; }
cw_wait_until 300 "3 scrapes of both targets" scraped

# Real routers' exports, a linkDown trap, and segment-a replayed twice (snmp_lib.sh).
cw_dashboard_feed

# ---- during the test: a link goes down, then two devices stop -----------------------------------
ip -n "$NS" link set "$L1" down || fail "cannot take $L1 down"
link_down() {
  [[ "$(query "interface:citywatch_interface_admin_up_oper_down:bool{device=\"core-router\",ifname=\"$L0\"} == 1")" == 1 ]]
}
cw_wait_until 300 "Prometheus to see $L0 admin up, oper down" link_down
cw_stop "$SIM2_PID"
device_down() { [[ "$(query 'citywatch_snmp_device_up{device=~"branch-ups|branch-cam"} == 0')" == 2 ]]; }
cw_wait_until 300 "Prometheus to see branch-ups and branch-cam unreachable" device_down
# branch-cam went down with branch-ups, its parent (uptime.dependencies): a dependent, and
# branch-ups the incident it is attached to (the root-cause panels and recording rule).
dependent() {
  [[ "$(query 'citywatch_uptime_device_dependent{device="branch-cam"} == 1')" == 1 ]] &&
    [[ "$(query 'root:citywatch_uptime_incident_dependents:open{kind="device",root="branch-ups"} == 1')" == 1 ]]
}
cw_wait_until 300 "branch-cam recorded as a dependent of branch-ups' outage" dependent
# Recording rules with a 1-minute group interval (availability) have run at least once.
recorded() { [[ "$(query 'site:citywatch_uptime_availability:ratio_1d')" =~ ^[1-9] ]]; }
cw_wait_until 1500 "the availability recording rules' first evaluation" recorded
# hot-switch's uplink runs at 88 % of its speed: above 80 % once 5 minutes are in the window.
hot() { [[ "$(query 'interface:citywatch_interface_utilisation:ratio_rate5m{device="hot-switch"} > 0.8')" == 1 ]]; }
cw_wait_until 4000 "hot-switch's utilisation over 5 minutes to read above 80 %" hot

# ---- every query of every panel ------------------------------------------------------------------
/usr/bin/python3 "$SRC_DIR/tests/integration/dashboard_queries.py" "$SRC_DIR"/dashboards/*.json \
  >"$WORK/queries.tsv" || fail "reading the dashboards failed"
n=0
panels=0
declare -A seen
while IFS=$'\t' read -r uid pid title ref expr; do
  got=$(query "$expr")
  [[ "$got" =~ ^[1-9][0-9]*$ ]] ||
    fail "dashboard $uid, panel $pid '$title', query $ref returned ${got:-nothing}: $expr"
  n=$((n + 1))
  [[ -n "${seen[$uid/$pid]:-}" ]] || panels=$((panels + 1))
  seen[$uid/$pid]=1
done <"$WORK/queries.tsv"

# One figure per dashboard, for the record.
cw_log "noc: devices unreachable = $(value 'count(citywatch_snmp_device_up == 0)'), interfaces down = $(value 'sum(interface:citywatch_interface_admin_up_oper_down:bool)'), links above 80 % = $(value 'count(interface:citywatch_interface_utilisation:ratio_rate5m > 0.8)')"
cw_log "devices: hot-switch Gi0/1 utilisation in = $(value 'interface:citywatch_interface_receive_utilisation:ratio_rate5m{device="hot-switch",ifname="Gi0/1"}')"
cw_log "flows: top source (this minute) = $(curl -sf "$PROM/api/v1/query" --data-urlencode 'query=topk(1, citywatch_top_talker_bytes{window="current",direction="src"})' | jq -r '.data.result[0] | .metric.address + " " + .value[1]')"
cw_log "pipeline: agents connected = $(value 'sum(citywatch_collector_agents_connected)'), batches accepted = $(value 'sum(citywatch_collector_batches_received_total)')"
cw_log "security: alerts raised = $(value 'sum(citywatch_alerts_total{state="firing"})'), resolved = $(value 'sum(citywatch_alerts_total{state="resolved"})'), segments alerting = $(value 'count(count by (segment) (citywatch_alerts_total))')"
cw_log "uptime: open incidents = $(value 'count(root:citywatch_uptime_incident_dependents:open)'), dependents = $(value 'count(citywatch_uptime_device_dependent == 1 or citywatch_uptime_agent_dependent == 1)')"
cw_log "uptime: availability 24 h = $(value 'min(site:citywatch_uptime_availability:ratio_1d)'); outage this year $(value 'sum(citywatch_uptime_period_outage_seconds)') s against a target of $(value 'sum(citywatch_uptime_target_outage_seconds)') s (baseline 2025: $(value 'sum(citywatch_uptime_baseline_outage_seconds)') s)"
# The baseline comes from the seeded history: its outage time is not zero.
[[ "$(query 'sum(citywatch_uptime_baseline_outage_seconds) > 0')" == 1 ]] ||
  fail "citywatch_uptime_baseline_outage_seconds is zero: the seeded 2025 history was not counted"
# The top-K bound holds on real traffic: at most 10 ranks per segment, window and direction.
max_rank=$(value 'max(count by (segment, window, direction) (citywatch_top_talker_bytes))')
((max_rank <= 10)) || fail "more than 10 top talkers in one segment/window/direction: $max_rank"

dashboards=$(ls "$SRC_DIR"/dashboards/*.json | wc -l)
echo "PASS: $n queries of $panels panels in $dashboards dashboards each returned data from a real Prometheus (shipped recording rules) scraping the collector and a live agent"
