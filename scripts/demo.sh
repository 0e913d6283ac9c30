#!/usr/bin/env bash
# The README's run command: installs what is needed, builds, and runs a collector and an
# agent on this machine with their embedded default configs, on real traffic.
#
# The agent captures live on loopback (minus its own TLS stream). Traffic: the recorded
# segment capture replayed onto loopback with tcpreplay when ../shared/testdata is present,
# and in any case real requests made here (HTTP scrapes of the collector, DNS lookups, pings).
# Runs until Ctrl-C, or DEMO_SECONDS seconds if set. Everything lives in out/demo/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[[ $(id -u) -eq 0 ]] || { echo "demo: live capture needs root: run it with sudo" >&2; exit 1; }

bash scripts/install-deps.sh
bash scripts/build.sh "$root/build"

demo=$root/out/demo
mkdir -p "$demo"
cd "$demo"
bash "$root/scripts/make-certs.sh" demo-pki demo-agent >/dev/null
ln -sfn "$root/rules" rules  # the embedded collector config loads the rule pack from ./rules
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT INT TERM

"$root/build/collector/app/citywatch-collector" --ready-file collector.ready \
  >collector.log 2>&1 &
pids+=($!)
for _ in $(seq 100); do [[ -f collector.ready ]] && break; sleep 0.1; done
[[ -f collector.ready ]] || { echo "demo: the collector did not start:"; cat collector.log; exit 1; }
"$root/build/agent/app/citywatch-agent" >agent.log 2>&1 &
pids+=($!)

metrics=http://127.0.0.1:9464/metrics
# A real Prometheus (Debian's) scraping both daemons with the shipped recording and alerting
# rules, so every dashboard query in dashboards/ runs on live data.
prom_url=""
if command -v prometheus >/dev/null; then
  {
    echo "global: {scrape_interval: 15s, evaluation_interval: 15s}"
    echo "rule_files:"
    for f in "$root"/rules/prometheus/*.yml; do echo "  - $f"; done
    echo "scrape_configs:"
    echo "  - job_name: citywatch-collector"
    echo "    static_configs: [{targets: ['127.0.0.1:9464']}]"
    echo "  - job_name: citywatch-agent"
    echo "    static_configs: [{targets: ['127.0.0.1:9465']}]"
  } >prometheus.yml
  prometheus --config.file=prometheus.yml --storage.tsdb.path=prometheus-data \
    --web.listen-address=127.0.0.1:9490 >prometheus.log 2>&1 &
  pids+=($!)
  prom_url="http://127.0.0.1:9490   (the dashboards' queries: dashboards/*.json)"
else
  prom_url="not started: install Debian's prometheus package (scripts/install-deps.sh does)"
fi
cat <<MSG

CityWatch demo is running (logs and state in $demo):
  collector metrics   $metrics
  agent metrics       http://127.0.0.1:9465/metrics
  Prometheus          $prom_url
  collector log       $demo/collector.log
  agent log           $demo/agent.log
  alert log           $demo/alerts.jsonl   (the municipal rule pack from rules/)
  outage report       $root/build/collector/report/citywatch report --db $demo/collector-state/uptime.sqlite -p $(date +%Y-%m) -f md
Flows reach the collector when they end (TCP FIN/RST, else a 15 s idle timeout).
MSG

traffic() {
  local pcap=$root/../shared/testdata/captures/segment-a.pcap
  while true; do
    if [[ -f $pcap ]]; then tcpreplay -q -i lo --mbps=20 "$pcap" >/dev/null 2>&1 || true; fi
    curl -s -o /dev/null "$metrics" || true
    dig +time=1 +tries=1 @127.0.0.1 -p 53 demo.city.example >/dev/null 2>&1 || true
    ping -c 2 -i 0.2 -q 127.0.0.1 >/dev/null 2>&1 || true
    sleep 1
  done
}
traffic &
pids+=($!)

end=$((SECONDS + ${DEMO_SECONDS:-1000000000}))
while ((SECONDS < end)); do
  sleep 5
  kill -0 "${pids[0]}" 2>/dev/null || { echo "demo: the collector stopped:"; tail collector.log; exit 1; }
  kill -0 "${pids[1]}" 2>/dev/null || { echo "demo: the agent stopped:"; tail agent.log; exit 1; }
  curl -s "$metrics" | awk '
    /^citywatch_flow_packets_total/ {p += $NF} /^citywatch_flow_bytes_total/ {b += $NF}
    /^citywatch_flows_total/ {f += $NF} /^citywatch_collector_agents_connected/ {a = $NF}
    END {printf "%s  agents connected %d  flows %d  packets %d  bytes %d",
         strftime("%H:%M:%S"), a, f, p, b}'
  alerts=$( [[ -f alerts.jsonl ]] && wc -l <alerts.jsonl || echo 0)
  echo "  alert log lines $alerts"
done
