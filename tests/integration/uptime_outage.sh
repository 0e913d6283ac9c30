#!/usr/bin/env bash
# Acceptance 2 of the uptime issue, with real peers: an snmpsim device polled by the agent's
# SNMP poller every 2 s.
#  A) snmpsim stopped and started again -> exactly one device outage in the collector's
#     outage store, placed by the daemons' own timestamps where it must be: it starts after
#     the test began stopping snmpsim, its start minus its start uncertainty (the last good
#     poll) is before snmpsim was gone, and it ends after snmpsim was started again and
#     before the test saw the device up. Orderings, not durations: no wall-clock tolerance
#     decides the test (the measured and stored durations are printed as figures).
#  B) snmpsim stopped again, the collector restarted mid-outage -> the outage stays open
#     (one open row, same start) and, once snmpsim is back, ends as one whole outage,
#     ordered the same way.
#  C) the agent stopped -> one segment outage (cause agent_lost) starting between the stop
#     and the test seeing the agent lost, ending between the restart and the test seeing it
#     back; the collector's own restart in B made none.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/snmp_lib.sh"
cw_init "$@"
command -v snmpsimd >/dev/null || { echo "SKIP: snmpsimd not found (snmpsim)" >&2; exit 77; }
command -v snmpget >/dev/null || { echo "SKIP: snmpget not found (snmp)" >&2; exit 77; }
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 not found" >&2; exit 77; }
INTERVAL=2 TIMEOUT_MS=500

SNMP_PORT=$(cw_free_port udp)
# snmpsimd drops privileges to nobody: it must reach its data and cache directories.
chmod 755 "$WORK"
mkdir -p "$WORK/snmpdata"
mkdir -m 777 "$WORK/snmpcache"
cw_one_port_snmprec "$WORK/snmpdata/public.snmprec" "CityWatch test switch" sim-switch
now() { date +%s.%N; }
ns() { date +%s%N; }
# order WHAT A B: A <= B (nanoseconds), else fail naming both.
order() { awk -v a="$2" -v b="$3" 'BEGIN { exit !(a <= b) }' || fail "$1: $2 > $3"; }
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
# within A B TOL: |A - B| <= TOL (to hold an outage open for a while; never an assertion)
within() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'; }

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
A_STOPPING=$(ns)
stop_snmpsim
A_GONE=$(ns)
T_STOP=$(now)
cw_wait_until 200 "device_up == 0 after snmpsim stopped" device_up 0
# Down for about 8 s more (bounded wait on the clock, not a synchronisation sleep).
for ((i = 0; i < 100; i++)); do within "$(now)" "$T_STOP" 8 || break; sleep 0.1; done
A_STARTING=$(ns)
start_snmpsim 2
cw_wait_until 100 "snmpsim answering again" sim_answers
T_START=$(now)
cw_wait_until 200 "device_up == 1 after snmpsim restarted" device_up 1
A_SEEN_UP=$(ns)
MEASURED_A=$(awk -v a="$T_START" -v b="$T_STOP" 'BEGIN { printf "%.3f", a - b }')
rows=$(q "SELECT COUNT(*) FROM outage_view WHERE kind = 'device' AND device_name = 'sim'")
cw_expect "A: device outages in the store" "$rows" 1
read -r DUR_A CAUSE_A UNC_A < <(q "SELECT printf('%.3f', (end_ns - start_ns) / 1e9), cause, printf('%.3f', start_uncertainty_ns / 1e9) FROM outage_view WHERE kind = 'device' AND device_name = 'sim'" | tr '|' ' ')
read -r S_A E_A U_A < <(q "SELECT start_ns, end_ns, start_uncertainty_ns FROM outage_view WHERE kind = 'device' AND device_name = 'sim'" | tr '|' ' ')
order "A: the outage starts after snmpsim was being stopped" "$A_STOPPING" "$S_A"
order "A: its last good poll (start - uncertainty) is before snmpsim was gone" "$((S_A - U_A))" "$A_GONE"
order "A: it ends after snmpsim was started again" "$A_STARTING" "$E_A"
order "A: it ends before the test saw the device up" "$E_A" "$A_SEEN_UP"
cw_expect "A: cause" "$CAUSE_A" snmp_timeout
cw_expect "A: citywatch_uptime_outages_total{kind=device}" \
  "$(cw_metric "$METRICS_PORT" citywatch_uptime_outages_total 'kind="device"' 'site="town-hall"')" 1

# ---- B: the collector restarts in the middle of an outage ------------------------------------
B_STOPPING=$(ns)
stop_snmpsim
B_GONE=$(ns)
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
B_STARTING=$(ns)
start_snmpsim 3
cw_wait_until 100 "snmpsim answering (B)" sim_answers
T_START=$(now)
cw_wait_until 300 "device_up == 1 (B)" device_up 1
B_SEEN_UP=$(ns)
MEASURED_B=$(awk -v a="$T_START" -v b="$T_STOP" 'BEGIN { printf "%.3f", a - b }')
cw_expect "B: device outages in the store" \
  "$(q "SELECT COUNT(*) FROM outage_view WHERE kind = 'device'")" 2
DUR_B=$(q "SELECT printf('%.3f', (end_ns - start_ns) / 1e9) FROM outage_view WHERE kind = 'device' AND start_ns = $OPEN_START")
[[ -n "$DUR_B" ]] || fail "B: the outage open before the restart is gone"
read -r E_B U_B < <(q "SELECT end_ns, start_uncertainty_ns FROM outage_view WHERE kind = 'device' AND start_ns = $OPEN_START" | tr '|' ' ')
order "B: the outage starts after snmpsim was being stopped" "$B_STOPPING" "$OPEN_START"
order "B: its last good poll is before snmpsim was gone" "$((OPEN_START - U_B))" "$B_GONE"
order "B: it ends after snmpsim was started again" "$B_STARTING" "$E_B"
order "B: it ends before the test saw the device up" "$E_B" "$B_SEEN_UP"
cw_expect "B: segment outages caused by the collector's restart" \
  "$(q "SELECT COUNT(*) FROM outage_view WHERE kind = 'segment'")" 0

# ---- C: the agent is lost --------------------------------------------------------------------
agent_up() { [[ "$(cw_metric "$METRICS_PORT" citywatch_uptime_agent_up 'agent="uptime-agent"')" == "$1" ]]; }
cw_wait_until 100 "agent_up == 1" agent_up 1
C_STOPPING=$(ns)
cw_stop "$AGENT"
T_STOP=$(now)
cw_wait_until 100 "agent_up == 0" agent_up 0
C_SEEN_DOWN=$(ns)
for ((i = 0; i < 100; i++)); do within "$(now)" "$T_STOP" 5 || break; sleep 0.1; done
C_STARTING=$(ns)
cw_spawn "$WORK/agent2.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
AGENT=$CW_LAST_PID
cw_wait_until 200 "agent_up == 1 again" agent_up 1
C_SEEN_UP=$(ns)
T_START=$(now)
MEASURED_C=$(awk -v a="$T_START" -v b="$T_STOP" 'BEGIN { printf "%.3f", a - b }')
read -r N_C DUR_C CAUSE_C < <(q "SELECT COUNT(*), printf('%.3f', (MAX(end_ns) - MAX(start_ns)) / 1e9), MAX(cause) FROM outage_view WHERE kind = 'segment'" | tr '|' ' ')
cw_expect "C: segment outages" "$N_C" 1
cw_expect "C: cause" "$CAUSE_C" agent_lost
# The session's end and start are seen by the collector itself.
read -r S_C E_C < <(q "SELECT start_ns, end_ns FROM outage_view WHERE kind = 'segment'" | tr '|' ' ')
order "C: the outage starts after the agent was being stopped" "$C_STOPPING" "$S_C"
order "C: it starts before the test saw the agent lost" "$S_C" "$C_SEEN_DOWN"
order "C: it ends after the agent was started again" "$C_STARTING" "$E_C"
order "C: it ends before the test saw the agent back" "$E_C" "$C_SEEN_UP"

echo "PASS: A) snmpsim down $MEASURED_A s -> one outage of $DUR_A s, ordered within the stop and the restart (cause $CAUSE_A, start uncertainty $UNC_A s); B) collector restarted mid-outage -> still one open outage with the same start, closed as one outage of $DUR_B s vs $MEASURED_B s measured, no segment outage; C) agent stopped $MEASURED_C s -> one agent_lost outage of $DUR_C s"
