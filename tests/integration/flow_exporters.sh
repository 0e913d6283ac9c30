#!/usr/bin/env bash
# End to end with real exporters: softflowd (NetFlow v9) and pmacctd (nfprobe IPFIX, sfprobe
# sFlow v5) export segment-a.pcap over loopback to the agent's flow listener; the agent
# forwards to the collector. After each exporter, the collector's flow totals must have grown
# by exactly what tshark decoded from the same exporters' output
# (../shared/testdata/flows/*.truth.json), per IP protocol.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
cw_need_segment_a
for tool in softflowd pmacctd tcpdump tshark python3; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not found" >&2; exit 77; }
done
TRUTH="$SRC_DIR/../shared/testdata/flows"

cw_certs "$WORK/pki" flow-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"

cw_agent_config "$WORK/agent.yaml" "$WORK/pki" flow-agent "$INGEST_PORT" "$WORK/spool" "
state_dir: $WORK/agent-state
flow_listeners:
  - listen: 127.0.0.1:0
    formats: [netflow_v5, netflow_v9, ipfix, sflow]
metrics:
  listen: 127.0.0.1:0"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
AGENT_PID=$CW_LAST_PID
listener_port() { sed -n 's/.*flow listener udp:127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/agent.log" 2>/dev/null | head -1; }
have_listener() { [[ -n "$(listener_port)" ]]; }
cw_wait_until 300 "the agent's flow listener" have_listener
PORT=$(listener_port)
AM_PORT=$(sed -n 's/.*metrics at http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/agent.log" | head -1)
cw_log "agent flow listener on 127.0.0.1:$PORT"

# truth FILE KEY: one integer from a truth file.
truth() { sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p" "$TRUTH/$1.truth.json"; }

declare -A want_p want_b
want_packets=0
want_bytes=0
# expect_totals WHAT: waits (bounded) until the collector's totals reach the expected sums,
# then checks them and each protocol exactly.
expect_totals() {
  local i got=0
  for ((i = 0; i < 600; i++)); do
    got=$(cw_metric "$METRICS_PORT" citywatch_flow_packets_total)
    ((got >= want_packets)) && break
    sleep "$CW_POLL"
  done
  if ((got < want_packets)); then
    # Say who lost what: the agent's datagram, record and drop counters, the exporter's log.
    cw_log "agent flow counters: $(cw_scrape "$AM_PORT" | grep -E '^citywatch_agent_flow_(datagrams|records|datagrams_dropped|decode_errors)_total' | grep -v ' 0$' | tr '\n' ' ')"
    cw_log "exporter log: $(tail -5 "$WORK"/pmacctd-*.log "$WORK/softflowd.log" 2>/dev/null | tr '\n' ' ')"
    fail "$1: collector packets $got, expected $want_packets"
  fi
  # Settle: the batch that completes the total is the last one (exporters have exited).
  local M
  M=$(cw_scrape "$METRICS_PORT")
  cw_expect "$1: sum(citywatch_flow_packets_total)" "$(cw_sum citywatch_flow_packets_total <<<"$M")" "$want_packets"
  cw_expect "$1: sum(citywatch_flow_bytes_total)" "$(cw_sum citywatch_flow_bytes_total <<<"$M")" "$want_bytes"
  local proto
  for proto in "${!want_p[@]}"; do
    cw_expect "$1: packets{protocol=\"$proto\"}" \
      "$(cw_sum citywatch_flow_packets_total "protocol=\"$proto\"" <<<"$M")" "${want_p[$proto]}"
    cw_expect "$1: bytes{protocol=\"$proto\"}" \
      "$(cw_sum citywatch_flow_bytes_total "protocol=\"$proto\"" <<<"$M")" "${want_b[$proto]}"
  done
}
add_truth() {  # add_truth NAME: NetFlow truth files carry per-protocol totals
  local name=$1 num label
  want_packets=$((want_packets + $(truth "$name" packets)))
  want_bytes=$((want_bytes + $(truth "$name" octets)))
  for num in 6 17 1 58; do
    case $num in 6) label=tcp ;; 17) label=udp ;; 1) label=icmp ;; 58) label=icmpv6 ;; esac
    want_p[$label]=$((${want_p[$label]:-0} + $(truth "$name" "proto_${num}_packets" || echo 0)))
    want_b[$label]=$((${want_b[$label]:-0} + $(truth "$name" "proto_${num}_octets" || echo 0)))
  done
}

# 1. softflowd, NetFlow v9 (as ../shared/tools/gen-flows.sh ran it).
(cd "$(dirname "$SEGMENT_A")" && timeout 120 softflowd -r "$(basename "$SEGMENT_A")" \
  -n "127.0.0.1:$PORT" -v 9 -d -t maxlife=60) >"$WORK/softflowd.log" 2>&1 ||
  fail "softflowd failed: $(tail -3 "$WORK/softflowd.log")"
add_truth softflowd-v9
expect_totals "softflowd v9"

# 2. pmacctd nfprobe, IPFIX. pmacctd runs with the configuration that made the truth files:
# its output depends on it (with larger plugin buffers sfprobe samples 2 more frames), and
# on a busy host its default buffers can lose data, so ctest runs this test alone
# (RUN_SERIAL); a shortfall is reported with the agent's own counters to show who lost it.
printf 'daemonize: false\npcap_savefile: %s\npcap_savefile_wait: false\nplugins: nfprobe[a]\nnfprobe_receiver[a]: 127.0.0.1:%s\nnfprobe_version[a]: 10\nnfprobe_timeouts[a]: maxlife=60\n' \
  "$SEGMENT_A" "$PORT" >"$WORK/nf.conf"
(cd "$WORK" && timeout 120 pmacctd -f "$WORK/nf.conf") >"$WORK/pmacctd-nf.log" 2>&1
add_truth pmacct-v10
expect_totals "pmacctd IPFIX"

# 3. pmacctd sfprobe, sFlow v5 1-in-1. Its output varies by a sample or two between runs
# (29,324 samples in the truth file, sometimes 29,326 live), so its datagrams are also
# captured here (tcpdump on lo) and decoded by the same independent tool that made the truth
# files (tshark via ../shared/tools/flow-truth.py): the collector must equal that exactly,
# and that must be within 0.01 % of the truth file.
SFLOW_CAP="$WORK/sflow-live.pcap"
tcpdump -i lo -s 0 -U -w "$SFLOW_CAP" "udp dst port $PORT" >"$WORK/tcpdump.log" 2>&1 &
TCPDUMP_PID=$!
CW_PIDS+=("$TCPDUMP_PID")
tcpdump_ready() { grep -q "listening on" "$WORK/tcpdump.log"; }
cw_wait_until 100 "tcpdump listening on lo" tcpdump_ready
printf 'daemonize: false\npcap_savefile: %s\npcap_savefile_wait: false\nplugins: sfprobe[a]\nsfprobe_receiver[a]: 127.0.0.1:%s\nsfprobe_sampling_rate[a]: 1\nsfprobe_agentip[a]: 127.0.0.1\n' \
  "$SEGMENT_A" "$PORT" >"$WORK/sf.conf"
(cd "$WORK" && timeout 120 pmacctd -f "$WORK/sf.conf") >"$WORK/pmacctd-sf.log" 2>&1
kill -INT "$TCPDUMP_PID"
cw_wait_exit "$TCPDUMP_PID" 100
python3 "$SRC_DIR/../shared/tools/flow-truth.py" "$SFLOW_CAP" "$PORT" sflow >"$WORK/sflow-live.truth.json" ||
  fail "flow-truth.py failed on the live sFlow capture"
live() { sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" "$WORK/sflow-live.truth.json"; }
live_p=$(live estimated_packets)
live_b=$(live estimated_bytes)
file_p=$(truth pmacct-sflow estimated_packets)
file_b=$(truth pmacct-sflow estimated_bytes)
cw_log "sFlow: live capture (tshark) $live_p packets / $live_b bytes; truth file $file_p / $file_b"
awk -v a="$live_p" -v b="$file_p" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d * 10000 <= b) }' ||
  fail "pmacctd's live sFlow output ($live_p packets) is not within 0.01 % of the truth file ($file_p)"
want_packets=$((want_packets + live_p))
want_bytes=$((want_bytes + live_b))
# sFlow bytes are whole frames (L2 included), so per-protocol bytes are not comparable to
# the NetFlow truth: check the totals only from here on.
want_p=()
want_b=()
expect_totals "pmacctd sFlow"

# The agent saw no decode errors and the kernel dropped nothing it did not report.
A=$(cw_scrape "$AM_PORT")
errors=$(cw_sum citywatch_agent_flow_decode_errors_total <<<"$A")
drops=$(cw_sum citywatch_agent_flow_datagrams_dropped_total <<<"$A")
cw_expect "agent flow decode errors" "$errors" 0
cw_expect "agent flow kernel drops" "$drops" 0
echo "PASS: softflowd v9 + pmacctd IPFIX (= truth files, per protocol) + pmacctd sFlow ($live_p packets / $live_b bytes = tshark on the live datagrams; truth file $file_p / $file_b) via the agent's listener: collector packets $want_packets, bytes $want_bytes; decode errors 0, drops 0"
