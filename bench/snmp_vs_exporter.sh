#!/usr/bin/env bash
# One SNMP polling round of 1,000 devices, side by side (issue 5, acceptance 5):
#   citywatch-agent          polls every target once (interval 300s, so exactly one round),
#                            forwarding to a real collector started here
#   prometheus-snmp-exporter scrapes the same targets once: one /snmp?module=if_mib request
#                            per target, CONCURRENCY at a time (xargs -P + curl)
# The devices are a real snmpd listening on DEVICES loopback addresses 127.0.X.Y (one socket
# each; addresses go on the command line, as snmpd's agentaddress line is cut at ~120).
# Everything runs in a network namespace made here, with lo and two veth pairs, so every
# device has the same 5 interfaces whatever happens on the host. snmpd's CPU is not
# counted for either side (it is printed).
# Reported: wall time, CPU seconds (utime + stime from /proc/PID/stat) and peak RSS (VmHWM) of
# each poller, and the CPU ratio. The agent's figures cover the whole process from exec to
# the end of the round (config, TLS, key set-up included); the exporter's cover the scrapes
# only (measured from an idle, started exporter). Builds nothing; every wait is bounded.
# usage: bench/snmp_vs_exporter.sh [BUILD_DIR]   (default: build)
# env: DEVICES (1000), CONCURRENCY (32), MAX_IN_FLIGHT (256, the agent's default)
here=$(cd "$(dirname "$0")" && pwd)
build=$(realpath "${1:-build}")
if [[ -z ${CW_BENCH_NETNS:-} ]]; then
  ns=cwsnmpbench$$
  ip netns add "$ns" || { echo "cannot create network namespace $ns (needs root)" >&2; exit 1; }
  trap 'ip netns del "$ns"' EXIT
  ip -n "$ns" link set lo up
  for n in 0 2; do  # two veth pairs (no dummy module in containers): eth0..eth3
    ip -n "$ns" link add "eth$n" type veth peer name "eth$((n + 1))" &&
      ip -n "$ns" link set "eth$n" up && ip -n "$ns" link set "eth$((n + 1))" up ||
      { echo "cannot add veth interfaces in $ns" >&2; exit 1; }
  done
  CW_BENCH_NETNS=$ns timeout 900 ip netns exec "$ns" bash "$here/$(basename "$0")" "$build"
  exit $?
fi
source "$here/../tests/integration/lib.sh"
source "$here/../tests/integration/snmp_lib.sh"
cw_init "$build/agent/app/citywatch-agent" "$build/collector/app/citywatch-collector" "$here/.."
cw_need_snmp_tools
command -v prometheus-snmp-exporter >/dev/null || fail "prometheus-snmp-exporter not installed"
DEVICES=${DEVICES:-1000}
CONCURRENCY=${CONCURRENCY:-32}
MAX_IN_FLIGHT=${MAX_IN_FLIGHT:-256}
((DEVICES >= 1 && DEVICES <= 62500)) || fail "DEVICES must be 1..62500"
TCK=$(getconf CLK_TCK)
COMMUNITY=cwbench

# cpu_s PID: user + system CPU seconds of PID so far. Field 2 (comm) may hold spaces, so the
# fields are counted after its closing parenthesis: utime and stime are fields 14 and 15.
cpu_s() { awk -v t="$TCK" '{ sub(/^.*\) /, ""); printf "%.3f", ($12 + $13) / t }' "/proc/$1/stat"; }
# hwm_mib PID: peak resident set size in MiB.
hwm_mib() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }

addr() { echo "127.0.$((1 + $1 / 250)).$((1 + $1 % 250))"; }
PORT=$(cw_free_udp_port)
listen=""
for ((i = 0; i < DEVICES; i++)); do listen+="${listen:+,}udp:$(addr "$i"):$PORT"; done

# --- the devices: one snmpd, DEVICES sockets -------------------------------------------------
mkdir -p "$WORK/snmpd-state"
cat >"$WORK/snmpd.conf" <<CONF
rocommunity $COMMUNITY 127.0.0.0/8
CONF
SNMP_PERSISTENT_DIR="$WORK/snmpd-state" MIBS="" cw_spawn "$WORK/snmpd.log" \
  snmpd -f -Lo -C -c "$WORK/snmpd.conf" "$listen"
SNMPD_PID=$CW_LAST_PID
last=$(addr $((DEVICES - 1)))
snmpd_ready() {
  snmpget -v2c -c "$COMMUNITY" -r 0 -t 0.5 "$last:$PORT" 1.3.6.1.2.1.1.3.0 >/dev/null 2>&1
}
cw_wait_until 300 "snmpd answering on $last:$PORT" snmpd_ready
sockets=$(find "/proc/$SNMPD_PID/fd" -lname "socket:*" 2>/dev/null | wc -l)
((sockets >= DEVICES)) || fail "snmpd holds $sockets sockets, expected at least $DEVICES"
ifs=$(snmpbulkwalk -v2c -c "$COMMUNITY" -On -Oq "$(addr 0):$PORT" 1.3.6.1.2.1.2.2.1.1 | wc -l)
cw_log "snmpd pid $SNMPD_PID: $DEVICES addresses on port $PORT, $ifs interfaces each"

# --- the agent: one round --------------------------------------------------------------------
cw_certs "$WORK/pki" bench-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
targets=""
for ((i = 0; i < DEVICES; i++)); do
  targets+="
    - {name: dev$i, address: $(addr "$i")}"
done
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" bench-agent "$INGEST_PORT" "$WORK/spool" "
snmp:
  max_in_flight: $MAX_IN_FLIGHT
  defaults:
    port: $PORT
    community: $COMMUNITY
    interval: 300s
    timeout: 5s
    retries: 1
  targets:$targets"
snmpd_cpu0=$(cpu_s "$SNMPD_PID")
t0=$(now)
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
AGENT_PID=$CW_LAST_PID
round_done() { grep -q "first round of $DEVICES device(s) polled" "$WORK/agent.log" 2>/dev/null; }
cw_wait_until 1200 "the agent's first round of $DEVICES devices" round_done
agent_wall=$(sub "$(now)" "$t0")
agent_cpu=$(cpu_s "$AGENT_PID")
agent_mem=$(hwm_mib "$AGENT_PID")
agent_round_ms=$(sed -n "s/.*first round of $DEVICES device(s) polled in \([0-9]*\) ms.*/\1/p" "$WORK/agent.log" | head -1)
all_up() { [[ "$(cw_metric "$METRICS_PORT" citywatch_snmp_device_up)" == "$DEVICES" ]]; }
cw_wait_until 600 "$DEVICES devices up at the collector" all_up
agent_ifs=$(cw_metric "$METRICS_PORT" citywatch_snmp_device_interfaces)
cw_expect "interfaces reported by the agent" "$agent_ifs" $((DEVICES * ifs))
cw_stop "$AGENT_PID"
cw_expect "the agent's exit code after SIGTERM" "$CW_EXIT" 0
snmpd_cpu1=$(cpu_s "$SNMPD_PID")

# --- snmp_exporter: the same targets, once -------------------------------------------------
cw_snmp_exporter_module "$WORK/snmp.yml" "$COMMUNITY"
cw_start_snmp_exporter "$WORK/snmp.yml"
# A warm-up scrape of one target, so that the measured run starts from a ready exporter.
curl -sf --max-time 30 -o /dev/null "http://127.0.0.1:$EXPORTER_PORT/snmp?module=if_mib&target=$(addr 0):$PORT" ||
  fail "snmp_exporter's warm-up scrape failed"
mkdir -p "$WORK/scrapes"
for ((i = 0; i < DEVICES; i++)); do echo "$i $(addr "$i")"; done >"$WORK/targets.txt"
scrape_one() {  # scrape_one N ADDRESS: one /snmp request, body to scrapes/N
  curl -s --max-time 60 -o "$WORK/scrapes/$1" -w '%{http_code}\n' \
    "http://127.0.0.1:$EXPORTER_PORT/snmp?module=if_mib&target=$2:$PORT"
}
export -f scrape_one
export WORK EXPORTER_PORT PORT
exp_cpu0=$(cpu_s "$EXPORTER_PID")
t0=$(now)
timeout 900 xargs -P "$CONCURRENCY" -n 2 bash -c 'scrape_one "$@"' _ <"$WORK/targets.txt" >"$WORK/codes.txt"
exp_wall=$(sub "$(now)" "$t0")
exp_cpu=$(sub "$(cpu_s "$EXPORTER_PID")" "$exp_cpu0")
exp_mem=$(hwm_mib "$EXPORTER_PID")
snmpd_cpu2=$(cpu_s "$SNMPD_PID")
ok=$(grep -c '^200$' "$WORK/codes.txt")
cw_expect "snmp_exporter answers with HTTP 200" "$ok" "$DEVICES"
exp_ifs=$(cat "$WORK"/scrapes/* | grep -c '^ifOperStatus{')
cw_expect "interfaces reported by snmp_exporter" "$exp_ifs" $((DEVICES * ifs))

ratio=$(awk -v a="$exp_cpu" -v b="$agent_cpu" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')
echo
echo "SNMP round: $DEVICES devices (snmpd, $ifs interfaces each), $(nproc) cores, netns $CW_BENCH_NETNS"
printf '%-34s %10s %10s %10s\n' "" "wall s" "CPU s" "peak MiB"
printf '%-34s %10s %10s %10s\n' "citywatch-agent (exec to round end)" "$agent_wall" "$agent_cpu" "$agent_mem"
printf '%-34s %10s %10s %10s\n' "  (round as timed by the agent)" "$(awk -v m="$agent_round_ms" 'BEGIN { printf "%.3f", m / 1000 }')" "" ""
printf '%-34s %10s %10s %10s\n' "snmp_exporter (-P $CONCURRENCY curl)" "$exp_wall" "$exp_cpu" "$exp_mem"
echo "CPU ratio snmp_exporter / agent: ${ratio}x (agent max_in_flight $MAX_IN_FLIGHT)"
echo "not counted: snmpd's CPU answering the agent $(sub "$snmpd_cpu1" "$snmpd_cpu0") s, the exporter $(sub "$snmpd_cpu2" "$snmpd_cpu1") s (warm-up included); whole script ${SECONDS} s"
