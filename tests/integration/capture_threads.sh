#!/usr/bin/env bash
# Capture threads (issue 16; docs/packet-capture.md, "Capture threads"): an agent capturing
# one interface with `threads: 2` (a PACKET_FANOUT group of two sockets, each thread with its
# own ring, meter and extractor) must deliver what crossed the wire exactly, report each
# thread as a source of its own (packets and drops), and spread the flows over both threads.
# Two network namespaces joined by a veth pair: tcpreplay sends segment-a from one end at a
# bounded rate; the agent and a collector run in the other (loopback inside it). The flows
# expire on short timeouts while the agent runs, so the collector's totals must come to
# segment-a's 29,327 IP packets and 6,513,622 bytes.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
cw_need_segment_a
((EUID == 0)) || fail "needs root to create network namespaces"
for tool in ip tcpreplay curl tshark; do
  command -v "$tool" >/dev/null || fail "$tool not found (the README's test command installs it)"
done
PACKETS=29327 BYTES=6513622

# No addresses on the veth: the only frames on the wire are the ones tcpreplay sends.
cw_netns_pair ct
# segment-a holds GSO super-frames of up to 65,226 bytes, captured before segmentation.
ip -n "$NSA" link set "$VA" mtu 65535 up || fail "veth mtu"
ip -n "$NSB" link set "$VB" mtu 65535 up || fail "veth mtu"

cw_certs "$WORK/pki" thread-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_spawn "$WORK/collector.log" ip netns exec "$NSA" "$COLLECTOR_BIN" --config "$WORK/collector.yaml" \
  --ready-file "$WORK/collector.ready"
collector_ready() { [[ -s $WORK/collector.ready ]]; }
cw_wait_until 300 "collector ready" collector_ready
INGEST_PORT=$(sed -n 's/.*"ingest_port":\([0-9]*\).*/\1/p' "$WORK/collector.ready")
METRICS_PORT=$(sed -n 's/.*"metrics_port":\([0-9]*\).*/\1/p' "$WORK/collector.ready")
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" thread-agent "$INGEST_PORT" "$WORK/spool" "capture:
  - interface: $VA
    threads: 2
flow_meter:
  idle_timeout: 2s
  active_timeout: 60s
batch:
  max_delay: 200ms
metrics:
  listen: 127.0.0.1:9466"
cw_spawn "$WORK/agent.log" ip netns exec "$NSA" "$AGENT_BIN" --config "$WORK/agent.yaml"
AGENT_PID=$CW_LAST_PID
scrape_agent() { inA curl -sf --max-time 5 http://127.0.0.1:9466/metrics; }
scrape_collector() { inA curl -sf --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics"; }
threads_up() {
  local m
  m=$(scrape_agent) || return 1
  grep -q "^citywatch_agent_packets_total{.*source=\"$VA@1\"" <<<"$m" &&
    grep -q "^citywatch_agent_packets_total{.*source=\"$VA@2\"" <<<"$m"
}
cw_wait_until 100 "both capture threads exporting" threads_up
grep -q "with 2 threads (PACKET_FANOUT group" "$WORK/agent.log" || fail "no fanout group logged"

ip netns exec "$NSB" tcpreplay -q --pps 20000 -i "$VB" "$SEGMENT_A" >"$WORK/tcpreplay.log" 2>&1 ||
  fail "tcpreplay failed: $(tail -3 "$WORK/tcpreplay.log")"
sent=$(sed -n 's/.*Successful packets: *\([0-9]*\).*/\1/p' "$WORK/tcpreplay.log")
cw_log "tcpreplay: $(grep -E 'Actual|Successful|Failed' "$WORK/tcpreplay.log" | tr -s ' ' | tr '\n' ' ')"

delivered() { scrape_collector | cw_sum citywatch_flow_packets_total 'agent="thread-agent"'; }
all_delivered() { [[ $(delivered) == "$PACKETS" ]]; }
thread_counts() { scrape_agent | grep -E '^citywatch_agent_(packets|packets_decoded|flow_packets)_total' | tr '\n' ' '; }
for ((i = 0; i < 300; i++)); do
  all_delivered && break
  sleep "$CW_POLL"
done
all_delivered || fail "the collector counted $(delivered) packets, not $PACKETS; the agent: $(thread_counts)"
m=$(scrape_collector)
cw_expect "packets at the collector" "$(cw_sum citywatch_flow_packets_total 'agent="thread-agent"' <<<"$m")" $PACKETS
cw_expect "bytes at the collector" "$(cw_sum citywatch_flow_bytes_total 'agent="thread-agent"' <<<"$m")" $BYTES

a=$(scrape_agent)
p1=$(cw_sum citywatch_agent_packets_total "source=\"$VA@1\"" <<<"$a")
p2=$(cw_sum citywatch_agent_packets_total "source=\"$VA@2\"" <<<"$a")
d1=$(cw_sum citywatch_agent_packets_dropped_total "source=\"$VA@1\"" <<<"$a")
d2=$(cw_sum citywatch_agent_packets_dropped_total "source=\"$VA@2\"" <<<"$a")
grep -q "^citywatch_agent_packets_dropped_total{.*source=\"$VA@2\".*where=\"kernel\"" <<<"$a" ||
  fail "no kernel drop counter for thread 2"
cw_expect "frames seen by both threads (tcpreplay sent $sent)" $((p1 + p2)) "$sent"
cw_expect "frames dropped by thread 1" "$d1" 0
cw_expect "frames dropped by thread 2" "$d2" 0
# The flood alone is thousands of flows: a hash that sends every flow to one thread fails.
((p1 > sent / 10 && p2 > sent / 10)) || fail "flows not spread over the threads: $p1 and $p2 frames"

# SIGHUP with a new BPF filter: each thread installs it before its next read. Replayed again,
# only segment-a's IP packets that are not TCP may be added.
sed -i "s/^    threads: 2$/    threads: 2\n    filter: not tcp/" "$WORK/agent.yaml"
kill -HUP "$AGENT_PID"
reloaded() { grep -q "configuration reloaded.*1 capture filter(s) changed" "$WORK/agent.log"; }
cw_wait_until 100 "the agent to reload its capture filter" reloaded
# Each thread installs the filter when its poll() wakes, and says so.
filters_in_place() {
  grep -q "capture: $VA@1: filter \"not tcp\" installed" "$WORK/agent.log" &&
    grep -q "capture: $VA@2: filter \"not tcp\" installed" "$WORK/agent.log"
}
cw_wait_until 100 "both capture threads to install the filter" filters_in_place
NON_TCP=$(tshark -r "$SEGMENT_A" -Y '(ip or ipv6) and not tcp' -T fields -e frame.number 2>/dev/null | wc -l)
((NON_TCP > 0)) || fail "tshark found no non-TCP IP packet in segment-a"
ip netns exec "$NSB" tcpreplay -q --pps 20000 -i "$VB" "$SEGMENT_A" >"$WORK/tcpreplay2.log" 2>&1 ||
  fail "tcpreplay failed: $(tail -3 "$WORK/tcpreplay2.log")"
PACKETS2=$((PACKETS + NON_TCP))
second_delivered() { [[ $(delivered) == "$PACKETS2" ]]; }
for ((i = 0; i < 300; i++)); do
  second_delivered && break
  sleep "$CW_POLL"
done
sleep 2.5  # anything the filter let through would have expired by now (idle timeout 2 s)
cw_expect "packets at the collector after the filtered replay" "$(delivered)" "$PACKETS2"

cw_stop "$AGENT_PID"
cw_expect "agent exit code" "$CW_EXIT" 0
echo "PASS: capture_threads: 2 threads saw $p1 + $p2 of $sent frames, 0 drops; the collector counted exactly $PACKETS packets / $BYTES bytes; after SIGHUP with 'not tcp', exactly $NON_TCP more"
