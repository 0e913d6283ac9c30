#!/usr/bin/env bash
# Side by side with prometheus-snmp-exporter (issue 5, acceptance 4): snmpsimd serves the
# static cisco_16_switch recording; the agent (through the collector) and snmp_exporter (with
# the numeric-OID if_mib module written below) poll it. For every interface, every counter,
# status, speed and name must be equal (joined on ifIndex).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/snmp_lib.sh"
cw_init "$@"
cw_need_snmp_tools
command -v prometheus-snmp-exporter >/dev/null ||
  { echo "SKIP: prometheus-snmp-exporter not found (apt-get install prometheus-snmp-exporter)" >&2; exit 77; }
COMPARE="$(dirname "${BASH_SOURCE[0]}")/snmp_exporter_compare.py"

cw_shipped_recordings "$WORK/sim-data"
SIM_PORT=$(cw_free_udp_port)
cw_start_snmpsim "$SIM_PORT" "$WORK/sim-data"
cw_wait_snmp "$SIM_PORT" cisco_16_switch

cw_snmp_exporter_module "$WORK/snmp.yml" cisco_16_switch
cw_start_snmp_exporter "$WORK/snmp.yml"

cw_certs "$WORK/pki" demo-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool" "
snmp:
  targets:
    - name: sim-cisco
      address: 127.0.0.1
      port: $SIM_PORT
      community: cisco_16_switch
      interval: 60s
      timeout: 5s
      retries: 1"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
polled() {
  [[ "$(cw_metric "$METRICS_PORT" citywatch_snmp_device_up 'device="sim-cisco"')" == 1 ]]
}
cw_wait_until 300 "sim-cisco polled by the agent and up" polled
cw_scrape "$METRICS_PORT" >"$WORK/collector.txt"

curl -sf --max-time 30 -o "$WORK/exporter.txt" \
  "http://127.0.0.1:$EXPORTER_PORT/snmp?module=if_mib&target=127.0.0.1:$SIM_PORT" ||
  fail "snmp_exporter's /snmp scrape of 127.0.0.1:$SIM_PORT failed"
grep -q '^snmp_scrape_pdus_returned' "$WORK/exporter.txt" || fail "snmp_exporter's answer has no scrape summary"

out=$(/usr/bin/python3 "$COMPARE" "$WORK/collector.txt" sim-cisco "$WORK/exporter.txt") || fail "$out"
cw_expect "interfaces of sim-cisco" \
  "$(cw_sum citywatch_snmp_device_interfaces 'device="sim-cisco"' <"$WORK/collector.txt")" 59
echo "PASS: snmp_exporter_compare; $out"
