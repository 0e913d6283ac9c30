#!/usr/bin/env bash
# A real Prometheus scrapes both daemons' /metrics over TLS (client certificate required)
# with basic auth, from an exporter-toolkit web config; a job with the wrong password gets
# up == 0 and the collector counts the refusals by reason. Then 20 clients open connections
# and never finish their headers, and a scrape still answers (its time is printed; timing
# figures belong to bench/http_stall.sh).
source "$(dirname "$0")/lib.sh"
cw_init "$@"
for t in prometheus htpasswd python3; do
  command -v "$t" >/dev/null || { echo "FAIL: $t not installed (scripts/install-deps.sh)" >&2; exit 1; }
done

cw_certs "$WORK/pki" live-agent prometheus
HASH=$(htpasswd -nbBC 10 prometheus s3cret | cut -d: -f2-)
printf 'wrong-password\n' >"$WORK/wrong.pass"
cat >"$WORK/web.yml" <<EOF
tls_server_config:
  cert_file: pki/collector.pem
  key_file: pki/collector.key
  client_ca_file: pki/ca.pem
  client_auth_type: RequireAndVerifyClientCert
  min_version: TLS12
basic_auth_users:
  prometheus: $HASH
EOF

cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state" "metrics:
  web_config_file: web.yml"
cw_start_collector collector "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" live-agent "$INGEST_PORT" "$WORK/spool" "
capture:
  - interface: lo
    filter: udp port 9
    promiscuous: false
metrics:
  listen: 127.0.0.1:0
  web_config_file: web.yml"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
AGENT=$CW_LAST_PID
agent_port() {
  AGENT_PORT=$(sed -n 's|.*metrics at https://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$WORK/agent.log")
  [[ -n $AGENT_PORT ]] || { kill -0 "$AGENT" 2>/dev/null || fail "the agent exited"; return 1; }
}
cw_wait_until 100 "the agent's https metrics endpoint" agent_port

# tls_scrape PORT [CURL_ARGS...]: /metrics with the scraper's certificate and password.
tls_scrape() {
  local port=$1
  shift
  curl -sS --max-time 10 --cacert "$WORK/pki/ca.pem" --cert "$WORK/pki/prometheus.pem" \
    --key "$WORK/pki/prometheus.key" -u prometheus:s3cret "$@" "https://127.0.0.1:$port/metrics"
}
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@"; }

# Refusals from curl first: no client certificate, plain HTTP, no password.
c=$(code --cacert "$WORK/pki/ca.pem" -u prometheus:s3cret "https://127.0.0.1:$METRICS_PORT/metrics")
[[ $c == 000 ]] || fail "a client without a certificate got HTTP $c"
c=$(code "http://127.0.0.1:$METRICS_PORT/metrics")
[[ $c == 000 ]] || fail "plain HTTP on the TLS port got HTTP $c"
c=$(code --cacert "$WORK/pki/ca.pem" --cert "$WORK/pki/prometheus.pem" --key "$WORK/pki/prometheus.key" \
  "https://127.0.0.1:$METRICS_PORT/metrics")
[[ $c == 401 ]] || fail "no password got HTTP $c, expected 401"
# The right password with a NUL and more after it (bcrypt's crypt() would stop at the NUL).
nul_auth=$(printf 'prometheus:s3cret\0junk' | base64 -w0)
c=$(code --cacert "$WORK/pki/ca.pem" --cert "$WORK/pki/prometheus.pem" --key "$WORK/pki/prometheus.key" \
  -H "Authorization: Basic $nul_auth" "https://127.0.0.1:$METRICS_PORT/metrics")
[[ $c == 401 ]] || fail "the password followed by a NUL and more got HTTP $c, expected 401"

PROM_PORT=$(cw_free_port tcp)
job() {  # NAME PORT PASSWORD_LINE
  printf '%s\n' \
    "  - job_name: $1" \
    "    scheme: https" \
    "    tls_config: {ca_file: $WORK/pki/ca.pem, cert_file: $WORK/pki/prometheus.pem, key_file: $WORK/pki/prometheus.key}" \
    "    basic_auth: {username: prometheus, $3}" \
    "    static_configs: [{targets: ['127.0.0.1:$2']}]"
}
{
  echo "global: {scrape_interval: 2s, scrape_timeout: 2s, evaluation_interval: 2s}"
  echo "scrape_configs:"
  job citywatch-collector "$METRICS_PORT" "password: s3cret"
  job citywatch-agent "$AGENT_PORT" "password: s3cret"
  job wrong-password "$METRICS_PORT" "password_file: $WORK/wrong.pass"
} >"$WORK/prometheus.yml"
cw_spawn "$WORK/prometheus.log" prometheus --config.file="$WORK/prometheus.yml" \
  --storage.tsdb.path="$WORK/tsdb" --web.listen-address="127.0.0.1:$PROM_PORT"
query() {  # PROMQL: the values of the result, one per line
  curl -sf --max-time 5 "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json,sys
d = json.load(sys.stdin)
for r in d["data"]["result"]: print(r["metric"].get("job", ""), r["value"][1])' 2>/dev/null
}
all_scraped() {
  local out
  out=$(query 'up')
  grep -qx 'citywatch-collector 1' <<<"$out" && grep -qx 'citywatch-agent 1' <<<"$out" &&
    grep -qx 'wrong-password 0' <<<"$out"
}
cw_wait_until 300 "Prometheus: up == 1 for both daemons, 0 for the wrong password" all_scraped
# The daemons' own series arrived through the TLS scrape.
[[ -n $(query 'citywatch_build_info{job="citywatch-collector"}') ]] || fail "no collector series in Prometheus"
[[ -n $(query 'citywatch_agent_collector_connected{job="citywatch-agent"}') ]] || fail "no agent series in Prometheus"

text=$(tls_scrape "$METRICS_PORT") || fail "cannot scrape the collector over TLS"
wrong=$(cw_sum citywatch_http_auth_failures_total 'reason="wrong_password"' <<<"$text")
missing=$(cw_sum citywatch_http_auth_failures_total 'reason="missing"' <<<"$text")
handshakes=$(cw_sum citywatch_http_tls_handshake_failures_total <<<"$text")
ok=$(cw_sum citywatch_http_requests_total 'code="200"' <<<"$text")
((wrong >= 1)) || fail "the collector counted no wrong_password refusal: $wrong"
((missing >= 1)) || fail "the collector counted no missing-credentials refusal: $missing"
((handshakes >= 2)) || fail "the collector counted $handshakes TLS handshake failures, expected >= 2"
cw_log "collector: 200s $ok, wrong_password $wrong, missing $missing, TLS handshake failures $handshakes"

# 20 stalled clients: TCP connections that send half a request line and then nothing.
cat >"$WORK/stall.py" <<'EOF'
import socket, sys, time
socks = []
for _ in range(int(sys.argv[2])):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"\x16\x03\x01")  # the start of a TLS record, never finished
    socks.append(s)
print("stalled", len(socks), flush=True)
time.sleep(600)
EOF
cw_spawn "$WORK/stall.log" python3 "$WORK/stall.py" "$METRICS_PORT" 20
stalled() { grep -q '^stalled 20' "$WORK/stall.log"; }
cw_wait_until 100 "20 stalled connections" stalled
t0=$(date +%s.%N)
tls_scrape "$METRICS_PORT" -o "$WORK/under-stall.metrics" || fail "no scrape answer under 20 stalled clients"
t1=$(date +%s.%N)
open=$(cw_sum citywatch_http_connections <"$WORK/under-stall.metrics")
((open >= 21)) || fail "expected the 20 stalled connections open during the scrape, saw $open"
cw_stop "$AGENT"

echo "PASS: Prometheus scraped collector and agent over TLS + basic auth (up == 1); wrong password: up == 0, counted $wrong; under 20 stalled clients ($open open) a scrape answered in $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b-a}') s"
