#!/usr/bin/env bash
# Every query of every Grafana dashboard in dashboards/ runs against a real Prometheus that
# scrapes a real collector (fed a capture through an agent) and a live agent, and returns
# data. Grafana's template variables are replaced as "All" would: $segment/$agent -> .*,
# $__rate_interval -> 1m.
source "$(dirname "$0")/lib.sh"
cw_init "$@"
command -v prometheus >/dev/null || { echo "SKIP: prometheus not installed" >&2; exit 77; }

cw_certs "$WORK/pki" demo-agent live-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"

pcap=$SEGMENT_A
if [[ ! -f $pcap ]]; then
  pcap=$WORK/small.pcap
  cw_make_small_pcap "$pcap"
fi
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml" -r "$pcap"
cw_wait_exit "$CW_LAST_PID" 300
cw_expect "exit code of the replaying agent" "$CW_EXIT" 0

# A live agent, so the agent-side panels have a target to scrape.
cw_agent_config "$WORK/live.yaml" "$WORK/pki" live-agent "$INGEST_PORT" "$WORK/live-spool" "
capture:
  - interface: lo
    filter: udp port 9
    promiscuous: false
metrics:
  listen: 127.0.0.1:0"
cw_spawn "$WORK/live.log" "$AGENT_BIN" --config "$WORK/live.yaml"
agent_port() {
  AGENT_PORT=$(sed -n 's|.*metrics at http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$WORK/live.log")
  [[ -n $AGENT_PORT ]]
}
cw_wait_until 100 "the live agent's metrics endpoint" agent_port

PROM_PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '%s\n' \
  "global: {scrape_interval: 1s, evaluation_interval: 1s}" \
  "scrape_configs:" \
  "  - job_name: citywatch-collector" \
  "    static_configs: [{targets: ['127.0.0.1:$METRICS_PORT']}]" \
  "  - job_name: citywatch-agent" \
  "    static_configs: [{targets: ['127.0.0.1:$AGENT_PORT']}]" >"$WORK/prometheus.yml"
cw_spawn "$WORK/prometheus.log" prometheus --config.file="$WORK/prometheus.yml" \
  --storage.tsdb.path="$WORK/tsdb" --web.listen-address="127.0.0.1:$PROM_PORT"
PROM=http://127.0.0.1:$PROM_PORT

# query PROMQL: prints the number of series in the result, or "error: ...".
query() {
  curl -sf --max-time 5 "$PROM/api/v1/query" --data-urlencode "query=$1" |
    /usr/bin/python3 -c 'import json,sys
d = json.load(sys.stdin)
print(len(d["data"]["result"]) if d["status"] == "success" else "error: " + d.get("error", ""))' \
      2>/dev/null
}
scraped() { [[ "$(query 'count_over_time(up{job=~"citywatch-.*"}[1m]) >= 4')" == 2 ]]; }
cw_wait_until 300 "4 scrapes of both targets" scraped

exprs=$(/usr/bin/python3 -c '
import json, sys
for path in sys.argv[1:]:
    d = json.load(open(path))
    for p in d["panels"]:
        for t in p["targets"]:
            e = t["expr"].replace("$segment", ".*").replace("$agent", ".*")
            print(d["uid"] + "\t" + p["title"] + "\t" + e.replace("$__rate_interval", "1m"))
' "$SRC_DIR"/dashboards/*.json)
[[ -n $exprs ]] || fail "no dashboard queries found in $SRC_DIR/dashboards"
n=0
while IFS=$'\t' read -r uid title expr; do
  got=$(query "$expr")
  [[ "$got" =~ ^[1-9][0-9]*$ ]] ||
    fail "dashboard $uid, panel '$title': query returned ${got:-nothing}: $expr"
  n=$((n + 1))
done <<<"$exprs"

dashboards=$(ls "$SRC_DIR"/dashboards/*.json | wc -l)
echo "PASS: $n queries from $dashboards dashboards each returned data from a real Prometheus scraping the collector and a live agent"
