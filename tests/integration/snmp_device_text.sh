#!/usr/bin/env bash
# A device's own text cannot break the collector's /metrics. Prometheus refuses a whole scrape
# with one label value that is not UTF-8; an snmpsim device whose sysName is Latin-1
# ("B\xFCro"), whose ifName is cut in the middle of a UTF-8 character and whose ifAlias holds
# 0xFF, CR and LF is polled into a real collector. Its /metrics must pass `promtool check
# metrics` (Prometheus's own parser), with each bad byte shown as U+FFFD and the control
# characters gone, in the SNMP series and in the uptime tracker's interface series.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/snmp_lib.sh"
cw_init "$@"
cw_need_snmp_tools
command -v promtool >/dev/null || fail "promtool not found (scripts/install-deps.sh installs prometheus)"

# snmprec: OID|tag|value, tag 4x an OCTET STRING in hex.
mkdir -p "$WORK/sim"
cw_one_port_snmprec "$WORK/sim/oddtext.snmprec" "CityWatch odd text device" unused \
  '1.3.6.1.2.1.1.5.0|4x|42fc726f' \
  '1.3.6.1.2.1.31.1.1.1.1.1|4x|4b656c6c6572c3' \
  '1.3.6.1.2.1.31.1.1.1.18.1|4x|55706c696e6bff0d0a3d636d64'
chmod -R a+rX "$WORK/sim"
SIM_PORT=$(cw_free_udp_port)
cw_start_snmpsim "$SIM_PORT" "$WORK/sim" sim
cw_wait_snmp "$SIM_PORT" oddtext

cw_certs "$WORK/pki" demo-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool" "
snmp:
  targets:
    - {name: oddtext, address: 127.0.0.1, port: $SIM_PORT, community: oddtext, interval: 2s, timeout: 500ms, retries: 1}"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"

polled() {
  [[ "$(cw_metric "$METRICS_PORT" citywatch_snmp_device_up 'device="oddtext"')" == 1 ]] &&
    (($(cw_metric "$METRICS_PORT" citywatch_uptime_interface_up 'device="oddtext"') == 1))
}
cw_wait_until 300 "oddtext polled, its interface tracked" polled
curl -sf --max-time 10 "http://127.0.0.1:$METRICS_PORT/metrics" >"$WORK/metrics.txt" ||
  fail "cannot scrape the collector"
promtool check metrics <"$WORK/metrics.txt" >"$WORK/promtool.log" 2>&1
grep -q "text format parsing error\|invalid label value" "$WORK/promtool.log" &&
  fail "Prometheus would refuse the collector's scrape: $(grep -m1 'parsing error\|invalid' "$WORK/promtool.log")"
R=$'\xEF\xBF\xBD'  # U+FFFD
want() {  # want DESCRIPTION FIXED-STRING: the scrape holds it
  grep -qF -- "$2" "$WORK/metrics.txt" || fail "$1: '$2' not in the collector's /metrics"
}
want "sysName, Latin-1" "sys_name=\"B${R}ro\""
want "ifName cut inside a character" "ifname=\"Keller${R}\""
want "ifAlias with 0xFF, CR, LF" "ifalias=\"Uplink${R}=cmd\""
want "the uptime tracker's interface" "interface=\"Keller${R}\""
echo "PASS: snmp_device_text: a Latin-1 sysName, a cut UTF-8 ifName and an ifAlias with 0xFF/CR/LF polled; promtool accepts the collector's /metrics, bad bytes shown as U+FFFD"
