#!/usr/bin/env bash
# Issue 17, acceptance 1: one incident, one page, when a branch's uplink fails.
#
# Topology (every namespace created and removed here; nothing outside them is touched):
#
#   [host ns: agent, collector, alertmanager on its own loopback]
#        uplink0 10.17.0.2 ---- veth ---- wan0 10.17.0.1
#                                     [uplink ns: router, ip_forward=1, net-snmp snmpd
#                                      answering as target "branch-router"]
#                                      lan0 bridge 10.17.1.1
#                                        |-- port1 -- eth0 10.17.1.11 [branch-switch: snmpsimd]
#                                        |-- port2 -- eth0 10.17.1.12 [branch-ap:     snmpsimd]
#                                        `-- port3 -- eth0 10.17.1.13 [branch-ups:    snmpsimd]
#
# The host reaches the three children only through the uplink namespace (checked with
# `ip route get` and real SNMP gets before the agent starts). The agent polls all four every
# 2 s (timeout 300ms, retries 1); the collector declares the children dependent on
# branch-router (uptime.dependencies) and runs the shipped device_unreachable rule (resend
# shortened to 2 s so Alertmanager sees the root alert's annotations grow), with a JSON lines
# log and a real prometheus-alertmanager that carries the spec's example inhibit rule.
#
#  1) The router's WAN port goes down for DOWN_SECONDS (measured) and comes back. Then:
#     the JSONL log has exactly one device_unreachable firing, for branch-router, and none
#     for a child; the root alert's `dependents` annotation counts the 3 children and
#     `dependent_names` names them; Alertmanager never listed a child alert (active or
#     inhibited); the outage store has one root outage (root_outage_id NULL, branch-router's)
#     and each child's outage carries root_outage_id = its id; the incident metrics count one
#     outage and three dependents.
#  2) branch-ap alone stops answering (its snmpsimd is stopped) while the router is up: it
#     fires device_unreachable on its own (in Alertmanager active, not inhibited, with the
#     label parents=branch-router) and its outage is its own incident (root_outage_id NULL).
# Latencies (down -> seen down, -> alert, up -> all up) are printed as figures, never asserted.
# Needs root (network namespaces); skips (77, which CI counts as a failure) when a tool is
# missing.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/snmp_lib.sh"
cw_init "$@"
((EUID == 0)) || { echo "SKIP: needs root to create network namespaces" >&2; exit 77; }
cw_need_snmp_tools
for tool in ip sqlite3 jq prometheus-alertmanager; do
  command -v "$tool" >/dev/null || { echo "SKIP: $tool not found" >&2; exit 77; }
done

DOWN_SECONDS=20
ROOT=branch-router
CHILDREN=(branch-switch branch-ap branch-ups)
LONE=branch-ap
declare -A ADDR=([branch-router]=10.17.0.1 [branch-switch]=10.17.1.11 [branch-ap]=10.17.1.12
                 [branch-ups]=10.17.1.13)
declare -A NS_OF=() SIM_PID_OF=()
NS_H=cwdep-host-$$ NS_U=cwdep-uplink-$$
ALL_NS=("$NS_H" "$NS_U")
for c in "${CHILDREN[@]}"; do
  NS_OF[$c]=cwdep-${c#branch-}-$$
  ALL_NS+=("${NS_OF[$c]}")
done

# ---- topology -------------------------------------------------------------------------------
netns_cleanup() {
  local ns
  for ns in "${ALL_NS[@]}"; do
    # Only processes in the namespaces this test created (cw_cleanup has already ended the
    # ones it started; this catches anything they forked).
    ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
}
cw_at_exit netns_cleanup
for ns in "${ALL_NS[@]}"; do
  ip netns add "$ns" || fail "ip netns add $ns failed"
  # No IPv6: nothing but the test's own IPv4 traffic on the links.
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$ns" link set lo up || fail "lo up in $ns"
done
inH() { ip netns exec "$NS_H" "$@"; }
must() { "$@" || fail "failed: $*"; }
# host <-> uplink (the router's WAN port)
must ip link add uplink0 netns "$NS_H" type veth peer name wan0 netns "$NS_U"
must ip -n "$NS_H" addr add 10.17.0.2/24 dev uplink0
must ip -n "$NS_H" link set uplink0 up
must ip -n "$NS_H" route add 10.17.1.0/24 via "${ADDR[$ROOT]}"
must ip -n "$NS_U" addr add "${ADDR[$ROOT]}/24" dev wan0
must ip -n "$NS_U" link set wan0 up
must ip netns exec "$NS_U" sysctl -qw net.ipv4.ip_forward=1
# uplink <-> branch LAN (a bridge, one port per child)
must ip -n "$NS_U" link add lan0 type bridge
must ip -n "$NS_U" addr add 10.17.1.1/24 dev lan0
must ip -n "$NS_U" link set lan0 up
i=0
for c in "${CHILDREN[@]}"; do
  i=$((i + 1))
  ns=${NS_OF[$c]}
  must ip link add "port$i" netns "$NS_U" type veth peer name eth0 netns "$ns"
  must ip -n "$NS_U" link set "port$i" master lan0 up
  must ip -n "$ns" addr add "${ADDR[$c]}/24" dev eth0
  must ip -n "$ns" link set eth0 up
  must ip -n "$ns" route add default via 10.17.1.1
done
for c in "${CHILDREN[@]}"; do
  inH ip route get "${ADDR[$c]}" | grep -q "via ${ADDR[$ROOT]} dev uplink0" ||
    fail "the host does not reach $c through the uplink: $(inH ip route get "${ADDR[$c]}")"
done

# ---- the devices ----------------------------------------------------------------------------
chmod 755 "$WORK"
# The router: net-snmp's snmpd in the uplink namespace (its real interfaces: wan0, lan0, ports).
mkdir -p "$WORK/router-state"
cat >"$WORK/router-snmpd.conf" <<CONF
agentaddress udp:${ADDR[$ROOT]}:161
rocommunity public 10.17.0.0/24
sysName $ROOT
sysDescr CityWatch test uplink router (net-snmp in a network namespace)
CONF
SNMP_PERSISTENT_DIR="$WORK/router-state" MIBS="" cw_spawn "$WORK/router-snmpd.log" \
  ip netns exec "$NS_U" snmpd -f -Lo -C -c "$WORK/router-snmpd.conf" -p "$WORK/router-snmpd.pid"
# A child: snmpsimd in its namespace on 161, one Ethernet interface, community public.
child_data() {
  local c=$1 dir=$WORK/sim-$1
  mkdir -p "$dir/data" "$dir/cache"
  chown nobody "$dir/cache" 2>/dev/null
  cw_one_port_snmprec "$dir/data/public.snmprec" "CityWatch test $c" "$c"
  chmod -R a+rX "$dir/data"
}
start_child() {  # NAME RUN
  local c=$1 dir=$WORK/sim-$1
  cw_spawn "$WORK/sim-$c-$2.log" ip netns exec "${NS_OF[$c]}" snmpsimd --data-dir="$dir/data" \
    --agent-udpv4-endpoint="${ADDR[$c]}:161" --process-user=nobody --process-group=nogroup \
    --cache-dir="$dir/cache" --logging-method=stderr
  SIM_PID_OF[$c]=$CW_LAST_PID
}
# answers NAME: the host gets NAME's sysName through the uplink.
answers() {
  inH snmpget -v2c -c public -r 0 -t 0.3 -Oqv "${ADDR[$1]}" 1.3.6.1.2.1.1.5.0 2>/dev/null | grep -q "$1"
}
for c in "${CHILDREN[@]}"; do
  child_data "$c"
  start_child "$c" 1
done
for d in "$ROOT" "${CHILDREN[@]}"; do
  cw_wait_until 300 "$d answering SNMP at ${ADDR[$d]} (from the host namespace)" answers "$d"
done
# snmpd's first interface table says wan0 is down for a second or two (its cache): wait until
# every interface it reports is up, or the first polls would raise a real interface_down.
router_ifs_up() {
  local st
  st=$(inH snmpwalk -v2c -c public -r 0 -t 0.5 -Oqve "${ADDR[$ROOT]}" 1.3.6.1.2.1.2.2.1.8 2>/dev/null) &&
    [[ -n "$st" ]] && ! grep -qvx 1 <<<"$st"
}
cw_wait_until 300 "every interface of $ROOT reported up by its snmpd" router_ifs_up

# ---- alertmanager, collector and agent in the host namespace --------------------------------
AM=http://127.0.0.1:9093   # the host namespace's own loopback: no port can collide
cat >"$WORK/am.yml" <<EOF
route:
  receiver: none
  group_wait: 1s
receivers:
  - name: none
# The spec's example inhibition (docs: one rule per parent device).
inhibit_rules:
  - source_matchers: ['alertname="device_unreachable"', 'target="$ROOT"']
    target_matchers: ['parents=~"(.+,)?$ROOT(,.+)?"']
EOF
cw_spawn "$WORK/alertmanager.log" ip netns exec "$NS_H" prometheus-alertmanager \
  --config.file="$WORK/am.yml" --storage.path="$WORK/am-data" \
  --web.listen-address=127.0.0.1:9093 --cluster.listen-address=
am_alerts() { inH curl -sf --max-time 5 "$AM/api/v2/alerts"; }
am_up() { inH curl -sf --max-time 2 "$AM/-/ready" >/dev/null; }
cw_wait_until 300 "alertmanager ready" am_up

# The shipped infrastructure rules; device_unreachable re-sent every 2 s (not 1 min), so
# Alertmanager sees the root alert's dependents as they are attached.
mkdir -p "$WORK/rules"
awk '{ print } /^  - name: device_unreachable$/ { print "    resend: 2s" }' \
  "$SRC_DIR/rules/infrastructure.yaml" >"$WORK/rules/infrastructure.yaml"
grep -q '^    resend: 2s' "$WORK/rules/infrastructure.yaml" || fail "device_unreachable not found in rules/infrastructure.yaml"

cw_certs "$WORK/pki" branch-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state" "rules:
  files: [$WORK/rules]
alerts:
  jsonl: $WORK/alerts.jsonl
  alertmanager:
    urls: [$AM]
uptime:
  min_outage: 1s
  dependency_grace: 30s
  dependency_wait: 10s
  sites:
    - name: branch-library
      segments: [seg-test]
  dependencies:
    - device: $ROOT
    - device: branch-switch
      parents: [$ROOT]
    - device: branch-ap
      parents: [$ROOT]
    - device: branch-ups
      parents: [$ROOT]"
# The collector runs in the host namespace; cw_start_collector (ready file, ports) as usual.
REAL_COLLECTOR=$COLLECTOR_BIN
COLLECTOR_BIN=$WORK/collector-in-netns
printf '#!/bin/sh\nexec ip netns exec %q %q "$@"\n' "$NS_H" "$REAL_COLLECTOR" >"$COLLECTOR_BIN"
chmod +x "$COLLECTOR_BIN"
cw_start_collector collector "$WORK/collector.yaml"
targets=""
for d in "$ROOT" "${CHILDREN[@]}"; do
  targets+="
    - name: $d
      address: ${ADDR[$d]}"
done
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" branch-agent "$INGEST_PORT" "$WORK/spool" "
batch:
  max_delay: 200ms
snmp:
  defaults:
    version: 2c
    community: public
    interval: 2s
    timeout: 300ms
    retries: 1
  targets:$targets"
cw_spawn "$WORK/agent.log" ip netns exec "$NS_H" "$AGENT_BIN" --config "$WORK/agent.yaml"

# ---- helpers --------------------------------------------------------------------------------
scrape() { inH curl -sf --max-time 5 "http://127.0.0.1:$METRICS_PORT/metrics" || fail "cannot scrape the collector"; }
metric() { scrape | cw_sum "$@"; }
device_up() { [[ "$(metric citywatch_uptime_device_up "device=\"$1\"")" == "$2" ]]; }
all_up() { local d; for d in "$ROOT" "${CHILDREN[@]}"; do device_up "$d" 1 || return 1; done; }
q() { sqlite3 -cmd '.timeout 5000' "$WORK/state/uptime.sqlite" "$1"; }
ns() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
LOG=$WORK/alerts.jsonl
# JSONL lines of device_unreachable for TARGET (all states), as one array.
lines_for() { if [[ -f $LOG ]]; then jq -s -c --arg t "$1" '[.[] | select(.rule == "device_unreachable" and .labels.target == $t)]' "$LOG"; else echo '[]'; fi; }
firings() { jq '[.[] | select(.state == "firing")] | length' <<<"$(lines_for "$1")"; }
has_state() { [[ "$(jq --arg s "$2" '[.[] | select(.state == $s)] | length' <<<"$(lines_for "$1")")" -ge "${3:-1}" ]]; }
# The annotations the collector attaches: `details` in the JSONL line (they are annotations
# in Alertmanager); an `annotations` object is read too.
ANN='((.annotations // {}) + (.details // {}))'
# AM's device_unreachable alerts for TARGET, any state (active or inhibited).
am_for() { jq -c --arg t "$1" '[.[] | select(.labels.alertname == "device_unreachable" and .labels.target == $t)]'; }

cw_wait_until 300 "all four devices polled and up" all_up
cw_expect "outages before the uplink goes down" "$(q "SELECT COUNT(*) FROM outage_view")" 0
[[ -f $LOG ]] && grep -q '"state":"firing"' "$LOG" && fail "alerts before the uplink went down: $(cat "$LOG")"

# ---- 1) the uplink goes down ----------------------------------------------------------------
T_DOWN=$(ns)
ip -n "$NS_U" link set wan0 down || fail "cannot take wan0 down"
answers "$ROOT" && fail "$ROOT still answers with its WAN port down"
answers "${CHILDREN[0]}" && fail "${CHILDREN[0]} still answers with the uplink down: it is not reached through it"
AM_CHILD_SEEN=$WORK/am-child-alerts.txt
: >"$AM_CHILD_SEEN"
AM_ROOT_DEPENDENTS=0 AM_ROOT_NAMES="" MAX_INCIDENT_DEPENDENTS=0
# One look at Alertmanager and at the root's incident gauge (figures kept for the checks).
sample() {
  local body c n names v
  if body=$(am_alerts); then
    for c in "${CHILDREN[@]}"; do
      n=$(am_for "$c" <<<"$body")
      [[ "$n" == "[]" ]] || echo "$(date +%T.%N) $n" >>"$AM_CHILD_SEEN"
    done
    read -r n names < <(am_for "$ROOT" <<<"$body" |
      jq -r 'map(.annotations) | max_by(.dependents // "0" | tonumber? // 0) // {} |
             "\(.dependents // "0" | tonumber? // 0) \(.dependent_names // "")"')
    if ((${n:-0} > AM_ROOT_DEPENDENTS)); then AM_ROOT_DEPENDENTS=$n AM_ROOT_NAMES=$names; fi
  fi
  v=$(metric citywatch_uptime_incident_dependents "root=\"$ROOT\"")
  [[ "$v" =~ ^[0-9]+$ ]] && ((v > MAX_INCIDENT_DEPENDENTS)) && MAX_INCIDENT_DEPENDENTS=$v
  return 0
}
root_down_seen() { sample; device_up "$ROOT" 0; }
cw_wait_until 300 "$ROOT reported down by the collector" root_down_seen
T_SEEN_DOWN=$(ns)
root_fired() { sample; has_state "$ROOT" firing; }
cw_wait_until 300 "device_unreachable firing for $ROOT in the JSONL log" root_fired
T_ROOT_ALERT=$(ns)
# Keep the uplink down for DOWN_SECONDS in all, looking at Alertmanager meanwhile (bounded).
for ((i = 0; i < DOWN_SECONDS * 20; i++)); do
  (($(ns) - T_DOWN >= DOWN_SECONDS * 1000000000)) && break
  sample
  sleep 0.2
done
ip -n "$NS_U" link set wan0 up || fail "cannot bring wan0 up"
T_UP=$(ns)
all_up_sampled() { sample; all_up; }
cw_wait_until 300 "all four devices up again" all_up_sampled
T_ALL_UP=$(ns)
cw_wait_until 300 "device_unreachable resolved for $ROOT in the JSONL log" has_state "$ROOT" resolved
closed() { [[ "$(q "SELECT COUNT(*) FROM outage_view WHERE kind = 'device' AND end_ns IS NULL")" == 0 ]]; }
cw_wait_until 300 "every device outage closed in the store" closed
DOWN_FOR=$(secs "$T_DOWN" "$T_UP")
cw_log "uplink down for $DOWN_FOR s (measured); $ROOT seen down after $(secs "$T_DOWN" "$T_SEEN_DOWN") s, its alert in the log after $(secs "$T_DOWN" "$T_ROOT_ALERT") s; all up $(secs "$T_UP" "$T_ALL_UP") s after the uplink came back (figures, not asserted)"

# What was recorded (printed before the checks, so a failure shows it all).
cw_log "alert log (device_unreachable and interface_down):"
jq -c 'select(.rule == "device_unreachable" or .rule == "interface_down") | {time, state, rule, target: .labels.target, parents: .labels.parents, ann: '"$ANN"'}' "$LOG" >&2
cw_log "outage store:"
q "SELECT id, kind, device_name, interface, cause, printf('%.2f s', (end_ns - start_ns) / 1e9), root_outage_id, end_reason FROM outage_view ORDER BY id" >&2

# The log: one root alert, no child alert.
cw_expect "device_unreachable firing lines for $ROOT" "$(firings "$ROOT")" 1
for c in "${CHILDREN[@]}"; do
  cw_expect "device_unreachable firing lines for $c while $ROOT was down" "$(firings "$c")" 0
done
[[ -s "$AM_CHILD_SEEN" ]] && fail "Alertmanager listed a child alert while $ROOT was down: $(head -3 "$AM_CHILD_SEEN")"
# The root alert names what it took down (the largest count any of its lines carried).
ROOT_ANN=$(jq -c "[.[] | $ANN | select(.dependents != null)] | max_by(.dependents | tonumber? // 0) // {}" <<<"$(lines_for "$ROOT")")
DEPENDENTS=$(jq -r '.dependents // "0"' <<<"$ROOT_ANN")
[[ "$DEPENDENTS" =~ ^[0-9]+$ ]] || DEPENDENTS=0
((DEPENDENTS >= ${#CHILDREN[@]})) ||
  fail "the root alert's dependents annotation is '$DEPENDENTS', expected >= ${#CHILDREN[@]}: $(lines_for "$ROOT")"
NAMES=$(jq -r '.dependent_names // ""' <<<"$ROOT_ANN")
for c in "${CHILDREN[@]}"; do
  tr ',' '\n' <<<"$NAMES" | sed 's/^ *//; s/ *$//' | grep -qx -- "$c" ||
    fail "the root alert's dependent_names '$NAMES' does not name $c"
done
((AM_ROOT_DEPENDENTS >= ${#CHILDREN[@]})) ||
  fail "Alertmanager's $ROOT alert carried dependents=$AM_ROOT_DEPENDENTS at most, expected >= ${#CHILDREN[@]} (resend 2s)"
cw_log "Alertmanager's $ROOT alert: dependents=$AM_ROOT_DEPENDENTS dependent_names='$AM_ROOT_NAMES'"
((MAX_INCIDENT_DEPENDENTS >= ${#CHILDREN[@]})) ||
  fail "citywatch_uptime_incident_dependents{root=\"$ROOT\"} reached $MAX_INCIDENT_DEPENDENTS during the outage, expected >= ${#CHILDREN[@]}"
cw_log "citywatch_uptime_incident_dependents{root=\"$ROOT\"} reached $MAX_INCIDENT_DEPENDENTS during the outage"

# The store: one root outage (the router's), each child attached to it.
cw_expect "root device outages after the uplink outage" \
  "$(q "SELECT COUNT(*) FROM outage_view WHERE kind = 'device' AND root_outage_id IS NULL")" 1
ROOT_ID=$(q "SELECT id FROM outage_view WHERE kind = 'device' AND device_name = '$ROOT' AND root_outage_id IS NULL")
[[ "$ROOT_ID" =~ ^[0-9]+$ ]] || fail "no root outage of $ROOT in the store (got '$ROOT_ID')"
read -r ROOT_STORED ROOT_START ROOT_END < <(q "SELECT printf('%.2f', (end_ns - start_ns) / 1e9), start_ns, end_ns FROM outage_view WHERE id = $ROOT_ID" | tr '|' ' ')
((ROOT_START >= T_DOWN - 3000000000 && ROOT_END <= T_ALL_UP)) ||
  fail "$ROOT's outage ($ROOT_START..$ROOT_END) is not the uplink's window ($T_DOWN..$T_ALL_UP)"
CHILD_FIGURES=""
for c in "${CHILDREN[@]}"; do
  cw_expect "$c's outages" "$(q "SELECT COUNT(*) FROM outage_view WHERE kind = 'device' AND device_name = '$c'")" 1
  cw_expect "$c's outage root_outage_id" \
    "$(q "SELECT IFNULL(root_outage_id, 'NULL') FROM outage_view WHERE kind = 'device' AND device_name = '$c'")" "$ROOT_ID"
  CHILD_FIGURES+=" $c $(q "SELECT printf('%.2f', (end_ns - start_ns) / 1e9) FROM outage_view WHERE kind = 'device' AND device_name = '$c'")s;"
done
# The incident view in the metrics: one outage, three dependents.
M=$(scrape)
cw_expect "citywatch_uptime_outages_total{kind=device} (incidents)" \
  "$(cw_sum citywatch_uptime_outages_total 'kind="device"' <<<"$M")" 1
cw_expect "citywatch_uptime_dependent_outages_total{kind=device}" \
  "$(cw_sum citywatch_uptime_dependent_outages_total 'kind="device"' <<<"$M")" "${#CHILDREN[@]}"
cw_log "incident: $ROOT outage #$ROOT_ID of $ROOT_STORED s stored vs $DOWN_FOR s measured; dependents:$CHILD_FIGURES"

# ---- 2) one child down alone ----------------------------------------------------------------
LONE_BEFORE=$(firings "$LONE")
T2_DOWN=$(ns)
cw_stop "${SIM_PID_OF[$LONE]}"
answers "$LONE" && fail "$LONE still answers after its snmpsimd was stopped"
cw_wait_until 100 "$ROOT answering while only $LONE is down" answers "$ROOT"
lone_fired() { (($(firings "$LONE") > LONE_BEFORE)); }
cw_wait_until 300 "device_unreachable firing for $LONE on its own" lone_fired
T2_ALERT=$(ns)
am_lone() {
  am_alerts | am_for "$LONE" | jq -e --arg r "$ROOT" \
    'any(.[]; .status.state == "active" and
              ((.labels.parents // "") | split(",") | map(gsub("^ +| +$"; "")) | index($r) != null))' >/dev/null
}
cw_wait_until 300 "Alertmanager lists $LONE's alert active (not inhibited) with parents=$ROOT" am_lone
start_child "$LONE" 2
cw_wait_until 300 "$LONE answering again" answers "$LONE"
cw_wait_until 300 "$LONE up again" device_up "$LONE" 1
T2_UP=$(ns)
cw_wait_until 300 "$LONE's outage closed" closed
cw_log "$LONE alone: alert in the log $(secs "$T2_DOWN" "$T2_ALERT") s after it stopped answering; down for $(secs "$T2_DOWN" "$T2_UP") s (figures, not asserted)"
cw_log "outage store at the end:"
q "SELECT id, device_name, cause, printf('%.2f s', (end_ns - start_ns) / 1e9), root_outage_id, end_reason FROM outage_view WHERE kind = 'device' ORDER BY id" >&2

cw_expect "device_unreachable firing lines for $LONE" "$(firings "$LONE")" 1
cw_expect "device_unreachable firing lines for $ROOT (whole run)" "$(firings "$ROOT")" 1
for c in "${CHILDREN[@]}"; do
  [[ $c == "$LONE" ]] && continue
  cw_expect "device_unreachable firing lines for $c (whole run)" "$(firings "$c")" 0
done
LONE_ID=$(q "SELECT MAX(id) FROM outage_view WHERE kind = 'device' AND device_name = '$LONE'")
read -r LONE_START LONE_ROOT LONE_STORED < <(q "SELECT start_ns, IFNULL(root_outage_id, 'NULL'), printf('%.2f', (end_ns - start_ns) / 1e9) FROM outage_view WHERE id = ${LONE_ID:-0}" | tr '|' ' ')
((${LONE_START:-0} >= T2_DOWN - 3000000000)) || fail "$LONE's newest outage (#$LONE_ID) does not start after it was stopped"
cw_expect "$LONE's own outage root_outage_id" "$LONE_ROOT" NULL
cw_expect "$LONE's outages (one dependent, one its own)" \
  "$(q "SELECT COUNT(*) FROM outage_view WHERE kind = 'device' AND device_name = '$LONE'")" 2
cw_expect "root device outages (incidents) in the whole run" \
  "$(q "SELECT COUNT(*) FROM outage_view WHERE kind = 'device' AND root_outage_id IS NULL")" 2
M=$(scrape)
cw_expect "citywatch_uptime_outages_total{kind=device} at the end" \
  "$(cw_sum citywatch_uptime_outages_total 'kind="device"' <<<"$M")" 2
cw_expect "citywatch_uptime_dependent_outages_total{kind=device} at the end" \
  "$(cw_sum citywatch_uptime_dependent_outages_total 'kind="device"' <<<"$M")" "${#CHILDREN[@]}"

echo "PASS: snmp_dependencies: uplink down $DOWN_FOR s -> 1 device_unreachable ($ROOT, dependents=$DEPENDENTS: $NAMES), 0 child alerts (JSONL and Alertmanager), 1 incident (#$ROOT_ID, $ROOT_STORED s) with ${#CHILDREN[@]} dependents attached; $ROOT seen down $(secs "$T_DOWN" "$T_SEEN_DOWN") s and alerted $(secs "$T_DOWN" "$T_ROOT_ALERT") s after the cut, all up $(secs "$T_UP" "$T_ALL_UP") s after it came back; $LONE alone -> its own alert after $(secs "$T2_DOWN" "$T2_ALERT") s and its own incident #$LONE_ID ($LONE_STORED s)"
