#!/usr/bin/env bash
# Templates persist across an agent restart: an IPFIX template is sent to the agent's flow
# listener, the agent is stopped and started again, and then the data records (without the
# template) are sent: they must decode (collector totals) and no data may wait for a template.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
/usr/bin/python3 -c 'import socket' 2>/dev/null || { echo "SKIP: python3 not found" >&2; exit 77; }

cw_certs "$WORK/pki" flow-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
# A fixed listener port is needed across the restart: ask the kernel for a free one.
PORT=$(cw_free_port udp)
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" flow-agent "$INGEST_PORT" "$WORK/spool" "
state_dir: $WORK/agent-state
flow_listeners:
  - listen: 127.0.0.1:$PORT
    formats: [ipfix]"

# send KIND: one IPFIX message (template set 256, or 5 data records of 10 packets/1000 bytes).
send() {
  /usr/bin/python3 - "$PORT" "$1" <<'PY'
import socket, struct, sys, time
port, kind = int(sys.argv[1]), sys.argv[2]
if kind == "template":
    fields = [(8, 4), (12, 4), (4, 1), (2, 8), (1, 8)]
    body = struct.pack("!HH", 256, len(fields)) + b"".join(struct.pack("!HH", *f) for f in fields)
    sets = struct.pack("!HH", 2, 4 + len(body)) + body
else:
    body = b"".join(struct.pack("!4s4sBQQ", bytes([10, 0, 0, 1]), bytes([10, 0, 0, i]), 6, 10, 1000) for i in range(2, 7))
    sets = struct.pack("!HH", 256, 4 + len(body)) + body
msg = struct.pack("!HHIII", 10, 16 + len(sets), int(time.time()), 1, 42) + sets
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(msg, ("127.0.0.1", port))
PY
}

start_agent() {
  cw_spawn "$WORK/agent-$1.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
  AGENT_PID=$CW_LAST_PID
  cw_wait_until 300 "agent $1: flow listener" grep -q "flow listener udp:127.0.0.1:$PORT" "$WORK/agent-$1.log"
}

start_agent first
send template
state="$WORK/agent-state/flow-templates.state"
# The state file is written within a second of a template change.
cw_wait_until 100 "template saved to $state" grep -q "^T 127.0.0.1 42 10 256 " "$state"
cw_stop "$AGENT_PID"
((CW_EXIT == 0)) || fail "agent exited with $CW_EXIT"

start_agent second
grep -q "flow state .* 1 entries reloaded" "$WORK/agent-second.log" || fail "the agent did not reload its flow state"
send data
reached() { [[ "$(cw_metric "$METRICS_PORT" citywatch_flow_packets_total)" == 50 ]]; }
cw_wait_until 300 "collector packets = 50 after the restart" reached
bytes=$(cw_metric "$METRICS_PORT" citywatch_flow_bytes_total)
cw_expect "bytes after the restart" "$bytes" 5000
flows=$(cw_metric "$METRICS_PORT" citywatch_flows_total)
cw_expect "flow records after the restart" "$flows" 5
echo "PASS: template sent before an agent restart decoded the data sent after it (5 flows, 50 packets, 5000 bytes)"
