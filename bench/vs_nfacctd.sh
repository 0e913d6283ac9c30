#!/bin/bash
# Side-by-side CPU cost of decoding flow exports: citywatch-agent's decoder against pmacct's
# nfacctd, both reading the same large export capture (softflowd-v9.pcap from the shared
# test data repeated COPIES times with mergecap -a; cached under the build dir) in one run.
#   citywatch-agent decode --summary-only FILE   decode + normalise every record (the
#                                                listener's path without the socket)
#   nfacctd (pcap_savefile mode)                 decode, with the print plugin aggregating
#                                                by 5-tuple into /dev/null
# Reports CPU seconds (user+sys from /usr/bin/time, children included) per run, records per
# CPU-second, and the ratio. Run it under the build lock so builds do not disturb timings:
#   bench/vs_nfacctd.sh [BUILD_DIR] [FORMAT]
# FORMAT: v9 (default), v10 (IPFIX) or v5.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(realpath "${1:-build}")
format=${2:-v9}
src="$here/../../shared/testdata/flows/softflowd-$format.pcap"
[[ -f $src ]] || { echo "missing $src (shared test data)" >&2; exit 1; }
AGENT_BIN="$build/agent/app/citywatch-agent"
[[ -x $AGENT_BIN ]] || { echo "build $AGENT_BIN first" >&2; exit 1; }
command -v nfacctd >/dev/null || { echo "nfacctd (pmacct) not installed" >&2; exit 1; }
COPIES=${COPIES:-200}  # 200 x 642 datagrams x ~31 records = 4M records

cache="$build/bench-data"
big="$cache/softflowd-$format-x$COPIES.pcap"
if [[ ! -f $big ]]; then
  mkdir -p "$cache"
  parts=()
  for ((i = 0; i < COPIES; i++)); do parts+=("$src"); done
  mergecap -a -F pcap -w "$big.tmp" "${parts[@]}"
  mv "$big.tmp" "$big"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "input: $big ($(capinfos -c -M "$big" | awk '/Number of packets/ {print $NF}') datagrams)"

cpu() {  # cpu OUTFILE CMD...: runs CMD, leaves "user sys" CPU seconds in OUTFILE
  local out=$1
  shift
  /usr/bin/time -f "%U %S" -o "$out" "$@" >/dev/null 2>"$work/stderr" || {
    cat "$work/stderr" >&2
    return 1
  }
}

cpu "$work/agent.time" "$AGENT_BIN" decode --summary-only "$big"
records=$(sed -n 's/.*"flows":\([0-9]*\).*/\1/p' "$work/stderr")
errors=$(sed -n 's/.*"decode_errors":\([0-9]*\).*/\1/p' "$work/stderr")

cat >"$work/nfacctd.conf" <<CONF
daemonize: false
pcap_savefile: $big
pcap_savefile_wait: false
plugins: print[a]
aggregate[a]: src_host, dst_host, src_port, dst_port, proto
print_output_file[a]: $work/nfacctd.out
print_refresh_time[a]: 3600
CONF
cpu "$work/nfacctd.time" nfacctd -f "$work/nfacctd.conf"

read -r au as <"$work/agent.time"
read -r nu ns <"$work/nfacctd.time"
awk -v r="$records" -v e="$errors" -v au="$au" -v as="$as" -v nu="$nu" -v ns="$ns" 'BEGIN {
  a = au + as; n = nu + ns
  printf "records: %d (decode errors %d)\n", r, e
  printf "citywatch-agent decode: %.2f CPU-s (%.2f user + %.2f sys), %.1f M records/CPU-s\n", a, au, as, r / a / 1e6
  printf "nfacctd:                %.2f CPU-s (%.2f user + %.2f sys), %.1f M records/CPU-s\n", n, nu, ns, r / n / 1e6
  printf "ratio nfacctd / citywatch: %.1fx CPU per record\n", n / a
}'
