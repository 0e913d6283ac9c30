#!/usr/bin/env bash
# SNMP polling, value for value: a real snmpd (v2c community and a v3 authPriv SHA/AES user)
# and snmpsimd serving the shipped recordings cisco_16_switch and recorded/linux-full-walk
# are polled by the agent; for every interface, every value the collector exports must equal
# snmpbulkwalk's value for the same OID (snmpd's live counters: between a walk before and a
# walk after the poll). The v2c and v3 views of snmpd must agree. A fifth device is the
# linux recording without its ifXTable (a 32-bit-only device): its packet totals must
# count non-unicast packets from ifIn/OutNUcastPkts, as ifXTable devices count them.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/snmp_lib.sh"
cw_init "$@"
cw_need_snmp_tools
COMPARE="$(dirname "${BASH_SOURCE[0]}")/snmp_compare.py"

cw_shipped_recordings "$WORK/sim-data"
# (its recorded ifIn/OutNUcastPkts are 0: eth0's become 4242 in and 1717 out, so they show)
grep -v '^1\.3\.6\.1\.2\.1\.31\.' "$WORK/sim-data/recorded/linux-full-walk.snmprec" |
  sed -e 's/^\(1\.3\.6\.1\.2\.1\.2\.2\.1\.12\.2\)|65|0$/\1|65|4242/' \
    -e 's/^\(1\.3\.6\.1\.2\.1\.2\.2\.1\.18\.2\)|65|0$/\1|65|1717/' \
    >"$WORK/sim-data/legacy-no-ifx.snmprec"
grep -q '^1\.3\.6\.1\.2\.1\.2\.2\.1\.12\.2|65|4242$' "$WORK/sim-data/legacy-no-ifx.snmprec" ||
  fail "the linux recording has no ifInNUcastPkts for ifIndex 2"
chmod a+r "$WORK/sim-data/legacy-no-ifx.snmprec"
SNMPD_PORT=$(cw_free_udp_port)
SIM_PORT=$(cw_free_udp_port)
cw_start_snmpd "$SNMPD_PORT"
cw_start_snmpsim "$SIM_PORT" "$WORK/sim-data"
cw_wait_snmp "$SIM_PORT" cisco_16_switch
cw_wait_snmp "$SIM_PORT" recorded/linux-full-walk
cw_wait_snmp "$SIM_PORT" legacy-no-ifx

walk() {  # walk COMMUNITY_OR_V3_ARGS... PORT -> ifTable + ifXTable
  local port=${*: -1}
  local args=("${@:1:$#-1}")
  snmpbulkwalk "${args[@]}" -On -OQ -Oe -Ot "127.0.0.1:$port" 1.3.6.1.2.1.2.2.1
  snmpbulkwalk "${args[@]}" -On -OQ -Oe -Ot "127.0.0.1:$port" 1.3.6.1.2.1.31.1.1.1
}
V3=(-v3 -l authPriv -u cwv3 -a SHA -A cw-auth-pass -x AES -X cw-priv-pass)
walk -v2c -c cwtest "$SNMPD_PORT" >"$WORK/walk-snmpd-before.txt"
walk "${V3[@]}" "$SNMPD_PORT" >"$WORK/walk-snmpd-v3-before.txt"

cw_certs "$WORK/pki" demo-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool" "
snmp:
  defaults:
    interval: 60s
    timeout: 1s
    retries: 2
  targets:
    - name: snmpd-v2c
      address: 127.0.0.1
      port: $SNMPD_PORT
      community: cwtest
    - name: snmpd-v3
      address: 127.0.0.1
      port: $SNMPD_PORT
      version: 3
      user: cwv3
      auth_protocol: SHA
      auth_password: cw-auth-pass
      priv_protocol: AES
      priv_password: cw-priv-pass
    - name: sim-cisco
      address: 127.0.0.1
      port: $SIM_PORT
      community: cisco_16_switch
      site: city-hall
    - name: sim-linux
      address: 127.0.0.1
      port: $SIM_PORT
      community: recorded/linux-full-walk
      max_repetitions: 3
    - name: sim-legacy
      address: 127.0.0.1
      port: $SIM_PORT
      community: legacy-no-ifx"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"

all_up() {
  [[ "$(cw_metric "$METRICS_PORT" citywatch_snmp_device_up)" == 5 ]]
}
cw_wait_until 300 "all five devices polled and up" all_up
walk -v2c -c cwtest "$SNMPD_PORT" >"$WORK/walk-snmpd-after.txt"
walk "${V3[@]}" "$SNMPD_PORT" >"$WORK/walk-snmpd-v3-after.txt"
cw_scrape "$METRICS_PORT" >"$WORK/metrics.txt"

walk -v2c -c cisco_16_switch "$SIM_PORT" >"$WORK/walk-cisco.txt"
walk -v2c -c recorded/linux-full-walk "$SIM_PORT" >"$WORK/walk-linux.txt"
walk -v2c -c legacy-no-ifx "$SIM_PORT" >"$WORK/walk-legacy.txt"
summary=""
for spec in "sim-cisco walk-cisco.txt" "sim-linux walk-linux.txt" "sim-legacy walk-legacy.txt"; do
  set -- $spec
  out=$(/usr/bin/python3 "$COMPARE" "$WORK/metrics.txt" "$1" "$WORK/$2") || fail "$out"
  summary+="; $out"
done
for spec in "snmpd-v2c walk-snmpd-before.txt walk-snmpd-after.txt" \
            "snmpd-v3 walk-snmpd-v3-before.txt walk-snmpd-v3-after.txt"; do
  set -- $spec
  out=$(/usr/bin/python3 "$COMPARE" "$WORK/metrics.txt" "$1" "$WORK/$2" --bracket "$WORK/$3") || fail "$out"
  summary+="; $out"
done

cisco_ifs=$(cw_sum citywatch_snmp_device_interfaces 'device="sim-cisco"' <"$WORK/metrics.txt")
cw_expect "interfaces of sim-cisco" "$cisco_ifs" 59
v2=$(cw_sum citywatch_snmp_device_interfaces 'device="snmpd-v2c"' <"$WORK/metrics.txt")
v3=$(cw_sum citywatch_snmp_device_interfaces 'device="snmpd-v3"' <"$WORK/metrics.txt")
cw_expect "snmpd interfaces, v3 vs v2c" "$v3" "$v2"
# The 32-bit-only device's packets include ifInNUcastPkts: more than its unicast alone.
legacy_in=$(cw_sum citywatch_interface_receive_packets_total 'device="sim-legacy"' <"$WORK/metrics.txt")
linux_in=$(cw_sum citywatch_interface_receive_packets_total 'device="sim-linux"' <"$WORK/metrics.txt")
ucast_in=$(awk -F' = ' '$1 ~ /^\.1\.3\.6\.1\.2\.1\.2\.2\.1\.11\./ { s += $2 } END { printf "%.0f", s }' "$WORK/walk-legacy.txt")
((legacy_in > ucast_in)) || fail "sim-legacy's packets ($legacy_in) do not include non-unicast (unicast alone: $ucast_in)"
cw_log "packets in: sim-linux (ifXTable) $linux_in, sim-legacy (ifTable + NUcast) $legacy_in, unicast alone $ucast_in"
grep -q 'citywatch_snmp_device_info{.*device="sim-cisco".*sys_name="Profiler3750"' "$WORK/metrics.txt" ||
  fail "sim-cisco's sysName is not Profiler3750"
# Secrets never leave the agent.
for secret in cw-auth-pass cw-priv-pass cwtest cisco_16_switch; do
  grep -q -- "$secret" "$WORK/metrics.txt" "$WORK/agent.log" && fail "secret '$secret' appears in metrics or logs"
done

echo "PASS: snmp_poll$summary"
