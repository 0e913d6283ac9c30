#!/bin/bash
# Side-by-side CPU cost of turning a capture into exported flows, on one >= 1M-packet file
# built by repeating segment-a.pcap (time-shifted with editcap -t, joined with mergecap -a;
# cached under the build dir). Three runs, in this one invocation:
#   softflowd -r FILE             decode, meter, export NetFlow v9 over UDP
#   citywatch-agent -r FILE       decode, meter, batch, spool to disk, mutual TLS to a real
#                                 collector started here, wait for every ack
#   citywatch_offline_meter FILE  decode + meter + packet events (the agent's packet path,
#                                 without batching, spool and TLS)
# softflowd and the agent also run on the file's first packet alone: what starting, connecting
# and stopping cost, subtracted for a second ratio (the packets' cost without start-up).
# Builds nothing; reports CPU seconds (user+sys from the child's rusage, best of RUNS=3 each) and
# the ratios.
# usage: bench/vs_softflowd.sh [BUILD_DIR]   (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(realpath "${1:-build}")
shared="$here/../../shared"
src="$shared/testdata/captures/segment-a.pcap"
[[ -f $src ]] || { echo "missing $src (shared test data)" >&2; exit 1; }

METER_CMD=("$build/bench/citywatch_offline_meter")
AGENT_BIN="$build/agent/app/citywatch-agent"
COLLECTOR_BIN="$build/collector/app/citywatch-collector"
# softflowd with the timeouts shared/tools/gen-flows.sh used; exports NetFlow v9 to a
# loopback port nobody listens on (the ICMP port-unreachables cost it nothing measurable).
SOFTFLOWD_CMD=(softflowd -d -v 9 -t maxlife=60 -n 127.0.0.1:29999)
COPIES=${COPIES:-35}  # 35 x 29,331 frames = 1.03M
# The agent's batch.compression: lz4 (its default: batches packed before the spool), none
# (what the figures before packed batches were measured with) or zstd (what compressing every
# batch for the wire costs the agent; docs/configuration.md).
COMPRESSION=${COMPRESSION:-lz4}
[[ $COMPRESSION == none || $COMPRESSION == lz4 || $COMPRESSION == zstd ]] ||
  { echo "COMPRESSION: none, lz4 or zstd" >&2; exit 1; }

for b in "${METER_CMD[0]}" "$AGENT_BIN" "$COLLECTOR_BIN"; do
  [[ -x $b ]] || { echo "build $b first (cmake --build $build)" >&2; exit 1; }
done
command -v softflowd >/dev/null || { echo "softflowd not installed" >&2; exit 1; }

cache="$build/bench-data"
big="$cache/segment-a-x$COPIES.pcap"
if [[ ! -f $big ]]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d "$cache/tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  parts=()
  for ((i = 0; i < COPIES; i++)); do
    # 10 s per copy: the capture lasts 8.5 s, so copies follow one another in time.
    editcap -t $((i * 10)) "$src" "$tmp/part$i.pcap"
    parts+=("$tmp/part$i.pcap")
  done
  mergecap -a -F pcap -w "$tmp/big.pcap" "${parts[@]}"
  mv "$tmp/big.pcap" "$big"
  rm -rf "$tmp"
  trap - EXIT
fi
packets=$(capinfos -c -M "$big" | awk '/Number of packets/ {print $NF}')
echo "input: $big ($packets packets)"
# The file's first packet alone: what each tool costs to start, read nothing and stop.
one="$cache/segment-a-first.pcap"
[[ -f $one ]] || editcap -F pcap -r "$src" "$one" 1

cpu() {  # cpu OUTFILE COMMAND... -> prints user+sys seconds
  # From the child's rusage, to the microsecond (/usr/bin/time prints hundredths: a step of
  # 6 % of the agent's run).
  local out=$1; shift
  /usr/bin/python3 -c '
import os, subprocess, sys
with open(sys.argv[1], "wb") as out:
    child = subprocess.Popen(sys.argv[2:], stdout=out, stderr=subprocess.STDOUT)
    _, _, r = os.wait4(child.pid, 0)
print("%.3f" % (r.ru_utime + r.ru_stime), end="")' "$out" "$@"
}
log=$(mktemp -d)
col_pid=""
trap '[[ -n $col_pid ]] && kill $col_pid 2>/dev/null; rm -rf "$log"' EXIT

# A collector for the agent to stream to, on ports chosen at run time.
bash "$here/../scripts/make-certs.sh" "$log/pki" bench-agent >/dev/null
cat >"$log/collector.yaml" <<EOF
listen: {ingest: 127.0.0.1:0, metrics: 127.0.0.1:0}
tls: {ca: pki/ca.pem, cert: pki/collector.pem, key: pki/collector.key}
state_dir: collector-state
EOF
"$COLLECTOR_BIN" --config "$log/collector.yaml" --ready-file "$log/ready" >"$log/collector.log" 2>&1 &
col_pid=$!
for _ in $(seq 100); do [[ -f $log/ready ]] && break; sleep 0.1; done
ingest=$(sed -E 's/.*"ingest_port":([0-9]+).*/\1/' "$log/ready")
cat >"$log/agent.yaml" <<EOF
agent: {id: bench-agent, segment: bench}
collectors: [{address: 127.0.0.1:$ingest, server_name: localhost}]
tls: {ca: pki/ca.pem, cert: pki/bench-agent.pem, key: pki/bench-agent.key}
flow_meter: {idle_timeout: 3600s, active_timeout: 60s}
spool: {dir: agent-spool}
batch: {compression: $COMPRESSION}
EOF

# Best of RUNS (default 3) for each, interleaved so a noisy moment hits all three alike.
# Each agent run starts from an empty spool (a new stream; the collector counts it anew).
RUNS=${RUNS:-3}
# A command that could not start leaves no figure: the run stops (set -e) rather than
# reporting 0 CPU seconds.
best() {
  [[ -n $1 ]] || { echo "a timed command did not start (its error is above)" >&2; return 1; }
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b == "" || a + 0 < b + 0) ? a : b }'
}
sf="" ag="" mt="" sf1="" ag1=""
sf_all="" ag_all=""  # every run's figure, for the medians: a best-of hides how much the host moved
for ((run = 1; run <= RUNS; run++)); do
  t=$(cpu "$log/softflowd" "${SOFTFLOWD_CMD[@]}" -r "$big")
  sf=$(best "$t" "$sf")
  sf_all+=" $t"
  rm -rf "$log/agent-spool"
  t=$(cpu "$log/agent" "$AGENT_BIN" --config "$log/agent.yaml" -r "$big")
  ag=$(best "$t" "$ag")
  ag_all+=" $t"
  mt=$(best "$(cpu "$log/meter" "${METER_CMD[@]}" "$big")" "$mt")
  sf1=$(best "$(cpu "$log/softflowd-one" "${SOFTFLOWD_CMD[@]}" -r "$one")" "$sf1")
  rm -rf "$log/agent-spool"
  ag1=$(best "$(cpu "$log/agent-one" "$AGENT_BIN" --config "$log/agent.yaml" -r "$one")" "$ag1")
done
echo "--- citywatch-agent (last lines)"
tail -n 2 "$log/agent"
echo "--- citywatch_offline_meter"
cat "$log/meter"
echo "---"
median() {
  tr ' ' '\n' <<<"$1" | grep . | sort -n |
    awk '{ v[NR] = $1 } END { printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
awk -v sf="$sf" -v ag="$ag" -v mt="$mt" -v sf1="$sf1" -v ag1="$ag1" -v n="$packets" \
  -v sfa="$sf_all" -v aga="$ag_all" -v sfm="$(median "$sf_all")" -v agm="$(median "$ag_all")" \
  -v comp="$COMPRESSION" 'BEGIN {
  printf "softflowd -r            CPU seconds: %7.3f  (%.2fM packets/s)\n", sf, (sf > 0 ? n / sf / 1e6 : 0)
  printf "citywatch-agent -r      CPU seconds: %7.3f  (%.2fM packets/s)\n", ag, (ag > 0 ? n / ag / 1e6 : 0)
  printf "decode+meter+events     CPU seconds: %7.3f  (%.2fM packets/s)\n", mt, (mt > 0 ? n / mt / 1e6 : 0)
  printf "ratio softflowd/agent:  %.2f\n", (ag > 0 ? sf / ag : 0)
  printf "ratio softflowd/kernel: %.2f\n", (mt > 0 ? sf / mt : 0)
  # Start-up and the packets apart: the run on the first packet alone is what starting,
  # connecting and stopping cost; the difference is what the other packets cost.
  printf "start-up (one packet)   CPU seconds: softflowd %.3f, citywatch-agent %.3f\n", sf1, ag1
  printf "ratio softflowd/agent without start-up: %.2f\n", (ag - ag1 > 0 ? (sf - sf1) / (ag - ag1) : 0)
  printf "every run (CPU seconds): softflowd%s; citywatch-agent%s\n", sfa, aga
  printf "ratio of the medians (%.3f / %.3f): %.2f\n", sfm, agm, (agm > 0 ? sfm / agm : 0)
  printf "agent batch.compression: %s\n", comp
}'
