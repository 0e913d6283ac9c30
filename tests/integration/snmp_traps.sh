#!/usr/bin/env bash
# SNMP notifications: snmptrap sends linkDown (v2c trap), linkUp (v3 authPriv trap, SHA-512 /
# AES-256) and a v2c inform to the agent's listener; each must reach the collector as an
# event with the sender as device and the right ifIndex. A trap with a wrong community is
# dropped.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/snmp_lib.sh"
cw_init "$@"
cw_need_snmp_tools

TRAP_PORT=$(cw_free_udp_port)
ENGINE=0x8000000001020304aabbcc
cw_certs "$WORK/pki" demo-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool" "
snmp:
  traps:
    listen: 127.0.0.1:$TRAP_PORT
    communities: [cw-traps]
    users:
      - user: cwtrapper
        engine_id: '$ENGINE'
        auth_protocol: SHA-512
        auth_password: cw-trap-auth
        priv_protocol: AES-256
        priv_password: cw-trap-priv
metrics:
  listen: 127.0.0.1:0"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
AGENT_PID=$CW_LAST_PID
listening() { grep -q "receiving traps and informs on 127.0.0.1:$TRAP_PORT" "$WORK/agent.log"; }
cw_wait_until 100 "the agent's trap listener" listening

# RFC 3418 snmpTraps: linkDown = .3, linkUp = .4; IF-MIB ifIndex/ifAdminStatus/ifOperStatus.
IF=1.3.6.1.2.1.2.2.1
snmptrap -v2c -c cw-traps "127.0.0.1:$TRAP_PORT" '' 1.3.6.1.6.3.1.1.5.3 \
  $IF.1.3 i 3 $IF.7.3 i 1 $IF.8.3 i 2 || fail "snmptrap v2c failed"
snmptrap -v3 -e "$ENGINE" -u cwtrapper -l authPriv -a SHA-512 -A cw-trap-auth -x AES-256 \
  -X cw-trap-priv "127.0.0.1:$TRAP_PORT" '' 1.3.6.1.6.3.1.1.5.4 \
  $IF.1.2 i 2 $IF.7.2 i 1 $IF.8.2 i 1 || fail "snmptrap v3 failed"
snmpinform -v2c -c cw-traps -r 2 -t 2 "127.0.0.1:$TRAP_PORT" '' 1.3.6.1.6.3.1.1.5.3 \
  $IF.1.7 i 7 || fail "snmpinform was not acknowledged"
snmptrap -v2c -c wrong-community "127.0.0.1:$TRAP_PORT" '' 1.3.6.1.6.3.1.1.5.3 $IF.1.9 i 9

traps_in() { [[ "$(cw_metric "$METRICS_PORT" citywatch_snmp_traps_total)" == 3 ]]; }
cw_wait_until 100 "three notifications at the collector" traps_in
M=$(cw_scrape "$METRICS_PORT")
down=$(cw_sum citywatch_snmp_traps_total 'device="127.0.0.1"' 'trap="linkDown"' 'ifindex="3"' <<<"$M")
up=$(cw_sum citywatch_snmp_traps_total 'device="127.0.0.1"' 'trap="linkUp"' 'ifindex="2"' <<<"$M")
inform=$(cw_sum citywatch_snmp_traps_total 'device="127.0.0.1"' 'trap="linkDown"' 'ifindex="7"' <<<"$M")
wrong=$(cw_sum citywatch_snmp_traps_total 'ifindex="9"' <<<"$M")
cw_expect "linkDown (v2c) from 127.0.0.1 ifIndex 3" "$down" 1
cw_expect "linkUp (v3) from 127.0.0.1 ifIndex 2" "$up" 1
cw_expect "inform (v2c) from 127.0.0.1 ifIndex 7" "$inform" 1
cw_expect "trap with a wrong community" "$wrong" 0
grep -q -- "cw-trap-auth\|cw-trap-priv" "$WORK/agent.log" && fail "a trap secret appears in the agent's log"
# The agent accounts for every notification it received, the dropped one included.
AGENT_METRICS=$(sed -n 's|.*metrics at http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$WORK/agent.log")
[[ -n $AGENT_METRICS ]] || fail "the agent logged no metrics endpoint"
agent_counted() {
  [[ "$(cw_metric "$AGENT_METRICS" citywatch_agent_snmp_traps_total 'result="bad_community"')" == 1 &&
    "$(cw_metric "$AGENT_METRICS" citywatch_agent_snmp_traps_total 'result="accepted"')" == 3 &&
    "$(cw_metric "$AGENT_METRICS" citywatch_agent_snmp_informs_total)" == 1 ]]
}
cw_wait_until 50 "the agent's trap counters (3 accepted, 1 bad community, 1 inform)" agent_counted
echo "PASS: snmp_traps: linkDown v2c ifIndex 3, linkUp v3 (SHA-512/AES-256) ifIndex 2, inform acknowledged, wrong community dropped and counted at the agent"
