#!/usr/bin/env bash
# End to end: an agent replays segment-a.pcap (-r) to a collector over mutual TLS; the
# collector's flow counters must match the capture exactly, per protocol. The collector has
# no rules: a SIGHUP (logrotate, systemctl reload) must still leave it running.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
cw_need_segment_a

cw_certs "$WORK/pki" demo-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
kill -HUP "$COL_PID"
hup_logged() { grep -q 'SIGHUP: no rules configured' "$WORK/collector.log"; }
cw_wait_until 100 "the collector to log the SIGHUP" hup_logged
kill -0 "$COL_PID" 2>/dev/null || fail "SIGHUP stopped a collector without rules"

cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml" -r "$SEGMENT_A"
AGENT_PID=$CW_LAST_PID
cw_wait_exit "$AGENT_PID" 300
((CW_EXIT == 0)) || fail "agent exited with $CW_EXIT, expected 0"

M=$(cw_scrape "$METRICS_PORT")
packets=$(cw_sum citywatch_flow_packets_total <<<"$M")
bytes=$(cw_sum citywatch_flow_bytes_total <<<"$M")
cw_expect "sum(citywatch_flow_packets_total)" "$packets" 29327
cw_expect "sum(citywatch_flow_bytes_total)" "$bytes" 6513622

summary=""
while read -r proto p b; do
  got_p=$(cw_sum citywatch_flow_packets_total "protocol=\"$proto\"" <<<"$M")
  got_b=$(cw_sum citywatch_flow_bytes_total "protocol=\"$proto\"" <<<"$M")
  cw_expect "packets{protocol=\"$proto\"}" "$got_p" "$p"
  cw_expect "bytes{protocol=\"$proto\"}" "$got_b" "$b"
  summary+=" $proto $got_p/$got_b"
done <<'TABLE'
tcp 27264 5423354
udp 2038 1084964
icmp 13 4480
icmpv6 12 824
TABLE

flows=$(cw_sum citywatch_flows_total <<<"$M")
records=$(cw_sum citywatch_collector_records_received_total 'kind="flow"' <<<"$M")
((flows > 0)) || fail "citywatch_flows_total is $flows"
cw_expect "records_received_total{kind=\"flow\"} vs sum(citywatch_flows_total)" "$records" "$flows"

# The agent has gone: the session must be closed and the gauge back to 0.
connected_zero() { [[ "$(cw_metric "$METRICS_PORT" citywatch_collector_agents_connected)" == 0 ]]; }
cw_wait_until 100 "citywatch_collector_agents_connected back to 0" connected_zero
connections=$(cw_sum citywatch_collector_connections_total 'agent="demo-agent"' <<<"$M")

echo "PASS: segment-a via agent -> collector: packets $packets, bytes $bytes, per protocol (packets/bytes)$summary; flows $flows == records_received{kind=flow} $records; sessions $connections; agents_connected back to 0"
