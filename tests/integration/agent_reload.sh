#!/usr/bin/env bash
# SIGHUP reloads the agent, all-or-nothing, and never stops it (issue 11, item 1: SIGHUP used
# to kill the agent with exit 129). A live capture on lo with a BPF filter, a trap listener
# and no SNMP target at first. Then, each followed by SIGHUP:
#   1. a broken YAML file: refused with file:line, counted, the agent runs on unchanged;
#   2. a change of collectors: refused as needing a restart, naming the key;
#   3. a new filter, a snmpsim target and a new trap community: applied; packets matching
#      only the new filter are captured, the new device is polled, a trap with the new
#      community is accepted.
# The agent then stops on SIGTERM with exit 0, and was never restarted (same PID).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/snmp_lib.sh"
cw_init "$@"
cw_need_snmp_tools

P_OLD=$(cw_free_udp_port)
P_NEW=$(cw_free_udp_port)
TRAP_PORT=$(cw_free_udp_port)
SIM_PORT=$(cw_free_udp_port)
cw_shipped_recordings "$WORK/sim"
cw_start_snmpsim "$SIM_PORT" "$WORK/sim"
cw_certs "$WORK/pki" demo-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"

write_config() { # FILTER TRAP_COMMUNITY [SNMP_TARGETS_YAML] [COLLECTOR_PORT]
  cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "${4:-$INGEST_PORT}" "$WORK/spool" "
capture:
  - interface: lo
    filter: udp port $1
    promiscuous: false
snmp:
  traps:
    listen: 127.0.0.1:$TRAP_PORT
    communities: [$2]
${3:-}
metrics:
  listen: 127.0.0.1:0"
}
write_config "$P_OLD" cw-old
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
AGENT_PID=$CW_LAST_PID
listening() { grep -q "receiving traps and informs on 127.0.0.1:$TRAP_PORT" "$WORK/agent.log"; }
cw_wait_until 100 "the agent's trap listener" listening
AGENT_METRICS=$(sed -n 's|.*metrics at http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$WORK/agent.log")
[[ -n $AGENT_METRICS ]] || fail "the agent logged no metrics endpoint"
am() { cw_metric "$AGENT_METRICS" "$@"; }
send_udp() { # PORT COUNT
  local i
  for ((i = 0; i < $2; i++)); do echo "cw-reload-$i" >"/dev/udp/127.0.0.1/$1"; done
}
hup_and_wait() { # EXPECTED_OK EXPECTED_REJECTED
  WANT_OK=$1 WANT_REJECTED=$2
  kill -HUP "$AGENT_PID" || fail "the agent is gone before SIGHUP"
  reloaded() {
    [[ "$(am citywatch_agent_config_reloads_total 'result="ok"')" == "$WANT_OK" &&
      "$(am citywatch_agent_config_reloads_total 'result="rejected"')" == "$WANT_REJECTED" ]]
  }
  cw_wait_until 100 "reload counters ok=$1 rejected=$2" reloaded
  kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent died on SIGHUP"
}

# The old filter captures its port only.
send_udp "$P_OLD" 20
decoded() { [[ "$(am citywatch_agent_packets_decoded_total)" -ge 20 ]]; }
cw_wait_until 100 "20 packets through the first filter" decoded
send_udp "$P_NEW" 20

# 1. A broken file: refused with file and line.
cp "$WORK/agent.yaml" "$WORK/agent.good"
printf 'capture:\n  - interface: lo\n    filter: [unclosed\n' >"$WORK/agent.yaml"
hup_and_wait 0 1
grep -q "reload refused.*agent.yaml:[0-9]" "$WORK/agent.log" || fail "no file:line in the refusal: $(tail -3 "$WORK/agent.log")"
cw_expect "last reload successful after a broken file" "$(am citywatch_agent_config_last_reload_successful)" 0

# 2. A change that needs a restart: refused, naming the key; the running config stays.
write_config "$P_OLD" cw-old "" 1
hup_and_wait 0 2
grep -q "reload refused.*changing collectors needs a restart" "$WORK/agent.log" ||
  fail "the refusal does not name 'collectors': $(tail -3 "$WORK/agent.log")"

# 3. New filter, a new SNMP target and a new trap community: applied.
before=$(am citywatch_agent_packets_decoded_total)
cw_expect "packets for the new port captured before the reload" "$before" 20
write_config "$P_NEW" cw-new "  targets:
    - name: sim-switch
      address: 127.0.0.1
      port: $SIM_PORT
      community: cisco_16_switch
      interval: 1s
      timeout: 200ms
      retries: 1"
cw_wait_snmp "$SIM_PORT" cisco_16_switch
hup_and_wait 1 2
cw_expect "last reload successful" "$(am citywatch_agent_config_last_reload_successful)" 1
send_udp "$P_OLD" 20
send_udp "$P_NEW" 30
new_filter() { [[ "$(am citywatch_agent_packets_decoded_total)" -ge $((before + 30)) ]]; }
cw_wait_until 100 "30 packets through the new filter" new_filter
polled() { [[ "$(am citywatch_agent_snmp_polls_total 'result="ok"')" -ge 1 ]]; }
cw_wait_until 100 "a poll of the target added by the reload" polled
snmptrap -v2c -c cw-new "127.0.0.1:$TRAP_PORT" '' 1.3.6.1.6.3.1.1.5.3 1.3.6.1.2.1.2.2.1.1.4 i 4 ||
  fail "snmptrap failed"
snmptrap -v2c -c cw-old "127.0.0.1:$TRAP_PORT" '' 1.3.6.1.6.3.1.1.5.3 1.3.6.1.2.1.2.2.1.1.5 i 5 ||
  fail "snmptrap failed"
traps() {
  [[ "$(am citywatch_agent_snmp_traps_total 'result="accepted"')" == 1 &&
    "$(am citywatch_agent_snmp_traps_total 'result="bad_community"')" == 1 ]]
}
cw_wait_until 100 "the new community accepted and the old one refused" traps
after=$(am citywatch_agent_packets_decoded_total)
cw_expect "packets after the reload: only the new port's 30" "$((after - before))" 30

cw_stop "$AGENT_PID"
cw_expect "agent exit code after SIGTERM" "$CW_EXIT" 0
echo "PASS: agent_reload: broken file and restart-only change refused (agent kept running), new filter, SNMP target and trap community applied by SIGHUP"
