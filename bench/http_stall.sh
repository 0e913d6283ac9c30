#!/usr/bin/env bash
# The collector under stalled HTTP clients and stalled ingest sessions (issue 11, acceptance
# 3): a real collector with TLS + basic auth on /metrics; STALLED clients open a connection and send
# the first 3 bytes of a TLS record, then nothing. Printed: the time of ROUNDS scrapes with
# curl (TLS handshake + bcrypt-cached auth + body) idle and under stall, and the collector's
# RSS idle and under stall. The old civetweb Exposer took ~30 s under 2 such clients.
# usage: bench/http_stall.sh [BUILD_DIR]   (default: build)   env: STALLED (20), ROUNDS (10)
set -uo pipefail
build=$(realpath "${1:-build}")
src=$(cd "$(dirname "$0")/.." && pwd)
stalled=${STALLED:-20}
rounds=${ROUNDS:-10}
work=$(mktemp -d /tmp/cw-http-stall.XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"' EXIT
bash "$src/scripts/make-certs.sh" "$work/pki" prometheus demo-agent >/dev/null
hash=$(htpasswd -nbBC 10 prometheus s3cret | cut -d: -f2-)
cat >"$work/web.yml" <<EOF
tls_server_config: {cert_file: pki/collector.pem, key_file: pki/collector.key}
basic_auth_users: {prometheus: $hash}
EOF
cat >"$work/collector.yaml" <<EOF
listen: {ingest: 127.0.0.1:0, metrics: 127.0.0.1:0}
tls: {ca: pki/ca.pem, cert: pki/collector.pem, key: pki/collector.key}
state_dir: state
metrics: {web_config_file: web.yml}
agents: {max_sessions: 64}
EOF
"$build/collector/app/citywatch-collector" --config "$work/collector.yaml" \
  --ready-file "$work/ready" >"$work/collector.log" 2>&1 &
col=$!
pids+=("$col")
for ((i = 0; i < 100; i++)); do [[ -s "$work/ready" ]] && break; sleep 0.1; done
port=$(sed -n 's/.*"metrics_port":\([0-9]*\).*/\1/p' "$work/ready")
[[ -n $port ]] || { echo "collector did not start: $(cat "$work/collector.log")" >&2; exit 1; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$col/status"; }
scrape_times() {  # prints min/median/max seconds of $rounds scrapes
  local i
  for ((i = 0; i < rounds; i++)); do
    curl -s -o /dev/null -w '%{time_total}\n' --max-time 30 --cacert "$work/pki/ca.pem" \
      -u prometheus:s3cret "https://127.0.0.1:$port/metrics"
  done | sort -n | awk '{a[NR] = $1} END {printf "min %.4f s, median %.4f s, max %.4f s", a[1], a[int((NR + 1) / 2)], a[NR]}'
}
scrape_times >/dev/null  # warms the bcrypt cache
idle_rss=$(rss)
idle=$(scrape_times)
python3 - "$port" "$stalled" >"$work/stall.log" 2>&1 <<'EOF' &
import socket, sys, time
socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1]))) for _ in range(int(sys.argv[2]))]
for s in socks: s.sendall(b"\x16\x03\x01")
print("stalled", len(socks), flush=True)
time.sleep(600)
EOF
pids+=($!)
for ((i = 0; i < 100; i++)); do grep -q stalled "$work/stall.log" && break; sleep 0.1; done
# And as many certified ingest sessions, each stalled inside a BATCH declaring 16 MiB.
ingest_port=$(sed -n 's/.*"ingest_port":\([0-9]*\).*/\1/p' "$work/ready")
/usr/bin/python3 "$src/tests/integration/ingest_client.py" stall 127.0.0.1 "$ingest_port" \
  "$work/pki" demo-agent "$stalled" >"$work/ingest-stall.log" 2>&1 &
pids+=($!)
for ((i = 0; i < 300; i++)); do grep -q "^stalled" "$work/ingest-stall.log" && break; sleep 0.1; done
grep -q "^stalled $stalled" "$work/ingest-stall.log" || echo "warning: ingest stall: $(cat "$work/ingest-stall.log")"
under=$(scrape_times)
under_rss=$(rss)
echo "metrics endpoint, TLS + basic auth, $rounds scrapes each:"
echo "  idle:                     $idle; collector RSS ${idle_rss} kB"
echo "  under $stalled stalled HTTP clients + $stalled stalled 16 MiB ingest batches: $under; collector RSS ${under_rss} kB (+$((under_rss - idle_rss)) kB)"
