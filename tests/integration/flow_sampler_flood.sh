#!/usr/bin/env bash
# Exporters sending flows cannot be locked out of the sampling-rate table or the template
# cache by a flood of announcements nobody sends flows for, from one address or from many
# (spoofed) ones. Found by attacking the agent: the rate table was first-come with a global
# 4,096, so after a flood a real exporter's "1 in 100" was never learned and its flows went
# to the collector 100 times too small, silently; and 4,500 templates from 300 addresses
# evicted the template an exporter was sending data with. With NetFlow v9 on loopback:
#   - 127.0.0.7 announces sampler 1 at 1 in 100, its data template, and 10 flows of 5
#     packets: 5,000 packets at the collector;
#   - 127.0.0.66 announces 5,000 samplers, and 300 addresses 127.1.X.Y announce 20 samplers
#     and 15 templates each (6,000 rates and 4,500 templates: more than either table holds),
#     never followed by data;
#   - 127.0.0.8, new, announces sampler 1 at 1 in 100 and sends 10 flows of 5 packets: 5,000;
#   - 127.0.0.7 sends 10 more flows without announcing anything again: 10,000 in all (its
#     rate and its template, both in use, outlasted the flood);
#   - what could not be kept is counted (sampling events "not_learned", evictions).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"

cw_certs "$WORK/pki" flow-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" flow-agent "$INGEST_PORT" "$WORK/spool" "
state_dir: $WORK/agent-state
flow_listeners:
  - listen: 127.0.0.1:0
    formats: [netflow_v9]
metrics:
  listen: 127.0.0.1:0"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
cw_agent_metrics "$WORK/agent.log"
cw_flow_listener "$WORK/agent.log"
am() { cw_metric "$AGENT_METRICS" "$@"; }
packets_from() { cw_metric "$METRICS_PORT" citywatch_flow_packets_total "exporter=\"$1\""; }

# send KIND SOURCE: NetFlow v9 (RFC 3954) from SOURCE (a loopback address) to the agent:
#   announce  options template 300 (scope: system; FLOW_SAMPLER_ID 48, RANDOM_INTERVAL 50),
#             sampler 1 at 1 in 100, and data template 256
#   flows     10 flows of 5 packets, 500 bytes each, sampled by sampler 1 (template 256)
#   flood     one address: 5,000 samplers at 1 in 10; then 300 addresses 127.1.X.Y: 20
#             samplers and 15 data templates each (all sent at a bounded pace)
send() {
  /usr/bin/python3 - "$FLOW_PORT" "$1" "$2" <<'PY'
import socket, struct, sys, time
port, kind, src = int(sys.argv[1]), sys.argv[2], sys.argv[3]
agent = ("127.0.0.1", port)
def v9(source_id, flowsets, seq=0):
    body = b"".join(flowsets)
    return struct.pack("!HHIIII", 9, 1, 1000, int(time.time()), seq, source_id) + body
def flowset(fid, body):
    body += b"\0" * (-len(body) % 4)
    return struct.pack("!HH", fid, 4 + len(body)) + body
def template(tid, fields):
    return flowset(0, struct.pack("!HH", tid, len(fields)) + b"".join(struct.pack("!HH", *f) for f in fields))
def options_template():
    scope, opts = [(1, 4)], [(48, 2), (50, 4)]
    return flowset(1, struct.pack("!HHH", 300, 4 * len(scope), 4 * len(opts)) +
                   b"".join(struct.pack("!HH", *f) for f in scope + opts))
def samplers(ids, interval):
    return flowset(300, b"".join(struct.pack("!IHI", 1, i, interval) for i in ids))
DATA = [(8, 4), (12, 4), (4, 1), (2, 4), (1, 4), (48, 2), (22, 4), (21, 4)]
def sender(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 0))
    return s
if kind == "announce":
    sender(src).sendto(v9(1, [options_template(), samplers([1], 100), template(256, DATA)]), agent)
elif kind == "flows":
    recs = b"".join(struct.pack("!4s4sBIIHII", bytes([10, 0, 0, 1]), bytes([10, 0, 1, i]), 17, 5, 500, 1, 2000, 1000)
                    for i in range(10))
    sender(src).sendto(v9(1, [flowset(256, recs)], seq=1), agent)
else:
    s = sender(src)
    for base in range(0, 5000, 100):
        s.sendto(v9(7, [options_template(), samplers(range(base + 1, base + 101), 10)]), agent)
        time.sleep(0.002)
    for n in range(300):
        s = sender("127.1.%d.%d" % (n // 250, n % 250 + 1))
        s.sendto(v9(7, [options_template(), samplers(range(1, 21), 10)]), agent)
        s.sendto(v9(7, [template(256 + t, DATA) for t in range(15)]), agent)
        if n % 20 == 19: time.sleep(0.01)
PY
}

send announce 127.0.0.7
send flows 127.0.0.7
first() { [[ "$(packets_from 127.0.0.7)" == 5000 ]]; }
cw_wait_until 300 "127.0.0.7's 10 sampled flows at the collector as 5,000 packets" first

send flood 127.0.0.66
flood_seen() {
  (( $(am citywatch_agent_flow_exporter_datagrams_total) >= 2 + 50 + 600 ))
}
cw_wait_until 300 "the flood's 650 datagrams read by the agent" flood_seen
templates=$(am citywatch_agent_flow_templates)
learned=$(am citywatch_agent_flow_sampling_events_total 'event="not_learned"')
own=$(am citywatch_agent_flow_sampling_events_total 'exporter="127.0.0.66"' 'event="not_learned"')
evicted=$(am citywatch_agent_flow_sampling_rates_evicted_total)
tevicted=$(am citywatch_agent_flow_template_evictions_total 'reason="cache_full"')
echo "after the flood: $templates templates ($tevicted evicted, cache full); sampling rates: $evicted evicted, $learned not learned ($own of them 127.0.0.66's beyond its 256)"
cw_expect "127.0.0.66's rates beyond its share of 256, not learned" "$own" $((5000 - 256))
((evicted > 0)) || fail "no unused sampling rate made way in the full table"
((tevicted > 0)) || fail "the template flood did not fill the cache (nothing to prove)"

send announce 127.0.0.8
send flows 127.0.0.8
newcomer() { [[ "$(packets_from 127.0.0.8)" == 5000 ]]; }
cw_wait_until 300 "127.0.0.8's flows, sampled 1 in 100 after the flood, as 5,000 packets" newcomer
send flows 127.0.0.7
kept() { [[ "$(packets_from 127.0.0.7)" == 10000 ]]; }
cw_wait_until 300 "127.0.0.7's next flows decoded and scaled with its rate and template kept: 10,000 packets" kept
cw_expect "127.0.0.7 data waiting for a template" \
  "$(am citywatch_agent_flow_decode_errors_total 'exporter="127.0.0.7"' 'reason="template_missing"')" 0
cw_expect "127.0.0.7 data sets held" "$(am citywatch_agent_flow_held_sets_total 'exporter="127.0.0.7"' 'outcome="held"')" 0
echo "PASS: flow_sampler_flood: 6,000 sampling rates and 4,500 templates announced from 301 addresses; 127.0.0.8's rate learned after it (5,000 packets), 127.0.0.7's rate and template kept (10,000 packets); $evicted unused rates evicted, $own refused beyond 127.0.0.66's share"
