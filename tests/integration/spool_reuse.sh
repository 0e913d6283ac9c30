#!/usr/bin/env bash
# Spool segment files are reused, not created and deleted (issue 16): a segment emptied by acks
# is kept as the spool's `spare` file and the next segment starts in it, over the records of its
# earlier life. Three agents on one spool, one collector (batches of 100 records, ~3.5 KB;
# one pass over segment-a is about 800 KB):
#   1. the collector up: agent 1 reads segment-a into 128 KiB segments; every batch is acked
#      and an emptied segment's file is left as `spare`;
#   2. the collector down: agent 2 reads segment-a again (--reread) into 64 KiB segments, its
#      first in the spare's file (the same inode: at least 128 KiB, so pass 1's records follow
#      pass 2's), and is killed with SIGKILL;
#   3. the collector back: agent 3, with an empty capture, recovers the spool (the reused file
#      holds pass 1's records behind pass 2's end markers) and sends what agent 2 left.
# The collector must then hold exactly two passes of segment-a, and agent 3 must have found
# nothing torn or corrupt (it warns at start when it does).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
cw_need_segment_a
PACKETS=29327 BYTES=6513622

cw_certs "$WORK/pki" demo-agent
CW_STEP="collector up, agent 1"
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector first "$WORK/collector.yaml"
PORT=$INGEST_PORT
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "$PORT" "$WORK/spool" \
  "batch: {max_records: 100}"
sed "s#^  dir: $WORK/spool\$#&\n  segment_size: 128KiB#" "$WORK/agent.yaml" >"$WORK/agent-1.yaml"
sed -i "s#^  dir: $WORK/spool\$#&\n  segment_size: 64KiB#" "$WORK/agent.yaml"
if ! grep -q 'segment_size: 64KiB' "$WORK/agent.yaml" || ! grep -q 'segment_size: 128KiB' "$WORK/agent-1.yaml"; then
  fail "could not set the segment sizes: $(cat "$WORK/agent.yaml")"
fi
cw_spawn "$WORK/agent-1.log" "$AGENT_BIN" --config "$WORK/agent-1.yaml" -r "$SEGMENT_A"
cw_wait_exit "$CW_LAST_PID" 300
cw_expect "exit code of agent 1" "$CW_EXIT" 0
[[ -f $WORK/spool/spare ]] || fail "agent 1 left no spare segment file: $(ls -l "$WORK/spool")"
spare_inode=$(stat -c %i "$WORK/spool/spare")
spare_size=$(stat -c %s "$WORK/spool/spare")
cw_stop "$COL_PID"

CW_STEP="collector down, agent 2"
cw_spawn "$WORK/agent-2.log" "$AGENT_BIN" --config "$WORK/agent.yaml" --reread -r "$SEGMENT_A"
AGENT=$CW_LAST_PID
spooled() { grep -q "all files read" "$WORK/agent-2.log"; }
cw_wait_until 300 "agent 2 to spool everything" spooled
kill -0 "$AGENT" 2>/dev/null || fail "agent 2 exited while the collector was down: $(tail -3 "$WORK/agent-2.log")"
kill -KILL "$AGENT"
cw_wait_exit "$AGENT" 100
[[ ! -e $WORK/spool/spare ]] || fail "agent 2 rolled its spool without taking the spare: $(ls -l "$WORK/spool")"
reused=""
for f in "$WORK"/spool/*.spool; do
  [[ $(stat -c %i "$f") == "$spare_inode" ]] && reused=$f
done
[[ -n $reused ]] || fail "no segment of agent 2 is in the spare's file (inode $spare_inode): $(ls -li "$WORK/spool")"
segments=$(find "$WORK/spool" -name '*.spool' | wc -l)
((segments >= 3)) || fail "agent 2 left only $segments segment(s): the test needs several"
# 64 KiB of pass 2 and an end marker fit in the old file: it keeps its size, pass 1 after them.
((spare_size >= 131072)) || fail "agent 1's spare is only $spare_size bytes"
cw_expect "size of the reused segment file" "$(stat -c %s "$reused")" "$spare_size"
cw_log "agent 2 killed: $segments segments, $(basename "$reused") in the spare's file ($spare_size bytes of pass 1)"

CW_STEP="collector back, agent 3"
cw_collector_config "$WORK/restart.yaml" "$WORK/pki" "$WORK/state"
sed -i "s#ingest: 127.0.0.1:0#ingest: 127.0.0.1:$PORT#" "$WORK/restart.yaml"
cw_start_collector restarted "$WORK/restart.yaml"
printf '\xd4\xc3\xb2\xa1\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\x00\x00\x01\x00\x00\x00' \
  >"$WORK/empty.pcap"
cw_spawn "$WORK/agent-3.log" "$AGENT_BIN" --config "$WORK/agent.yaml" -r "$WORK/empty.pcap"
cw_wait_exit "$CW_LAST_PID" 300
cw_expect "exit code of agent 3" "$CW_EXIT" 0
if grep -q 'torn or corrupt' "$WORK/agent-3.log"; then
  fail "agent 3 found the spool damaged: $(grep 'torn or corrupt' "$WORK/agent-3.log")"
fi
m=$(cw_scrape "$METRICS_PORT")
cw_expect "sum(citywatch_flow_packets_total), two passes" "$(cw_sum citywatch_flow_packets_total <<<"$m")" $((2 * PACKETS))
cw_expect "sum(citywatch_flow_bytes_total), two passes" "$(cw_sum citywatch_flow_bytes_total <<<"$m")" $((2 * BYTES))
read3=$(sed -n "s/.* \([0-9]*\) read back from the spool's files.*/\1/p" "$WORK/agent-3.log")
echo "PASS: spool_reuse: agent 2's first segment of $segments started in agent 1's emptied segment file (inode $spare_inode, $spare_size bytes of older records); after SIGKILL agent 3 recovered it with nothing torn or corrupt and sent ${read3:-?} batches from disk; totals $((2 * PACKETS)) packets, $((2 * BYTES)) bytes: two passes exactly"
