# SNMP helpers for the integration tests (sourced after lib.sh). Peers are the real snmpd
# and snmpsimd, started on loopback on ports chosen at run time.

cw_free_udp_port() { cw_free_port udp; }

cw_need_snmp_tools() {
  local tool
  for tool in snmpd snmpsimd snmpbulkwalk snmpget snmptrap; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not found (install snmpd, snmp, snmpsim)" >&2; exit 77; }
  done
}

# cw_start_snmpd PORT: snmpd on 127.0.0.1:PORT with community cwtest and the v3 authPriv
# user cwv3 (SHA/AES), its own config and persistent dir. Sets SNMPD_PID.
cw_start_snmpd() {
  local port=$1
  mkdir -p "$WORK/snmpd-state"
  cat >"$WORK/snmpd.conf" <<CONF
agentaddress udp:127.0.0.1:$port
rocommunity cwtest 127.0.0.1
createUser cwv3 SHA "cw-auth-pass" AES "cw-priv-pass"
rouser cwv3 priv
CONF
  SNMP_PERSISTENT_DIR="$WORK/snmpd-state" MIBS="" cw_spawn "$WORK/snmpd.log" \
    snmpd -f -Lo -C -c "$WORK/snmpd.conf" -p "$WORK/snmpd.pid"
  SNMPD_PID=$CW_LAST_PID
  snmpd_ready() { snmpget -v2c -c cwtest -r 0 -t 0.5 "127.0.0.1:$port" 1.3.6.1.2.1.1.3.0 >/dev/null 2>&1; }
  cw_wait_until 100 "snmpd answering on 127.0.0.1:$port" snmpd_ready
}

# cw_start_snmpsim PORT DATA_DIR [NAME [ADDRESS...]]: snmpsimd serving DATA_DIR on
# ADDRESS:PORT for each ADDRESS (default 127.0.0.1; any of 127.0.0.0/8 is loopback), all in
# one process. Sets SIM_PID.
cw_start_snmpsim() {
  local port=$1 data=$2 name=${3:-snmpsim} a
  shift $(($# < 3 ? $# : 3))
  local endpoints=()
  for a in "${@:-127.0.0.1}"; do endpoints+=("--agent-udpv4-endpoint=$a:$port"); done
  mkdir -p "$WORK/$name-cache"
  chown nobody "$WORK/$name-cache" 2>/dev/null
  chmod 755 "$WORK"
  cw_spawn "$WORK/$name.log" snmpsimd --data-dir="$data" "${endpoints[@]}" \
    --process-user=nobody --process-group=nogroup --cache-dir="$WORK/$name-cache" \
    --logging-method=stderr
  SIM_PID=$CW_LAST_PID
}

# cw_wait_snmp PORT COMMUNITY [ADDRESS]: bounded wait until the agent at ADDRESS:PORT
# (default 127.0.0.1) answers for COMMUNITY.
cw_wait_snmp() {
  local port=$1 community=$2 address=${3:-127.0.0.1}
  sim_ready() { snmpget -v2c -c "$community" -r 0 -t 1 "$address:$port" 1.3.6.1.2.1.1.3.0 2>/dev/null | grep -q Timeticks; }
  cw_wait_until 300 "SNMP agent on $address:$port answering community $community" sim_ready
}

# cw_shipped_recordings DIR: gunzips snmpsim's shipped recordings cisco_16_switch and
# recorded/linux-full-walk into DIR; skips the test when they are absent.
cw_shipped_recordings() {
  local dir=$1 ex=/usr/share/doc/snmpsim/examples/data
  [[ -f $ex/cisco_16_switch.snmprec.gz && -f $ex/recorded/linux-full-walk.snmprec.gz ]] ||
    { echo "SKIP: snmpsim's example recordings not found under $ex" >&2; exit 77; }
  mkdir -p "$dir/recorded"
  zcat "$ex/cisco_16_switch.snmprec.gz" >"$dir/cisco_16_switch.snmprec"
  zcat "$ex/recorded/linux-full-walk.snmprec.gz" >"$dir/recorded/linux-full-walk.snmprec"
  chmod -R a+rX "$dir"
}

# cw_snmp_exporter_module FILE COMMUNITY: snmp.yml with one module, if_mib, in the format of
# snmp_exporter 0.21 (Debian 12; `auth:` inside the module, `auths:` came in 0.23). Numeric
# OIDs only (no MIB is needed); every column is indexed by ifIndex, and ifName, ifAlias and
# ifDescr are lookups (labels) on it, like upstream's generated if_mib.
cw_snmp_exporter_module() {
  local file=$1 community=$2 spec name oid type
  {
    cat <<EOF
if_mib:
  walk:
  - 1.3.6.1.2.1.2.2.1
  - 1.3.6.1.2.1.31.1.1.1
  version: 2
  max_repetitions: 25
  retries: 1
  timeout: 5s
  auth:
    community: $community
  metrics:
EOF
    for spec in ifType:1.3.6.1.2.1.2.2.1.3:gauge ifSpeed:1.3.6.1.2.1.2.2.1.5:gauge \
      ifAdminStatus:1.3.6.1.2.1.2.2.1.7:gauge ifOperStatus:1.3.6.1.2.1.2.2.1.8:gauge \
      ifInOctets:1.3.6.1.2.1.2.2.1.10:counter ifInUcastPkts:1.3.6.1.2.1.2.2.1.11:counter \
      ifInDiscards:1.3.6.1.2.1.2.2.1.13:counter ifInErrors:1.3.6.1.2.1.2.2.1.14:counter \
      ifOutOctets:1.3.6.1.2.1.2.2.1.16:counter ifOutUcastPkts:1.3.6.1.2.1.2.2.1.17:counter \
      ifOutDiscards:1.3.6.1.2.1.2.2.1.19:counter ifOutErrors:1.3.6.1.2.1.2.2.1.20:counter \
      ifInMulticastPkts:1.3.6.1.2.1.31.1.1.1.2:counter ifInBroadcastPkts:1.3.6.1.2.1.31.1.1.1.3:counter \
      ifOutMulticastPkts:1.3.6.1.2.1.31.1.1.1.4:counter ifOutBroadcastPkts:1.3.6.1.2.1.31.1.1.1.5:counter \
      ifHCInOctets:1.3.6.1.2.1.31.1.1.1.6:counter ifHCInUcastPkts:1.3.6.1.2.1.31.1.1.1.7:counter \
      ifHCInMulticastPkts:1.3.6.1.2.1.31.1.1.1.8:counter ifHCInBroadcastPkts:1.3.6.1.2.1.31.1.1.1.9:counter \
      ifHCOutOctets:1.3.6.1.2.1.31.1.1.1.10:counter ifHCOutUcastPkts:1.3.6.1.2.1.31.1.1.1.11:counter \
      ifHCOutMulticastPkts:1.3.6.1.2.1.31.1.1.1.12:counter ifHCOutBroadcastPkts:1.3.6.1.2.1.31.1.1.1.13:counter \
      ifHighSpeed:1.3.6.1.2.1.31.1.1.1.15:gauge; do
      IFS=: read -r name oid type <<<"$spec"
      cat <<EOF
  - name: $name
    oid: $oid
    type: $type
    help: $name ($oid)
    indexes:
    - labelname: ifIndex
      type: gauge
    lookups:
    - labels: [ifIndex]
      labelname: ifName
      oid: 1.3.6.1.2.1.31.1.1.1.1
      type: DisplayString
    - labels: [ifIndex]
      labelname: ifAlias
      oid: 1.3.6.1.2.1.31.1.1.1.18
      type: DisplayString
    - labels: [ifIndex]
      labelname: ifDescr
      oid: 1.3.6.1.2.1.2.2.1.2
      type: DisplayString
EOF
    done
  } >"$file"
}

cw_free_tcp_port() { cw_free_port tcp; }

# cw_start_snmp_exporter CONFIG: prometheus-snmp-exporter with CONFIG (checked first with
# --dry-run) on a run-time port of 127.0.0.1. Sets EXPORTER_PORT and EXPORTER_PID.
cw_start_snmp_exporter() {
  local config=$1
  prometheus-snmp-exporter --dry-run --config.file="$config" >"$WORK/snmp_exporter-dry-run.log" 2>&1 ||
    fail "snmp_exporter rejects $config: $(cat "$WORK/snmp_exporter-dry-run.log")"
  EXPORTER_PORT=$(cw_free_tcp_port)
  cw_spawn "$WORK/snmp_exporter.log" prometheus-snmp-exporter --config.file="$config" \
    --web.listen-address="127.0.0.1:$EXPORTER_PORT"
  EXPORTER_PID=$CW_LAST_PID
  exporter_ready() { curl -sf --max-time 2 "http://127.0.0.1:$EXPORTER_PORT/metrics" >/dev/null; }
  cw_wait_until 100 "snmp_exporter listening on 127.0.0.1:$EXPORTER_PORT" exporter_ready
}

# cw_one_port_snmprec FILE DESCR NAME [OID|TAG|VALUE ...]: an snmpsim recording of a device
# named NAME (sysName) with one Ethernet interface, eth0, up at 1 Gb/s, and a few counters.
# Each OID|TAG|VALUE replaces the record of that OID or adds one; the file stays in OID order,
# as snmpsim needs it for GETNEXT and GETBULK.
cw_one_port_snmprec() {
  local file=$1 rec
  cat >"$file" <<REC
1.3.6.1.2.1.1.1.0|4|$2
1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.8072.3.2.10
1.3.6.1.2.1.1.3.0|67|123456
1.3.6.1.2.1.1.5.0|4|$3
1.3.6.1.2.1.2.1.0|2|1
1.3.6.1.2.1.2.2.1.1.1|2|1
1.3.6.1.2.1.2.2.1.2.1|4|eth0
1.3.6.1.2.1.2.2.1.3.1|2|6
1.3.6.1.2.1.2.2.1.5.1|66|1000000000
1.3.6.1.2.1.2.2.1.7.1|2|1
1.3.6.1.2.1.2.2.1.8.1|2|1
1.3.6.1.2.1.2.2.1.10.1|65|1000
1.3.6.1.2.1.2.2.1.11.1|65|10
1.3.6.1.2.1.2.2.1.13.1|65|0
1.3.6.1.2.1.2.2.1.14.1|65|0
1.3.6.1.2.1.2.2.1.16.1|65|2000
1.3.6.1.2.1.2.2.1.17.1|65|20
1.3.6.1.2.1.2.2.1.19.1|65|0
1.3.6.1.2.1.2.2.1.20.1|65|0
1.3.6.1.2.1.31.1.1.1.1.1|4|eth0
REC
  shift 3
  for rec in "$@"; do
    awk -F'|' -v oid="${rec%%|*}" '$1 != oid' "$file" >"$file.tmp"
    printf '%s\n' "$rec" >>"$file.tmp"
    sort -t'|' -k1,1V "$file.tmp" >"$file"
    rm -f "$file.tmp"
  done
}

# cw_dashboard_devices [spare]: the devices the dashboard tests poll. One snmpsim on 127.0.0.1
# (port SIM1) serves the shipped recordings and hot-switch: ifIndex 1 at 10 Mbit/s, in
# 1,100,000 B/s (88 %), out 250,000 B/s, 5 errors and 2 discards per second in, named in
# ifXTable; counters grow with time (numeric variation). With `spare`, ifIndex 2 is admin up,
# oper down (a cable pulled: the "interfaces down" panels without a network namespace).
# Another snmpsim (port SIM2, pid SIM2_PID) serves branch-ups and branch-cam on two loopback
# addresses (UPS_ADDR, CAM_ADDR): the outage tracker tells devices apart by address, so each
# is an entity of its own, and stopping that process takes both down. Each NAME.snmprec is
# served under community NAME.
cw_dashboard_devices() {
  local spare=${1:-} oid t1 v1 t2 v2
  SIM1=$(cw_free_udp_port)
  SIM2=$(cw_free_udp_port)
  mkdir -p "$WORK/sim1" "$WORK/sim2"
  cw_shipped_recordings "$WORK/sim1"
  {
    printf '%s\n' '1.3.6.1.2.1.1.1.0|4|CityWatch hot switch' \
      '1.3.6.1.2.1.1.2.0|6|1.3.6.1.4.1.9.1.1208' \
      '1.3.6.1.2.1.1.3.0|67:numeric|rate=100,initial=1000' '1.3.6.1.2.1.1.5.0|4|hot-switch'
    echo "1.3.6.1.2.1.2.1.0|2|$([[ -n $spare ]] && echo 2 || echo 1)"
    # column OID | ifIndex 1 type | value | ifIndex 2 type | value
    while IFS='|' read -r oid t1 v1 t2 v2; do
      echo "$oid.1|$t1|$v1"
      [[ -z $spare ]] || echo "$oid.2|$t2|$v2"
    done <<'COLUMNS'
1.3.6.1.2.1.2.2.1.1|2|1|2|2
1.3.6.1.2.1.2.2.1.2|4|GigabitEthernet0/1|4|GigabitEthernet0/2
1.3.6.1.2.1.2.2.1.3|2|6|2|6
1.3.6.1.2.1.2.2.1.5|66|10000000|66|10000000
1.3.6.1.2.1.2.2.1.7|2|1|2|1
1.3.6.1.2.1.2.2.1.8|2|1|2|2
1.3.6.1.2.1.2.2.1.10|65:numeric|rate=1100000,initial=1000,wrap=1|65|5000
1.3.6.1.2.1.2.2.1.11|65:numeric|rate=900,initial=10,wrap=1|65|50
1.3.6.1.2.1.2.2.1.13|65:numeric|rate=2,initial=0|65|0
1.3.6.1.2.1.2.2.1.14|65:numeric|rate=5,initial=0|65|0
1.3.6.1.2.1.2.2.1.16|65:numeric|rate=250000,initial=1000,wrap=1|65|7000
1.3.6.1.2.1.2.2.1.17|65:numeric|rate=400,initial=10,wrap=1|65|70
1.3.6.1.2.1.2.2.1.19|65|0|65|0
1.3.6.1.2.1.2.2.1.20|65|0|65|0
1.3.6.1.2.1.31.1.1.1.1|4|Gi0/1|4|Gi0/2
1.3.6.1.2.1.31.1.1.1.2|65:numeric|rate=20,initial=0|65|0
1.3.6.1.2.1.31.1.1.1.3|65:numeric|rate=3,initial=0|65|0
1.3.6.1.2.1.31.1.1.1.4|65:numeric|rate=10,initial=0|65|0
1.3.6.1.2.1.31.1.1.1.5|65:numeric|rate=1,initial=0|65|0
1.3.6.1.2.1.31.1.1.1.15|66|10|66|10
1.3.6.1.2.1.31.1.1.1.18|4|Uplink to Branch Library|4|Spare port, cable pulled
COLUMNS
  } >"$WORK/sim1/hot-switch.snmprec"
  zcat /usr/share/doc/snmpsim/examples/data/recorded/linux-full-walk.snmprec.gz \
    >"$WORK/sim2/branch-ups.snmprec"
  cp "$WORK/sim2/branch-ups.snmprec" "$WORK/sim2/branch-cam.snmprec"
  chmod -R a+rX "$WORK/sim1" "$WORK/sim2"
  UPS_ADDR=127.0.0.2 CAM_ADDR=127.0.0.3
  cw_start_snmpsim "$SIM1" "$WORK/sim1" snmpsim1
  cw_start_snmpsim "$SIM2" "$WORK/sim2" snmpsim2 "$UPS_ADDR" "$CAM_ADDR"
  SIM2_PID=$SIM_PID
  cw_wait_snmp "$SIM1" hot-switch
  cw_wait_snmp "$SIM2" branch-ups "$UPS_ADDR"
  cw_wait_snmp "$SIM2" branch-cam "$CAM_ADDR"
}

# cw_dashboard_collector: the collector the dashboard tests query (dashboards_check,
# dashboards_victoria), started as "collector": the rule pack, JSONL alerts in
# $WORK/alerts.jsonl, uptime by site with branch-cam behind branch-ups
# (uptime.dependencies), and two years of outage history (2024, 2025) in the store it opens,
# so the target panels compare this year with a baseline that has outages
# (docs/uptime.md#targets). Certificates for replay-agent and live-agent in $WORK/pki.
cw_dashboard_collector() {
  cw_certs "$WORK/pki" replay-agent live-agent
  local cli
  cli=$(readlink -f "$(dirname "$COLLECTOR_BIN")/../report/citywatch")
  mkdir -p "$WORK/state"
  /usr/bin/python3 "$SRC_DIR/tests/collector/report/gen_history.py" "$cli" \
    "$WORK/state/uptime.sqlite" 7 >"$WORK/history.log" 2>&1 || fail "gen_history.py failed"
  cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state" "rules:
  files: [$SRC_DIR/rules]
alerts:
  jsonl: $WORK/alerts.jsonl
uptime:
  min_outage: 1s
  agent_grace: 2s
  target: {period: year, baseline: 2025, reduction_percent: 25}
  sites:
    - name: city-hall
      segments: [seg-test]
  dependencies:
    - device: branch-ups
    - device: branch-cam
      parents: [branch-ups]"
  cw_start_collector collector "$WORK/collector.yaml"
}

# cw_dashboard_live_agent [TARGETS [YAML]]: starts the live agent of the dashboard tests
# (live-agent, log $WORK/live.log): it polls cw_dashboard_devices' four devices every 2 s,
# plus the snmp.targets lines in TARGETS, receives traps on $TRAP_PORT (community cw-traps),
# listens for flows ($FLOW_PORT) and serves /metrics ($LIVE_PORT); YAML is added to its
# config.
cw_dashboard_live_agent() {
  local targets=${1:-} extra=${2:-}
  TRAP_PORT=$(cw_free_udp_port)
  cw_agent_config "$WORK/live.yaml" "$WORK/pki" live-agent "$INGEST_PORT" "$WORK/live-spool" "
state_dir: $WORK/live-state
snmp:
  defaults: {interval: 2s, timeout: 500ms, retries: 0, version: 2c}
  targets:${targets}
    - {name: hot-switch, address: 127.0.0.1, port: $SIM1, community: hot-switch, site: city-hall}
    - {name: branch-switch, address: 127.0.0.1, port: $SIM1, community: cisco_16_switch, site: branch-library}
    - {name: branch-ups, address: $UPS_ADDR, port: $SIM2, community: branch-ups, site: branch-library}
    - {name: branch-cam, address: $CAM_ADDR, port: $SIM2, community: branch-cam, site: branch-library}
  traps:
    listen: 127.0.0.1:$TRAP_PORT
    communities: [cw-traps]
flow_listeners:
  - listen: 127.0.0.1:0
    formats: [netflow_v5, netflow_v9, ipfix, sflow]${extra}
metrics:
  listen: 127.0.0.1:0"
  cw_spawn "$WORK/live.log" "$AGENT_BIN" --config "$WORK/live.yaml"
  cw_agent_metrics "$WORK/live.log"
  LIVE_PORT=$AGENT_METRICS
  cw_flow_listener "$WORK/live.log"
}

# cw_dashboard_feed: what the dashboard tests (dashboards_check, dashboards_victoria) show
# besides polling: real routers' NetFlow exports (Akvorado's captures under $AKV: templates
# first, then data) sent to the live agent's $FLOW_PORT, a linkDown trap to $TRAP_PORT, and
# segment-a replayed by a second agent (replay-agent) twice, the second time shifted 10
# minutes later; returns once an alert of the first replay has resolved ($WORK/alerts.jsonl).
cw_dashboard_feed() {
  /usr/bin/python3 - "$FLOW_PORT" "$AKV"/samplingrate-template.pcap "$AKV"/samplingrate-data.pcap \
    "$AKV"/data+templates.pcap <<'PY' || fail "replaying the Akvorado captures failed"
import socket, sys
from scapy.all import rdpcap, UDP
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for path in sys.argv[2:]:
    for p in rdpcap(path):
        if UDP in p:
            s.sendto(bytes(p[UDP].payload), ("127.0.0.1", int(sys.argv[1])))
PY
  snmptrap -v2c -c cw-traps "127.0.0.1:$TRAP_PORT" '' 1.3.6.1.6.3.1.1.5.3 \
    1.3.6.1.2.1.2.2.1.1.3 i 3 || fail "snmptrap failed"

  editcap -t 600 "$SEGMENT_A" "$WORK/segment-a-later.pcap" || fail "editcap failed"
  cw_agent_config "$WORK/replay.yaml" "$WORK/pki" replay-agent "$INGEST_PORT" "$WORK/replay-spool" "
state_dir: $WORK/replay-state"
  local pcap
  for pcap in "$SEGMENT_A" "$WORK/segment-a-later.pcap"; do
    cw_spawn "$WORK/replay.log" "$AGENT_BIN" --config "$WORK/replay.yaml" -r "$pcap"
    cw_wait_exit "$CW_LAST_PID" 300
    cw_expect "exit code of the agent replaying $(basename "$pcap")" "$CW_EXIT" 0
  done
  resolved() { [[ -f "$WORK/alerts.jsonl" ]] && grep -q '"state":"resolved"' "$WORK/alerts.jsonl"; }
  cw_wait_until 300 "an alert of the first replay to resolve" resolved
}
