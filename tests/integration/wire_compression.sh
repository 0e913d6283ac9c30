#!/usr/bin/env bash
# Compressed batches on the wire (issue 16; docs/wire-protocol.md, "Compression" and "Packed
# batches"). Three agents read segment-a (-r) into one collector: one with
# `batch: {compression: none}` (plain batches), one with the default (lz4: batches packed
# before the spool and sent packed) and one with `batch: {compression: zstd}`. Each must
# deliver segment-a exactly (the collector reads the packed and zstd batches the agent's HELLO
# offered and its HELLO_ACK accepted), and the compressed ones must put far fewer bytes on the
# wire for the same batches. Prints bytes per record on the wire for each.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
cw_need_segment_a
PACKETS=29327 BYTES=6513622

cw_certs "$WORK/pki" plain-agent lz4-agent zstd-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
declare -A SENT BATCH
for mode in plain lz4 zstd; do
  extra="batch: {max_records: 1000}"  # lz4: the default
  [[ $mode == plain ]] && extra="batch: {max_records: 1000, compression: none}"
  [[ $mode == zstd ]] && extra="batch: {max_records: 1000, compression: zstd}"
  cw_agent_config "$WORK/$mode.yaml" "$WORK/pki" "$mode-agent" "$INGEST_PORT" "$WORK/$mode-spool" \
    "$extra"
  sed -i "s/segment: seg-test/segment: seg-$mode/" "$WORK/$mode.yaml"
  cw_spawn "$WORK/$mode.log" "$AGENT_BIN" --config "$WORK/$mode.yaml" -r "$SEGMENT_A"
  cw_wait_exit "$CW_LAST_PID" 300
  cw_expect "exit code of the $mode agent" "$CW_EXIT" 0
done
m=$(cw_scrape "$METRICS_PORT")
for mode in plain lz4 zstd; do
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
! grep -q "does not read packed" "$WORK/lz4.log" || fail "the lz4 agent did not send packed batches"
((BATCH[lz4] == BATCH[plain])) ||
  fail "the lz4 agent counted ${BATCH[lz4]} bytes of batches before packing, plain ${BATCH[plain]}"
((SENT[lz4] * 3 < SENT[plain])) ||
  fail "lz4 sent ${SENT[lz4]} bytes, plain ${SENT[plain]}: not even 3x smaller"
records=$(grep "^citywatch_collector_records_received_total{agent=\"zstd-agent\"" <<<"$m" | awk '{ s += $2 } END { print s + 0 }')
((records > 0)) || fail "no records counted for the zstd agent"
((SENT[zstd] * 3 < SENT[plain])) ||
  fail "zstd sent ${SENT[zstd]} bytes, plain ${SENT[plain]}: not even 3x smaller"
per_record() { awk -v s="$1" -v r="$records" 'BEGIN { printf "%.1f", s / r }'; }
smaller() { awk -v a="${SENT[plain]}" -v b="$1" 'BEGIN { printf "%.1f", a / b }'; }
echo "PASS: wire_compression: all three agents delivered exactly $PACKETS packets / $BYTES bytes; $records records each; wire bytes plain ${SENT[plain]} ($(per_record "${SENT[plain]}") B/record), lz4 ${SENT[lz4]} ($(per_record "${SENT[lz4]}") B/record, $(smaller "${SENT[lz4]}")x smaller), zstd ${SENT[zstd]} ($(per_record "${SENT[zstd]}") B/record, $(smaller "${SENT[zstd]}")x smaller); batch payload ${BATCH[plain]} bytes"
