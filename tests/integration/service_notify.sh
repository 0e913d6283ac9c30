#!/usr/bin/env bash
# Both daemons speak systemd's notify protocol (sd_notify(3)) to a service manager: here a
# datagram socket of the test's own, set as NOTIFY_SOCKET with WATCHDOG_USEC=1 s and
# WATCHDOG_PID the daemon's, as systemd sets them for the shipped units (Type=notify,
# WatchdogSec=). For the collector, then the agent (a live one: a flow listener):
#   1. READY=1 comes once the daemon listens: at that moment, without a retry, its metrics
#      endpoint answers (and the collector's ingest port and the agent's flow port are bound);
#   2. WATCHDOG=1 keeps coming while the daemon runs (every 0.25 s here); stopped with SIGSTOP
#      it sends none, and resumed it pings again: a frozen daemon is what systemd's watchdog
#      catches (that the pings come from the event loop, not a thread of their own, is
#      tests/common/service_notify_test.cc's);
#   3. SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 again; a reload the agent
#      refuses says so in STATUS=;
#   4. SIGTERM: STOPPING=1, and the daemon exits 0.
# The package test (tests/package/debian.sh) runs the same units under a real systemd.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"

# The manager's socket: each datagram one line of $WORK/NAME.notify, newlines as " | ".
cat >"$WORK/manager.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        out.write(s.recv(4096).decode("utf-8", "replace").replace("\n", " | ") + "\n")
PY
start_manager() { # NAME
  local sock="$WORK/$1.sock"
  cw_spawn "$WORK/$1.manager.log" /usr/bin/python3 "$WORK/manager.py" "$sock" "$WORK/$1.notify"
  cw_wait_until 100 "the $1 manager's socket" test -S "$sock"
  touch "$WORK/$1.notify"
}
# spawn_notified NAME LOG CMD...: CMD with the manager's socket and a 1 s watchdog; PID in
# CW_LAST_PID. bash execs CMD, so WATCHDOG_PID=$$ is CMD's PID, as systemd sets it.
spawn_notified() {
  local name=$1 log=$2
  shift 2
  cw_spawn "$log" env NOTIFY_SOCKET="$WORK/$name.sock" WATCHDOG_USEC=1000000 \
    bash -c 'export WATCHDOG_PID=$$; exec "$@"' _ "$@"
}
count() { grep -c -- "$2" "$WORK/$1.notify" || true; }
has() { grep -q -- "$2" "$WORK/$1.notify"; }

# start_notified NAME METRICS_PORT CMD...: a manager for NAME, then CMD under it (PID in
# NOTIFIED_PID); waits for READY=1, and at once, without a retry, its metrics endpoint must
# answer (READY=1 means listening). READY_LINE is the first READY=1 message.
start_notified() {
  local name=$1 metrics=$2
  shift 2
  start_manager "$name"
  spawn_notified "$name" "$WORK/$name.log" "$@"
  NOTIFIED_PID=$CW_LAST_PID
  ready() {
    kill -0 "$NOTIFIED_PID" 2>/dev/null || fail "the $name exited before READY=1"
    has "$name" '^READY=1'
  }
  cw_wait_until 300 "the $name's READY=1" ready
  curl -sf --max-time 5 "http://127.0.0.1:$metrics/metrics" >/dev/null ||
    fail "READY=1 came but the $name's metrics endpoint does not answer"
  READY_LINE=$(grep -m1 '^READY=1' "$WORK/$name.notify")
}

# check_watchdog NAME PID: pings keep coming, stop while PID is stopped, and resume.
check_watchdog() {
  local name=$1 pid=$2 before
  before=$(count "$name" '^WATCHDOG=1$')
  pinged() { (($(count "$name" '^WATCHDOG=1$') >= before + 3)); }
  cw_wait_until 100 "3 more watchdog pings from the $name" pinged
  kill -STOP "$pid"
  stopped() { [[ "$(awk '{print $3}' "/proc/$pid/stat")" == T ]]; }
  cw_wait_until 100 "the $name stopped" stopped
  # The pings sent before the stop are written out by the manager: the count holds still
  # for a second.
  local last=-1
  settled() {
    local now
    now=$(count "$name" '^WATCHDOG=1$')
    [[ $now == "$last" ]] && return 0
    last=$now
    sleep 1
    return 1
  }
  cw_wait_until 20 "the pings sent before the stop, written out" settled
  before=$last
  sleep 2 # eight ping intervals
  cw_expect "watchdog pings from the stopped $name" "$(count "$name" '^WATCHDOG=1$')" "$before"
  kill -CONT "$pid"
  resumed() { (($(count "$name" '^WATCHDOG=1$') > before)); }
  cw_wait_until 100 "the resumed $name's watchdog ping" resumed
  cw_log "$name: watchdog pings every 0.25 s, none while stopped, again once resumed"
}

# check_reload NAME PID STATUS_AFTER: SIGHUP -> a new RELOADING=1 (with MONOTONIC_USEC), then
# a new READY=1 whose STATUS= contains STATUS_AFTER.
check_reload() {
  local name=$1 pid=$2 want=$3 ready_before reloading_before
  ready_before=$(count "$name" '^READY=1')
  reloading_before=$(count "$name" '^RELOADING=1')
  kill -HUP "$pid"
  reloaded() { (($(count "$name" '^READY=1') > ready_before)); }
  cw_wait_until 100 "READY=1 after the $name's reload" reloaded
  cw_expect "$name: RELOADING=1 messages after SIGHUP" "$(count "$name" '^RELOADING=1')" \
    $((reloading_before + 1))
  grep '^RELOADING=1' "$WORK/$name.notify" | tail -n 1 |
    grep -qE '^RELOADING=1 \| MONOTONIC_USEC=[0-9]+ \| STATUS=reloading' ||
    fail "$name: RELOADING=1 without MONOTONIC_USEC: $(grep '^RELOADING=1' "$WORK/$name.notify" | tail -n 1)"
  grep '^READY=1' "$WORK/$name.notify" | tail -n 1 | grep -qF -- "$want" ||
    fail "$name: READY=1 after the reload without '$want': $(grep '^READY=1' "$WORK/$name.notify" | tail -n 1)"
  # This RELOADING=1 came before this READY=1, and after the READY=1 before it.
  awk '/^RELOADING=1/ { r = NR } /^READY=1/ { prev = last; last = NR } END { exit !(r > prev && r < last) }' \
    "$WORK/$name.notify" || fail "$name: READY=1 and RELOADING=1 out of order: $(cat "$WORK/$name.notify")"
  kill -0 "$pid" 2>/dev/null || fail "the $name died on SIGHUP"
}

# check_stop NAME PID: SIGTERM -> STOPPING=1, exit 0.
check_stop() {
  kill -TERM "$2"
  cw_wait_exit "$2" 300
  cw_expect "$1 exit code on SIGTERM" "$CW_EXIT" 0
  has "$1" '^STOPPING=1 | STATUS=stopping' || fail "$1: no STOPPING=1: $(cat "$WORK/$1.notify")"
}

cw_certs "$WORK/pki" notify-agent

# ---- the collector --------------------------------------------------------------------
cw_step "collector"
ingest=$(cw_free_port tcp)
metrics=$(cw_free_port tcp)
cat >"$WORK/collector.yaml" <<EOF
listen:
  ingest: 127.0.0.1:$ingest
  metrics: 127.0.0.1:$metrics
tls:
  ca: $WORK/pki/ca.pem
  cert: $WORK/pki/collector.pem
  key: $WORK/pki/collector.key
state_dir: $WORK/state
EOF
start_notified collector "$metrics" "$COLLECTOR_BIN" --config "$WORK/collector.yaml"
COL_PID=$NOTIFIED_PID
(exec 3<>"/dev/tcp/127.0.0.1/$ingest") 2>/dev/null ||
  fail "READY=1 came but the collector's ingest port refuses connections"
[[ $READY_LINE == *"STATUS=ingest on 127.0.0.1:$ingest, metrics at http://127.0.0.1:$metrics/metrics"* ]] ||
  fail "collector READY=1 without its ports in STATUS=: $READY_LINE"
cw_log "collector: $READY_LINE"
check_watchdog collector "$COL_PID"
check_reload collector "$COL_PID" "STATUS=ingest on 127.0.0.1:$ingest"
cw_log "collector: SIGHUP -> $(grep -m1 '^RELOADING=1' "$WORK/collector.notify")"

check_stop collector "$COL_PID"
cw_log "collector: SIGTERM -> $(grep -m1 '^STOPPING=1' "$WORK/collector.notify"), exit 0"

# ---- the agent, streaming to a collector started the usual way ------------------------
cw_step "agent"
cw_collector_config "$WORK/collector2.yaml" "$WORK/pki" "$WORK/state2"
cw_start_collector collector2 "$WORK/collector2.yaml"
flow_port=$(cw_free_port udp)
agent_metrics=$(cw_free_port tcp)
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" notify-agent "$INGEST_PORT" "$WORK/spool" "
state_dir: $WORK/agent-state
flow_listeners:
  - listen: 127.0.0.1:$flow_port
metrics:
  listen: 127.0.0.1:$agent_metrics"
"$AGENT_BIN" --config "$WORK/agent.yaml" --check-config >/dev/null ||
  fail "the agent's config does not check: $("$AGENT_BIN" --config "$WORK/agent.yaml" --check-config 2>&1)"
start_notified agent "$agent_metrics" "$AGENT_BIN" --config "$WORK/agent.yaml"
AGENT_PID=$NOTIFIED_PID
/usr/bin/python3 - "$flow_port" <<'PY' || fail "READY=1 came but the agent's flow port is not bound"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)  # taken: the agent holds it
sys.exit(1)
PY
[[ $READY_LINE == *"1 flow listener(s)"*"forwarding to 127.0.0.1:$INGEST_PORT"* ]] ||
  fail "agent READY=1 without its sources and collector in STATUS=: $READY_LINE"
cw_log "agent: $READY_LINE"
check_watchdog agent "$AGENT_PID"
check_reload agent "$AGENT_PID" "forwarding to 127.0.0.1:$INGEST_PORT"
# A reload the agent refuses (a change of collectors needs a restart): READY=1 says so.
cp "$WORK/agent.yaml" "$WORK/agent.good"
sed -i "s/127.0.0.1:$INGEST_PORT/127.0.0.1:1/" "$WORK/agent.yaml"
check_reload agent "$AGENT_PID" "reload refused, the running configuration stays"
cw_log "agent: refused reload -> $(grep '^READY=1' "$WORK/agent.notify" | tail -n 1)"
cp "$WORK/agent.good" "$WORK/agent.yaml"
check_stop agent "$AGENT_PID"
cw_log "agent: SIGTERM -> $(grep -m1 '^STOPPING=1' "$WORK/agent.notify"), exit 0"
# Without NOTIFY_SOCKET (by hand, in every other test) nothing changes: collector2 ran so.
echo "PASS: both daemons report READY=1 once listening, ping the watchdog from their event loop (none while stopped), report reloads and stopping"
