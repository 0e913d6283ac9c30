#!/usr/bin/env bash
# A real Alertmanager, secured with an exporter-toolkit web config (TLS + basic auth), receives
# the collector's alerts over HTTPS with basic auth (password from a file). A second collector
# with the wrong password is refused, and its sink counts the failures as "unauthorized".
# The alert is agent_disconnected, raised when a replaying agent's session ends.
source "$(dirname "$0")/lib.sh"
cw_init "$@"
for t in prometheus-alertmanager htpasswd python3 jq; do
  command -v "$t" >/dev/null || { echo "FAIL: $t not installed (scripts/install-deps.sh)" >&2; exit 1; }
done

cw_certs "$WORK/pki" replay-agent
cw_make_small_pcap "$WORK/small.pcap"
HASH=$(htpasswd -nbBC 10 citywatch am-s3cret | cut -d: -f2-)
cat >"$WORK/am-web.yml" <<EOF
tls_server_config:
  cert_file: $WORK/pki/collector.pem
  key_file: $WORK/pki/collector.key
basic_auth_users:
  citywatch: $HASH
EOF
printf 'route: {receiver: none, group_wait: 1s}\nreceivers: [{name: none}]\n' >"$WORK/am.yml"
AM_PORT=$(cw_free_port tcp)
cw_spawn "$WORK/alertmanager.log" prometheus-alertmanager --config.file="$WORK/am.yml" \
  --web.config.file="$WORK/am-web.yml" --storage.path="$WORK/am-data" \
  --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address=
AM="https://127.0.0.1:$AM_PORT"
am() { curl -sf --max-time 5 --cacert "$WORK/pki/ca.pem" -u citywatch:am-s3cret "$@"; }
am_up() { am "$AM/-/ready" >/dev/null; }
cw_wait_until 300 "alertmanager ready over https" am_up
c=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORK/pki/ca.pem" "$AM/api/v2/alerts")
[[ $c == 401 ]] || fail "alertmanager without credentials answered $c, expected 401"

printf 'am-s3cret\n' >"$WORK/good.pass"
printf 'not-the-password\n' >"$WORK/bad.pass"
run_collector() {  # NAME PASSWORD_FILE
  cw_collector_config "$WORK/$1.yaml" "$WORK/pki" "$WORK/state-$1" "rules:
  files: [$SRC_DIR/rules]
alerts:
  alertmanager:
    urls: [https://127.0.0.1:$AM_PORT]
    tls_config:
      ca_file: $WORK/pki/ca.pem
      server_name: localhost
    basic_auth:
      username: citywatch
      password_file: $2"
  cw_start_collector "$1" "$WORK/$1.yaml"
  cw_agent_config "$WORK/agent-$1.yaml" "$WORK/pki" replay-agent "$INGEST_PORT" "$WORK/spool-$1"
  cw_spawn "$WORK/agent-$1.log" "$AGENT_BIN" --config "$WORK/agent-$1.yaml" -r "$WORK/small.pcap"
  cw_wait_exit "$CW_LAST_PID" 300
  ((CW_EXIT == 0)) || fail "agent replaying into $1 exited with $CW_EXIT"
}
run_collector good "$WORK/good.pass"
GOOD_PORT=$METRICS_PORT
delivered() {
  am "$AM/api/v2/alerts" | jq -e '[.[] | select(.labels.alertname=="agent_disconnected")] | length > 0' >/dev/null
}
cw_wait_until 300 "agent_disconnected listed by alertmanager" delivered
sent=$(cw_metric "$GOOD_PORT" citywatch_alert_sink_sent_total 'sink="alertmanager"')
((sent >= 1)) || fail "the good collector counted $sent alerts sent"

run_collector bad "$WORK/bad.pass"
BAD_PORT=$METRICS_PORT
refused() {
  local n
  n=$(cw_metric "$BAD_PORT" citywatch_alert_sink_failure_reasons_total 'sink="alertmanager"' 'reason="unauthorized"')
  ((n >= 1))
}
cw_wait_until 300 "the wrong password counted as unauthorized" refused
unauthorized=$(cw_metric "$BAD_PORT" citywatch_alert_sink_failure_reasons_total 'reason="unauthorized"')
bad_sent=$(cw_metric "$BAD_PORT" citywatch_alert_sink_sent_total 'sink="alertmanager"')
((bad_sent == 0)) || fail "the collector with the wrong password had $bad_sent alerts accepted"
grep -q 'not-the-password\|am-s3cret' "$WORK"/*.log && fail "a password reached a log"

echo "PASS: alertmanager over HTTPS + basic auth received agent_disconnected ($sent sent); the wrong password was refused ($unauthorized attempts counted unauthorized, 0 sent)"
