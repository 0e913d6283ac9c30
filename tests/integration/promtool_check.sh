#!/usr/bin/env bash
# The collector's and the agent's /metrics pass `promtool check metrics` with no problem
# reported, after real traffic (segment-a, or a small generated capture).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
command -v promtool >/dev/null || { echo "SKIP: promtool not found" >&2; exit 77; }

PCAP="$WORK/small.pcap"
if [[ -f "$SEGMENT_A" ]]; then PCAP=$SEGMENT_A; else cw_make_small_pcap "$PCAP"; fi

cw_certs "$WORK/pki" demo-agent live-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"

# Traffic first, so every labelled family has series.
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml" -r "$PCAP"
cw_wait_exit "$CW_LAST_PID" 300
cw_expect "exit code of the replaying agent" "$CW_EXIT" 0

# promtool_check NAME PORT: prints promtool's output and returns its status + output check.
promtool_check() {
  local name=$1 port=$2
  cw_scrape "$port" >"$WORK/$name.metrics" || return 1
  local out rc
  out=$(promtool check metrics <"$WORK/$name.metrics" 2>&1)
  rc=$?
  if ((rc != 0)) || [[ -n "$out" ]]; then
    echo "promtool check metrics on the $name /metrics: exit $rc, output:" >&2
    echo "$out" >&2
    return 1
  fi
}

promtool_check collector "$METRICS_PORT" || fail "the collector's /metrics does not pass promtool"
col_families=$(grep -c '^# TYPE' "$WORK/collector.metrics")
col_series=$(grep -vc '^#' "$WORK/collector.metrics")
flows=$(cw_sum citywatch_flows_total <"$WORK/collector.metrics")
((flows > 0)) || fail "no flows at the collector before the promtool check"

# A live agent on lo (a quiet filter), alive while its /metrics is scraped.
cw_agent_config "$WORK/live.yaml" "$WORK/pki" live-agent "$INGEST_PORT" "$WORK/spool-live" "
capture:
  - interface: lo
    filter: \"udp port 9\"
metrics:
  listen: 127.0.0.1:0"
cw_spawn "$WORK/live-agent.log" "$AGENT_BIN" --config "$WORK/live.yaml"
LIVE=$CW_LAST_PID
agent_metrics_port() {
  AGENT_PORT=$(sed -n 's#.*agent: metrics at http://[^ ]*:\([0-9][0-9]*\)/metrics.*#\1#p' "$WORK/live-agent.log" | head -n1)
  [[ -n "$AGENT_PORT" ]] || { kill -0 "$LIVE" 2>/dev/null || fail "the live agent exited"; return 1; }
}
cw_wait_until 100 "the agent's 'metrics at' log line" agent_metrics_port
[[ "$AGENT_PORT" != 0 ]] || fail "the agent logged metrics port 0 (the bound port was not read back)"
live_connected() { [[ "$(cw_metric "$METRICS_PORT" citywatch_collector_agents_connected)" == 1 ]]; }
cw_wait_until 100 "the live agent's session at the collector" live_connected

promtool_check agent "$AGENT_PORT" || fail "the agent's /metrics does not pass promtool"
agent_families=$(grep -c '^# TYPE' "$WORK/agent.metrics")
agent_series=$(grep -vc '^#' "$WORK/agent.metrics")
cw_stop "$LIVE"
cw_expect "exit code of the live agent after SIGTERM" "$CW_EXIT" 0

echo "PASS: promtool check metrics clean (exit 0, no output): collector $col_families families / $col_series series after $flows flows from $(basename "$PCAP"); live agent on lo $agent_families families / $agent_series series"
