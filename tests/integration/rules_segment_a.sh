#!/usr/bin/env bash
# Acceptance: replaying segment-a.pcap through agent and collector with the municipal rule
# pack raises what an analyst expects, each exactly once, with the right source and
# destination: the port scan, the SSH password guessing, the SYN flood and the DNS tunnel;
# nothing for the HTTP downloads and the ordinary DNS. Alerts are read from the JSON lines
# sink.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
cw_need_segment_a
command -v jq >/dev/null || { echo "SKIP: jq not found" >&2; exit 77; }

cw_certs "$WORK/pki" seg-a-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state" "rules:
  files: [$SRC_DIR/rules]
alerts:
  jsonl: $WORK/alerts.jsonl"
cw_start_collector collector "$WORK/collector.yaml"

cw_replay seg-a-agent "$SEGMENT_A"

# The agent's session closing raises agent_disconnected: proof the records were all consumed.
disconnected() { [[ -f "$WORK/alerts.jsonl" ]] && grep -q '"rule":"agent_disconnected"' "$WORK/alerts.jsonl"; }
cw_wait_until 100 "agent_disconnected in the alert log" disconnected

firing() { jq -c --arg r "$1" 'select(.state=="firing" and .rule==$r)' "$WORK/alerts.jsonl"; }
expect_once() {  # RULE JQ_CONDITION WHAT
  local n
  n=$(firing "$1" | wc -l)
  ((n == 1)) || fail "$1: expected 1 firing alert, got $n: $(firing "$1")"
  firing "$1" | jq -e "$2" >/dev/null || fail "$1: wrong evidence: $(firing "$1")"
  cw_log "$1: $(firing "$1" | jq -r .summary)"
}
# Every alert says where it was seen: the agent's segment and id.
where_missing=$(jq -c 'select(.labels.segment != "seg-test" or .labels.agent != "seg-a-agent")' "$WORK/alerts.jsonl")
[[ -z "$where_missing" ]] || fail "alerts without segment/agent labels: $where_missing"
expect_once port_scan_vertical '.labels.src=="10.99.1.10" and .labels.dst=="10.99.1.20" and .value >= 15'
expect_once ssh_password_guessing '.labels.src=="10.99.1.10" and .labels.dst=="10.99.1.20" and .value >= 5'
expect_once syn_flood '.labels.dst=="10.99.1.20" and .labels.dst_port=="8080" and .value >= 1000'

# DNS tunnelling needs the agent's DNS query events (packet_events).
# segment-a's DNS queries with long labels reach the rules as packet events: the tunnel rule
# must fire on them. No packet events at all is a failure, not a reason to skip the check.
dns_events=$(cw_metric "$METRICS_PORT" citywatch_collector_records_received_total 'kind="packet_event"')
((${dns_events:-0} > 0)) || fail "the agent sent no packet events: the DNS tunnel rule cannot be checked"
expect_once dns_tunnel_long_labels '.labels.src=="10.99.1.10" and .labels.dns_domain=="city.example"'
tunnel="DNS tunnel once ($dns_events packet events)"

others=$(jq -r 'select(.state=="firing") | .rule' "$WORK/alerts.jsonl" |
  grep -vxE 'port_scan_vertical|ssh_password_guessing|syn_flood|dns_tunnel_long_labels|agent_disconnected' || true)
[[ -z "$others" ]] || fail "unexpected alerts: $others; log: $(cat "$WORK/alerts.jsonl")"

fired=$(cw_metric "$METRICS_PORT" citywatch_alerts_total 'state="firing"')
echo "PASS: segment-a: port scan, SSH guessing, SYN flood once each with src/dst; $tunnel; nothing else ($fired firing in total incl. agent_disconnected)"
