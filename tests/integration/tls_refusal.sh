#!/usr/bin/env bash
# The collector refuses agents it cannot trust, and counts each refusal by reason:
#  (a) client certificate from another CA        -> certificate_verify_failed
#  (b) no client certificate (openssl s_client)   -> no_client_certificate
#  (c) CN not in agents.allowed                   -> unknown_agent
#  (d) HELLO agent id differs from certificate CN -> agent_id_mismatch
# and no refused agent delivers anything. (e) a valid agent then delivers the same capture,
# so "nothing delivered" above is not vacuous.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
command -v timeout >/dev/null || { echo "SKIP: timeout not found" >&2; exit 77; }

PCAP="$WORK/small.pcap"
if [[ -f "$SEGMENT_A" ]]; then PCAP=$SEGMENT_A; else cw_make_small_pcap "$PCAP"; fi

cw_certs "$WORK/pki" demo-agent agent-b
cw_certs "$WORK/pki-other" demo-agent        # same CN, different CA
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
MAIN_PORT=$INGEST_PORT MAIN_METRICS=$METRICS_PORT

rejected() {  # PORT REASON
  cw_metric "$1" citywatch_collector_connections_rejected_total "reason=\"$2\""
}
rejected_at_least_one() { local v; v=$(rejected "$1" "$2"); [[ -n "$v" ]] && ((v >= 1)); }
flows_total() { cw_metric "$1" citywatch_flows_total; }

for reason in certificate_verify_failed no_client_certificate unknown_agent agent_id_mismatch; do
  cw_expect "initial rejected{reason=$reason}" "$(rejected "$MAIN_METRICS" "$reason")" 0
done

# (a) A certificate signed by another CA. The agent trusts the right CA for the collector's
# certificate, so the refusal is the collector's. It never drains: timeout must expire.
cw_agent_config "$WORK/agent-a.yaml" "$WORK/pki" demo-agent "$MAIN_PORT" "$WORK/spool-a"
sed -i "s#$WORK/pki/demo-agent#$WORK/pki-other/demo-agent#" "$WORK/agent-a.yaml"
grep -q "pki-other/demo-agent.pem" "$WORK/agent-a.yaml" || fail "could not point agent-a at the other CA's certificate"
CW_LOGS+=("$WORK/agent-a.log")
timeout 5 "$AGENT_BIN" --config "$WORK/agent-a.yaml" -r "$PCAP" >"$WORK/agent-a.log" 2>&1
rc=$?
cw_expect "(a) exit code of 'timeout 5 agent' with a foreign-CA certificate" "$rc" 124
verify_failed=$(rejected "$MAIN_METRICS" certificate_verify_failed)
((verify_failed >= 1)) || fail "(a) rejected{reason=certificate_verify_failed} is $verify_failed"
cw_expect "(a) flows after the foreign-CA agent" "$(flows_total "$MAIN_METRICS")" 0

# (b) No client certificate at all.
CW_LOGS+=("$WORK/s_client.log")
timeout 10 openssl s_client -connect "127.0.0.1:$MAIN_PORT" -CAfile "$WORK/pki/ca.pem" \
  </dev/null >"$WORK/s_client.log" 2>&1
cw_wait_until 50 "(b) rejected{reason=no_client_certificate} >= 1" \
  rejected_at_least_one "$MAIN_METRICS" no_client_certificate
no_cert=$(rejected "$MAIN_METRICS" no_client_certificate)

# (d) agent-b's certificate, but the agent calls itself agent-a in HELLO.
cw_agent_config "$WORK/agent-d.yaml" "$WORK/pki" agent-a "$MAIN_PORT" "$WORK/spool-d" "" agent-b
cw_spawn "$WORK/agent-d.log" "$AGENT_BIN" --config "$WORK/agent-d.yaml" -r "$PCAP"
AGENT_D=$CW_LAST_PID
cw_wait_until 100 "(d) rejected{reason=agent_id_mismatch} >= 1" \
  rejected_at_least_one "$MAIN_METRICS" agent_id_mismatch
kill -0 "$AGENT_D" 2>/dev/null || fail "(d) the mismatched agent exited (it cannot have been acked)"
cw_stop "$AGENT_D"
mismatch=$(rejected "$MAIN_METRICS" agent_id_mismatch)
cw_expect "(d) flows after the mismatched agent" "$(flows_total "$MAIN_METRICS")" 0

# (c) A second collector with an allow list that does not name demo-agent.
cw_collector_config "$WORK/collector-c.yaml" "$WORK/pki" "$WORK/state-c" \
  "agents: {allowed: [other-agent]}"
cw_start_collector collector-c "$WORK/collector-c.yaml"
C_PORT=$INGEST_PORT C_METRICS=$METRICS_PORT
cw_agent_config "$WORK/agent-c.yaml" "$WORK/pki" demo-agent "$C_PORT" "$WORK/spool-c"
cw_spawn "$WORK/agent-c.log" "$AGENT_BIN" --config "$WORK/agent-c.yaml" -r "$PCAP"
AGENT_C=$CW_LAST_PID
cw_wait_until 100 "(c) rejected{reason=unknown_agent} >= 1" rejected_at_least_one "$C_METRICS" unknown_agent
kill -0 "$AGENT_C" 2>/dev/null || fail "(c) the disallowed agent exited (it cannot have been acked)"
cw_stop "$AGENT_C"
unknown=$(rejected "$C_METRICS" unknown_agent)
cw_expect "(c) flows at the allow-list collector" "$(flows_total "$C_METRICS")" 0
cw_expect "(c) agents_connected at the allow-list collector" \
  "$(cw_metric "$C_METRICS" citywatch_collector_agents_connected)" 0

# Each refusal is counted under its own reason, not another's.
cw_expect "(c) unknown_agent at the main collector" "$(rejected "$MAIN_METRICS" unknown_agent)" 0
cw_expect "(a,b,d) sessions established at the main collector" \
  "$(cw_metric "$MAIN_METRICS" citywatch_collector_connections_total)" 0

# (e) Control: a valid agent delivers the same capture to the main collector.
cw_agent_config "$WORK/agent-e.yaml" "$WORK/pki" demo-agent "$MAIN_PORT" "$WORK/spool-e"
cw_spawn "$WORK/agent-e.log" "$AGENT_BIN" --config "$WORK/agent-e.yaml" -r "$PCAP"
cw_wait_exit "$CW_LAST_PID" 300
cw_expect "(e) exit code of the valid agent" "$CW_EXIT" 0
control_flows=$(flows_total "$MAIN_METRICS")
((control_flows > 0)) || fail "(e) the valid agent delivered no flows"
control_packets=$(cw_metric "$MAIN_METRICS" citywatch_flow_packets_total)

echo "PASS: refused: (a) foreign CA -> timeout 124, certificate_verify_failed=$verify_failed; (b) no client cert -> no_client_certificate=$no_cert; (c) allow list -> unknown_agent=$unknown; (d) id agent-a with agent-b cert -> agent_id_mismatch=$mismatch; 0 flows delivered by refused agents; (e) valid agent then delivered $control_flows flows / $control_packets packets from $(basename "$PCAP")"
