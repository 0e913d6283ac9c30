#!/usr/bin/env bash
# An agent facing an impostor collector refuses it: the agent checks the collector's
# certificate chain against its CA and the certificate's names against server_name. Two real
# collectors play the impostor:
#  (1) a certificate from another CA (its own CA trusts the agent, so only the agent can say no)
#  (2) a certificate from the right CA, but for another name (impostor.example, not localhost)
# For each: the agent keeps running, counts the failed attempts
# (citywatch_agent_connect_failures_total), logs the TLS failure, sends no batch
# (citywatch_agent_batches_sent_total 0), keeps the capture spooled; the impostor establishes
# no session and receives nothing. (3) Control: an agent listing [impostor 1, impostor 2, the
# genuine collector] fails over past both and delivers the whole capture to the genuine one,
# exactly once.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"

PCAP="$WORK/small.pcap"
cw_make_small_pcap "$PCAP"
PACKETS=35  # cw_make_small_pcap: 20 TCP + 10 UDP + 5 ICMP

cw_certs "$WORK/pki" demo-agent
cw_certs "$WORK/pki-other"  # another CA with its own collector certificate
# The right CA, the wrong name.
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=CityWatch/CN=impostor.example" \
  -keyout "$WORK/pki/impostor.key" -out "$WORK/pki/impostor.csr" 2>/dev/null || fail "impostor key"
openssl x509 -req -in "$WORK/pki/impostor.csr" -CA "$WORK/pki/ca.pem" -CAkey "$WORK/pki/ca.key" \
  -CAcreateserial -days 30 -out "$WORK/pki/impostor.pem" 2>/dev/null -extfile <(printf '%s\n' \
  "basicConstraints=CA:FALSE" "keyUsage=digitalSignature" "extendedKeyUsage=serverAuth" \
  "subjectAltName=DNS:impostor.example") || fail "impostor certificate"
openssl verify -CAfile "$WORK/pki/ca.pem" "$WORK/pki/impostor.pem" >/dev/null ||
  fail "the wrong-name certificate does not chain to the right CA (test set-up)"

# impostor NAME CERT KEY: a real collector that trusts the agents' CA but presents CERT.
impostor() {
  cw_collector_config "$WORK/$1.yaml" "$WORK/pki" "$WORK/state-$1"
  sed -i "s#cert: .*#cert: $2#; s#key: .*#key: $3#" "$WORK/$1.yaml"
  cw_start_collector "$1" "$WORK/$1.yaml"
}
impostor wrong-ca "$WORK/pki-other/collector.pem" "$WORK/pki-other/collector.key"
CA_PORT=$INGEST_PORT CA_METRICS=$METRICS_PORT
impostor wrong-name "$WORK/pki/impostor.pem" "$WORK/pki/impostor.key"
NAME_PORT=$INGEST_PORT NAME_METRICS=$METRICS_PORT

# refused CASE PORT METRICS: an agent aimed only at the impostor on PORT.
refused() {
  local case=$1 port=$2 metrics=$3 fails pending
  cw_agent_config "$WORK/agent-$case.yaml" "$WORK/pki" demo-agent "$port" "$WORK/spool-$case" "
metrics:
  listen: 127.0.0.1:0"
  cw_spawn "$WORK/agent-$case.log" "$AGENT_BIN" --config "$WORK/agent-$case.yaml" -r "$PCAP"
  local pid=$CW_LAST_PID
  cw_agent_metrics "$WORK/agent-$case.log"
  # Two refusals: the first attempt and a retry after the backoff.
  cw_wait_until 300 "$case: connect_failures_total >= 2" \
    cw_at_least "$AGENT_METRICS" 2 citywatch_agent_connect_failures_total
  pending() { cw_at_least "$AGENT_METRICS" 1 citywatch_agent_spool_batches_pending; }
  cw_wait_until 300 "$case: the capture spooled" pending
  kill -0 "$pid" 2>/dev/null || fail "$case: the agent exited (nothing can have been acked)"
  local m
  m=$(cw_scrape "$AGENT_METRICS")
  fails=$(cw_sum citywatch_agent_connect_failures_total <<<"$m")
  pending=$(cw_sum citywatch_agent_spool_batches_pending <<<"$m")
  cw_expect "$case: batches sent to the impostor" "$(cw_sum citywatch_agent_batches_sent_total <<<"$m")" 0
  cw_expect "$case: ACKs from the impostor" "$(cw_sum citywatch_agent_acks_total <<<"$m")" 0
  grep -q "forward: 127.0.0.1:$port: TLS handshake failed" "$WORK/agent-$case.log" ||
    fail "$case: no 'TLS handshake failed' in the agent log"
  cw_stop "$pid"
  m=$(cw_scrape "$metrics")
  cw_expect "$case: sessions at the impostor" "$(cw_sum citywatch_collector_connections_total <<<"$m")" 0
  cw_expect "$case: batches at the impostor" "$(cw_sum citywatch_collector_batches_received_total <<<"$m")" 0
  cw_expect "$case: flows at the impostor" "$(cw_sum citywatch_flows_total <<<"$m")" 0
  REPORT+=" $case: $fails refusals, $pending batches kept in the spool, 0 sent, impostor 0 sessions;"
  cw_log "$case: $(grep -m1 "TLS handshake failed" "$WORK/agent-$case.log")"
}
REPORT=""
refused wrong-ca "$CA_PORT" "$CA_METRICS"
refused wrong-name "$NAME_PORT" "$NAME_METRICS"

# (3) Control: the genuine collector last in the list.
cw_collector_config "$WORK/genuine.yaml" "$WORK/pki" "$WORK/state-genuine"
cw_start_collector genuine "$WORK/genuine.yaml"
cw_agent_config "$WORK/agent-3.yaml" "$WORK/pki" demo-agent "$CA_PORT" "$WORK/spool-3"
/usr/bin/python3 - "$WORK/agent-3.yaml" "$NAME_PORT" "$INGEST_PORT" <<'EOF' || fail "agent-3 config"
import sys
p, name_port, genuine_port = sys.argv[1:]
s = open(p).read()
extra = "".join(f"  - address: 127.0.0.1:{port}\n    server_name: localhost\n" for port in (name_port, genuine_port))
s = s.replace("    server_name: localhost\n", "    server_name: localhost\n" + extra, 1)
open(p, "w").write(s)
EOF
cw_spawn "$WORK/agent-3.log" "$AGENT_BIN" --config "$WORK/agent-3.yaml" -r "$PCAP"
cw_wait_exit "$CW_LAST_PID" 600
cw_expect "(3) exit code of the agent" "$CW_EXIT" 0
grep -q "forward: 127.0.0.1:$CA_PORT: TLS handshake failed" "$WORK/agent-3.log" || fail "(3) the wrong-CA impostor was not tried first"
grep -q "forward: 127.0.0.1:$NAME_PORT: TLS handshake failed" "$WORK/agent-3.log" || fail "(3) the wrong-name impostor was not tried"
G=$(cw_scrape "$METRICS_PORT")
cw_expect "(3) packets at the genuine collector" "$(cw_sum citywatch_flow_packets_total <<<"$G")" $PACKETS
for m in "$CA_METRICS" "$NAME_METRICS"; do
  cw_expect "(3) sessions at an impostor" "$(cw_metric "$m" citywatch_collector_connections_total)" 0
done
echo "PASS: impostor collectors refused:$REPORT (3) [wrong CA, wrong name, genuine] -> $PACKETS of $PACKETS packets at the genuine collector, 0 at the impostors"
