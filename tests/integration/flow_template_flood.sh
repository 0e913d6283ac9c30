#!/usr/bin/env bash
# One flow exporter cannot lock the others out of the template cache, before or after an
# agent restart (issue 11, item 6). The cache used to be first-come with a global limit of
# 4096: an exporter sending 4,096 template IDs locked every other exporter out, and the state
# file brought the lock-out back after a restart (337 templates of 16,370 fields cost 43 MB).
#   - 127.0.0.66 floods 3,000 template IDs of 200 fields and 50 templates of 16,370 fields;
#   - 127.0.0.7 then sends one template and five data records: they must reach the collector;
#   - the agent restarts; 127.0.0.7 sends data only: it decodes from the reloaded state;
#   - the cache stays within its bounds (templates, fields) and so does the state file.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"

cw_certs "$WORK/pki" flow-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
PORT=$(cw_free_port udp)
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" flow-agent "$INGEST_PORT" "$WORK/spool" "
state_dir: $WORK/agent-state
flow_listeners:
  - listen: 127.0.0.1:$PORT
    formats: [ipfix]
metrics:
  listen: 127.0.0.1:0"

# send SOURCE KIND: from SOURCE (a loopback address), IPFIX messages of KIND:
#   flood: 3000 template IDs x 200 fields, then 50 x 16370 fields (one template a message);
#   template / data: template 256 and five records of 10 packets / 1000 bytes.
# Sent at a bounded pace so the socket buffer is not what decides the outcome.
send() {
  /usr/bin/python3 - "$PORT" "$1" "$2" <<'PY'
import socket, struct, sys, time
port, src, kind = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
def msg(sets, domain=42):
    return struct.pack("!HHIII", 10, 16 + len(sets), int(time.time()), 1, domain) + sets
def template(tid, fields):
    body = struct.pack("!HH", tid, len(fields)) + b"".join(struct.pack("!HH", *f) for f in fields)
    return struct.pack("!HH", 2, 4 + len(body)) + body
if kind == "flood":
    for i in range(3000):
        s.sendto(msg(template(256 + i, [(1, 4)] * 200)), ("127.0.0.1", port))
        if i % 200 == 199: time.sleep(0.05)
    for i in range(50):
        s.sendto(msg(template(4000 + i, [(1, 4)] * 16370)), ("127.0.0.1", port))
        time.sleep(0.01)
elif kind == "template":
    s.sendto(msg(template(256, [(8, 4), (12, 4), (4, 1), (2, 8), (1, 8)])), ("127.0.0.1", port))
else:
    body = b"".join(struct.pack("!4s4sBQQ", bytes([10, 0, 0, 1]), bytes([10, 0, 0, i]), 6, 10, 1000) for i in range(2, 7))
    s.sendto(msg(struct.pack("!HH", 256, 4 + len(body)) + body), ("127.0.0.1", port))
PY
}

start_agent() {
  cw_spawn "$WORK/agent-$1.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
  AGENT_PID=$CW_LAST_PID
  cw_wait_until 300 "agent $1: flow listener" grep -q "flow listener udp:127.0.0.1:$PORT" "$WORK/agent-$1.log"
  AGENT_METRICS=$(sed -n 's|.*metrics at http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$WORK/agent-$1.log")
  [[ -n $AGENT_METRICS ]] || fail "agent $1 logged no metrics endpoint"
}
am() { cw_metric "$AGENT_METRICS" "$@"; }

start_agent first
send 127.0.0.66 flood
flood_seen() { [[ "$(am citywatch_agent_flow_exporter_datagrams_total 'exporter="127.0.0.66"')" == 3050 ]]; }
cw_wait_until 300 "the flood's 3050 datagrams read by the agent" flood_seen
templates=$(am citywatch_agent_flow_templates)
fields=$(am citywatch_agent_flow_template_fields)
share=$(am citywatch_agent_flow_template_evictions_total 'reason="exporter_share"')
too_large=$(am citywatch_agent_flow_decode_errors_total 'exporter="127.0.0.66"' 'reason="template_limit"')
echo "after the flood: $templates templates, $fields fields, $share evicted by the exporter's share, $too_large refused as too large"
((templates <= 512)) || fail "the flooding exporter holds $templates templates, more than its share of 512"
((fields <= 262144)) || fail "the cache holds $fields fields, more than its bound"
cw_expect "templates of 16370 fields refused" "$too_large" 50
((share > 0)) || fail "no eviction counted for the flood"

send 127.0.0.7 template
send 127.0.0.7 data
reached() { [[ "$(cw_metric "$METRICS_PORT" citywatch_flow_packets_total 'exporter="127.0.0.7"')" == 50 ]]; }
cw_wait_until 300 "127.0.0.7's 50 packets at the collector despite the flood" reached

state="$WORK/agent-state/flow-templates.state"
cw_wait_until 100 "127.0.0.7's template saved" grep -q "^T 127.0.0.7 42 10 256 " "$state"
cw_stop "$AGENT_PID"
((CW_EXIT == 0)) || fail "agent exited with $CW_EXIT"
bytes=$(stat -c %s "$state")
echo "state file after the flood: $bytes bytes"
((bytes < 4 * 1024 * 1024)) || fail "state file of $bytes bytes: not bounded by the cache"

start_agent second
send 127.0.0.7 data
again() { [[ "$(cw_metric "$METRICS_PORT" citywatch_flow_packets_total 'exporter="127.0.0.7"')" == 100 ]]; }
cw_wait_until 300 "127.0.0.7's data decoded after the restart from the saved template" again
cw_expect "127.0.0.7 data waiting for a template" \
  "$(am citywatch_agent_flow_decode_errors_total 'exporter="127.0.0.7"' 'reason="template_missing"')" 0
echo "PASS: flow_template_flood: a 3,050-template flood kept to its share ($templates templates, $fields fields, state file $bytes bytes); another exporter decoded before and after a restart"
