#!/usr/bin/env bash
# The collector's ingest ledger (SQLite) on a full disk (issue 10): the state_dir is a real
# 8 MiB tmpfs this test mounts and then fills. The agent replays segment-a; every commit
# fails with SQLITE_FULL, so no batch may be acked: each failure is counted
# (citywatch_collector_ledger_errors_total), the session closed, and the agent keeps its
# spool and retries. Once space is freed, the same collector (never restarted) commits, the
# agent delivers, and the totals are exactly segment-a's: nothing lost, nothing counted twice.
# The outage store (uptime.sqlite) shares the disk: its failed writes are counted too.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
cw_need_segment_a
[[ $(id -u) == 0 ]] || fail "needs root to mount a tmpfs for the state directory"
PACKETS=29327 BYTES=6513622

mkdir -p "$WORK/state"
mount -t tmpfs -o size=8m,mode=0700 citywatch-test-state "$WORK/state" || fail "cannot mount a tmpfs"
unmount_state() { umount "$WORK/state" 2>/dev/null; }
cw_at_exit unmount_state
cw_certs "$WORK/pki" ledger-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
# Fill what is left (dd stops at ENOSPC).
dd if=/dev/zero of="$WORK/state/filler" bs=64k 2>/dev/null
free=$(df --output=avail -k "$WORK/state" | tail -1 | tr -d ' ')
((free == 0)) || fail "the tmpfs still has $free KiB free"

cw_agent_config "$WORK/agent.yaml" "$WORK/pki" ledger-agent "$INGEST_PORT" "$WORK/spool" "batch: {max_records: 500}"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml" -r "$SEGMENT_A"
AGENT=$CW_LAST_PID
errors() { cw_metric "$METRICS_PORT" citywatch_collector_ledger_errors_total; }
failing() { (($(errors) >= 3)); }
cw_wait_until 600 "three failed commits" failing
kill -0 "$AGENT" 2>/dev/null || fail "the agent exited while the collector could not commit"
kill -0 "$COL_PID" 2>/dev/null || fail "the collector died on a full disk: $(tail -5 "$WORK/collector.log")"
grep -q 'ingest: .*; closing session without ack' "$WORK/collector.log" || fail "no commit error logged"
m=$(cw_scrape "$METRICS_PORT")
held=$(cw_sum citywatch_flow_packets_total <<<"$m")
# The outage store shares the disk: the agent's session opening could not be written either,
# and that is counted, not silent.
store_errors=$(cw_sum citywatch_uptime_store_errors_total <<<"$m")
((${store_errors:-0} >= 1)) || fail "the outage store's failed writes were not counted"
cw_log "disk full: $(errors) failed commits, $store_errors outage-store errors, ${held:-0} packets counted so far"

rm -f "$WORK/state/filler"
cw_wait_exit "$AGENT" 600
cw_expect "exit code of the agent" "$CW_EXIT" 0
m=$(cw_scrape "$METRICS_PORT")
cw_expect "sum(citywatch_flow_packets_total)" "$(cw_sum citywatch_flow_packets_total <<<"$m")" $PACKETS
cw_expect "sum(citywatch_flow_bytes_total)" "$(cw_sum citywatch_flow_bytes_total <<<"$m")" $BYTES
fails=$(cw_sum citywatch_collector_ledger_errors_total <<<"$m")
dup=$(cw_sum citywatch_collector_batches_duplicate_total <<<"$m")
echo "PASS: ledger_disk_full: $fails commits failed on a full 8 MiB tmpfs (${held:-0} packets counted while full), none acked, $store_errors outage-store writes failed and counted; after space was freed the same collector counted exactly $PACKETS packets / $BYTES bytes ($dup duplicate batches recognised)"
