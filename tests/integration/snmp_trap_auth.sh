#!/usr/bin/env bash
# SNMPv3 notifications are believed only when they prove who sent them (issue 11, item 2).
# Two configured users: cwpriv (SHA + AES, so authPriv) and cwauth (SHA only, authNoPriv),
# both for engine $ENGINE. Real snmptrap sends seven traps; two are genuine. The forgeries:
# noAuthNoPriv and authNoPriv as the authPriv user (too low a level), the authNoPriv user
# with a wrong password (bad digest), an unknown user, and the right user and passwords from
# another engine. Only the two genuine traps may reach the collector, and the agent counts
# each refusal by its reason. 200 datagrams net-snmp drops by itself (a PDU type that is no
# notification) are counted as malformed, and its line for each is logged at most 20 times
# a minute. Every line the agent writes under journald (net-snmp's own messages included)
# carries a priority prefix.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/snmp_lib.sh"
cw_init "$@"
cw_need_snmp_tools

TRAP_PORT=$(cw_free_udp_port)
ENGINE=0x8000000001020304aabbcc
OTHER_ENGINE=0x80000000010203040000ff
cw_certs "$WORK/pki" demo-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool" "
snmp:
  traps:
    listen: 127.0.0.1:$TRAP_PORT
    communities: [cw-traps]
    users:
      - user: cwpriv
        engine_id: '$ENGINE'
        auth_protocol: SHA
        auth_password: cw-priv-auth
        priv_protocol: AES
        priv_password: cw-priv-priv
      - user: cwauth
        engine_id: '$ENGINE'
        auth_protocol: SHA
        auth_password: cw-auth-auth
metrics:
  listen: 127.0.0.1:0"
JOURNAL_STREAM=8:1 cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
AGENT_PID=$CW_LAST_PID
listening() { grep -q "receiving traps and informs on 127.0.0.1:$TRAP_PORT" "$WORK/agent.log"; }
cw_wait_until 100 "the agent's trap listener" listening
AGENT_METRICS=$(sed -n 's|.*metrics at http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$WORK/agent.log")
[[ -n $AGENT_METRICS ]] || fail "the agent logged no metrics endpoint"

IF=1.3.6.1.2.1.2.2.1
LINKDOWN=1.3.6.1.6.3.1.1.5.3
trap3() { # ifindex, then snmptrap's v3 options
  local ifindex=$1
  shift
  snmptrap -v3 "$@" "127.0.0.1:$TRAP_PORT" '' $LINKDOWN $IF.1.$ifindex i "$ifindex" ||
    fail "snmptrap failed: $*"
}
# The forgeries: ifIndex 11..15. None may reach the collector.
trap3 11 -e "$ENGINE" -u cwpriv -l noAuthNoPriv
trap3 12 -e "$ENGINE" -u cwpriv -l authNoPriv -a SHA -A cw-priv-auth
trap3 13 -e "$ENGINE" -u cwauth -l authNoPriv -a SHA -A not-the-password
trap3 14 -e "$ENGINE" -u intruder -l noAuthNoPriv
trap3 15 -e "$OTHER_ENGINE" -u cwpriv -l authPriv -a SHA -A cw-priv-auth -x AES -X cw-priv-priv
# The genuine ones: ifIndex 1 (authPriv) and 2 (authNoPriv).
trap3 1 -e "$ENGINE" -u cwpriv -l authPriv -a SHA -A cw-priv-auth -x AES -X cw-priv-priv
trap3 2 -e "$ENGINE" -u cwauth -l authNoPriv -a SHA -A cw-auth-auth

m() { cw_metric "$AGENT_METRICS" citywatch_agent_snmp_traps_total "result=\"$1\""; }
all_counted() {
  [[ "$(m accepted)" == 2 && "$(m security_level_too_low)" == 2 && "$(m bad_auth)" == 1 &&
    "$(m unknown_user)" == 1 && "$(m wrong_engine)" == 1 ]]
}
for _ in $(seq 100); do all_counted && break; sleep "$CW_POLL"; done  # bounded; checked below
for r in accepted security_level_too_low bad_auth unknown_user wrong_engine malformed; do
  echo "agent: citywatch_agent_snmp_traps_total{result=\"$r\"} = $(m "$r")"
done
cw_expect "genuine traps accepted" "$(m accepted)" 2
cw_expect "noAuthNoPriv / authNoPriv as the authPriv user refused as too low a level" \
  "$(m security_level_too_low)" 2
cw_expect "wrong auth password refused as bad_auth" "$(m bad_auth)" 1
cw_expect "unknown user refused" "$(m unknown_user)" 1
cw_expect "right user from another engine refused as wrong_engine" "$(m wrong_engine)" 1

two_in() { [[ "$(cw_metric "$METRICS_PORT" citywatch_snmp_traps_total)" == 2 ]]; }
cw_wait_until 100 "the two genuine traps at the collector" two_in
M=$(cw_scrape "$METRICS_PORT")
cw_expect "genuine authPriv trap (ifIndex 1)" "$(cw_sum citywatch_snmp_traps_total 'ifindex="1"' <<<"$M")" 1
cw_expect "genuine authNoPriv trap (ifIndex 2)" "$(cw_sum citywatch_snmp_traps_total 'ifindex="2"' <<<"$M")" 1
for i in 11 12 13 14 15; do
  cw_expect "forged trap ifIndex $i at the collector" \
    "$(cw_sum citywatch_snmp_traps_total "ifindex=\"$i\"" <<<"$M")" 0
done
grep -q -- "cw-priv-auth\|cw-priv-priv\|cw-auth-auth\|not-the-password" "$WORK/agent.log" &&
  fail "a trap secret appears in the agent's log"
# 200 datagrams net-snmp refuses before the agent sees a PDU (a PDU type that is no
# notification): each counted as malformed, and net-snmp's line for each logged at most 20
# times a minute (anyone can send them to the trap port).
malformed_before=$(m malformed)
/usr/bin/python3 - "$TRAP_PORT" <<'PY'
import socket, sys
comm = b"cw-traps"
body = b"\x02\x01\x01\x02\x01\x00\x02\x01\x00\x30\x00"  # request ID, error, index, no varbinds
pdu = bytes([0xA9, len(body)]) + body
inner = b"\x02\x01\x01\x04" + bytes([len(comm)]) + comm + pdu
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(200):
    s.sendto(b"\x30" + bytes([len(inner)]) + inner, ("127.0.0.1", int(sys.argv[1])))
PY
bad_pdus() { [[ "$(m malformed)" == $((malformed_before + 200)) ]]; }
cw_wait_until 100 "the 200 bad PDUs counted as malformed" bad_pdus
lines=$(grep -c 'net-snmp: Bad PDU type' "$WORK/agent.log" || true)
echo "net-snmp lines for 200 bad PDUs: $lines"
((lines <= 20)) || fail "net-snmp logged $lines lines for 200 bad datagrams (at most 20 a minute)"
((lines > 0)) || fail "net-snmp's refusals were not logged at all"
# Under journald every line has a priority prefix, net-snmp's own messages too.
bad=$(grep -v '^<[0-7]>' "$WORK/agent.log" | head -3 || true)
[[ -z $bad ]] || fail "agent log lines without a priority prefix: $bad"
echo "PASS: snmp_trap_auth: 2 genuine v3 traps accepted; 5 forgeries refused (2 level, 1 bad auth, 1 unknown user, 1 wrong engine); 200 bad PDUs counted, $lines net-snmp lines logged"
