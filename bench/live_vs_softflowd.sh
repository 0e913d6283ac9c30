#!/bin/bash
# Live side by side (issue 16, acceptance 2): citywatch-agent and softflowd capturing the same
# replayed traffic, rate step by rate step, in this one invocation.
#
# A veth pair is created for the run: one end in a network namespace made for the run, where
# `tcpreplay --pps=RATE` (or --topspeed for "max") sends PACKETS frames of segment-a.pcap
# (looped), the other end on the host, where the tool under test captures. For each step and
# each tool, a fresh tool process is started, the step is sent, and then:
#   sent     tcpreplay's own count of frames written ("Successful packets")
#   seen     packets the tool's libpcap received (pcap_stats ps_recv; on Linux it includes
#            the ones then dropped): agent citywatch_agent_packets_total, softflowd
#            "Packets received by libpcap" (softflowctl statistics)
#   drops    kernel/ring + interface drops the tool reports (agent
#            citywatch_agent_packets_dropped_total, any `where`; softflowd "Packets dropped by
#            libpcap" + "by interface")
#   unseen   sent - seen: frames that reached neither the tool's ring nor its drop count
#   lost%    (drops + unseen) / sent: a step is "held" when lost% < 0.1
#   CPU-s    utime+stime of the tool process (all threads, /proc/PID/stat) from just before the
#            step is sent until the tool's counters stop moving after it (the kernel's copy
#            into the tool's ring runs in softirq on the sender's side and is in neither)
#   coll-s   for the agent, the CPU of the collector it streams to in the same window (not in
#            CPU-s; it shares the 2 cores here, where in a city it runs elsewhere)
# then, per tool, the highest rate held, and the ratios of CPU per 1M packets (softflowd/agent)
# at 100k pps and at the highest rate both held.
#
# One tool process per (step, tool): each step starts from empty counters, an empty flow table
# and an empty spool, so no step pays for the previous one's flows expiring or its spool
# draining, and start-up (config, TLS handshake, ring allocation) is outside the measured
# window. Within a step the tools run one after the other (never at once), and the order
# alternates from step to step, so that noise from anything else on the machine hits both.
#
# Agent: its default capture settings (the config sets only the interface, plus collectors,
# TLS, spool and a metrics address), streaming to a real collector started here on loopback
# (same PKI as bench/vs_softflowd.sh). softflowd: -d -v 9 -t maxlife=60 (the timeouts of
# bench/vs_softflowd.sh), exporting to a loopback port nobody listens on.
#
# The link: MTU 65535 on both ends (the capture holds frames of up to ~64 KiB, recorded with
# offloads on the original host; with MTU=1500 tcpreplay fails to send those 0.7 %), GRO/GSO/TSO
# turned off on both ends with ethtool when it is installed (veth has GRO off by default, and
# tcpreplay's frames carry no GSO metadata, so frames arrive as sent either way). Note that
# libpcap sizes TPACKET_V2 frames (immediate mode) from min(snaplen, MTU or 64 KiB when the
# interface has offloads): with MTU 65535 they are 64 KiB whatever the offloads, as on a NIC
# with offloads on; with MTU=1500 and offloads off they would be ~1.5 KiB. IPv6 off on
# both ends (no router solicitations or DAD in the counts), and a tc ingress `drop` on the host
# end: packet sockets see a frame before tc ingress, so the tools capture everything while
# nothing of the replayed traffic reaches the host's IP stack.
#
# Needs root. Touches only the namespace and veth pair it creates (names carry this shell's
# PID) and kills only the processes it started. Builds nothing.
# usage: bench/live_vs_softflowd.sh [BUILD_DIR]   (default: build)
# env:   STEPS="50k 100k 200k 300k 400k max"  rates in packets/s (k/M suffixes), "max" = topspeed
#        PACKETS=1000000   frames sent per step and tool
#        MTU=65535         MTU of both veth ends
#        DEADLINE=480      seconds; steps not started by then are skipped (a default run: ~2.5 min)
#        THREADS=1         the agent's capture threads (capture[].threads; 2 on a 2-core box
#                          puts a PACKET_FANOUT group of two rings and meters on both cores)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(realpath "${1:-build}")
shared="$here/../../shared"
src="$shared/testdata/captures/segment-a.pcap"
STEPS=${STEPS:-"50k 100k 200k 300k 400k max"}
PACKETS=${PACKETS:-1000000}
MTU=${MTU:-65535}
DEADLINE=${DEADLINE:-480}
THREADS=${THREADS:-1}

die() { echo "live_vs_softflowd: $*" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || die "needs root (it creates a network namespace and a veth pair)"
[[ -d $shared ]] || die "missing $shared (the shared test data, beside the repository)"
[[ -f $src ]] || die "missing $src (shared test data)"
AGENT_BIN="$build/agent/app/citywatch-agent"
COLLECTOR_BIN="$build/collector/app/citywatch-collector"
for b in "$AGENT_BIN" "$COLLECTOR_BIN"; do
  [[ -x $b ]] || die "build $b first (cmake --build $build)"
done
for t in tcpreplay softflowd softflowctl ip tc curl capinfos timeout; do
  command -v "$t" >/dev/null || die "$t not installed (scripts/install-deps.sh)"
done
[[ $PACKETS =~ ^[0-9]+$ && $PACKETS -gt 0 ]] || die "PACKETS must be a positive integer"
[[ $MTU =~ ^[0-9]+$ ]] || die "MTU must be an integer"
rate_of() {  # 50k -> 50000, 1.5M -> 1500000, max -> max
  case $1 in
    max) echo max ;;
    *[kK]) awk -v v="${1%[kK]}" 'BEGIN { printf "%d", v * 1000 }' ;;
    *[mM]) awk -v v="${1%[mM]}" 'BEGIN { printf "%d", v * 1000000 }' ;;
    *) echo "$1" ;;
  esac
}
rates=()
for s in $STEPS; do
  r=$(rate_of "$s")
  [[ $r == max || ($r =~ ^[0-9]+$ && $r -gt 0) ]] || die "bad step '$s' in STEPS"
  rates+=("$r")
done
((${#rates[@]} > 0 && ${#rates[@]} <= 20)) || die "STEPS must name 1 to 20 rates"
frames=$(capinfos -c -M "$src" | awk '/Number of packets/ {print $NF}')
loops=$(((PACKETS + frames - 1) / frames))
hz=$(getconf CLK_TCK)

ns="cwbench$$"
vh="cwbh$$"  # host end: the tools capture here
vn="cwbn$$"  # namespace end: tcpreplay sends here
log=$(mktemp -d /tmp/cw-live-vs-softflowd.XXXXXX)
col_pid="" tool_pid="" replay_pid=""
stop_pid() {  # stop_pid PID: SIGTERM, up to 10 s, then SIGKILL; only a PID this script started
  local p=$1 i
  [[ -n $p ]] || return 0
  kill "$p" 2>/dev/null || return 0
  for ((i = 0; i < 100; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
}
cleanup() {
  set +e
  stop_pid "$replay_pid"
  stop_pid "$tool_pid"
  stop_pid "$col_pid"
  ip netns del "$ns" 2>/dev/null       # takes the namespace end, and so the pair, with it
  ip link del "$vh" 2>/dev/null
  rm -rf "$log"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the link
ip netns add "$ns"
ip link add "$vh" type veth peer name "$vn" netns "$ns"
sysctl -qw "net.ipv6.conf.$vh.disable_ipv6=1"
ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$vn.disable_ipv6=1"
ip link set "$vh" mtu "$MTU"
ip -n "$ns" link set "$vn" mtu "$MTU"
offloads="ethtool not installed: offloads left at the veth defaults"
if command -v ethtool >/dev/null; then
  for f in gro gso tso; do
    ethtool -K "$vh" "$f" off 2>/dev/null || true
    ip netns exec "$ns" ethtool -K "$vn" "$f" off 2>/dev/null || true
  done
  offloads="host end: $(ethtool -k "$vh" | awk '/^(generic-receive|generic-segmentation|tcp-segmentation)-offload:/ {sub(/-offload:/, ""); printf "%s%s=%s", sep, $1, $2; sep=" "}')"
fi
ip link set "$vh" up
ip -n "$ns" link set "$vn" up
# The host never answers ARP on this end, forwards nothing from it (the default), and with the
# ingress drop never sees the frames at all.
sysctl -qw "net.ipv4.conf.$vh.arp_ignore=8" "net.ipv4.conf.$vh.forwarding=0"
tc qdisc add dev "$vh" clsact 2>"$log/tc.err" || true
# classic BPF "ret #2" in direct-action mode = TC_ACT_SHOT; matchall+gact where cls_bpf is absent
if tc filter add dev "$vh" ingress bpf da bytecode '1,6 0 0 2,' 2>>"$log/tc.err" ||
  tc filter add dev "$vh" ingress matchall action drop 2>>"$log/tc.err"; then
  sink="tc ingress drop on $vh"
else
  # Without it the host's stack drops the frames itself (foreign MACs, no address, no IPv6,
  # no forwarding); only limited broadcasts could reach a socket bound to 0.0.0.0.
  sink="no tc ingress drop ($(tail -n 1 "$log/tc.err"))"
fi
for ((i = 0; i < 50; i++)); do
  [[ $(cat "/sys/class/net/$vh/operstate" 2>/dev/null) == up ]] && break
  sleep 0.1
done

# --- a collector for the agent, on ports chosen at run time
bash "$here/../scripts/make-certs.sh" "$log/pki" bench-agent >/dev/null
cat >"$log/collector.yaml" <<EOF
listen: {ingest: 127.0.0.1:0, metrics: 127.0.0.1:0}
tls: {ca: pki/ca.pem, cert: pki/collector.pem, key: pki/collector.key}
state_dir: collector-state
EOF
"$COLLECTOR_BIN" --config "$log/collector.yaml" --ready-file "$log/ready" >"$log/collector.log" 2>&1 &
col_pid=$!
for _ in $(seq 100); do [[ -f $log/ready ]] && break; sleep 0.1; done
[[ -f $log/ready ]] || die "collector did not start: $(tail -n 5 "$log/collector.log")"
ingest=$(sed -E 's/.*"ingest_port":([0-9]+).*/\1/' "$log/ready")
# Capture settings: only the interface (and THREADS); everything else is the agent's default.
cat >"$log/agent.yaml" <<EOF
agent: {id: bench-agent, segment: bench}
collectors: [{address: 127.0.0.1:$ingest, server_name: localhost}]
tls: {ca: pki/ca.pem, cert: pki/bench-agent.pem, key: pki/bench-agent.key}
capture: [{interface: $vh, threads: $THREADS}]
spool: {dir: agent-spool}
metrics: {listen: 127.0.0.1:0}
EOF
SOFTFLOWD_CMD=(softflowd -i "$vh" -d -v 9 -t maxlife=60 -n 127.0.0.1:29999
  -c "$log/softflowd.ctl" -p "$log/softflowd.pid")

cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
metrics_url=""
agent_counters() {  # -> "seen drops processed" (sums over every series, so per-thread labels add up)
  curl -s --max-time 5 "$metrics_url" | awk '
    /^citywatch_agent_packets_total[{ ]/ { seen += $NF }
    /^citywatch_agent_packets_dropped_total[{ ]/ { drops += $NF }
    /^citywatch_agent_packets_decoded_total[{ ]/ { done += $NF }
    END { printf "%d %d %d\n", seen, drops, done }' || true
}
softflowd_counters() {
  softflowctl -c "$log/softflowd.ctl" statistics 2>/dev/null | awk '
    /^Packets received by libpcap:/ { seen = $NF }
    /^Packets dropped by (libpcap|interface):/ { drops += $NF }
    /^Packets processed:/ { done = $NF }
    END { printf "%d %d %d\n", seen, drops, done }' || true
}

start_tool() {  # start_tool agent|softflowd: starts it, waits until it captures
  local tool=$1 i
  if [[ $tool == agent ]]; then
    rm -rf "$log/agent-spool" "$log/agent-state"
    "$AGENT_BIN" --config "$log/agent.yaml" >"$log/agent.log" 2>&1 &
    tool_pid=$!
    metrics_url=""
    for ((i = 0; i < 100; i++)); do
      kill -0 "$tool_pid" 2>/dev/null || die "agent exited: $(tail -n 5 "$log/agent.log")"
      if [[ -z $metrics_url ]] && grep -q 'metrics at ' "$log/agent.log"; then
        metrics_url=$(sed -nE 's#.*metrics at (https?://[^/ ]+).*#\1/metrics#p' "$log/agent.log" | head -n 1)
      fi
      # Ready: the capture source is open and the collector session is up, so neither
      # start-up nor the TLS handshake falls in the measured window.
      if [[ -n $metrics_url ]] && curl -s --max-time 2 "$metrics_url" |
        awk '/^citywatch_agent_packets_total[{ ]/ { s = 1 } /^citywatch_agent_collector_connected / && $NF == 1 { c = 1 } END { exit !(s && c) }'; then
        return 0
      fi
      sleep 0.1
    done
    die "agent not ready after 10 s: $(tail -n 5 "$log/agent.log")"
  else
    rm -f "$log/softflowd.ctl"
    "${SOFTFLOWD_CMD[@]}" >"$log/softflowd.log" 2>&1 &
    tool_pid=$!
    for ((i = 0; i < 100; i++)); do
      kill -0 "$tool_pid" 2>/dev/null || die "softflowd exited: $(tail -n 5 "$log/softflowd.log")"
      softflowctl -c "$log/softflowd.ctl" statistics >/dev/null 2>&1 && return 0
      sleep 0.1
    done
    die "softflowd not ready after 10 s: $(tail -n 5 "$log/softflowd.log")"
  fi
}

settle() {  # settle agent|softflowd: waits until the counters stop moving (<= 15 s); prints them
  local tool=$1 prev="" cur i
  for ((i = 0; i < 15; i++)); do
    sleep 1.1  # the agent refreshes its metrics once a second
    cur=$("${tool}_counters")
    [[ $cur == "$prev" ]] && break
    prev=$cur
  done
  echo "$cur"
}

results=()  # "rate tool sent pps seen drops unseen cpu_s collector_cpu_s"
run_step() {  # run_step RATE TOOL
  local rate=$1 tool=$2 c0 c1 t0 t1 k0 k1 limit sent pps args
  start_tool "$tool"
  sleep 0.5
  c0=$("${tool}_counters")
  t0=$(cpu_ticks "$tool_pid")
  k0=$(cpu_ticks "$col_pid")
  if [[ $rate == max ]]; then
    args=(--topspeed); limit=$((PACKETS / 50000 + 60))
  else
    args=(--pps="$rate"); limit=$((PACKETS * 3 / rate + 30))
  fi
  timeout "$limit" ip netns exec "$ns" tcpreplay -i "$vn" -K --loop="$loops" --limit="$PACKETS" \
    "${args[@]}" "$src" >"$log/replay.out" 2>"$log/replay.err" &
  replay_pid=$!
  wait "$replay_pid" || echo "  (tcpreplay at $rate: exit $?; $(tail -n 2 "$log/replay.err" | tr '\n' ' '))" >&2
  replay_pid=""
  c1=$(settle "$tool")
  kill -0 "$tool_pid" 2>/dev/null || die "$tool exited during the $rate step: $(tail -n 5 "$log/$tool.log")"
  t1=$(cpu_ticks "$tool_pid")
  k1=$(cpu_ticks "$col_pid")
  stop_pid "$tool_pid"
  tool_pid=""
  sent=$(awk '/Successful packets:/ { print $NF }' "$log/replay.out")
  pps=$(sed -nE 's/^Rated:.* ([0-9.]+) pps.*/\1/p' "$log/replay.out")
  local failed
  failed=$(awk '/Failed packets:/ { print $NF }' "$log/replay.out")
  [[ ${failed:-0} -eq 0 ]] || echo "  (tcpreplay at $rate: $failed frames failed to send)" >&2
  read -r s0 d0 _ <<<"$c0"
  read -r s1 d1 _ <<<"$c1"
  local seen=$((s1 - s0)) drops=$((d1 - d0))
  results+=("$rate $tool ${sent:-0} ${pps:-0} $seen $drops $((${sent:-0} - seen)) $(awk -v a="$t0" -v b="$t1" -v c="$k0" -v d="$k1" -v hz="$hz" 'BEGIN { printf "%.2f %.2f", (b - a) / hz, (d - c) / hz }')")
}

echo "link: veth $vh <-> $vn (namespace $ns), MTU $MTU; $offloads; $sink"
echo "sender: tcpreplay -K --loop=$loops --limit=$PACKETS of $(basename "$src") ($frames frames) per step and tool"
echo "machine: $(nproc) CPUs, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "steps: ${rates[*]}"
start=$SECONDS
step=0
for rate in "${rates[@]}"; do
  if ((SECONDS - start > DEADLINE)); then
    echo "deadline ($DEADLINE s) passed: skipping $rate and the steps after it" >&2
    break
  fi
  if ((step % 2 == 0)); then order=(agent softflowd); else order=(softflowd agent); fi
  for tool in "${order[@]}"; do
    echo "  step $rate pps: $tool" >&2
    run_step "$rate" "$tool"
  done
  step=$((step + 1))
done
echo "machine: load average at end: $(cut -d' ' -f1-3 /proc/loadavg); $((SECONDS - start)) s"
[[ $sink == "tc ingress drop"* ]] &&
  echo "link: frames dropped at $vh's tc ingress after capture: $(tc -s qdisc show dev "$vh" | sed -nE '/clsact/,/dropped/ s/.*dropped ([0-9]+).*/\1/p' | head -n 1)"
echo

printf '%s\n' "${results[@]}" | awk -v order="${rates[*]}" '
function rlabel(r) { return r == "max" ? "max" : (r % 1000 == 0 ? r / 1000 "k" : r) }
function name(t) { return t == "agent" ? "citywatch-agent" : "softflowd" }
BEGIN {
  n = split(order, R, " ")
  printf "%-6s %-16s %9s %9s %9s %8s %7s %7s %7s %7s %10s %8s\n", "rate", "tool", "sent", "pps",
    "seen", "drops", "drop%", "unseen", "lost%", "CPU-s", "CPU-s/1M", "coll-s"
}
{
  rate = $1; tool = $2; sent = $3; pps = $4; seen = $5; drops = $6; unseen = $7; cpu = $8
  coll = tool == "agent" ? sprintf("%8.2f", $9) : sprintf("%8s", "-")
  lost = drops + (unseen > 0 ? unseen : 0)
  k = rate SUBSEP tool
  held[k] = sent > 0 && lost / sent < 0.001
  per1m[k] = sent > 0 ? cpu / sent * 1e6 : 0
  achieved[k] = pps
  row[k] = sprintf("%-6s %-16s %9d %9d %9d %8d %6.3f%% %7d %6.3f%% %7.2f %10.3f %s%s", rlabel(rate),
    name(tool), sent, pps, seen, drops, (sent > 0 ? 100 * drops / sent : 0), unseen,
    (sent > 0 ? 100 * lost / sent : 0), cpu, per1m[k], coll, (held[k] ? "" : "  *") \
    (rate != "max" && pps < 0.95 * rate ? "  ~" : ""))
}
END {
  for (i = 1; i <= n; i++) {  # in step order, the agent first (the run order alternates)
    if ((R[i] SUBSEP "agent") in row) print row[R[i] SUBSEP "agent"]
    if ((R[i] SUBSEP "softflowd") in row) print row[R[i] SUBSEP "softflowd"]
  }
  print "(* = not held: lost% = (drops + unseen) / sent >= 0.1 %; CPU-s/1M = the tool'"'"'s CPU seconds per 1M"
  print " packets sent; coll-s = the collector'"'"'s CPU seconds in the same window, not in CPU-s;"
  print " ~ = the sender reached under 95 % of the rate asked: the pps column is the rate sent)"
  print ""
  split("agent softflowd", T, " ")
  for (t = 1; t <= 2; t++) {
    best = ""; fail = ""
    for (i = 1; i <= n; i++) {
      k = R[i] SUBSEP T[t]
      if (!(k in held)) continue
      if (held[k]) best = R[i]; else if (fail == "") fail = R[i]
    }
    printf "%-16s highest rate held (< 0.1 %% lost): %s%s\n", name(T[t]),
      (best == "" ? "none" : rlabel(best) " (" int(achieved[best SUBSEP T[t]]) " pps sent)"),
      (fail == "" ? "" : "; first not held: " rlabel(fail))
  }
  common = ""
  for (i = 1; i <= n; i++)
    if (held[R[i] SUBSEP "agent"] && held[R[i] SUBSEP "softflowd"]) common = R[i]
  print ""
  for (i = 1; i <= n; i++) if (R[i] == 100000) at100 = 1
  if (at100 && per1m[100000 SUBSEP "agent"] > 0)
    printf "ratio of CPU per 1M packets, softflowd/agent, at 100k pps: %.2f\n",
      per1m[100000 SUBSEP "softflowd"] / per1m[100000 SUBSEP "agent"]
  else
    print "ratio of CPU per 1M packets, softflowd/agent, at 100k pps: n/a (no 100k step)"
  if (common != "" && per1m[common SUBSEP "agent"] > 0)
    printf "ratio of CPU per 1M packets, softflowd/agent, at the highest rate both held (%s): %.2f\n", rlabel(common),
      per1m[common SUBSEP "softflowd"] / per1m[common SUBSEP "agent"]
  else
    print "ratio of CPU per 1M packets, softflowd/agent, at the highest rate both held: n/a (none held by both)"
}'
