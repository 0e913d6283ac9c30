#!/usr/bin/env bash
# A full disk under the agent's spool (issue 10): with the collector down, the agent reads
# segment-a into a spool on a real 128 KiB tmpfs this test mounts, far too small for the
# capture's ~23,500 records (about 200 KB as the agent spools them by default, packed with
# lz4; 835 KB unpacked). Appends fail with ENOSPC: each batch that cannot be written
# must be dropped and counted (citywatch_agent_records_dropped_total), logged, and the agent
# must keep running. When the collector comes back, what the spool kept is delivered once:
#   records at the collector + records dropped by the agent == records the agent produced,
# with no duplicate batch. Nothing is lost without being counted, nothing counted twice.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
cw_need_segment_a
[[ $(id -u) == 0 ]] || fail "needs root to mount a tmpfs for the spool"

cw_certs "$WORK/pki" full-agent
# A collector, only to learn a free ingest port; then it stops (the agent starts with it down).
cw_collector_config "$WORK/probe.yaml" "$WORK/pki" "$WORK/state-probe"
cw_start_collector probe "$WORK/probe.yaml"
PORT=$INGEST_PORT
cw_stop "$COL_PID"

mkdir -p "$WORK/spool"
mount -t tmpfs -o size=128k,mode=0700 citywatch-test-spool "$WORK/spool" || fail "cannot mount a tmpfs"
unmount_spool() { umount "$WORK/spool" 2>/dev/null; }
cw_at_exit unmount_spool
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" full-agent "$PORT" "$WORK/spool" "batch: {max_records: 200}
metrics:
  listen: 127.0.0.1:0"
# A spool limit far above the file system's size, small segments: the disk fills first.
sed -i "s#^  dir: $WORK/spool\$#&\n  max_size: 64MiB\n  segment_size: 64KiB#" "$WORK/agent.yaml"
grep -q 'segment_size: 64KiB' "$WORK/agent.yaml" || fail "could not set the spool sizes: $(cat "$WORK/agent.yaml")"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml" -r "$SEGMENT_A"
AGENT=$CW_LAST_PID
cw_agent_metrics "$WORK/agent.log"
read_all() { grep -q 'agent: all files read' "$WORK/agent.log"; }
cw_wait_until 600 "the agent to read the whole capture" read_all
kill -0 "$AGENT" 2>/dev/null || fail "the agent exited on a full disk: $(tail -5 "$WORK/agent.log")"
produced=$(sed -n 's/.*agent: all files read (\([0-9]*\) records).*/\1/p' "$WORK/agent.log")
# Both counters are mirrored by the same once-a-second update, after the last batch was sealed.
exported() {
  local m
  m=$(cw_scrape "$AGENT_METRICS")
  [[ "$(cw_sum citywatch_agent_records_total <<<"$m")" == "$produced" ]] || return 1
  dropped=$(cw_sum citywatch_agent_records_dropped_total <<<"$m")
}
cw_wait_until 100 "the agent's metrics to show its $produced records" exported
((dropped > 0)) || fail "nothing was dropped: the tmpfs held all $produced records?"
((dropped < produced)) || fail "everything was dropped ($dropped of $produced): the spool kept nothing"
grep -q 'agent: .*No space left on device.*records dropped' "$WORK/agent.log" ||
  fail "no ENOSPC error logged: $(grep -m3 -i error "$WORK/agent.log")"
used=$(df --output=used -k "$WORK/spool" | tail -1 | tr -d ' ')

# The collector returns on the port the agent knows; the agent delivers the spool and exits.
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
sed -i "s#ingest: 127.0.0.1:0#ingest: 127.0.0.1:$PORT#" "$WORK/collector.yaml"
cw_start_collector collector "$WORK/collector.yaml"
cw_wait_exit "$AGENT" 600
cw_expect "exit code of the agent" "$CW_EXIT" 0
received=$(cw_metric "$METRICS_PORT" citywatch_collector_records_received_total)
dup=$(cw_metric "$METRICS_PORT" citywatch_collector_batches_duplicate_total)
cw_expect "records at the collector + records dropped" "$((received + dropped))" "$produced"
cw_expect "duplicate batches" "${dup:-0}" 0
echo "PASS: spool_full_disk: a 128 KiB tmpfs ($used KiB used): $produced records produced, $dropped dropped and counted, $received delivered once"
