#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for a bounded time.
#   [FUZZ_JOBS=N] scripts/fuzz.sh [SECONDS_PER_TARGET] [BUILD_DIR]   (N targets at a time, default nproc)
# Seeds come from the project's own encoder and, when ../shared/testdata is present, from
# the real captures. A crash leaves its input in BUILD_DIR/fuzz-artifacts and fails the run.
set -euo pipefail
secs=${1:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${2:-$root/build-fuzz}
shared=$root/../shared/testdata

cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCITYWATCH_FUZZ=ON \
  -DBUILD_TESTING=OFF -DCITYWATCH_BENCH=OFF >/dev/null
cmake --build "$build" -j2 --target wire_codec_fuzz packet_decoder_fuzz pcap_file_fuzz pcap_to_corpus wire_corpus \
  flow_v5_fuzz flow_v9_fuzz flow_sflow_fuzz flow_corpus snmp_trap_fuzz config_fuzz rules_fuzz \
  ip_list_fuzz flow_state_fuzz flow_state_corpus http_fuzz

corpus=$build/fuzz-corpus
artifacts=$build/fuzz-artifacts
mkdir -p "$corpus/wire" "$corpus/packet" "$corpus/pcap_file" "$corpus/flow/v5" "$corpus/flow/v9" "$corpus/flow/sflow" \
  "$corpus/snmp_trap" "$corpus/config" "$corpus/rules" "$corpus/ip_list" "$corpus/flow_state" \
  "$corpus/http" "$artifacts"
"$build/fuzz/wire_corpus" "$corpus/wire"
# SNMP traps: real snmptrap datagrams (v1, v2c, v3 noAuth/authNoPriv/authPriv, an inform),
# caught by a UDP socket on loopback, one seed each.
bash "$root/fuzz/snmp_trap_seeds.sh" "$corpus/snmp_trap"
# HTTP: curl's requests to /metrics and a real Alertmanager's answers to posted alerts.
bash "$root/fuzz/http_seeds.sh" "$corpus/http"
# Flow sampling: one scapy-built capture per way an exporter states its rate (PSAMP selector
# algorithms, RFC 5102 and v9 sampler options, per-record intervals), seeding those fields.
mkdir -p "$build/sampling-captures"
/usr/bin/python3 "$root/tests/integration/sampling_captures.py" "$build/sampling-captures" 4739 >/dev/null
"$build/fuzz/flow_corpus" "$corpus/flow" 500 "$build/sampling-captures"/*.pcap
# Files operators edit: the shipped example configs, the rule pack and its address lists.
cp "$root"/systemd/*.example.yaml "$corpus/config/"
# The collector example with its commented-out dependencies (uptime.dependencies) switched on.
sed -E 's/^  # (dependenc|  [- ] )/  \1/' "$root/systemd/collector.example.yaml" \
  >"$corpus/config/collector-dependencies.yaml"
cp "$root"/rules/*.yaml "$corpus/rules/"
cp "$root"/rules/lists/* "$corpus/ip_list/"
# Threat-feed formats (docs/rules.md, "Lists and feeds"): Spamhaus DROP and Suricata iprep.
printf '; Spamhaus DROP List\n1.10.16.0/20 ; SBL256894\n2a06:e480::/29 ; SBL301771\n' \
  >"$corpus/ip_list/spamhaus-drop.txt"
printf '# ip,category,score\n198.51.100.0/24,1,90\n198.51.100.7,2,127\n2001:db8::/48,3,5\n' \
  >"$corpus/ip_list/iprep.csv"
# Flow-template state: what the decoder saves after the sampling captures (and, below, the
# real exports).
"$build/fuzz/flow_state_corpus" "$corpus/flow_state/sampling.state" "$build/sampling-captures"/*.pcap
if [[ -d "$shared" ]]; then
  "$build/fuzz/flow_state_corpus" "$corpus/flow_state/exporters.state" "$shared"/flows/*.pcap \
    "$shared"/vendor/akvorado/netflow/*.pcap
  # Capture files: the first frames of real captures, in both timestamp precisions.
  for format in pcap nsecpcap pcapng; do
    editcap -F "$format" -r "$shared/captures/segment-a.pcap" "$corpus/pcap_file/segment-a.$format" 1-12
  done
  "$build/fuzz/pcap_to_corpus" "$corpus/packet" 2000 "$shared/captures/segment-a.pcap" \
    "$shared"/vendor/akvorado/packet/*.pcap "$shared"/flows/*.pcap
  # Flow exports: the UDP payloads of real exporters' datagrams, one seed per datagram.
  "$build/fuzz/flow_corpus" "$corpus/flow" 500 "$shared"/flows/*.pcap \
    "$shared"/vendor/akvorado/netflow/*.pcap "$shared"/vendor/akvorado/sflow/*.pcap
else
  echo "fuzz: $shared not found; the packet decoder starts from an empty corpus"
fi

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Each libFuzzer process uses one core: FUZZ_JOBS targets (default: one per core) run side by
# side, each for the full time, and their summaries are printed in this order when all are done.
jobs=${FUZZ_JOBS:-$(nproc)}
targets=(wire_codec_fuzz:wire packet_decoder_fuzz:packet pcap_file_fuzz:pcap_file flow_v5_fuzz:flow/v5
  flow_v9_fuzz:flow/v9 flow_sflow_fuzz:flow/sflow snmp_trap_fuzz:snmp_trap config_fuzz:config
  rules_fuzz:rules ip_list_fuzz:ip_list flow_state_fuzz:flow_state http_fuzz:http)
declare -A pid_of
for target in "${targets[@]}"; do
  bin=${target%%:*}
  dir=${target##*:}
  while (($(jobs -rp | wc -l) >= jobs)); do wait -n || true; done
  echo "fuzz: $bin for ${secs}s"
  "$build/fuzz/$bin" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
    -artifact_prefix="$artifacts/$bin-" "$corpus/$dir" >"$artifacts/$bin.log" 2>&1 &
  pid_of[$bin]=$!
done
failed=0
for target in "${targets[@]}"; do
  bin=${target%%:*}
  rc=0
  wait "${pid_of[$bin]}" || rc=$?
  echo "fuzz: $bin"
  grep -E "^(stat::number_of_executed_units|stat::new_units_added|==|SUMMARY|INFO: Running)|Done" \
    "$artifacts/$bin.log" || true
  if ((rc != 0)); then
    echo "fuzz: $bin exited with $rc:"
    tail -40 "$artifacts/$bin.log"
    failed=1
  elif ls "$artifacts/$bin-"* >/dev/null 2>&1; then
    echo "fuzz: $bin found a failing input:" "$artifacts/$bin-"*
    failed=1
  fi
done
((failed == 0)) || exit 1
echo "fuzz: no crashes"
