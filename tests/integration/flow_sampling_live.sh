#!/usr/bin/env bash
# Real exporters with sampling on, live to the agent (issue 18, acceptance 2): softflowd
# (NetFlow v9, -s 10: 1-in-10 periodic, announced as SAMPLING_INTERVAL options), pmacctd's
# nfprobe (IPFIX, sampling_rate 10: random, announced as FLOW_SAMPLER_* options and a
# sampler ID on every record) and sfprobe (sFlow v5, each sample's rate 10) export
# segment-a.pcap to the agent's listener; tcpdump keeps what they sent.
# For each exporter:
#   - every record: `citywatch-agent decode` of the capture = tshark's raw counters x the
#     rate tshark reads from the same options (tests/integration/sampling_check.py live);
#   - the collector's flow totals grow by exactly the sum of raw x rate;
#   - that estimate is within 5 standard deviations of the unsampled truth
#     (../shared/testdata/flows/*.truth.json): for 1-in-r sampling of N packets of sizes s_i,
#     Var(packets) = N (r - 1) and Var(bytes) = (r - 1) sum(s_i^2), sizes from tshark.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
cw_need_segment_a
for tool in softflowd pmacctd tcpdump tshark; do
  command -v "$tool" >/dev/null || fail "$tool not found (scripts/install-deps.sh installs it)"
done
TRUTH="$SRC_DIR/../shared/testdata/flows"
RATE=10

cw_certs "$WORK/pki" sampled-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" sampled-agent "$INGEST_PORT" "$WORK/spool" "
flow_listeners:
  - listen: 127.0.0.1:0
    formats: [netflow_v9, ipfix, sflow]
metrics:
  listen: 127.0.0.1:0"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
cw_flow_listener "$WORK/agent.log"
cw_agent_metrics "$WORK/agent.log"
PORT=$FLOW_PORT

# Sum of squared sizes in segment-a (frame lengths bound the IP lengths NetFlow counts).
SUMSQ=$(tshark -r "$SEGMENT_A" -T fields -e frame.len 2>/dev/null | awk '{ s += $1 * $1 } END { printf "%.0f", s }')
truth() { sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p" "$TRUTH/$1.truth.json"; }
field() { sed -n "s/.*\"$2\": *\([0-9]*\).*/\1/p" <<<"$1"; }

collected_p=0
collected_b=0
# stage NAME KIND TRUTH_FILE TRUTH_PACKETS_KEY TRUTH_BYTES_KEY COMMAND...: runs the exporter
# while tcpdump records its datagrams, then checks as above.
stage() {
  local name=$1 kind=$2 tfile=$3 tpk=$4 tbk=$5
  shift 5
  local cap="$WORK/$name.pcap"
  cw_udp_capture_start "$cap" "$PORT"
  local d0
  d0=$(cw_metric "$AGENT_METRICS" citywatch_agent_flow_datagrams_total)
  local rc=0
  "$@" >"$WORK/$name.log" 2>&1 || rc=$?
  # pmacctd (1.7.7) reading a file exits 1 now and then at the end: its plugin, told to stop
  # at end of file, flushes and exits before the core has closed the pipe to it, and the core
  # takes that for a lost plugin (about 1 run in 4 with sfprobe, seen in CI and by hand). That
  # is pmacctd's own shutdown, after every export was sent (by hand, 10 runs: 344 datagrams
  # each, whether it exited 0 or 1); the checks below judge the export.
  if ((rc == 1)) && [[ "$1 $2 $3" == "timeout 120 pmacctd" ]] &&
    grep -q "Shutting down on user request" "$WORK/$name.log" &&
    [[ $(tail -n 1 "$WORK/$name.log") == *"no more plugins active. Shutting down."* ]]; then
    cw_log "$name: pmacctd exited 1 after its plugin had finished (its shutdown race); checking the export"
  elif ((rc != 0)); then
    fail "$name failed (exit $rc): $(tail -3 "$WORK/$name.log")"
  fi
  cw_udp_capture_stop
  local sum
  sum=$(python3 "$SRC_DIR/tests/integration/sampling_check.py" live "$cap" "$PORT" "$kind" "$AGENT_BIN") ||
    fail "$name: $sum"
  cw_log "$name: $sum"
  local sp sb
  sp=$(field "$sum" scaled_packets)
  sb=$(field "$sum" scaled_bytes)
  grep -q "\"$RATE\": " <<<"$sum" || fail "$name: no record at rate $RATE: $sum"
  collected_p=$((collected_p + sp))
  collected_b=$((collected_b + sb))
  _reached() { (($(cw_metric "$METRICS_PORT" citywatch_flow_packets_total) >= collected_p)); }
  cw_wait_until 600 "the collector's packets to reach $collected_p" _reached
  local M
  M=$(cw_scrape "$METRICS_PORT")
  cw_log "$name: agent received $(($(cw_metric "$AGENT_METRICS" citywatch_agent_flow_datagrams_total) - d0)) datagrams, tcpdump captured $(tcpdump -r "$cap" 2>/dev/null | wc -l)"
  cw_expect "$name: collector packets = sum of raw x rate" "$(cw_sum citywatch_flow_packets_total <<<"$M")" "$collected_p"
  cw_expect "$name: collector bytes = sum of raw x rate" "$(cw_sum citywatch_flow_bytes_total <<<"$M")" "$collected_b"
  local np nb
  np=$(truth "$tfile" "$tpk")
  nb=$(truth "$tfile" "$tbk")
  awk -v est="$sp" -v n="$np" -v r="$RATE" -v what="packets" -v name="$name" 'BEGIN {
    sd = sqrt(n * (r - 1)); d = est - n; if (d < 0) d = -d
    printf "[flow_sampling_live] %s: %s estimated %d, unsampled truth %d, off by %.2f%% = %.2f sd\n", name, what, est, n, 100 * d / n, d / sd
    exit !(d <= 5 * sd) }' >&2 || fail "$name: estimated packets $sp not within 5 sd of the truth $np"
  awk -v est="$sb" -v n="$nb" -v r="$RATE" -v sq="$SUMSQ" -v what="bytes" -v name="$name" 'BEGIN {
    sd = sqrt(sq * (r - 1)); d = est - n; if (d < 0) d = -d
    printf "[flow_sampling_live] %s: %s estimated %d, unsampled truth %d, off by %.2f%% = %.2f sd\n", name, what, est, n, 100 * d / n, d / sd
    exit !(d <= 5 * sd) }' >&2 || fail "$name: estimated bytes $sb not within 5 sd of the truth $nb"
}

cd "$(dirname "$SEGMENT_A")" || fail "cannot enter $(dirname "$SEGMENT_A")"
stage softflowd-v9 cflow softflowd-v9 packets octets \
  timeout 120 softflowd -r "$(basename "$SEGMENT_A")" -n "127.0.0.1:$PORT" -v 9 -d -t maxlife=60 -s "$RATE"
cd "$WORK" || fail "cannot enter $WORK"
printf 'daemonize: false\npcap_savefile: %s\npcap_savefile_wait: false\nsampling_rate: %s\nplugins: nfprobe[a]\nnfprobe_receiver[a]: 127.0.0.1:%s\nnfprobe_version[a]: 10\nnfprobe_timeouts[a]: maxlife=60\n' \
  "$SEGMENT_A" "$RATE" "$PORT" >"$WORK/nf.conf"
stage pmacctd-ipfix cflow pmacct-v10 packets octets timeout 120 pmacctd -f "$WORK/nf.conf"
printf 'daemonize: false\npcap_savefile: %s\npcap_savefile_wait: false\nsampling_rate: %s\nplugins: sfprobe[a]\nsfprobe_receiver[a]: 127.0.0.1:%s\nsfprobe_agentip[a]: 127.0.0.1\n' \
  "$SEGMENT_A" "$RATE" "$PORT" >"$WORK/sf.conf"
stage pmacctd-sflow sflow pmacct-sflow estimated_packets estimated_bytes timeout 120 pmacctd -f "$WORK/sf.conf"

A=$(cw_scrape "$AGENT_METRICS")
cw_expect "agent flow decode errors" "$(cw_sum citywatch_agent_flow_decode_errors_total <<<"$A")" 0
cw_expect "agent flow kernel drops" "$(cw_sum citywatch_agent_flow_datagrams_dropped_total <<<"$A")" 0
echo "PASS: flow_sampling_live: softflowd v9, pmacctd IPFIX and sFlow at 1 in $RATE: every record = raw x rate (tshark), collector $collected_p packets / $collected_b bytes exactly, each estimate within 5 sd of the unsampled truth"
