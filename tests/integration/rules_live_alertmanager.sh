#!/usr/bin/env bash
# Acceptance, live: in two network namespaces this test creates (attacker, victim, joined by
# a bridge whose victim-side port the agent captures on), a real nmap SYN scan, an SSH
# password-guessing run against a real sshd and a bounded hping3 SYN burst each reach a real
# prometheus-alertmanager on loopback (its API v2 lists them), and each resolves after the
# traffic stops. The rule pack is the shipped one with hold_down shortened to 20 s so the test
# sees resolution quickly (below: why 20 s). The scan is slow (about 20 s) and its alert must
# be listed while it still runs: the agent's flow meter keeps its default 15 s idle timeout, so
# that alert comes from the failed probes the agent reports as packet events, and is raised
# once. Latencies (first probe, or end of traffic -> listed by Alertmanager) are printed; only
# orderings are asserted.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
[[ $(id -u) == 0 ]] || { echo "SKIP: needs root (network namespaces)" >&2; exit 77; }
for t in ip nmap hping3 jq prometheus-alertmanager ssh ssh-keygen; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not found" >&2; exit 77; }
done
[[ -x /usr/sbin/sshd ]] || { echo "SKIP: /usr/sbin/sshd not found (openssh-server)" >&2; exit 77; }

# Unique names and a subnet per run, so parallel runs do not collide.
id=$(( ($$ % 200) + 20 ))
NS_A="cwatk$$"; NS_V="cwvic$$"; BR="cwbr$$"; VA="cwa$$"; VV="cwv$$"
NET="10.231.$id"; ATK="$NET.1"; VIC="$NET.2"
netns_cleanup() {
  ip netns pids "$NS_V" 2>/dev/null | xargs -r kill 2>/dev/null
  ip netns pids "$NS_A" 2>/dev/null | xargs -r kill 2>/dev/null
  ip netns del "$NS_A" 2>/dev/null; ip netns del "$NS_V" 2>/dev/null
  ip link del "$BR" 2>/dev/null; ip link del "${VA}h" 2>/dev/null; ip link del "${VV}h" 2>/dev/null
}
cw_at_exit netns_cleanup
ip netns add "$NS_A" && ip netns add "$NS_V" || fail "cannot create network namespaces"
ip link add "$BR" type bridge && ip link set "$BR" up
for pair in "$VA:$NS_A:$ATK" "$VV:$NS_V:$VIC"; do
  IFS=: read -r dev ns addr <<<"$pair"
  ip link add "$dev" type veth peer name "${dev}h" || fail "veth $dev"
  ip link set "$dev" netns "$ns"
  ip link set "${dev}h" master "$BR" up
  ip -n "$ns" addr add "$addr/24" dev "$dev"
  ip -n "$ns" link set "$dev" up
  ip -n "$ns" link set lo up
done

# The victim's sshd (password guessing target).
cw_step "sshd in the victim's namespace"
mkdir -p "$WORK/sshd"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/sshd/host_key"
cat >"$WORK/sshd/sshd_config" <<EOF2
ListenAddress $VIC
Port 22
HostKey $WORK/sshd/host_key
PidFile $WORK/sshd/sshd.pid
UsePAM no
PasswordAuthentication yes
KbdInteractiveAuthentication no
MaxAuthTries 1
LoginGraceTime 5
EOF2
mkdir -p /run/sshd
cw_spawn "$WORK/sshd.log" ip netns exec "$NS_V" /usr/sbin/sshd -D -e -f "$WORK/sshd/sshd_config"
ssh_reachable() { ip netns exec "$NS_A" timeout 2 bash -c "exec 3<>/dev/tcp/$VIC/22" 2>/dev/null; }
cw_wait_until 100 "attacker reaches the victim's sshd" ssh_reachable

# Alertmanager on loopback, clustering off.
cw_step "alertmanager"
AM_PORT=$(cw_free_port tcp)
cat >"$WORK/am.yml" <<'EOF2'
route:
  receiver: none
  group_wait: 1s
receivers:
  - name: none
EOF2
cw_spawn "$WORK/alertmanager.log" prometheus-alertmanager --config.file="$WORK/am.yml" \
  --storage.path="$WORK/am-data" --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address=
am_up() { curl -sf "http://127.0.0.1:$AM_PORT/-/ready" >/dev/null; }
cw_wait_until 300 "alertmanager ready" am_up

# The pack, with every hold_down at 20 s (the shipped pack's are 1 m and more). A flow
# reaches the collector up to 15 s after its last packet (the agent's idle timeout); the
# quiet time counts from its arrival (docs/rules.md, "Alert lifecycle"), so syn_flood stays
# listed for about 20 s before it resolves: time enough for Alertmanager to list it between
# two polls of this test.
cw_step "collector and agent"
mkdir -p "$WORK/rules"
cp -r "$SRC_DIR/rules/." "$WORK/rules/"
sed -i '/^    hold_down:/d; s/^    kind: \(.*\)$/    kind: \1\n    hold_down: 20s/' "$WORK"/rules/*.yaml
cw_certs "$WORK/pki" live-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state" "rules:
  files: [$WORK/rules]
alerts:
  jsonl: $WORK/alerts.jsonl
  alertmanager:
    urls: [http://127.0.0.1:$AM_PORT]"
cw_start_collector collector "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" live-agent "$INGEST_PORT" "$WORK/spool" "capture:
  - interface: ${VV}h
    immediate: true
batch:
  max_delay: 200ms
metrics:
  listen: 127.0.0.1:0"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
cw_agent_metrics "$WORK/agent.log"
agent_up() { [[ "$(cw_metric "$METRICS_PORT" citywatch_collector_agents_connected)" == 1 ]]; }
cw_wait_until 300 "agent connected" agent_up

am_alerts() { curl -sf --max-time 5 "http://127.0.0.1:$AM_PORT/api/v2/alerts"; }
am_has() {  # RULE JQ_FILTER
  am_alerts |
    jq -e --arg r "$1" "[.[] | select(.labels.alertname==\$r and .status.state==\"active\") | select($2)] | length > 0" >/dev/null
}
now() { date +%s.%N; }
latency() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
report=""
expect_alert() {  # RULE JQ_FILTER START_TIME
  local i
  CW_STEP="waiting for alertmanager to list $1"
  for ((i = 0; i < 600; i++)); do
    am_has "$1" "$2" && { report+=" $1 $(latency "$3")s;"; return 0; }
    sleep 0.1
  done
  fail "$1 not listed by alertmanager within 60 s: $(am_alerts); the collector's alerts: $(jq -c '[.rule, .state, .time]' "$WORK/alerts.jsonl" | tr '\n' ' ')"
}

# 1. A slow nmap SYN scan, 400 ports at 20 probes a second: listed while it runs. --min-rate
# keeps nmap at that rate: on a busy host it can otherwise read late answers as drops and
# stretch its delay between probes (up to 1 s each, 400 s in all).
cw_step "nmap SYN scan"
t_scan=$(now)
cw_spawn "$WORK/nmap.log" ip netns exec "$NS_A" nmap -n -Pn -sS -p 1-400 --min-rate 20 --max-rate 20 \
  --max-retries 0 "$VIC"
NMAP=$CW_LAST_PID
expect_alert port_scan_vertical ".labels.src==\"$ATK\" and .labels.dst==\"$VIC\"" "$t_scan"
kill -0 "$NMAP" 2>/dev/null || fail "the scan alert was listed only after nmap had finished: $(cat "$WORK/nmap.log")"
report+=" (nmap still running);"
cw_step "waiting for nmap to finish"
cw_wait_exit "$NMAP" 600
cw_expect "nmap exit code" "$CW_EXIT" 0
report+=" scan took $(latency "$t_scan")s;"

# 2. SSH password guessing: 8 logins with a wrong password (each one connection, refused).
cw_step "ssh password guessing"
cat >"$WORK/askpass" <<'EOF2'
#!/bin/sh
echo wrong-password
EOF2
chmod +x "$WORK/askpass"
for i in 1 2 3 4 5 6 7 8; do
  CW_STEP="ssh login $i of 8"
  SSH_ASKPASS="$WORK/askpass" SSH_ASKPASS_REQUIRE=force timeout 10 ip netns exec "$NS_A" \
    ssh -n -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=3 \
    -o PreferredAuthentications=password -o NumberOfPasswordPrompts=1 "admin$i@$VIC" true \
    >>"$WORK/ssh.log" 2>&1 && fail "ssh login $i succeeded"
done
failed=$(grep -c "Failed password for" "$WORK/sshd.log")
((failed == 8)) || fail "sshd logged $failed failed passwords, expected 8: $(tail -3 "$WORK/ssh.log")"
t_ssh=$(now)
expect_alert ssh_password_guessing ".labels.src==\"$ATK\" and .labels.dst==\"$VIC\"" "$t_ssh"

# 3. hping3: a bounded burst of 3000 SYNs to port 8080 (about 1 s).
cw_step "hping3 SYN burst"
timeout 30 ip netns exec "$NS_A" hping3 -q -S -p 8080 -c 3000 -i u300 "$VIC" >"$WORK/hping.log" 2>&1
(($? != 124)) || fail "hping3 did not send its 3000 packets within 30 s: $(tail -3 "$WORK/hping.log")"
t_flood=$(now)
expect_alert syn_flood ".labels.dst==\"$VIC\" and .labels.dst_port==\"8080\"" "$t_flood"

# Traffic has stopped: each resolves (hold_down 20 s) and leaves Alertmanager's active list.
cw_step "traffic stopped; waiting for the alerts to resolve"
t_stop=$(now)
resolved_all() {  # Alertmanager answered, and lists none of the three as active
  local body
  body=$(am_alerts) || return 1
  jq -e '[.[] | select(.status.state=="active" and (.labels.alertname | IN("port_scan_vertical", "ssh_password_guessing", "syn_flood")))] | length == 0' <<<"$body" >/dev/null
}
cw_wait_until 600 "the three alerts resolved in alertmanager" resolved_all
for r in port_scan_vertical ssh_password_guessing syn_flood; do
  jq -s -e --arg r "$r" 'any(.[]; .rule==$r and .state=="resolved")' "$WORK/alerts.jsonl" >/dev/null ||
    fail "$r: no resolved line in the JSON lines log: $(jq -c '[.rule, .state, .time]' "$WORK/alerts.jsonl" | tr '\n' ' ')"
done
# One scan, one alert, though its probes reached the rule as packet events and as flows.
scans=$(jq -s --arg a "$ATK" '[.[] | select(.rule=="port_scan_vertical" and .state=="firing" and .labels.src==$a)] | length' "$WORK/alerts.jsonl")
cw_expect "port_scan_vertical firing lines" "$scans" 1
probes=$(cw_metric "$AGENT_METRICS" citywatch_agent_packet_events_total 'kind="tcp_probe_failed"')
((${probes:-0} >= 15)) || fail "the agent reported ${probes:-0} failed probes for a 400-port scan"
sent=$(cw_metric "$METRICS_PORT" citywatch_alert_sink_sent_total 'sink="alertmanager"')
failed=$(cw_metric "$METRICS_PORT" citywatch_alert_sink_failures_total 'sink="alertmanager"')
echo "PASS: live netns: $probes failed probes from the agent; first probe or end of traffic -> listed by alertmanager:$report all resolved $(latency "$t_stop")s after syn_flood was listed; alertmanager sink sent $sent, failures $failed"
