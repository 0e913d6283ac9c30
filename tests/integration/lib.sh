# Shared helpers for the CityWatch end-to-end tests. Sourced, never run.
#
#   source "$(dirname "$0")/lib.sh"
#   cw_init "$@"          # AGENT_BIN COLLECTOR_BIN SOURCE_DIR
#
# Every test gets a private temp dir ($WORK), removed at exit together with every process the
# test started (cw_spawn records them). Ports are chosen by the kernel (127.0.0.1:0) and read
# back from the collector's --ready-file. Every wait is a bounded poll: no fixed sleeps are
# used for synchronisation.

set -uo pipefail

CW_PIDS=()          # every background process the test started
CW_AT_EXIT=()       # commands cw_cleanup runs after the processes are gone (cw_at_exit)
CW_LOGS=()          # daemon logs printed on failure
CW_POLL=0.1         # seconds between polls
CW_TEST=$(basename "${0%.sh}")
CW_T0=${EPOCHREALTIME/,/.} # the test's start, for cw_step's elapsed seconds
CW_STEP="starting"  # what the test is doing: cw_step and cw_wait_until set it
CW_WATCHDOG=""      # the deadline's process (cw_arm_deadline)

cw_log() { echo "[$CW_TEST] $*" >&2; }

# cw_step DESCRIPTION: logs what the test does next, with the seconds since it started. A
# failure at the deadline names the last step, so a test that hangs says where.
cw_step() {
  CW_STEP=$*
  cw_log "+$(awk -v a="$CW_T0" -v b="${EPOCHREALTIME/,/.}" 'BEGIN { printf "%.1f", b - a }')s $*"
}

# cw_free_port udp|tcp|both: a port free (for UDP, TCP or both) on 127.0.0.1 and on the
# wildcard address, chosen below the kernel's ephemeral range (net.ipv4.ip_local_port_range).
# A port the kernel handed out and took back could be handed out again, to another test's
# client socket, before the daemon given it binds it (tests run in parallel); a port outside
# the range never is.
cw_free_port() {
  /usr/bin/python3 - "$1" <<'PY'
import random, socket, sys
kinds = {"udp": [socket.SOCK_DGRAM], "tcp": [socket.SOCK_STREAM],
         "both": [socket.SOCK_DGRAM, socket.SOCK_STREAM]}[sys.argv[1]]
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for _ in range(200):
    port = random.randint(10000, low - 1)
    try:
        for kind in kinds:
            for addr in ("0.0.0.0", "127.0.0.1"):
                s = socket.socket(socket.AF_INET, kind)
                s.bind((addr, port))
                s.close()
    except OSError:
        continue
    print(port)
    break
else:
    raise SystemExit("cw_free_port: no free %s port below %d" % (sys.argv[1], low))
PY
}

cw_init() {
  if (($# < 3)); then
    echo "usage: $0 AGENT_BIN COLLECTOR_BIN SOURCE_DIR" >&2
    exit 2
  fi
  AGENT_BIN=$(readlink -f "$1")
  COLLECTOR_BIN=$(readlink -f "$2")
  SRC_DIR=$(readlink -f "$3")
  [[ -x "$AGENT_BIN" ]] || { echo "FAIL: agent binary $AGENT_BIN is not executable" >&2; exit 1; }
  [[ -x "$COLLECTOR_BIN" ]] || { echo "FAIL: collector binary $COLLECTOR_BIN is not executable" >&2; exit 1; }
  MAKE_CERTS="$SRC_DIR/scripts/make-certs.sh"
  SEGMENT_A="$SRC_DIR/../shared/testdata/captures/segment-a.pcap"
  for tool in curl openssl awk; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not found" >&2; exit 77; }
  done
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/citywatch-$CW_TEST.XXXXXX")
  CW_FAILED=0
  trap cw_cleanup EXIT
  trap 'exit 130' INT TERM
  # ctest ends a test that outlives its TIMEOUT with SIGKILL: no cleanup (processes and
  # network namespaces left behind) and not a word on where it stood. CMake passes the same
  # TIMEOUT as CW_TIMEOUT; 15 s before it, the test fails the usual way instead.
  if [[ -n "${CW_TIMEOUT:-}" ]]; then cw_arm_deadline $((CW_TIMEOUT - 15)); fi
}

# cw_descendants PID SKIP: every process below PID, parents before their children, leaving
# out SKIP and everything below it.
cw_descendants() {
  local c
  for c in $(pgrep -P "$1"); do
    [[ "$c" == "$2" ]] && continue
    echo "$c"
    cw_descendants "$c" "$2"
  done
}

# cw_arm_deadline SECONDS: after SECONDS the test fails, naming its last step (CW_STEP), with
# the daemons' logs, and cleans up as on any failure. The shell runs a trap only once its
# foreground command has ended, so the deadline also ends every process below the test (the
# daemons, a hung tool, and what a command substitution or pipeline started: a subshell's
# child holding the substitution's pipe would keep the shell waiting); cw_cleanup then finds
# them gone. The processes are listed before any is ended, so none escapes by being
# reparented. integration.lib_deadline tests this.
cw_arm_deadline() {
  local secs=$1 parent=$$
  trap 'fail "deadline: still running after '"$secs"' s (ctest stops it at ${CW_TIMEOUT:-?} s), in step: $CW_STEP"' USR1
  (
    trap 'kill "$sp" 2>/dev/null; exit 0' TERM
    # Not on the test's output: a TERM between the fork and sp=$! leaves this sleep behind
    # (cw_cleanup ends it with pkill -P when it can), and it must not hold ctest's pipe open.
    sleep "$secs" </dev/null >/dev/null 2>&1 &
    sp=$!
    wait "$sp" || exit 0
    kill -USR1 "$parent" 2>/dev/null || exit 0
    sleep 1
    self=$BASHPID # here: inside $(...) it would be the substitution's own pid
    for c in $(cw_descendants "$parent" "$self"); do
      kill -TERM "$c" 2>/dev/null
    done
  ) &
  CW_WATCHDOG=$!
}

# cw_at_exit COMMAND: run COMMAND (a string, eval'd) at exit after every process the test
# started is gone, e.g. to delete a network namespace. The test's exit status is kept.
cw_at_exit() { CW_AT_EXIT+=("$1"); }

# cw_netns_pair PREFIX: two network namespaces joined by a veth pair, removed at exit, IPv6
# off in both (router solicitations and MLD reports would add frames), loopbacks up. Sets
# NSA/NSB (the namespaces), VA/VB (the veth ends in them; down, no address) and inA/inB.
cw_netns_pair() {
  NSA=$1a-$$ NSB=$1b-$$ VA=$1a$$ VB=$1b$$
  cw_at_exit cw_netns_pair_cleanup
  ip netns add "$NSA" || fail "ip netns add failed"
  ip netns add "$NSB" || fail "ip netns add failed"
  ip link add "$VA" netns "$NSA" type veth peer name "$VB" netns "$NSB" || fail "veth pair"
  local ns
  for ns in "$NSA" "$NSB"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$ns" link set lo up
  done
}
cw_netns_pair_cleanup() {
  ip netns del "$NSA" 2>/dev/null
  ip netns del "$NSB" 2>/dev/null
}
inA() { ip netns exec "$NSA" "$@"; }
inB() { ip netns exec "$NSB" "$@"; }

# Kills (bounded: TERM, then KILL) every process the test started, runs the cw_at_exit
# commands and removes $WORK. Exits with the test's own status.
cw_cleanup() {
  local rc=$?
  local pid i cmd
  trap '' USR1 # a deadline reached now must not end the cleanup half-way
  if [[ -n "$CW_WATCHDOG" ]]; then
    pkill -TERM -P "$CW_WATCHDOG" 2>/dev/null # its sleep
    kill -TERM "$CW_WATCHDOG" 2>/dev/null
    wait "$CW_WATCHDOG" 2>/dev/null
  fi
  for pid in "${CW_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for pid in "${CW_PIDS[@]}"; do
    for ((i = 0; i < 30; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep "$CW_POLL"
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  for cmd in "${CW_AT_EXIT[@]}"; do eval "$cmd" || true; done
  if ((rc != 0 && rc != 77)) && ((CW_FAILED == 0)); then cw_dump_logs; fi
  [[ -n "${WORK:-}" && -d "$WORK" ]] && rm -rf "$WORK"
  exit "$rc"
}

cw_dump_logs() {
  local f
  for f in "${CW_LOGS[@]}"; do
    [[ -f "$f" ]] || continue
    echo "----- $(basename "$f") (last 60 lines) -----" >&2
    tail -n 60 "$f" >&2
  done
  echo "----- end of logs -----" >&2
}

# fail MESSAGE: prints the daemons' logs and exits 1.
fail() {
  echo "FAIL: $*" >&2
  cw_dump_logs
  CW_FAILED=1
  exit 1
}

# Skips (exit 77) when the shared segment-a capture is absent.
cw_need_segment_a() {
  if [[ ! -f "$SEGMENT_A" ]]; then
    echo "SKIP: $SEGMENT_A not found (needs ../shared/testdata next to the source tree)" >&2
    exit 77
  fi
}

# cw_spawn LOG CMD...: runs CMD in the background, stdout+stderr to LOG; sets CW_LAST_PID.
cw_spawn() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 &
  CW_LAST_PID=$!
  CW_PIDS+=("$CW_LAST_PID")
  CW_LOGS+=("$log")
}

# cw_wait_until TRIES DESCRIPTION CMD...: polls CMD every 0.1 s, at most TRIES times.
cw_wait_until() {
  local tries=$1 what=$2 i
  shift 2
  CW_STEP="waiting for: $what"
  for ((i = 0; i < tries; i++)); do
    "$@" && return 0
    sleep "$CW_POLL"
  done
  fail "timed out after $(awk -v n="$tries" -v p="$CW_POLL" 'BEGIN{print n*p}') s waiting for: $what"
}

# cw_wait_exit PID TRIES: waits (bounded) for a background process to exit; its exit code is
# left in CW_EXIT. Fails the test if it is still running after TRIES polls.
cw_wait_exit() {
  local pid=$1 tries=$2 i
  for ((i = 0; i < tries; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep "$CW_POLL"
  done
  kill -0 "$pid" 2>/dev/null && fail "process $pid still running after $(awk -v n="$tries" -v p="$CW_POLL" 'BEGIN{print n*p}') s"
  wait "$pid" 2>/dev/null
  CW_EXIT=$?
}

# cw_certs DIR [AGENT_ID...]: a CA, a collector certificate and agent certificates.
cw_certs() {
  bash "$MAKE_CERTS" "$@" >/dev/null || fail "make-certs.sh $* failed"
}

# cw_collector_config FILE PKI_DIR STATE_DIR [EXTRA_YAML]
cw_collector_config() {
  local file=$1 pki=$2 state=$3 extra=${4:-}
  cat >"$file" <<EOF
listen:
  ingest: 127.0.0.1:0
  metrics: 127.0.0.1:0
tls:
  ca: $pki/ca.pem
  cert: $pki/collector.pem
  key: $pki/collector.key
state_dir: $state
$extra
EOF
}

# cw_replay AGENT PCAP: an agent with AGENT's certificate (cw_certs) reads PCAP (-r) into the
# collector cw_start_collector started; it must exit 0, every batch acked.
cw_replay() {
  local name=$1 pcap=$2
  cw_agent_config "$WORK/$name.yaml" "$WORK/pki" "$name" "$INGEST_PORT" "$WORK/$name-spool"
  cw_spawn "$WORK/$name.log" "$AGENT_BIN" --config "$WORK/$name.yaml" -r "$pcap"
  cw_wait_exit "$CW_LAST_PID" 300
  ((CW_EXIT == 0)) || fail "agent $name exited with $CW_EXIT reading $pcap"
}

# cw_agent_config FILE PKI_DIR AGENT_ID INGEST_PORT SPOOL_DIR [EXTRA_YAML] [CERT_NAME]
# No capture section: the tests pass -r FILE, or add one in EXTRA_YAML.
cw_agent_config() {
  local file=$1 pki=$2 id=$3 port=$4 spool=$5 extra=${6:-} cert=${7:-$3}
  cat >"$file" <<EOF
agent:
  id: $id
  segment: seg-test
collectors:
  - address: 127.0.0.1:$port
    server_name: localhost
tls:
  ca: $pki/ca.pem
  cert: $pki/$cert.pem
  key: $pki/$cert.key
spool:
  dir: $spool
reconnect:
  initial_backoff: 100ms
  max_backoff: 1s
$extra
EOF
}

# cw_start_collector NAME CONFIG [ARGS...]: starts the collector, waits for its ready file and
# sets COL_PID, INGEST_PORT and METRICS_PORT. The log is $WORK/NAME.log.
cw_start_collector() {
  local name=$1 config=$2
  shift 2
  local ready="$WORK/$name.ready"
  rm -f "$ready"
  cw_spawn "$WORK/$name.log" "$COLLECTOR_BIN" --config "$config" --ready-file "$ready" "$@"
  COL_PID=$CW_LAST_PID
  local i
  for ((i = 0; i < 300; i++)); do
    [[ -s "$ready" ]] && break
    kill -0 "$COL_PID" 2>/dev/null || fail "collector '$name' exited before it was ready"
    sleep "$CW_POLL"
  done
  [[ -s "$ready" ]] || fail "collector '$name' wrote no ready file within 30 s"
  INGEST_PORT=$(sed -n 's/.*"ingest_port":\([0-9]*\).*/\1/p' "$ready")
  METRICS_PORT=$(sed -n 's/.*"metrics_port":\([0-9]*\).*/\1/p' "$ready")
  [[ "$INGEST_PORT" =~ ^[1-9][0-9]*$ && "$METRICS_PORT" =~ ^[1-9][0-9]*$ ]] ||
    fail "bad ready file: $(cat "$ready")"
  cw_log "collector '$name' pid $COL_PID: ingest 127.0.0.1:$INGEST_PORT, metrics 127.0.0.1:$METRICS_PORT"
}

# cw_stop PID: SIGTERM and a bounded wait; CW_EXIT holds the exit code.
cw_stop() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null
  cw_wait_exit "$pid" 100
}

# cw_scrape PORT: the /metrics text (fails the test if the endpoint does not answer).
cw_scrape() {
  curl -sf --max-time 5 "http://127.0.0.1:$1/metrics" || fail "cannot scrape http://127.0.0.1:$1/metrics"
}

# cw_sum NAME [LABEL_FILTER...] < exposition: sums the samples of metric NAME whose labels
# contain every filter (e.g. 'protocol="tcp"'). Prints an integer when the sum is one; 0 when
# no sample matches.
cw_sum() {
  awk -v name="$1" -v filters="${*:2}" '
    BEGIN { n = split(filters, f, " ") }
    /^#/ || NF < 2 { next }
    {
      series = $1
      metric = series; labels = ""
      brace = index(series, "{")
      if (brace) { metric = substr(series, 1, brace - 1); labels = substr(series, brace) }
      if (metric != name) next
      for (i = 1; i <= n; i++) if (index(labels, f[i]) == 0) next
      sum += $2
    }
    END {
      if (sum == int(sum)) printf "%.0f\n", sum; else printf "%.17g\n", sum
    }'
}

# cw_metric PORT NAME [LABEL_FILTER...]: scrape and sum.
cw_metric() {
  local port=$1
  shift
  local text
  text=$(cw_scrape "$port") || exit 1
  cw_sum "$@" <<<"$text"
}

# cw_expect DESCRIPTION ACTUAL EXPECTED
cw_expect() {
  [[ "$2" == "$3" ]] || fail "$1: got $2, expected $3"
}

# cw_make_small_pcap FILE: a deterministic capture (Ethernet) with a few TCP, UDP and ICMP
# packets, written with scapy. Skips the test when scapy is not available.
cw_make_small_pcap() {
  local out=$1
  /usr/bin/python3 - "$out" <<'EOF' 2>"$WORK/scapy.err" || { cat "$WORK/scapy.err" >&2; echo "SKIP: python3-scapy not found (needed to generate a capture)" >&2; exit 77; }
import sys
from scapy.all import Ether, IP, TCP, UDP, ICMP, Raw, wrpcap
pkts = []
t = 1700000000.0
for i in range(20):
    p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000 + i % 4, dport=443, flags="A") / Raw(b"x" * 100)
    p.time = t + i * 0.01
    pkts.append(p)
for i in range(10):
    p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.3") / UDP(sport=5353, dport=53) / Raw(b"q" * 40)
    p.time = t + 0.5 + i * 0.01
    pkts.append(p)
for i in range(5):
    p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.0.0.1", dst="10.0.0.4") / ICMP(id=7, seq=i)
    p.time = t + 1.0 + i * 0.01
    pkts.append(p)
wrpcap(sys.argv[1], pkts)
EOF
}

# cw_agent_metrics LOG: waits (bounded) for the agent's "metrics at http://H:P/metrics" log
# line (its config has metrics.listen with port 0) and sets AGENT_METRICS to the port.
cw_agent_metrics() {
  local log=$1
  _cw_agent_metrics_line() { grep -q 'agent: metrics at http://[0-9.]*:[0-9]*/metrics' "$log" 2>/dev/null; }
  cw_wait_until 300 "the agent's metrics port in $log" _cw_agent_metrics_line
  AGENT_METRICS=$(sed -n 's#.*agent: metrics at http://[0-9.]*:\([0-9]*\)/metrics.*#\1#p' "$log" | tail -n 1)
}

# cw_at_least PORT MIN NAME [FILTER...]: true when the summed metric is >= MIN.
cw_at_least() {
  local port=$1 min=$2 v
  shift 2
  v=$(cw_metric "$port" "$@") || return 1
  [[ -n "$v" ]] && ((v >= min))
}

# cw_send_v5 PORT DATAGRAMS [FIRST_SEQ]: sends DATAGRAMS NetFlow v5 datagrams of 30 records
# each to the agent's flow listener on 127.0.0.1:PORT, one at a time. Every record is 10
# packets / 1000 bytes of TCP between distinct addresses, so the collector's totals are
# 300 packets and 30,000 bytes per datagram.
cw_send_v5() {
  /usr/bin/python3 - "$1" "$2" "${3:-0}" <<'PY' || fail "cw_send_v5 failed"
import socket, struct, sys, time
port, n, seq = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for d in range(n):
    now = int(time.time())
    recs = b""
    for r in range(30):
        k = (seq + d * 30 + r) & 0xFFFFFF
        src = bytes([10, (k >> 16) & 255, (k >> 8) & 255, k & 255])
        recs += struct.pack("!4s4s4sHHIIIIHHBBBBHHBBH", src, bytes([10, 200, 0, 1]), b"\0" * 4,
                            1, 2, 10, 1000, 1000, 2000, 40000 + r, 443, 0, 0x18, 6, 0, 0, 0, 24, 24, 0)
    hdr = struct.pack("!HHIIIIBBH", 5, 30, 5000, now, 0, seq + d * 30, 0, 0, 0)
    s.sendto(hdr + recs, ("127.0.0.1", port))
PY
}

# cw_flow_listener LOG: waits for the agent's "flow listener udp:H:P" log line; sets FLOW_PORT.
cw_flow_listener() {
  local log=$1
  _cw_flow_line() { grep -q 'flow listener udp:[0-9.]*:[0-9]*' "$log" 2>/dev/null; }
  cw_wait_until 300 "the agent's flow listener in $log" _cw_flow_line
  FLOW_PORT=$(grep -o 'flow listener udp:[0-9.]*:[0-9]*' "$log" | tail -n 1 | sed 's/.*://')
}

# cw_udp_capture_start FILE PORT: tcpdump records the UDP datagrams sent to PORT on lo, for
# cw_udp_capture_stop to finish into FILE.
cw_udp_capture_start() {
  CW_CAPTURE_FILE=$1
  CW_CAPTURE_PORT=$2
  tcpdump -i lo -s 0 -B 65536 -U -w "$CW_CAPTURE_FILE.raw" "udp dst port $CW_CAPTURE_PORT" \
    >"$CW_CAPTURE_FILE.tcpdump.log" 2>&1 &
  CW_CAPTURE_PID=$!
  CW_PIDS+=("$CW_CAPTURE_PID")
  _cw_capture_listening() { grep -q "listening on" "$CW_CAPTURE_FILE.tcpdump.log"; }
  cw_wait_until 100 "tcpdump listening on lo" _cw_capture_listening
}

# cw_udp_capture_stop: once the sender has finished, ends the capture when it holds every
# datagram sent, and leaves in FILE those sent to 127.0.0.1:PORT. tcpdump loses what it has not
# written yet when stopped, so a marker datagram goes to 127.0.0.3:PORT (nothing listens
# there) after the sender's: once tcpdump has written it, it has written them all. Fails the
# test if tcpdump reports drops, which would make the capture short of what was sent.
cw_udp_capture_stop() {
  echo citywatch-capture-marker >"/dev/udp/127.0.0.3/$CW_CAPTURE_PORT"
  _cw_marker_written() {
    [[ -n "$(tcpdump -r "$CW_CAPTURE_FILE.raw" -c 1 "dst host 127.0.0.3" 2>/dev/null)" ]]
  }
  cw_wait_until 300 "tcpdump to write the capture marker" _cw_marker_written
  kill -INT "$CW_CAPTURE_PID"
  cw_wait_exit "$CW_CAPTURE_PID" 100
  grep -q "^0 packets dropped by kernel" "$CW_CAPTURE_FILE.tcpdump.log" ||
    fail "tcpdump dropped datagrams: $(tr '\n' ' ' <"$CW_CAPTURE_FILE.tcpdump.log")"
  tcpdump -r "$CW_CAPTURE_FILE.raw" -w "$CW_CAPTURE_FILE" "dst host 127.0.0.1" 2>/dev/null ||
    fail "tcpdump could not filter $CW_CAPTURE_FILE.raw"
}
