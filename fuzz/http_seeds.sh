#!/usr/bin/env bash
# Seeds for http_fuzz, from real peers on 127.0.0.1:
#   - requests curl makes to a daemon's /metrics (plain, basic auth, HEAD, a POST with a body,
#     a query string, HTTP/1.0, two requests on one kept-alive connection), caught by a small
#     listener that answers each; one seed per connection, prefixed "S" and a read size;
#   - Alertmanager's own answers to POSTs of alerts (accepted, refused as invalid, a wrong
#     path, malformed JSON) and to a status query, from a real prometheus-alertmanager;
#     prefixed "A" and a read size.
#   fuzz/http_seeds.sh DIR
set -euo pipefail
dir=$1
mkdir -p "$dir"
for t in curl prometheus-alertmanager; do
  command -v "$t" >/dev/null || { echo "http_seeds: $t not found (scripts/install-deps.sh)" >&2; exit 1; }
done
work=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Requests.
/usr/bin/python3 - "$dir" "$work/port" <<'PY' &
import re, socket, sys
d, pf = sys.argv[1], sys.argv[2]
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(8)
open(pf, "w").write(str(srv.getsockname()[1]))
srv.settimeout(10)
n = 0
try:
    while n < 8:  # the curl calls below, one connection each
        c, _ = srv.accept()
        c.settimeout(2)
        got, answered = b"", 0
        try:
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                got += chunk
                # Answer each complete request, so curl sends the next on this connection.
                while True:
                    pos, ends = 0, []
                    for _ in range(answered + 1):
                        end = got.find(b"\r\n\r\n", pos)
                        if end < 0:
                            break
                        m = re.search(rb"content-length: *(\d+)", got[pos:end], re.I)
                        pos = end + 4 + (int(m.group(1)) if m else 0)
                        ends.append(pos)
                    if len(ends) <= answered or ends[-1] > len(got):
                        break
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                    answered += 1
        except (socket.timeout, ConnectionError):
            pass
        c.close()
        open("%s/request-%02d" % (d, n), "wb").write(b"S" + bytes([n * 37 % 256]) + got)
        n += 1
except socket.timeout:
    pass
PY
pids+=($!)
for _ in $(seq 50); do [[ -s $work/port ]] && break; sleep 0.1; done
base=http://127.0.0.1:$(cat "$work/port")
c() { curl -s --max-time 3 -o /dev/null "$@" || true; }
c "$base/metrics"
c -u "prometheus:s3cret pass" "$base/metrics"
c -I "$base/-/healthy"
c -X POST -d 'a=1&b=2' "$base/metrics"
c "$base/metrics?name[]=up"
c --http1.0 -H 'Connection: keep-alive' "$base/metrics"
c "$base/metrics" -o /dev/null "$base/-/healthy"
c -H "X-Long: $(head -c 3000 /dev/zero | tr '\0' x)" "$base/metrics"
wait "${pids[0]}" 2>/dev/null || true

# Alertmanager's answers.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$work/am.yml" <<YML
route: {receiver: none}
receivers: [{name: none}]
YML
prometheus-alertmanager --config.file="$work/am.yml" --storage.path="$work/am" \
  --web.listen-address="127.0.0.1:$port" --cluster.listen-address= >"$work/am.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do curl -sf --max-time 1 "http://127.0.0.1:$port/-/ready" >/dev/null && break; sleep 0.1; done
curl -sf --max-time 1 "http://127.0.0.1:$port/-/ready" >/dev/null ||
  { echo "http_seeds: alertmanager did not start: $(tail -n 5 "$work/am.log")" >&2; exit 1; }
/usr/bin/python3 - "$dir" "$port" <<'PY'
import socket, sys
d, port = sys.argv[1], int(sys.argv[2])
now = "2026-12-07T12:00:00Z"
alert = ('[{"labels":{"alertname":"ssh_password_guessing","src":"10.99.1.10"},'
         '"annotations":{"summary":"12 SSH connections"},"startsAt":"%s"}]' % now)
bad = ('[{"labels":{"alertname":"x"},"startsAt":"2026-12-07T12:00:00Z",'
       '"endsAt":"2026-12-07T11:00:00Z"}]')
asks = [("POST", "/api/v2/alerts", alert), ("POST", "/api/v2/alerts", bad),
        ("POST", "/api/v2/alerts", "[{"), ("POST", "/api/v1/alerts", alert),
        ("GET", "/api/v2/status", None), ("GET", "/api/v2/alerts", None)]
for i, (method, path, body) in enumerate(asks):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    req = "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n" % (method, path, port)
    if body is not None:
        req += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
    req += "\r\n" + (body or "")
    s.sendall(req.encode())
    got = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.close()
    open("%s/answer-%02d" % (d, i), "wb").write(b"A" + bytes([(i * 53) % 256]) + got)
PY
echo "http_seeds: $(ls "$dir"/request-* | wc -l) requests and $(ls "$dir"/answer-* | wc -l) Alertmanager answers in $dir"
