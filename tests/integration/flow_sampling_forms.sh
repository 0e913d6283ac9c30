#!/usr/bin/env bash
# Every way an exporter states its sampling (issue 18, acceptance 1 and 3). scapy builds one
# capture per form (tests/integration/sampling_captures.py: PSAMP selectorAlgorithm 1-4, the
# RFC 5102 elements per sampler and per domain and per record, NetFlow v9 SAMPLING_INTERVAL
# and FLOW_SAMPLER_* options and per-record intervals, a rate change, a rate above the
# ceiling). tshark must read the stated fields back; `citywatch-agent decode` must give every
# record the specification's rate, scale by exactly it and name its source. Then the rate
# change and the absurd rate are sent to a running agent: each is counted in
# citywatch_agent_flow_sampling_events_total and logged once, and the learned rates are in
# citywatch_agent_flow_sampling_rate.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
for tool in tshark /usr/bin/python3; do
  command -v "$tool" >/dev/null || fail "$tool not found (scripts/install-deps.sh installs it)"
done
/usr/bin/python3 -c 'import scapy' 2>/dev/null || fail "python3-scapy not found (scripts/install-deps.sh installs it)"

PORT=4739
/usr/bin/python3 "$SRC_DIR/tests/integration/sampling_captures.py" "$WORK" "$PORT" ||
  fail "sampling_captures.py failed"
python3 "$SRC_DIR/tests/integration/sampling_check.py" forms "$WORK" "$PORT" "$AGENT_BIN" ||
  fail "a sampling form decodes wrong"

# The same captures, live: a running agent counts the change and the refusal and logs each once.
cw_certs "$WORK/pki" sampling-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" sampling-agent "$INGEST_PORT" "$WORK/spool" "
flow_listeners:
  - listen: 127.0.0.1:0
    formats: [netflow_v9, ipfix]
metrics:
  listen: 127.0.0.1:0"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
cw_flow_listener "$WORK/agent.log"
cw_agent_metrics "$WORK/agent.log"
# replay SOURCE FILE...: sends each capture's UDP payloads, in order, from SOURCE (a loopback
# address: one exporter each) to the agent's listener.
replay() {
  /usr/bin/python3 - "$FLOW_PORT" "$@" <<'PY' || fail "replay failed"
import socket, sys
from scapy.all import rdpcap, UDP
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[2], 0))
for path in sys.argv[3:]:
    for p in rdpcap(path):
        s.sendto(bytes(p[UDP].payload), ("127.0.0.1", int(sys.argv[1])))
PY
}
replay 127.0.0.1 "$WORK/ipfix-rate-change.pcap" "$WORK/ipfix-above-ceiling.pcap"
replay 127.0.0.2 "$WORK/v9-flow-samplers.pcap"
ev() { cw_metric "$AGENT_METRICS" citywatch_agent_flow_sampling_events_total "event=\"$1\""; }
rate() { cw_metric "$AGENT_METRICS" citywatch_agent_flow_sampling_rate "exporter=\"$1\"" "sampler=\"$2\""; }
counted() { [[ "$(ev rate_changed)" == 1 && "$(ev above_ceiling)" == 2 && "$(rate 127.0.0.2 2)" == 1000 ]]; }
cw_wait_until 300 "the agent to count the rate change and the refused rate" counted
cw_expect "rate changes counted" "$(ev rate_changed)" 1
cw_expect "records with a rate above the ceiling counted" "$(ev above_ceiling)" 2
cw_expect "rate-change warnings logged (once)" "$(grep -c 'changed its sampling rate from 100 to 200' "$WORK/agent.log")" 1
cw_expect "ceiling warnings logged (once)" "$(grep -c 'not applied (logged once' "$WORK/agent.log")" 1
cw_expect "learned rate of 127.0.0.1's selector 1 (after the change)" "$(rate 127.0.0.1 1)" 200
cw_expect "learned rate of 127.0.0.2's v9 sampler 1" "$(rate 127.0.0.2 1)" 100
cw_expect "learned rate of 127.0.0.2's v9 sampler 2" "$(rate 127.0.0.2 2)" 1000
# The scaled totals reach the collector: 2 x 100 + 2 x 200 records' worth, the refused
# records unscaled, the v9 samplers' records at 100 and 1000.
want=$(python3 - "$WORK/cases.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
print(sum(r["raw_packets"] * r["rate"] for n in ("ipfix-rate-change", "ipfix-above-ceiling", "v9-flow-samplers")
          for r in c[n]["records"]))
PY
)
at_collector() { [[ "$(cw_metric "$METRICS_PORT" citywatch_flow_packets_total)" == "$want" ]]; }
cw_wait_until 300 "the collector's flow packets to reach $want" at_collector
echo "PASS: flow_sampling_forms: 12 forms decode to their specification's rate; a live agent counted 1 rate change and 2 records above the ceiling, logged each once, and the collector counted $want scaled packets"
