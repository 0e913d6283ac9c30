#!/usr/bin/env bash
# zstd batches on the wire (issue 16; docs/wire-protocol.md, "Compression"). Two agents read
# segment-a (-r) into one collector, one with plain batches, one with
# `batch: {compression: zstd}`. Both must deliver segment-a exactly (the collector reads the
# zstd frames the agent's HELLO offered and its HELLO_ACK accepted), and the compressed
# agent must put far fewer bytes on the wire for the same batches. Prints bytes per record
# on the wire for each.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
cw_need_segment_a
PACKETS=29327 BYTES=6513622

cw_certs "$WORK/pki" plain-agent zstd-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
declare -A SENT BATCH
for mode in plain zstd; do
  extra="batch: {max_records: 1000}"
  [[ $mode == zstd ]] && extra="batch: {max_records: 1000, compression: zstd}"
  cw_agent_config "$WORK/$mode.yaml" "$WORK/pki" "$mode-agent" "$INGEST_PORT" "$WORK/$mode-spool" \
    "$extra"
  sed -i "s/segment: seg-test/segment: seg-$mode/" "$WORK/$mode.yaml"
  cw_spawn "$WORK/$mode.log" "$AGENT_BIN" --config "$WORK/$mode.yaml" -r "$SEGMENT_A"
  cw_wait_exit "$CW_LAST_PID" 300
  cw_expect "exit code of the $mode agent" "$CW_EXIT" 0
done
m=$(cw_scrape "$METRICS_PORT")
for mode in plain zstd; do
  p=$(grep "^citywatch_flow_packets_total{.*agent=\"$mode-agent\"" <<<"$m" | awk '{ s += $2 } END { print s + 0 }')
  b=$(grep "^citywatch_flow_bytes_total{.*agent=\"$mode-agent\"" <<<"$m" | awk '{ s += $2 } END { print s + 0 }')
  cw_expect "packets delivered by the $mode agent" "$p" $PACKETS
  cw_expect "bytes delivered by the $mode agent" "$b" $BYTES
  # "done (sent N batches: W bytes on the wire for P bytes of batches, R read back ...)"
  SENT[$mode]=$(sed -n 's/.*batches: \([0-9]*\) bytes on the wire for.*/\1/p' "$WORK/$mode.log")
  BATCH[$mode]=$(sed -n 's/.*on the wire for \([0-9]*\) bytes of batches.*/\1/p' "$WORK/$mode.log")
  [[ -n ${SENT[$mode]} && -n ${BATCH[$mode]} ]] || fail "the $mode agent logged no byte counts"
done
grep -q "(zstd batches)" "$WORK/zstd.log" || fail "the zstd agent did not negotiate zstd batches"
records=$(grep "^citywatch_collector_records_received_total{agent=\"zstd-agent\"" <<<"$m" | awk '{ s += $2 } END { print s + 0 }')
((records > 0)) || fail "no records counted for the zstd agent"
((SENT[zstd] * 3 < SENT[plain])) ||
  fail "zstd sent ${SENT[zstd]} bytes, plain ${SENT[plain]}: not even 3x smaller"
echo "PASS: wire_compression: both agents delivered exactly $PACKETS packets / $BYTES bytes; $records records each; wire bytes plain ${SENT[plain]} ($(awk -v s="${SENT[plain]}" -v r="$records" 'BEGIN { printf "%.1f", s / r }') B/record), zstd ${SENT[zstd]} ($(awk -v s="${SENT[zstd]}" -v r="$records" 'BEGIN { printf "%.1f", s / r }') B/record, $(awk -v a="${SENT[plain]}" -v b="${SENT[zstd]}" 'BEGIN { printf "%.1f", a / b }')x smaller; batch payload ${BATCH[zstd]} bytes)"
