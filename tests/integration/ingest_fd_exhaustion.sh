#!/usr/bin/env bash
# Out of file descriptors, the collector's accept loop backs off instead of spinning a core
# (issue 11, item 4: it used to burn a whole core, silently). With a real collector whose
# soft RLIMIT_NOFILE is lowered to what it already holds, a client opens more connections
# than fit: the collector must log "ingest: accept failed", count
# citywatch_collector_connections_rejected_total{reason="accept_error"}, use little CPU
# while descriptors are out (clock ticks over a window: a resource check, not a timing one),
# and deliver a real agent's capture once the limit is restored.
# Registered for builds without sanitizers only: with no descriptor left, the ASan/UBSan
# runtime cannot read /proc/self/maps and reports false errors from inside its own checks.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
command -v prlimit >/dev/null || fail "prlimit (util-linux) not found"
PY=/usr/bin/python3
CLIENT="$SRC_DIR/tests/integration/ingest_client.py"
rejected() { cw_metric "$1" citywatch_collector_connections_rejected_total "reason=\"$2\""; }
line_in() { grep -q "$2" "$1" 2>/dev/null; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

cw_certs "$WORK/pki" demo-agent
cw_collector_config "$WORK/a.yaml" "$WORK/pki" "$WORK/state-a" "agents: {frame_timeout: 600s, max_sessions: 30}"
cw_start_collector a "$WORK/a.yaml"
A_PORT=$INGEST_PORT A_METRICS=$METRICS_PORT A_PID=$COL_PID
cw_scrape "$A_METRICS" >/dev/null

# The limit is lowered to what the collector holds.
open_fds=$(ls "/proc/$A_PID/fd" | wc -l)
max_fd=$(ls "/proc/$A_PID/fd" | sort -n | tail -1)
old_limit=$(prlimit --pid "$A_PID" --nofile --noheadings --output SOFT,HARD | awk '{print $1":"$2}')
old_hard=${old_limit#*:}
# Only the soft limit: raising a hard limit back needs CAP_SYS_RESOURCE.
prlimit --pid "$A_PID" --nofile=$((max_fd + 1)):"$old_hard" || fail "prlimit failed"
cw_spawn "$WORK/connect.log" $PY "$CLIENT" connect 127.0.0.1 "$A_PORT" $((max_fd + 1 - open_fds + 8))
CONNECT=$CW_LAST_PID
cw_wait_until 300 "the collector logs that it cannot accept" line_in "$WORK/a.log" 'ingest: accept failed'
t0=$(cpu_ticks "$A_PID")
sleep 2  # a resource window, not a latency check: a spinning accept loop burns ~200 ticks
t1=$(cpu_ticks "$A_PID")
cpu=$((t1 - t0))
((cpu < 50)) || fail "the collector used $cpu clock ticks of CPU in 2 s while out of descriptors"
cw_stop "$CONNECT"
prlimit --pid "$A_PID" --nofile="$old_limit" || fail "cannot restore the limit"
# /metrics could not accept either while descriptors were out; it can now.
counted() { (($(rejected "$A_METRICS" accept_error) >= 1)); }
cw_wait_until 100 "rejected{accept_error} counted" counted
accept_errors=$(rejected "$A_METRICS" accept_error)

# A real agent then delivers.
cw_make_small_pcap "$WORK/small.pcap"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "$A_PORT" "$WORK/spool"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml" -r "$WORK/small.pcap"
cw_wait_exit "$CW_LAST_PID" 300
cw_expect "exit code of the agent" "$CW_EXIT" 0
flows=$(cw_metric "$A_METRICS" citywatch_flows_total)
((flows > 0)) || fail "the agent delivered no flows after the limit was restored"
echo "PASS: ingest_fd_exhaustion: $accept_errors accept errors counted, ${cpu} clock ticks of CPU in 2 s out of descriptors, then $flows flows delivered"
