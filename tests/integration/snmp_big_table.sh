#!/usr/bin/env bash
# A device that claims far more interfaces than the agent keeps cannot make one poll endless.
# An snmpsim device answers with 3,000 interfaces (every GETBULK moves forward, so the order
# check never ends the walk); the agent keeps max_interfaces: 16 at max_repetitions: 10.
#   - each poll takes at most 4 requests (the system GET and, per column, values 1-10 and
#     11-20: the 17th value ends it), not the ~300 a walk to the end would take;
#   - what was left out is counted (citywatch_agent_snmp_rows_dropped_total);
#   - the device is up and its 16 lowest interfaces reach the collector.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/snmp_lib.sh"
cw_init "$@"
cw_need_snmp_tools

N=3000
mkdir -p "$WORK/sim"
/usr/bin/python3 - "$WORK/sim/bigtable.snmprec" "$N" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
recs = [((1, 3, 6, 1, 2, 1, 1, 1, 0), "4", "CityWatch big table device"),
        ((1, 3, 6, 1, 2, 1, 1, 2, 0), "6", "1.3.6.1.4.1.8072.3.2.10"),
        ((1, 3, 6, 1, 2, 1, 1, 3, 0), "67", "123456"),
        ((1, 3, 6, 1, 2, 1, 1, 5, 0), "4", "bigtable"),
        ((1, 3, 6, 1, 2, 1, 2, 1, 0), "2", str(n))]
for i in range(1, n + 1):
    for col, tag, val in ((1, "2", i), (2, "4", "port%d" % i), (3, "2", 6), (5, "66", 1000000000),
                          (7, "2", 1), (8, "2", 1), (10, "65", 1000 * i), (16, "65", 2000 * i)):
        recs.append(((1, 3, 6, 1, 2, 1, 2, 2, 1, col, i), tag, str(val)))
    recs.append(((1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1, i), "4", "port%d" % i))
recs.sort()
with open(path, "w") as f:
    for oid, tag, val in recs:
        f.write("%s|%s|%s\n" % (".".join(map(str, oid)), tag, val))
PY
chmod -R a+rX "$WORK/sim"
SIM_PORT=$(cw_free_udp_port)
cw_start_snmpsim "$SIM_PORT" "$WORK/sim" sim
cw_wait_snmp "$SIM_PORT" bigtable

cw_certs "$WORK/pki" demo-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool" "
metrics:
  listen: 127.0.0.1:0
snmp:
  targets:
    - {name: bigtable, address: 127.0.0.1, port: $SIM_PORT, community: bigtable, interval: 3s,
       timeout: 1s, retries: 1, max_interfaces: 16, max_repetitions: 10}"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
cw_agent_metrics "$WORK/agent.log"
am() { cw_metric "$AGENT_METRICS" "$@"; }

three_polls() { (($(am citywatch_agent_snmp_polls_total 'result="ok"') >= 3)); }
cw_wait_until 300 "three polls of bigtable" three_polls
polls=$(am citywatch_agent_snmp_polls_total)
failed=$(am citywatch_agent_snmp_polls_total 'result="failed"')
requests=$(am citywatch_agent_snmp_requests_total)
dropped=$(am citywatch_agent_snmp_rows_dropped_total)
in_flight=$(am citywatch_agent_snmp_requests_in_flight)
cw_log "after $polls polls ($failed failed): $requests requests ($in_flight in flight), $dropped rows dropped"
cw_expect "failed polls" "$failed" 0
# Requests of finished polls, plus those of the poll under way (at most 4 each).
((requests <= 4 * (polls + 1))) ||
  fail "$requests requests for $polls polls: the walk of a $N-interface table was not bounded by max_interfaces"
((dropped >= polls)) || fail "rows past max_interfaces not counted: $dropped for $polls polls"
sixteen() {
  [[ "$(cw_metric "$METRICS_PORT" citywatch_snmp_device_interfaces 'device="bigtable"')" == 16 ]] &&
    [[ "$(cw_metric "$METRICS_PORT" citywatch_interface_up 'device="bigtable"')" == 16 ]]
}
cw_wait_until 300 "16 interfaces of bigtable at the collector, all up" sixteen
curl -sf --max-time 10 "http://127.0.0.1:$METRICS_PORT/metrics" >"$WORK/metrics.txt" ||
  fail "cannot scrape the collector"
grep -q '^citywatch_interface_up{.*ifname="port16"' "$WORK/metrics.txt" ||
  fail "interface port16 (the 16th lowest) not at the collector"
echo "PASS: snmp_big_table: a $N-interface device polled at max_interfaces 16: $requests requests for $polls polls, $dropped rows counted as dropped, 16 interfaces exported"
