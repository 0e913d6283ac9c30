#!/usr/bin/env bash
# Flood thresholds by network (issue 13, acceptance 4, flood part), through the real agent and
# collector: a capture made here with scapy carries a 10,000 packets/s UDP stream for one
# second at 10.20.0.5 (the PLC network, whose group allows 1,000 pps) and the same at
# 10.30.0.5 (the web servers, whose group allows 50,000 pps). One alert, for the PLC, with
# the group and its threshold; none for the web server.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
command -v jq >/dev/null || { echo "SKIP: jq not found" >&2; exit 77; }

mkdir -p "$WORK/rules"
cat >"$WORK/rules/floods.yaml" <<'YAML'
rules:
  - name: udp_flood
    kind: rate
    record: flow
    description: UDP packet rate towards one host above its network's limit.
    runbook: Identify the sources.
    summary: "{dst} receives {value} UDP packets/s (threshold {threshold}, group {threshold_group})"
    where: protocol == udp
    group_by: [dst]
    field: packets
    window: 1s
    threshold: 5000
    thresholds:
      - {name: plc, networks: [10.20.0.0/24], threshold: 1000}
      - {name: web, networks: [10.30.0.0/24, "2001:db8:30::/48"], threshold: 50000}
YAML
/usr/bin/python3 - "$WORK/flood.pcap" <<'PY' || fail "scapy failed"
import sys
from scapy.all import Ether, IP, UDP, Raw, PcapWriter
t0 = 1700000000.0
w = PcapWriter(sys.argv[1], sync=False)
for dst in ("10.20.0.5", "10.30.0.5"):
    base = Ether(src="02:00:00:00:00:09", dst="02:00:00:00:00:01") / IP(src="203.0.113.50", dst=dst) / UDP(sport=40000, dport=9999) / Raw(b"f" * 18)
    raw = bytes(base)
    for i in range(10000):  # 10,000 packets in one second
        p = Ether(raw)
        p.time = t0 + i * 0.0001
        w.write(p)
w.close()
PY

cw_certs "$WORK/pki" flood-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state" "rules:
  files: [$WORK/rules]
alerts:
  jsonl: $WORK/alerts.jsonl"
cw_start_collector collector "$WORK/collector.yaml"
cw_replay flood-agent "$WORK/flood.pcap"
applied() { (( $(cw_metric "$METRICS_PORT" citywatch_rules_records_total) >= 2 )); }
cw_wait_until 150 "the collector to evaluate both flows" applied
fired() { [[ -f "$WORK/alerts.jsonl" ]] && jq -s -e 'any(.[]; .rule == "udp_flood")' "$WORK/alerts.jsonl" >/dev/null; }
cw_wait_until 150 "udp_flood to fire" fired
sleep 2
alerts=$(jq -s -c '[.[] | select(.rule == "udp_flood" and .state == "firing")]' "$WORK/alerts.jsonl")
cw_expect "udp_flood alerts" "$(jq length <<<"$alerts")" 1
cw_expect "the flooded host" "$(jq -r '.[0].labels.dst' <<<"$alerts")" 10.20.0.5
cw_expect "its threshold group" "$(jq -r '.[0].details.threshold_group' <<<"$alerts")" plc
cw_expect "the threshold applied" "$(jq -r '.[0].threshold' <<<"$alerts")" 1000
rate=$(jq -r '.[0].value' <<<"$alerts")
awk -v r="$rate" 'BEGIN { exit !(r >= 9000 && r <= 10000) }' ||
  fail "the rate read $rate packets/s for a 10,000 packets/s stream"

echo "PASS: 10,000 pps UDP at 10.20.0.5 (group plc, 1,000 pps) alerted at $rate pps; the same at 10.30.0.5 (group web, 50,000 pps) did not"
