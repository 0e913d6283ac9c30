#!/usr/bin/env bash
# Raw bad frames on an established mutual-TLS session. A small Python client with a valid
# agent certificate completes TLS and HELLO/HELLO_ACK, then sends one bad frame per session:
#   garbage (no CWTP magic)      -> frames_rejected_total{reason="bad_magic"}
#   a header announcing 16 MiB+1 -> reason="too_large" (refused before any payload is read)
#   a BATCH whose CRC32C is wrong -> reason="bad_checksum"
#   zstd BATCHes (flag bit 0): not a zstd frame -> "not_zstd"; a frame that does not declare
#   its size -> "zstd_no_size"; a 20-byte frame declaring 1 GiB -> "zstd_too_large" (refused
#   from its header, no memory taken)
#   packed BATCHes (flag bit 2, lz4): a block that does not decode -> "lz4_corrupt"; a 16-byte
#   header declaring a 1 GiB body -> "lz4_too_large" (refused from its header)
# Each time the collector must count the frame under its reason, drop that session (the
# client sees the connection close, no ACK), and stay up.
# Then hostile compact BATCHes (docs/wire-protocol.md, "Compact records") on one session. Their
# checksum matches, so the collector takes them as what the agent meant: it counts each under
# its reason, commits the sequence with no records (so the agent does not resend a batch that
# can never be read), ACKs it and keeps the session:
#   a good flow record, then one whose 32-bit field holds 2^32     -> "bad_record"
#   a varint of eleven bytes                                       -> "truncated"
#   a count of 1,000 records in a 55-byte payload                  -> "truncated" (before any
#                                                                     memory is reserved)
#   a body length of 2^20 (over 65,535)                            -> "truncated"
# and last a good compact batch on the same session, whose one flow (7 packets, 700 bytes)
# must be counted: the decoder works, and the good record ahead of the bad one was not kept.
# A real agent connected the whole time is unaffected: same single session, and its flows
# before and after are all counted.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cw_init "$@"

cw_certs "$WORK/pki" flow-agent rogue-agent
cw_collector_config "$WORK/collector.yaml" "$WORK/pki" "$WORK/state"
cw_start_collector collector "$WORK/collector.yaml"
cw_agent_config "$WORK/agent.yaml" "$WORK/pki" flow-agent "$INGEST_PORT" "$WORK/spool" "
batch:
  max_delay: 100ms
metrics:
  listen: 127.0.0.1:0
flow_listeners:
  - listen: 127.0.0.1:0
    formats: [netflow_v5]"
cw_spawn "$WORK/agent.log" "$AGENT_BIN" --config "$WORK/agent.yaml"
AGENT=$CW_LAST_PID
cw_agent_metrics "$WORK/agent.log"
cw_flow_listener "$WORK/agent.log"
packets_are() { [[ "$(cw_metric "$METRICS_PORT" citywatch_flow_packets_total 'agent="flow-agent"')" == "$1" ]]; }
cw_wait_until 300 "the agent's session" cw_at_least "$METRICS_PORT" 1 citywatch_collector_agents_connected
cw_send_v5 "$FLOW_PORT" 2 0
cw_wait_until 300 "600 packets from the agent before the bad frames" packets_are 600

for reason in bad_magic too_large bad_checksum not_zstd zstd_no_size zstd_too_large lz4_corrupt \
  lz4_too_large bad_record truncated; do
  cw_expect "rejected{reason=$reason} before" \
    "$(cw_metric "$METRICS_PORT" citywatch_collector_frames_rejected_total "reason=\"$reason\"")" 0
done

/usr/bin/python3 - "$INGEST_PORT" "$WORK/pki" >"$WORK/client.log" 2>&1 <<'PY' || { cat "$WORK/client.log" >&2; fail "bad-frame client"; }
import socket, ssl, struct, sys
port, pki = int(sys.argv[1]), sys.argv[2]

def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF
assert crc32c(b"123456789") == 0xE3069283

def frame(ftype, payload, crc=None, flags=0):
    return struct.pack("<IBBHII", 0x50545743, 1, ftype, flags, len(payload),
                       crc32c(payload) if crc is None else crc) + payload

# zstd frames by hand (RFC 8878): magic, frame header descriptor, [window], [content size],
# then one raw last block of 4 bytes.
ZSTD_MAGIC = struct.pack("<I", 0xFD2FB528)
RAW_BLOCK = bytes([(4 << 3) | 1, 0, 0]) + b"abcd"
zstd_bomb = ZSTD_MAGIC + bytes([0xE0]) + struct.pack("<Q", 1 << 30) + RAW_BLOCK
zstd_unsized = ZSTD_MAGIC + bytes([0x00, 0x00]) + RAW_BLOCK

def str8(s):
    return bytes([len(s)]) + s

def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(pki + "/ca.pem")
ctx.load_cert_chain(pki + "/rogue-agent.pem", pki + "/rogue-agent.key")

cases = {
    "bad_magic": b"GARBAGE!" * 4,
    "too_large": struct.pack("<IBBHII", 0x50545743, 1, 3, 0, 16 * 1024 * 1024 + 1, 0),
    "bad_checksum": frame(3, b"\x01" * 64, crc=0xDEADBEEF),
    "not_zstd": frame(3, b"\x01" * 64, flags=1),
    "zstd_no_size": frame(3, zstd_unsized, flags=1),
    "zstd_too_large": frame(3, zstd_bomb, flags=1),
    # Packed batches: seq, record count with the packed (and compact) bits, body length, block.
    "lz4_corrupt": frame(3, struct.pack("<QII", 5, 0xC0000003, 100) + b"\xff" * 20, flags=4),
    "lz4_too_large": frame(3, struct.pack("<QII", 5, 0xC0000003, 1 << 30) + b"\x00" * 8,
                           flags=4),
}
for name, bad in cases.items():
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    s.sendall(frame(1, str8(b"rogue-agent") + str8(b"seg-rogue") + str8(b"bad-frames-test") +
                    struct.pack("<Q", 0x1234)))
    hdr = recv_exact(s, 16)
    magic, ver, ftype, flags, length, crc = struct.unpack("<IBBHII", hdr)
    payload = recv_exact(s, length)
    assert ftype == 2, "expected HELLO_ACK, got frame type %d" % ftype
    s.sendall(bad)
    # The collector must close the session: EOF (or a reset), never an ACK or a hang
    # (the socket timeout bounds the wait and fails the test).
    try:
        data = s.recv(4096)
    except (ConnectionResetError, ssl.SSLError) as e:
        data = b""
    if data:
        raise SystemExit("%s: the collector answered %r instead of closing" % (name, data[:32]))
    print("%s: session established, bad frame sent, collector closed the session" % name)
    s.close()

# Hostile compact batches, then a good one, on one session: each is acked.
def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])

def zigzag(v):
    return (v << 1) ^ (v >> 63)

def recv_frame(s):
    magic, ver, ftype, flags, length, crc = struct.unpack("<IBBHII", recv_exact(s, 16))
    return ftype, recv_exact(s, length)

# One compact flow record (kind 1): the body is the time step from the record before, then
# the fields of docs/wire-protocol.md's flow table. domain is observation_domain's varint.
def flow(time_step_ns, packets, nbytes, domain=varint(0), packets_varint=None):
    body = varint(zigzag(time_step_ns))
    body += varint(zigzag(-1000000)) + varint(0)                   # start 1 ms before, end
    body += bytes([4, 192, 0, 2, 1]) + bytes([4, 192, 0, 2, 2])    # src, dst (TEST-NET-1)
    body += bytes([0])                                             # exporter: none
    body += (packets_varint or varint(packets)) + varint(nbytes)
    body += domain + varint(1) + varint(0) + varint(0)             # domain, sampling, if
    body += struct.pack("<HHH", 40000, 443, 0) + bytes([6, 0x1B, 0, 1])
    return bytes([1]) + varint(len(body)) + body

def batch(seq, records, count=None):
    return struct.pack("<QI", seq, 0x80000000 | (len(records) if count is None else count)) + \
        b"".join(records)

now = 1_700_000_000_000_000_000
cases = [
    ("bad_record", batch(1, [flow(now, 5, 500), flow(1000, 5, 500, domain=varint(1 << 32))])),
    ("truncated", batch(2, [flow(now, 5, 500, packets_varint=b"\x80" * 10 + b"\x00")])),
    ("truncated", batch(3, [flow(now, 5, 500)], count=1000)),
    ("truncated", batch(4, [bytes([1]) + varint(1 << 20) + b"\x00" * 32])),
]
good = batch(5, [flow(now, 7, 700)])

raw = socket.create_connection(("127.0.0.1", port), timeout=30)
s = ctx.wrap_socket(raw, server_hostname="localhost")
# HELLO offering compact records (flag bit 1), on a stream of its own.
s.sendall(frame(1, str8(b"rogue-agent") + str8(b"seg-rogue") + str8(b"bad-frames-test") +
                struct.pack("<Q", 0x5678), flags=0x0002))
ftype, payload = recv_frame(s)
assert ftype == 2 and struct.unpack("<Q", payload)[0] == 0, "expected HELLO_ACK 0, got %d" % ftype
for seq, (reason, payload) in enumerate(cases + [("good", good)], start=1):
    s.sendall(frame(3, payload))
    ftype, ack = recv_frame(s)
    if ftype != 4 or struct.unpack("<Q", ack)[0] != seq:
        raise SystemExit("%s: expected ACK %d, got frame type %d %r" % (reason, seq, ftype, ack))
    print("compact batch %d (%s, %d bytes): acked on the same session" % (seq, reason, len(payload)))
s.close()
PY
cat "$WORK/client.log" >&2

for count in bad_magic=1 too_large=1 bad_checksum=1 not_zstd=1 zstd_no_size=1 zstd_too_large=1 \
  lz4_corrupt=1 lz4_too_large=1 \
  bad_record=1 truncated=3; do
  reason=${count%=*}
  counted() { cw_at_least "$METRICS_PORT" "${count#*=}" citywatch_collector_frames_rejected_total "reason=\"$reason\""; }
  cw_wait_until 100 "rejected{reason=$reason} counted" counted
  cw_expect "rejected{reason=$reason}" \
    "$(cw_metric "$METRICS_PORT" citywatch_collector_frames_rejected_total "reason=\"$reason\"")" "${count#*=}"
done
kill -0 "$COL_PID" 2>/dev/null || fail "the collector died"
cw_expect "rogue sessions established (HELLO accepted nine times)" \
  "$(cw_metric "$METRICS_PORT" citywatch_collector_connections_total 'agent="rogue-agent"')" 9
rogue_gone() { [[ "$(cw_metric "$METRICS_PORT" citywatch_collector_agents_connected)" == 1 ]]; }
cw_wait_until 100 "only the real agent connected" rogue_gone
# Five compact batches committed (four as empty sequences), one flow record in all: the good
# batch's. The good record ahead of the bad_record one was rolled back with its batch.
cw_expect "rogue batches committed" \
  "$(cw_metric "$METRICS_PORT" citywatch_collector_batches_received_total 'agent="rogue-agent"')" 5
cw_expect "rogue flow records" \
  "$(cw_metric "$METRICS_PORT" citywatch_collector_records_received_total 'agent="rogue-agent"')" 1
cw_expect "rogue flow packets" \
  "$(cw_metric "$METRICS_PORT" citywatch_flow_packets_total 'agent="rogue-agent"')" 7
cw_expect "rogue flow bytes" \
  "$(cw_metric "$METRICS_PORT" citywatch_flow_bytes_total 'agent="rogue-agent"')" 700

# The real agent: still its first session, and it still delivers.
cw_send_v5 "$FLOW_PORT" 2 60
cw_wait_until 300 "1200 packets from the agent after the bad frames" packets_are 1200
cw_expect "the agent's sessions at the collector" \
  "$(cw_metric "$METRICS_PORT" citywatch_collector_connections_total 'agent="flow-agent"')" 1
cw_expect "the agent's connect attempts" "$(cw_metric "$AGENT_METRICS" citywatch_agent_connect_attempts_total)" 1
cw_expect "flow records at the collector" \
  "$(cw_metric "$METRICS_PORT" citywatch_collector_records_received_total 'agent="flow-agent"' 'kind="flow"')" 120
echo "PASS: bad frames on established sessions: bad_magic=1 too_large=1 bad_checksum=1 not_zstd=1 zstd_no_size=1 zstd_too_large=1 lz4_corrupt=1 lz4_too_large=1 counted, each session closed, collector up; hostile compact batches bad_record=1 truncated=3 counted and acked with nothing kept, then a good one counted (1 flow, 7 packets, 700 bytes); the real agent kept its one session: 120 flow records / 1200 packets delivered (600 before, 600 after)"
