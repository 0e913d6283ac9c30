#!/usr/bin/env bash
# What reaches the poller's sockets is the device's to choose, or a spoofer's. A hostile
# "device" (a UDP socket of this test, two ports: one polled as v2c, one as v3 authPriv)
# answers every request with BER that lies about its lengths: the datagram snmp_trap_fuzz
# found to make net-snmp 5.9.3 read past its buffer (USM parameters claiming 47 bytes where
# 30 follow), the same lie inside the USM parameters only, an indefinite length, a high tag
# number. Meanwhile an honest snmpsim device is polled by the same agent.
#   - every lying datagram is dropped before net-snmp sees it and counted, one for one
#     (citywatch_agent_snmp_malformed_answers_total equals what the hostile device sent);
#   - the hostile targets are reported down (timeout), the honest one stays up and polled;
#   - the agent is alive at the end (under ASan, the over-read would have stopped it).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/snmp_lib.sh"
cw_init "$@"
cw_need_snmp_tools

mkdir -p "$WORK/sim"
cw_one_port_snmprec "$WORK/sim/honest.snmprec" "CityWatch honest device" honest
chmod -R a+rX "$WORK/sim"
SIM_PORT=$(cw_free_udp_port)
cw_start_snmpsim "$SIM_PORT" "$WORK/sim" sim
cw_wait_snmp "$SIM_PORT" honest

# The hostile device: answers each request with the four lies; writes the two ports it
# listens on, then the running count of datagrams it has sent. Ends by itself after 300 s.
cat >"$WORK/hostile.py" <<'PY'
import os, select, socket, sys, time
base = sys.argv[1]
crash = bytes([0x30, 0x81, 0x18, 0x02, 0x01, 0x03, 0x30, 0x11, 0x02, 0x04, 0x45, 0x66, 0x4b, 0x2f,
               0x02, 0x03, 0x00, 0xff, 0xe3, 0x04, 0x01, 0x01, 0x02, 0x01, 0x03, 0x04, 0x2f, 0x30,
               0x2d, 0x04, 0x0b, 0x80, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0xaa, 0xbb, 0xcc,
               0x02, 0x01, 0x01, 0x02, 0x03, 0x00, 0x30, 0x4f, 0x04, 0x11, 0x80, 0x00, 0x1f, 0x88,
               0x80, 0x1d, 0x78])
good_v3 = bytearray([0x30, 0x35, 0x02, 0x01, 0x03, 0x30, 0x0f, 0x02, 0x02, 0x12, 0x34, 0x02, 0x03,
                     0x00, 0xff, 0xe3, 0x04, 0x01, 0x00, 0x02, 0x01, 0x03, 0x04, 0x1d, 0x30, 0x1b,
                     0x04, 0x07, 0x80, 0x00, 0x00, 0x00, 0x01, 0x02, 0x03, 0x02, 0x01, 0x01, 0x02,
                     0x01, 0x02, 0x04, 0x06]) + b"cwpriv" + bytes([0x04, 0x00, 0x04, 0x00, 0x30, 0x00])
inner = bytearray(good_v3)
inner[25] = 0x30  # the USM SEQUENCE claims more than its OCTET STRING holds
lies = [crash, bytes(inner), bytes([0x30, 0x80, 0x00, 0x00]), bytes([0x30, 0x02, 0x1f, 0x00])]
socks = []
for _ in range(2):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
with open(base + ".ports.tmp", "w") as f:
    f.write(" ".join(str(s.getsockname()[1]) for s in socks))
os.rename(base + ".ports.tmp", base + ".ports")
sent = 0
deadline = time.time() + 300
while time.time() < deadline and not os.path.exists(base + ".stop"):
    ready, _, _ = select.select(socks, [], [], 0.2)
    for s in ready:
        _, peer = s.recvfrom(65535)
        for lie in lies:
            s.sendto(lie, peer)
            sent += 1
    with open(base + ".sent.tmp", "w") as f:
        f.write(str(sent))
    os.rename(base + ".sent.tmp", base + ".sent")
# Stopped: the final count, then nothing more is sent.
with open(base + ".done.tmp", "w") as f:
    f.write(str(sent))
os.rename(base + ".done.tmp", base + ".done")
PY
cw_spawn "$WORK/hostile.log" /usr/bin/python3 "$WORK/hostile.py" "$WORK/hostile"
hostile_ready() { [[ -s "$WORK/hostile.ports" ]]; }
cw_wait_until 300 "the hostile device listening" hostile_ready
read -r H1 H2 <"$WORK/hostile.ports"

cw_certs "$WORK/pki" demo-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" demo-agent "$INGEST_PORT" "$WORK/spool" "
metrics:
  listen: 127.0.0.1:0
snmp:
  targets:
    - {name: honest, address: 127.0.0.1, port: $SIM_PORT, community: honest, interval: 2s,
       timeout: 500ms, retries: 1}
    - {name: hostile-v2c, address: 127.0.0.1, port: $H1, community: public, interval: 2s,
       timeout: 500ms, retries: 1}
    - name: hostile-v3
      address: 127.0.0.1
      port: $H2
      version: 3
      user: cwpriv
      auth_protocol: SHA
      auth_password: cw-auth-pass
      priv_protocol: AES
      priv_password: cw-priv-pass
      interval: 2s
      timeout: 500ms
      retries: 1"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
AGENT_PID=$CW_LAST_PID
cw_agent_metrics "$WORK/agent.log"
am() { cw_metric "$AGENT_METRICS" "$@"; }
cm() { cw_metric "$METRICS_PORT" "$@"; }

attacked() {
  kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent died under the hostile answers: $(tail -n 20 "$WORK/agent.log")"
  (($(am citywatch_agent_snmp_malformed_answers_total) >= 40)) &&
    (($(am citywatch_agent_snmp_polls_total 'result="ok"') >= 3))
}
cw_wait_until 300 "40 lying datagrams counted and 3 good polls" attacked
# The hostile device stops answering: the count must then match what it sent, one for one.
touch "$WORK/hostile.stop"
stopped() { [[ -s "$WORK/hostile.done" ]]; }
cw_wait_until 100 "the hostile device stopped" stopped
sent=$(cat "$WORK/hostile.done")
counted() { [[ "$(am citywatch_agent_snmp_malformed_answers_total)" == "$sent" ]]; }
cw_log "the hostile device sent $sent lying datagrams; the agent has counted $(am citywatch_agent_snmp_malformed_answers_total)"
cw_wait_until 100 "all $sent lying datagrams counted" counted
kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent died under the hostile answers"
cw_expect "hostile-v2c up" "$(cm citywatch_snmp_device_up 'device="hostile-v2c"')" 0
cw_expect "hostile-v3 up" "$(cm citywatch_snmp_device_up 'device="hostile-v3"')" 0
cw_expect "honest up" "$(cm citywatch_snmp_device_up 'device="honest"')" 1
(($(cm citywatch_snmp_polls_total 'device="hostile-v2c",result="timeout"') >= 1)) ||
  fail "hostile-v2c not reported down by timeout: $(cw_scrape "$METRICS_PORT" | grep 'citywatch_snmp_polls_total{.*hostile-v2c')"
ok=$(am citywatch_agent_snmp_polls_total 'result="ok"')
echo "PASS: snmp_hostile_answers: $sent lying datagrams from a hostile v2c and v3 device, all dropped before net-snmp and counted; the hostile targets down (timeout), the honest device polled $ok times; the agent alive"
