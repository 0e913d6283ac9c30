#!/usr/bin/env bash
# Acceptance 2 of the uptime issue, with real peers: an snmpsim device polled by the agent's
# SNMP poller every 2 s.
#  A) snmpsim stopped for a measured time and started again -> exactly one device outage in
#     the collector's outage store, whose duration matches the measured time within one
#     poll interval (+ the poll timeout: the failed poll is only known when it times out).
#  B) snmpsim stopped again, the collector restarted mid-outage -> the outage stays open
#     (one open row, same start) and, once snmpsim is back, ends as one whole outage.
#  C) the agent stopped for a measured time -> one segment outage (cause agent_lost) of that
#     length; the collector's own restart in B made none.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
command -v snmpsimd >/dev/null || { echo "SKIP: snmpsimd not found (snmpsim)" >&2; exit 77; }
command -v snmpget >/dev/null || { echo "SKIP: snmpget not found (snmp)" >&2; exit 77; }
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 not found" >&2; exit 77; }
INTERVAL=2 TIMEOUT_MS=500

SNMP_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# snmpsimd drops privileges to nobody: it must reach its data and cache directories.
chmod 755 "$WORK"
mkdir -p "$WORK/snmpdata"
mkdir -m 777 "$WORK/snmpcache"
cat >"$WORK/snmpdata/public.snmprec" <<'REC'
1.3.6.1.2.1.1.1.0|4|CityWatch test switch
1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.8072.3.2.10
1.3.6.1.2.1.1.3.0|67|123456
1.3.6.1.2.1.1.5.0|4|sim-switch
1.3.6.1.2.1.2.1.0|2|1
1.3.6.1.2.1.2.2.1.1.1|2|1
1.3.6.1.2.1.2.2.1.2.1|4|eth0
1.3.6.1.2.1.2.2.1.3.1|2|6
1.3.6.1.2.1.2.2.1.5.1|66|1000000000
1.3.6.1.2.1.2.2.1.7.1|2|1
1.3.6.1.2.1.2.2.1.8.1|2|1
1.3.6.1.2.1.2.2.1.10.1|65|1000
1.3.6.1.2.1.2.2.1.11.1|65|10
1.3.6.1.2.1.2.2.1.13.1|65|0
1.3.6.1.2.1.2.2.1.14.1|65|0
1.3.6.1.2.1.2.2.1.16.1|65|2000
1.3.6.1.2.1.2.2.1.17.1|65|20
1.3.6.1.2.1.2.2.1.19.1|65|0
1.3.6.1.2.1.2.2.1.20.1|65|0
1.3.6.1.2.1.31.1.1.1.1.1|4|eth0
REC
now() { date +%s.%N; }
start_snmpsim() {
  cw_spawn "$WORK/snmpsim-$1.log" snmpsimd --data-dir="$WORK/snmpdata" \
    --agent-udpv4-endpoint=127.0.0.1:$SNMP_PORT --cache-dir="$WORK/snmpcache" \
    --process-user=nobody --process-group=nogroup
  SIM_PID=$CW_LAST_PID
}
sim_answers() { snmpget -v2c -c public -t 0.2 -r 0 127.0.0.1:$SNMP_PORT 1.3.6.1.2.1.1.5.0 >/dev/null 2>&1; }
stop_snmpsim() {
  cw_stop "$SIM_PID"
  sim_answers && fail "snmpsim still answers after it was stopped"
}
device_up() { [[ "$(cw_metric "$METRICS_PORT" citywatch_uptime_device_up 'device="sim"')" == "$1" ]]; }
q() { sqlite3 "$WORK/state/uptime.sqlite" "$1"; }
# within A B TOL: |A - B| <= TOL
within() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'; }
TOL=$(awk -v i=$INTERVAL -v t=$TIMEOUT_MS 'BEGIN { print i + t / 1000 }')

cw_certs "$WORK/pki" uptime-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state" "uptime:
  min_outage: 1s
  agent_grace: 30s
  sites:
    - name: town-hall
      segments: [seg-test]"
cw_start_collector collector "$WORK/collector.yaml"
start_snmpsim 1
cw_wait_until 100 "snmpsim answering" sim_answers
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" uptime-agent "$INGEST_PORT" "$WORK/spool" "
batch:
  max_delay: 200ms
snmp:
  targets:
    - name: sim
      address: 127.0.0.1
      port: $SNMP_PORT
      version: 2c
      community: public
      interval: ${INTERVAL}s
      timeout: ${TIMEOUT_MS}ms
      retries: 0"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
AGENT=$CW_LAST_PID
cw_wait_until 300 "citywatch_uptime_device_up{device=\"sim\"} == 1" device_up 1

# ---- A: a measured outage ------------------------------------------------------------------
stop_snmpsim
T_STOP=$(now)
cw_wait_until 200 "device_up == 0 after snmpsim stopped" device_up 0
# Down for about 8 s more (bounded wait on the clock, not a synchronisation sleep).
for ((i = 0; i < 100; i++)); do within "$(now)" "$T_STOP" 8 || break; sleep 0.1; done
start_snmpsim 2
cw_wait_until 100 "snmpsim answering again" sim_answers
T_START=$(now)
cw_wait_until 200 "device_up == 1 after snmpsim restarted" device_up 1
MEASURED_A=$(awk -v a="$T_START" -v b="$T_STOP" 'BEGIN { printf "%.3f", a - b }')
rows=$(q "SELECT COUNT(*) FROM outage_view WHERE kind = 'device' AND device_name = 'sim'")
cw_expect "A: device outages in the store" "$rows" 1
read -r DUR_A CAUSE_A UNC_A < <(q "SELECT printf('%.3f', (end_ns - start_ns) / 1e9), cause, printf('%.3f', start_uncertainty_ns / 1e9) FROM outage_view WHERE kind = 'device' AND device_name = 'sim'" | tr '|' ' ')
within "$DUR_A" "$MEASURED_A" "$TOL" || fail "A: outage lasted $DUR_A s in the store, measured $MEASURED_A s (tolerance $TOL s)"
cw_expect "A: cause" "$CAUSE_A" snmp_timeout
cw_expect "A: citywatch_uptime_outages_total{kind=device}" \
  "$(cw_metric "$METRICS_PORT" citywatch_uptime_outages_total 'kind="device"' 'site="town-hall"')" 1

# ---- B: the collector restarts in the middle of an outage ------------------------------------
stop_snmpsim
T_STOP=$(now)
cw_wait_until 200 "device_up == 0 (B)" device_up 0
OPEN_START=$(q "SELECT start_ns FROM outage_view WHERE kind = 'device' AND end_ns IS NULL")
[[ -n "$OPEN_START" ]] || fail "B: no open outage before the collector restart"
cw_stop "$COL_PID"
cw_expect "B: collector exit code" "$CW_EXIT" 0
cw_collector_config "$WORK/collector2.yaml" "$WORK/pki" "$WORK/state" "uptime:
  min_outage: 1s
  agent_grace: 30s
  sites:
    - name: town-hall
      segments: [seg-test]"
sed -i "s#ingest: 127.0.0.1:0#ingest: 127.0.0.1:$INGEST_PORT#" "$WORK/collector2.yaml"
cw_start_collector collector-restarted "$WORK/collector2.yaml"
cw_expect "B: open device outages after the restart" \
  "$(q "SELECT COUNT(*) FROM outage_view WHERE kind = 'device' AND end_ns IS NULL")" 1
cw_expect "B: the open outage's start after the restart" \
  "$(q "SELECT start_ns FROM outage_view WHERE kind = 'device' AND end_ns IS NULL")" "$OPEN_START"
cw_wait_until 200 "device_up == 0 reported by the restarted collector" device_up 0
for ((i = 0; i < 100; i++)); do within "$(now)" "$T_STOP" 8 || break; sleep 0.1; done
start_snmpsim 3
cw_wait_until 100 "snmpsim answering (B)" sim_answers
T_START=$(now)
cw_wait_until 300 "device_up == 1 (B)" device_up 1
MEASURED_B=$(awk -v a="$T_START" -v b="$T_STOP" 'BEGIN { printf "%.3f", a - b }')
cw_expect "B: device outages in the store" \
  "$(q "SELECT COUNT(*) FROM outage_view WHERE kind = 'device'")" 2
DUR_B=$(q "SELECT printf('%.3f', (end_ns - start_ns) / 1e9) FROM outage_view WHERE kind = 'device' AND start_ns = $OPEN_START")
[[ -n "$DUR_B" ]] || fail "B: the outage open before the restart is gone"
within "$DUR_B" "$MEASURED_B" "$TOL" || fail "B: outage lasted $DUR_B s in the store, measured $MEASURED_B s"
cw_expect "B: segment outages caused by the collector's restart" \
  "$(q "SELECT COUNT(*) FROM outage_view WHERE kind = 'segment'")" 0

# ---- C: the agent is lost --------------------------------------------------------------------
agent_up() { [[ "$(cw_metric "$METRICS_PORT" citywatch_uptime_agent_up 'agent="uptime-agent"')" == "$1" ]]; }
cw_wait_until 100 "agent_up == 1" agent_up 1
cw_stop "$AGENT"
T_STOP=$(now)
cw_wait_until 100 "agent_up == 0" agent_up 0
for ((i = 0; i < 100; i++)); do within "$(now)" "$T_STOP" 5 || break; sleep 0.1; done
cw_spawn "$WORK/agent2.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
AGENT=$CW_LAST_PID
cw_wait_until 200 "agent_up == 1 again" agent_up 1
T_START=$(now)
MEASURED_C=$(awk -v a="$T_START" -v b="$T_STOP" 'BEGIN { printf "%.3f", a - b }')
read -r N_C DUR_C CAUSE_C < <(q "SELECT COUNT(*), printf('%.3f', (MAX(end_ns) - MAX(start_ns)) / 1e9), MAX(cause) FROM outage_view WHERE kind = 'segment'" | tr '|' ' ')
cw_expect "C: segment outages" "$N_C" 1
cw_expect "C: cause" "$CAUSE_C" agent_lost
# The session's end and start are seen by the collector itself: no poll-interval slack.
within "$DUR_C" "$MEASURED_C" 1 || fail "C: segment outage $DUR_C s, measured $MEASURED_C s"

echo "PASS: A) snmpsim down $MEASURED_A s -> one outage of $DUR_A s (cause $CAUSE_A, start uncertainty $UNC_A s; tolerance $TOL s); B) collector restarted mid-outage -> still one open outage with the same start, closed as one outage of $DUR_B s vs $MEASURED_B s measured, no segment outage; C) agent stopped $MEASURED_C s -> one agent_lost outage of $DUR_C s"
