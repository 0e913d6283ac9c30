#!/usr/bin/env bash
# Exactly-once across an agent SIGKILL (issue 16: the spool's ack cursor is checkpointed once
# a second, not at every ack, and acked batches stay in the active segment). The agent reads
# segment-a (-r) into a collector that dies after 20 commits, so every flow ends up in the
# spool while only some batches are acked. The agent is killed with SIGKILL, the collector
# restarted, and a second agent on the same spool, with an empty capture, sends what the
# first left behind. The collector's totals must then be
# exactly segment-a's: nothing lost, nothing counted twice.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
cw_need_segment_a
PACKETS=29327 BYTES=6513622

cw_certs "$WORK/pki" demo-agent
# The collector exits right after committing its 20th batch (before acking it): the agent
# has had 19 acks (its cursor persisted at most once a second), keeps reading and spools
# everything, and is then killed.
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml" --fault-exit-after-commits 20
COL=$COL_PID
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool" \
  "batch: {max_records: 200}"
cw_spawn "$WORK/agent-1.log" "$AGENT_BIN" --config "$WORK/agent.yaml" -r "$SEGMENT_A"
AGENT=$CW_LAST_PID
cw_wait_exit "$COL" 300
cw_expect "exit code of the collector with --fault-exit-after-commits 20" "$CW_EXIT" 70
spooled() { grep -q "all files read" "$WORK/agent-1.log"; }
cw_wait_until 300 "the agent to spool everything" spooled
kill -0 "$AGENT" 2>/dev/null || fail "the agent exited while the collector was down"
kill -KILL "$AGENT"
cw_wait_exit "$AGENT" 100
pending=$(find "$WORK/spool" -name '*.spool' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
cw_log "agent killed with $pending spool bytes on disk"
# The same collector again, on the port the agent knows.
cw_collector_config "$WORK/restart.yaml" "$WORK/pki" "$WORK/state"
sed -i "s#ingest: 127.0.0.1:0#ingest: 127.0.0.1:$INGEST_PORT#" "$WORK/restart.yaml"
cw_start_collector restarted "$WORK/restart.yaml"
before=$(cw_metric "$METRICS_PORT" citywatch_collector_batches_received_total)

# A capture with no packets: the second agent only forwards what the spool holds.
printf '\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x00\x00\x01\x00\x00\x00' \
  >"$WORK/empty.pcap"
cw_spawn "$WORK/agent-2.log" "$AGENT_BIN" --config "$WORK/agent.yaml" -r "$WORK/empty.pcap"
cw_wait_exit "$CW_LAST_PID" 600
cw_expect "exit code of the second agent" "$CW_EXIT" 0

m=$(cw_scrape "$METRICS_PORT")
cw_expect "sum(citywatch_flow_packets_total)" "$(cw_sum citywatch_flow_packets_total <<<"$m")" $PACKETS
cw_expect "sum(citywatch_flow_bytes_total)" "$(cw_sum citywatch_flow_bytes_total <<<"$m")" $BYTES
after=$(cw_sum citywatch_collector_batches_received_total <<<"$m")
dup=$(cw_sum citywatch_collector_batches_duplicate_total <<<"$m")
((after > before)) || fail "the second agent delivered nothing ($before -> $after batches)"
echo "PASS: agent_kill: 20 batches committed (the last unacked), agent SIGKILLed with everything spooled ($pending bytes); the restarted agent delivered $((after - before)) more ($dup resent batches dropped as duplicates); totals $PACKETS packets, $BYTES bytes, exactly segment-a's"
