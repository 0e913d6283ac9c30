#!/usr/bin/env bash
# Exactly-once across collector crashes. segment-a is replayed while the collector dies:
#  A) deterministic: --fault-exit-after-commits 3 makes it exit (70) right after committing
#     the 3rd batch and before acking it; restarted on the same state_dir.
#  B) a real SIGKILL as soon as it has accepted a batch; restarted.
# Both times the totals must be exactly those of the capture, and stay so after a restart
# with no agent (counters reloaded from the ledger).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
cw_need_segment_a
PACKETS=29327 BYTES=6513622

cw_certs "$WORK/pki" demo-agent

# check_totals PHASE: the collector's totals equal segment-a's; sets FLOWS.
check_totals() {
  local m
  m=$(cw_scrape "$METRICS_PORT")
  cw_expect "$1: sum(citywatch_flow_packets_total)" "$(cw_sum citywatch_flow_packets_total <<<"$m")" $PACKETS
  cw_expect "$1: sum(citywatch_flow_bytes_total)" "$(cw_sum citywatch_flow_bytes_total <<<"$m")" $BYTES
  FLOWS=$(cw_sum citywatch_flows_total <<<"$m")
  cw_expect "$1: records_received{kind=flow} vs flows" \
    "$(cw_sum citywatch_collector_records_received_total 'kind="flow"' <<<"$m")" "$FLOWS"
}

# restart_config PHASE: the same collector, ingest pinned to the port the agent knows.
restart_config() {
  cw_collector_config "$WORK/$1-restart.yaml" "$WORK/pki" "$WORK/state-$1"
  sed -i "s#ingest: 127.0.0.1:0#ingest: 127.0.0.1:$INGEST_PORT#" "$WORK/$1-restart.yaml"
}

# ---- Phase A: exit after the 3rd commit, before its ack -----------------------------------
cw_collector_config "$WORK/a.yaml" "$WORK/pki" "$WORK/state-a"
cw_start_collector a-faulty "$WORK/a.yaml" --fault-exit-after-commits 3
COL_A=$COL_PID
cw_agent_config "$WORK/agent-a.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool-a" \
  "batch: {max_records: 500}"
cw_spawn "$WORK/agent-a.log" "$AGENT_BIN" --config "$WORK/agent-a.yaml" -r "$SEGMENT_A"
AGENT=$CW_LAST_PID
cw_wait_exit "$COL_A" 200
cw_expect "A: exit code of the collector with --fault-exit-after-commits 3" "$CW_EXIT" 70
kill -0 "$AGENT" 2>/dev/null || fail "A: the agent exited while the collector was down"
restart_config a
cw_start_collector a-restarted "$WORK/a-restart.yaml"
cw_wait_exit "$AGENT" 300
cw_expect "A: exit code of the agent" "$CW_EXIT" 0
check_totals A
A_FLOWS=$FLOWS
A_BATCHES=$(cw_metric "$METRICS_PORT" citywatch_collector_batches_received_total)
A_DUP=$(cw_metric "$METRICS_PORT" citywatch_collector_batches_duplicate_total)
((A_BATCHES >= 40)) || fail "A: only $A_BATCHES batches (expected ~41 of 500 records)"
# Batch 3 was committed but never acked: after the restart the collector must have
# recognised it, either as a duplicate when resent or by telling the agent in HELLO_ACK that
# it already holds batch 3 (the agent then does not resend it).
resync=$(grep -o 'collector holds up to batch 3, spool has [0-9]* acked' "$WORK/agent-a.log" | head -n1)
if ((A_DUP >= 1)); then
  A_HOW="batches_duplicate_total=$A_DUP"
elif [[ -n "$resync" ]]; then
  A_HOW="batches_duplicate_total=0, resynced by HELLO_ACK ('$resync')"
else
  fail "A: batches_duplicate_total is $A_DUP and the agent log shows no HELLO_ACK resync at batch 3"
fi
cw_stop "$COL_PID"

# ---- Phase B: SIGKILL while batches are flowing --------------------------------------------
cw_collector_config "$WORK/b.yaml" "$WORK/pki" "$WORK/state-b"
cw_start_collector b-killed "$WORK/b.yaml"
COL_B=$COL_PID
cw_agent_config "$WORK/agent-b.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool-b" \
  "batch: {max_records: 100}"
cw_spawn "$WORK/agent-b.log" "$AGENT_BIN" --config "$WORK/agent-b.yaml" -r "$SEGMENT_A"
AGENT=$CW_LAST_PID
batches_flowing() {
  KILLED_AFTER=$(cw_metric "$METRICS_PORT" citywatch_collector_batches_received_total)
  [[ -n "$KILLED_AFTER" ]] && ((KILLED_AFTER > 0))
}
CW_POLL=0.02 cw_wait_until 1500 "B: first batch accepted" batches_flowing
kill -KILL "$COL_B"
cw_wait_exit "$COL_B" 50
cw_expect "B: collector exit status after SIGKILL" "$CW_EXIT" 137
kill -0 "$AGENT" 2>/dev/null || fail "B: the agent exited while the collector was down (it cannot have been fully acked)"
restart_config b
cw_start_collector b-restarted "$WORK/b-restart.yaml"
cw_wait_exit "$AGENT" 300
cw_expect "B: exit code of the agent" "$CW_EXIT" 0
check_totals B
B_FLOWS=$FLOWS
B_BATCHES=$(cw_metric "$METRICS_PORT" citywatch_collector_batches_received_total)
B_DUP=$(cw_metric "$METRICS_PORT" citywatch_collector_batches_duplicate_total)

# ---- Phase C: the agent's spool is lost (reinstall, wiped disk) ----------------------------
# A new spool draws a new stream id, so its batches 1..N are new data to the collector, not
# duplicates of the batches 1..N it already holds from the old spool: everything is counted.
cw_agent_config "$WORK/agent-c.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool-c" \
  "batch: {max_records: 100}"
cw_spawn "$WORK/agent-c.log" "$AGENT_BIN" --config "$WORK/agent-c.yaml" -r "$SEGMENT_A"
cw_wait_exit "$CW_LAST_PID" 300
cw_expect "C: exit code of the agent with a new spool" "$CW_EXIT" 0
cw_expect "C: packets after replaying with a new spool" \
  "$(cw_metric "$METRICS_PORT" citywatch_flow_packets_total)" $((2 * PACKETS))
cw_expect "C: bytes after replaying with a new spool" \
  "$(cw_metric "$METRICS_PORT" citywatch_flow_bytes_total)" $((2 * BYTES))
B_BATCHES=$(cw_metric "$METRICS_PORT" citywatch_collector_batches_received_total)
cw_stop "$COL_PID"
ONE_PACKETS=$PACKETS
ONE_BYTES=$BYTES
PACKETS=$((2 * PACKETS))
BYTES=$((2 * BYTES))

# ---- Final restart, no agent: counters come back from the ledger ---------------------------
cw_start_collector b-reloaded "$WORK/b-restart.yaml"
check_totals "after a restart with no agent"
cw_expect "batches after a restart with no agent" \
  "$(cw_metric "$METRICS_PORT" citywatch_collector_batches_received_total)" "$B_BATCHES"
cw_expect "agents_connected after a restart with no agent" \
  "$(cw_metric "$METRICS_PORT" citywatch_collector_agents_connected)" 0

echo "PASS: exactly-once across collector crashes: A) exit 70 after 3 commits, restart -> packets $ONE_PACKETS bytes $ONE_BYTES flows $A_FLOWS in $A_BATCHES batches, $A_HOW; B) SIGKILL after $KILLED_AFTER of ~203 batches, restart -> packets $ONE_PACKETS bytes $ONE_BYTES flows $B_FLOWS in $B_BATCHES batches (duplicates $B_DUP); C) a new spool's batches counted as new data -> packets $PACKETS bytes $BYTES; totals unchanged after a restart with no agent"
