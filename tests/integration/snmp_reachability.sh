#!/usr/bin/env bash
# Reachability and reboot: an snmpsim device (32-bit counters only) is polled every 2 s
# (timeout 300ms, retries 2). It stops answering: it must be reported down, with cause
# timeout, and the agent's own timestamp of the change must come after the stop. It comes
# back rebooted (sysUpTime went backwards, counters restarted, the interface went down): it
# must be up again, the timestamp of that change between the restart and the moment the test
# saw it, one reboot event must be counted, the byte counter must equal the new raw value
# (no 2^32 spike from wrap arithmetic) and the interface's oper change must be counted.
# The detection latencies are printed as figures, never asserted (timings live in bench/).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/snmp_lib.sh"
cw_init "$@"
cw_need_snmp_tools

# rec DIR UPTIME_CS IN_OCTETS OPER: a one-interface device (snmprec: OID|tag|value).
rec() {
  mkdir -p "$1"
  cat >"$1/rebooter.snmprec" <<REC
1.3.6.1.2.1.1.1.0|4|CityWatch test switch
1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.8072.3.2.10
1.3.6.1.2.1.1.3.0|67|$2
1.3.6.1.2.1.1.5.0|4|rebooter
1.3.6.1.2.1.2.2.1.1.1|2|1
1.3.6.1.2.1.2.2.1.2.1|4|eth0
1.3.6.1.2.1.2.2.1.3.1|2|6
1.3.6.1.2.1.2.2.1.5.1|66|1000000000
1.3.6.1.2.1.2.2.1.7.1|2|1
1.3.6.1.2.1.2.2.1.8.1|2|$4
1.3.6.1.2.1.2.2.1.10.1|65|$3
1.3.6.1.2.1.2.2.1.11.1|65|5000
1.3.6.1.2.1.2.2.1.16.1|65|3000000
1.3.6.1.2.1.2.2.1.17.1|65|4000
REC
  chmod -R a+rX "$1"
}
rec "$WORK/before" 50000000 2000000000 1
rec "$WORK/after" 100 1000 2

SIM_PORT=$(cw_free_udp_port)
cw_start_snmpsim "$SIM_PORT" "$WORK/before" sim-before
cw_wait_snmp "$SIM_PORT" rebooter

cw_certs "$WORK/pki" demo-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool" "
snmp:
  targets:
    - name: rebooter
      address: 127.0.0.1
      port: $SIM_PORT
      community: rebooter
      interval: 2s
      timeout: 300ms
      retries: 2"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"

metric() { cw_metric "$METRICS_PORT" "$@"; }
# A timestamp sample as printed (cw_sum would round it to 6 significant digits).
stamp() { cw_scrape "$METRICS_PORT" | awk -v n="$1" '$1 == n "{segment=\"seg-test\",device=\"rebooter\"}" { print $2 }'; }
is_up() { [[ "$(metric citywatch_snmp_device_up 'device="rebooter"')" == 1 ]]; }
is_down() { [[ "$(metric citywatch_snmp_device_up 'device="rebooter"')" == 0 ]]; }
cw_wait_until 200 "rebooter up" is_up
cw_expect "bytes before the reboot" "$(metric citywatch_interface_receive_bytes_total 'device="rebooter"')" 2000000000

# It stops answering.
stopped=$(date +%s.%N)
cw_stop "$SIM_PID"
cw_wait_until 200 "rebooter reported down" is_down
down_at=$(stamp citywatch_snmp_device_last_change_timestamp_seconds)
down_after=$(awk -v a="$down_at" -v b="$stopped" 'BEGIN { printf "%.2f", a - b }')
awk -v a="$down_at" -v b="$stopped" 'BEGIN { exit !(a >= b) }' ||
  fail "the agent's down timestamp $down_at precedes the stop at $stopped"
cw_log "down reported ${down_after} s after the device stopped answering (figure, not asserted)"
grep -q "device 'rebooter' (127.0.0.1) down: timeout" "$WORK/agent.log" || fail "no down event with cause timeout in the agent log"

# It comes back, rebooted.
restarted=$(date +%s.%N)
cw_start_snmpsim "$SIM_PORT" "$WORK/after" sim-after
cw_wait_snmp "$SIM_PORT" rebooter
answering=$(date +%s.%N)
cw_wait_until 200 "rebooter up again" is_up
seen_up=$(date +%s.%N)
up_at=$(stamp citywatch_snmp_device_last_change_timestamp_seconds)
up_after=$(awk -v a="$up_at" -v b="$answering" 'BEGIN { printf "%.2f", a - b }')
awk -v a="$up_at" -v r="$restarted" -v s="$seen_up" 'BEGIN { exit !(a >= r && a <= s) }' ||
  fail "the agent's up timestamp $up_at is not between the restart ($restarted) and the test seeing it up ($seen_up)"
cw_log "up reported ${up_after} s after the device answered again (figure, not asserted)"

M=$(cw_scrape "$METRICS_PORT")
cw_expect "reboots" "$(cw_sum citywatch_snmp_device_reboots_total 'device="rebooter"' <<<"$M")" 1
cw_expect "bytes after the reboot (no spike)" "$(cw_sum citywatch_interface_receive_bytes_total 'device="rebooter"' <<<"$M")" 1000
cw_expect "oper status after" "$(cw_sum citywatch_interface_oper_status 'device="rebooter"' <<<"$M")" 2
cw_expect "oper changes" "$(cw_sum citywatch_interface_oper_changes_total 'device="rebooter"' <<<"$M")" 1
cw_expect "down transitions" "$(cw_sum citywatch_snmp_device_transitions_total 'device="rebooter"' 'state="down"' <<<"$M")" 1
echo "PASS: snmp_reachability: down ${down_after}s after it stopped, up ${up_after}s after it answered, 1 reboot, bytes 2000000000 -> 1000 (no spike), oper change counted"
