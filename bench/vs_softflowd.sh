#!/bin/bash
# Side-by-side CPU cost of flow metering: softflowd vs the CityWatch packet meter, on one
# >= 1M-packet file built by repeating segment-a.pcap (time-shifted with editcap -t, joined
# with mergecap -a; cached under the build dir). Builds nothing; reports CPU seconds
# (user+sys from /usr/bin/time) and the ratio, measured in this one run.
# usage: bench/vs_softflowd.sh [BUILD_DIR]   (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(realpath "${1:-build}")
shared="$here/../../shared"
src="$shared/testdata/captures/segment-a.pcap"
[[ -f $src ]] || { echo "missing $src (shared test data)" >&2; exit 1; }

# The CityWatch side; becomes the agent's offline mode (--once) when that exists.
AGENT_CMD=("$build/bench/citywatch_offline_meter")
# softflowd with the timeouts shared/tools/gen-flows.sh used; exports NetFlow v9 to a
# loopback port nobody listens on (the ICMP port-unreachables cost it nothing measurable).
SOFTFLOWD_CMD=(softflowd -d -v 9 -t maxlife=60 -n 127.0.0.1:29999)
COPIES=${COPIES:-35}  # 35 x 29,331 frames = 1.03M

[[ -x ${AGENT_CMD[0]} ]] || { echo "build ${AGENT_CMD[0]} first (target citywatch_offline_meter)" >&2; exit 1; }
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

cpu() {  # cpu OUTFILE COMMAND... -> prints user+sys seconds
  local out=$1; shift
  /usr/bin/time -f '%U %S' -o "$out.time" "$@" >"$out" 2>&1 || true
  awk '{printf "%.3f", $1 + $2}' "$out.time"
}
log=$(mktemp -d); trap 'rm -rf "$log"' EXIT
sf=$(cpu "$log/softflowd" "${SOFTFLOWD_CMD[@]}" -r "$big")
cw=$(cpu "$log/citywatch" "${AGENT_CMD[@]}" "$big")
echo "--- softflowd (last lines)"
tail -n 3 "$log/softflowd"
echo "--- citywatch_offline_meter"
cat "$log/citywatch"
echo "---"
awk -v sf="$sf" -v cw="$cw" -v n="$packets" 'BEGIN {
  printf "softflowd  CPU seconds: %8.3f  (%.0f packets/s)\n", sf, (sf > 0 ? n / sf : 0)
  printf "citywatch  CPU seconds: %8.3f  (%.0f packets/s)\n", cw, (cw > 0 ? n / cw : 0)
  printf "ratio softflowd/citywatch: %.2f\n", (cw > 0 ? sf / cw : 0)
}'
