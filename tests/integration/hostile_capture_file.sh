#!/usr/bin/env bash
# Capture files an outsider shaped, read by the real agent (`citywatch-agent -r`) into a real
# collector: the agent's own classic-pcap reader and libpcap's pcapng reader.
#   1. a pcap cut in the middle of a packet: exit 1 naming the file and "truncated", the
#      whole records before the cut delivered, no crash;
#   2. a pcap whose record claims more bytes than any snaplen: exit 1 with the limit named;
#   3. a pcapng packet 580,000 years in the future (past what int64 nanoseconds hold; it
#      overflowed before): read, delivered, exit 0.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"
/usr/bin/python3 - "$WORK" <<'PY'
import struct, sys
work = sys.argv[1]
eth_udp = bytes.fromhex("020000000002020000000001" "0800"
                        "4500001c000000004011" "0000" "0a000001" "0a000002"
                        "00350035000800" "00")
def pcap(records, snaplen=65535):
    out = struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, snaplen, 1)
    for sec, data, caplen in records:
        out += struct.pack("<IIII", sec, 0, caplen, len(data)) + data
    return out
good = [(1795301438 + i, eth_udp, len(eth_udp)) for i in range(5)]
whole = pcap(good)
open(f"{work}/truncated.pcap", "wb").write(whole[:-10])          # last record cut
open(f"{work}/oversized.pcap", "wb").write(pcap(good[:2] + [(1795301440, eth_udp, 0x7fffffff)]))
blk = lambda t, body: struct.pack("<II", t, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))
shb = blk(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
idb = blk(1, struct.pack("<HHI", 1, 0, 65535))
pad = eth_udp + b"\0" * (-len(eth_udp) % 4)
epb = blk(6, struct.pack("<IIIII", 0, 0xffffffff, 0xfffffff0, len(eth_udp), len(eth_udp)) + pad)
open(f"{work}/future.pcapng", "wb").write(shb + idb + epb)
PY

cw_certs "$WORK/pki" hostile-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" hostile-agent "$INGEST_PORT" "$WORK/spool"
packets() { cw_metric "$METRICS_PORT" citywatch_flow_packets_total 'agent="hostile-agent"'; }
read_file() { # NAME: a bounded -r run of $WORK/NAME; CW_EXIT holds its exit code
  cw_spawn "$WORK/$1.log" "$AGENT_BIN" --config "$WORK/agent.yaml" -r "$WORK/$1"
  cw_wait_exit "$CW_LAST_PID" 300
}

read_file truncated.pcap
cw_expect "exit code for a truncated pcap" "$CW_EXIT" 1
grep -q "truncated.pcap' is truncated in a packet" "$WORK/truncated.pcap.log" ||
  fail "no 'truncated in a packet' naming the file: $(tail -3 "$WORK/truncated.pcap.log")"
cw_expect "packets delivered before the cut" "$(packets)" 4

read_file oversized.pcap
cw_expect "exit code for an oversized record" "$CW_EXIT" 1
grep -q "has a record of 2147483647 bytes, more than the maximum of 262144" "$WORK/oversized.pcap.log" ||
  fail "no record-size error: $(tail -3 "$WORK/oversized.pcap.log")"
cw_expect "packets delivered before the oversized record" "$(packets)" 6

read_file future.pcapng
cw_expect "exit code for a far-future pcapng" "$CW_EXIT" 0
cw_expect "packets delivered from the far-future pcapng" "$(packets)" 7
kill -0 "$COL_PID" || fail "the collector died"
echo "PASS: hostile_capture_file: a cut pcap and an oversized record end -r with exit 1 and a message after the whole records (4 and 2 delivered); a packet past 2262 in a pcapng is read and delivered"
