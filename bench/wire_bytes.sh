#!/bin/bash
# Wire bytes per flow record: CityWatch's agent → collector stream against IPFIX (and NetFlow
# v9/v5) for the same flows, with and without per-batch compression, in one run (issue 16,
# acceptance 4). Builds nothing, edits nothing in the repo, copies no shared data.
#
#  1. Exports: the softflowd and pmacct captures in ../shared/testdata/flows/ (segment-a's
#     traffic; flow counts checked against the *.truth.json files). Bytes = export messages
#     (UDP payloads), with and without templates/headers; + IPv4/UDP headers for the IP level.
#  2. Agent, same flows: each IPFIX capture is replayed (UDP payloads, in order, from this
#     host) into the flow listener of a fresh citywatch-agent, which forwards the decoded
#     records over mutual TLS to a real citywatch-collector (PKI from scripts/make-certs.sh,
#     ports chosen at run time) through a counting TCP relay. Bytes = BATCH frames (header +
#     payload, = citywatch_agent_sent_bytes_total), the TLS stream after the handshake
#     (measured), and an IP-level estimate (TCP/IPv4 headers with timestamps, MSS 1448).
#     For reference, `citywatch-agent -r segment-a.pcap` (the agent's own meter: flows plus
#     packet events) is run too.
#  3. Compression estimate: the BATCH payloads are read back from the agent's spool (acked
#     records stay in the active segment until it rolls; layout in agent/spool/spool.h) and
#     each is compressed on its own with the zstd and lz4 CLIs (what a per-batch option would
#     put on the wire: 16-byte frame header + compressed payload); also re-cut into batches of
#     RATE records (one batch.max_delay of 1 s at RATE flows/s: what a branch agent seals),
#     the whole stream through one context (upper bound), and a pessimistic variant with the
#     addresses and ports randomised (segment-a has two hosts; real branch traffic has more).
#
# usage: bench/wire_bytes.sh [BUILD_DIR]          (default: the repo's build/)
# env:   RATE=200 (flows/s at the branch)  LINK_KBIT=2000 (branch link, kbit/s)
# needs: python3 (stdlib only), zstd, lz4 (Debian: apt-get install zstd lz4)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(realpath "${1:-$here/../build}")
shared=$(realpath -m "$here/../../shared")
flows="$shared/testdata/flows"
capture="$shared/testdata/captures/segment-a.pcap"
RATE=${RATE:-200}
LINK_KBIT=${LINK_KBIT:-2000}

[[ -d $shared ]] || { echo "wire_bytes: shared test data not found at $shared (../shared next to the repo); nothing to measure" >&2; exit 1; }
for f in softflowd-v10 pmacct-v10 softflowd-v9 pmacct-v9 softflowd-v5; do
  [[ -f $flows/$f.pcap && -f $flows/$f.truth.json ]] || { echo "wire_bytes: missing $flows/$f.pcap or its .truth.json" >&2; exit 1; }
done
[[ -f $capture ]] || { echo "wire_bytes: missing $capture" >&2; exit 1; }
AGENT_BIN="$build/agent/app/citywatch-agent"
COLLECTOR_BIN="$build/collector/app/citywatch-collector"
for b in "$AGENT_BIN" "$COLLECTOR_BIN"; do
  [[ -x $b ]] || { echo "wire_bytes: build $b first (cmake --build $build)" >&2; exit 1; }
done
PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3) || { echo "wire_bytes: python3 not found" >&2; exit 1; }
for t in zstd lz4; do
  command -v $t >/dev/null || { echo "wire_bytes: $t not installed (apt-get install zstd lz4)" >&2; exit 1; }
done

work=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
start=$(date +%s.%N)

# ------------------------------------------------------------------ python helper
cat >"$work/helper.py" <<'PY'
import asyncio, json, math, os, random, re, signal, socket, struct, subprocess, sys, time
import urllib.request


def udp_payloads(path):
    """(UDP payload, IP+UDP header bytes) of every UDP datagram in a classic pcap file."""
    with open(path, 'rb') as f:
        data = f.read()
    magic = struct.unpack('<I', data[:4])[0]
    if magic in (0xa1b2c3d4, 0xa1b23c4d):
        e = '<'
    elif magic in (0xd4c3b2a1, 0x4d3cb2a1):
        e = '>'
    else:
        sys.exit(f'{path}: not a classic pcap file')
    linktype = struct.unpack(e + 'I', data[20:24])[0] & 0xffff
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(e + 'I', data[off + 8:off + 12])[0]
        fr = data[off + 16:off + 16 + incl]
        off += 16 + incl
        if linktype == 1:
            p, et = 14, struct.unpack('>H', fr[12:14])[0]
            while et in (0x8100, 0x88a8):
                et = struct.unpack('>H', fr[p + 2:p + 4])[0]
                p += 4
        elif linktype == 113:
            p, et = 16, struct.unpack('>H', fr[14:16])[0]
        elif linktype in (101, 12):
            p, et = 0, 0x0800 if fr[0] >> 4 == 4 else 0x86dd
        else:
            sys.exit(f'{path}: link type {linktype} not handled')
        if et == 0x0800 and fr[p + 9] == 17:
            u, l3 = p + (fr[p] & 15) * 4, 28
        elif et == 0x86dd and fr[p + 6] == 17:
            u, l3 = p + 40, 48
        else:
            continue
        yield fr[u + 8:u + struct.unpack('>H', fr[u + 4:u + 6])[0]], l3


def var_records(body, fields):
    """Records in an IPFIX data set whose template has variable-length fields."""
    n = off = 0
    while True:
        start = off
        for ln in fields:
            if ln == 65535:
                if off >= len(body):
                    return n, start
                ln, off = body[off], off + 1
                if ln == 255:
                    ln, off = struct.unpack('>H', body[off:off + 2])[0], off + 2
            off += ln
            if off > len(body):
                return n, start
        if off == start:
            return n, start
        n += 1


def analyse_export(path):
    """Bytes and records of a NetFlow v5/v9 or IPFIX export capture."""
    st = dict(datagrams=0, message_bytes=0, l3_header_bytes=0, version=None, flow_records=0,
              flow_record_bytes=0, option_records=0, template_bytes=0, unknown_data_bytes=0)
    templates = {}  # (domain, template id) -> (field lengths, options?)
    for msg, l3 in udp_payloads(path):
        if len(msg) < 4 or struct.unpack('>H', msg[:2])[0] not in (5, 9, 10):
            continue
        ver = struct.unpack('>H', msg[:2])[0]
        st['version'] = ver
        st['datagrams'] += 1
        st['message_bytes'] += len(msg)
        st['l3_header_bytes'] += l3
        if ver == 5:
            n = struct.unpack('>H', msg[2:4])[0]
            st['flow_records'] += n
            st['flow_record_bytes'] += 48 * n
            continue
        if ver == 9:
            off, domain, tsets, osets = 20, struct.unpack('>I', msg[16:20])[0], (0,), (1,)
        else:
            msg = msg[:struct.unpack('>H', msg[2:4])[0]]
            off, domain, tsets, osets = 16, struct.unpack('>I', msg[12:16])[0], (2,), (3,)
        while off + 4 <= len(msg):
            sid, slen = struct.unpack('>HH', msg[off:off + 4])
            if slen < 4 or off + slen > len(msg):
                break
            body = msg[off + 4:off + slen]
            off += slen
            if sid in tsets or sid in osets:
                st['template_bytes'] += slen
                p = 0
                while p + 4 <= len(body):
                    tid, fc = struct.unpack('>HH', body[p:p + 4])
                    p += 4
                    if sid in osets and ver == 9:  # scope length, option length (bytes)
                        ol = struct.unpack('>H', body[p:p + 2])[0]
                        p += 2
                        fields = [struct.unpack('>H', body[q + 2:q + 4])[0]
                                  for q in range(p, p + fc + ol, 4)]
                        p += fc + ol
                        if tid >= 256:
                            templates[(domain, tid)] = (fields, True)
                        continue
                    if sid in osets:
                        p += 2  # IPFIX scope field count
                    if tid < 256 or fc == 0:
                        break  # padding or withdrawal
                    fields = []
                    for _ in range(fc):
                        ie, ln = struct.unpack('>HH', body[p:p + 4])
                        p += 8 if ver == 10 and ie & 0x8000 else 4
                        fields.append(ln)
                    templates[(domain, tid)] = (fields, sid in osets)
            elif sid >= 256:
                t = templates.get((domain, sid))
                if t is None:
                    st['unknown_data_bytes'] += slen - 4
                    continue
                fields, is_opt = t
                if 65535 in fields:
                    n, used = var_records(body, fields)
                else:
                    n = len(body) // sum(fields)
                    used = n * sum(fields)
                if is_opt:
                    st['option_records'] += n
                else:
                    st['flow_records'] += n
                    st['flow_record_bytes'] += used
    return st


def replay(path, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    n = 0
    for msg, _ in udp_payloads(path):
        s.sendto(msg, ('127.0.0.1', port))
        n += 1
        if n % 32 == 0:
            time.sleep(0.002)  # the pace of a busy exporter, well inside the socket buffer
    print(n)


class TlsCounter:
    """Bytes and TLS records (5-byte record headers) in one direction of a stream."""

    def __init__(self):
        self.bytes = self.records = self._skip = 0
        self._hdr = b''

    def feed(self, data):
        self.bytes += len(data)
        i = 0
        while i < len(data):
            if self._skip:
                k = min(self._skip, len(data) - i)
                self._skip -= k
                i += k
                continue
            k = min(5 - len(self._hdr), len(data) - i)
            self._hdr += data[i:i + k]
            i += k
            if len(self._hdr) == 5:
                self.records += 1
                self._skip = struct.unpack('>H', self._hdr[3:5])[0]
                self._hdr = b''


def proxy(portfile, statsfile, upstream):
    up, down = TlsCounter(), TlsCounter()

    def dump():
        with open(statsfile + '.tmp', 'w') as f:
            json.dump(dict(up_bytes=up.bytes, up_records=up.records, down_bytes=down.bytes,
                           down_records=down.records), f)
        os.replace(statsfile + '.tmp', statsfile)

    async def pipe(r, w, counter):
        try:
            while data := await r.read(1 << 16):
                counter.feed(data)
                dump()
                w.write(data)
                await w.drain()
        except OSError:
            pass
        finally:
            w.close()

    async def handle(cr, cw):
        sr, sw = await asyncio.open_connection('127.0.0.1', upstream)
        await asyncio.gather(pipe(cr, sw, up), pipe(sr, cw, down))

    async def main():
        server = await asyncio.start_server(handle, '127.0.0.1', 0)
        dump()
        with open(portfile + '.tmp', 'w') as f:
            f.write(str(server.sockets[0].getsockname()[1]))
        os.replace(portfile + '.tmp', portfile)
        stop = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
        await stop

    asyncio.run(main())


def scrape(url, name, labels=()):
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        series, _, value = line.rpartition(' ')
        if line.startswith('#') or series.split('{')[0] != name:
            continue
        if all(f'{k}="{v}"' in series for k, v in labels):
            total += float(value)
    return int(total)


def wait_collector(url, agent, want, timeout):
    """Until the collector has committed `want` flow records from `agent`; prints the count."""
    deadline, got = time.time() + timeout, -1
    while time.time() < deadline:
        got = scrape(url, 'citywatch_collector_records_received_total',
                     [('agent', agent), ('kind', 'flow')])
        if got >= want:
            break
        time.sleep(0.2)
    print(got)


KINDS = {1: 'flow', 2: 'interface_sample', 3: 'device_status', 4: 'snmp_trap', 5: 'packet_event'}


def read_spool(d):
    """BATCH payloads, in sequence order, from the spool segments (16-byte header each)."""
    out = []
    for name in sorted(n for n in os.listdir(d) if n.endswith('.spool')):
        with open(os.path.join(d, name), 'rb') as f:
            data = f.read()
        off = 0
        while off + 16 <= len(data):
            _crc, ln, seq = struct.unpack('<IIQ', data[off:off + 16])
            payload = data[off + 16:off + 16 + ln]
            if len(payload) < ln:
                break
            if struct.unpack('<Q', payload[:8])[0] != seq:
                sys.exit(f'spool record {seq}: batch sequence differs')
            out.append(payload)
            off += 16 + ln
    return out


COMPACT = 0x80000000  # count's top bit: compact records (docs/wire-protocol.md)


def varint(b, off):
    """(value, offset after) of the LEB128 varint at b[off]."""
    v = shift = 0
    while True:
        v |= (b[off] & 0x7f) << shift
        off, shift = off + 1, shift + 7
        if b[off - 1] < 0x80:
            return v, off


def records(payload):
    """(kind, record bytes with framing) of a BATCH payload; the second value: compact."""
    count = struct.unpack('<I', payload[8:12])[0]
    compact, count = bool(count & COMPACT), count & ~COMPACT
    out, off = [], 12
    for _ in range(count):
        if compact:
            ln, body = varint(payload, off + 1)
        else:
            ln, body = struct.unpack('<H', payload[off + 1:off + 3])[0], off + 3
        out.append((payload[off], payload[off:body + ln]))
        off = body + ln
    if off != len(payload):
        sys.exit('batch payload does not end after its last record')
    return out, compact


def recut(recs, n, compact):
    """Batches of n records. Compact records keep their time steps (a real batch would start
    with one absolute time: a few bytes more per batch)."""
    return [struct.pack('<QI', i // n + 1, len(recs[i:i + n]) | (COMPACT if compact else 0))
            + b''.join(r for _, r in recs[i:i + n]) for i in range(0, len(recs), n)]


def flow_offsets(r, compact):
    """Offsets of src address, dst address and ports in a flow record, or None if not IPv4."""
    if compact:
        _, off = varint(r, 1)
        for _ in range(3):  # time step, start, end
            _, off = varint(r, off)
    else:
        off = 3 + 8 + 8 + 8
    if r[off] != 4 or r[off + 5] != 4:
        return None
    src, dst, p = off + 1, off + 6, off + 10
    p += 1 + {0: 0, 4: 4, 6: 16}[r[p]]  # exporter
    if compact:
        for _ in range(6):  # packets, bytes, domain, sampling, input, output
            _, p = varint(r, p)
    else:
        p += 8 + 8 + 16
    return src, dst, p


def randomise(recs, compact, seed=1):
    """IPv4 flow records with src/dst addresses and ports drawn at random (pessimistic)."""
    rnd, out = random.Random(seed), []
    for kind, r in recs:
        at = flow_offsets(r, compact) if kind == 1 else None
        if at:
            src, dst, ports = at
            r = bytearray(r)
            r[src:src + 4] = rnd.randbytes(4)
            r[dst:dst + 4] = rnd.randbytes(4)
            r[ports:ports + 4] = rnd.randbytes(4)
            r = bytes(r)
        out.append((kind, r))
    return out


COMP = [('zstd -1', ['zstd', '-q', '-c', '-1', '--no-check']),
        ('zstd -3', ['zstd', '-q', '-c', '-3', '--no-check']),
        ('lz4', ['lz4', '-q', '-c', '-1', '--no-frame-crc', '-BD'])]


def csize(cmd, data):
    return len(subprocess.run(cmd, input=data, stdout=subprocess.PIPE, check=True).stdout)


def ip_level(frames):
    """IP-level bytes of BATCH frames sent one after another: TLS 1.3 AES-GCM adds 22 B per
    record of at most 16 KiB (measured: 22 B per record on this stream), TCP/IPv4 with
    timestamps 52 B per segment of at most 1448 B; a batch ends in a short segment."""
    total = 0
    for f in frames:
        t = f + 22 * math.ceil(f / 16384)
        total += t + 52 * math.ceil(t / 1448)
    return total


def speed(cmd, data, block, tmp):
    """Compression speed (MB/s) from one pass of the CLI's in-memory benchmark over
    `block`-byte chunks: an order of magnitude, not a careful figure."""
    with open(tmp, 'wb') as f:
        f.write(data)
    level = cmd[3]
    r = subprocess.run([cmd[0], '-b' + level[1:], f'-B{max(block // 1024, 1)}K', '-i0', tmp],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    found = re.findall(r'\(x?[\d.]+\),\s*([\d.]+) MB/s', r.stdout)
    return float(found[-1]) if found else None


def analyse_spool(d, out, rate):
    batches = read_spool(d)
    parsed = [records(b) for b in batches]
    recs = [r for rs, _ in parsed for r in rs]
    compact = any(c for _, c in parsed)
    kinds, kbytes = {}, {}
    for k, r in recs:
        kinds[KINDS.get(k, str(k))] = kinds.get(KINDS.get(k, str(k)), 0) + 1
        kbytes[KINDS.get(k, str(k))] = kbytes.get(KINDS.get(k, str(k)), 0) + len(r)
    res = dict(batches=len(batches), records=kinds, record_bytes=kbytes,
               frame_bytes=sum(16 + len(b) for b in batches), variants={})
    sets = {'as sent': batches}
    if rate:
        sets[f'{rate}-record batches'] = recut(recs, rate, compact)
        sets[f'{rate}-record, random addr/ports'] = recut(randomise(recs, compact), rate, compact)
    for label, bs in sets.items():
        v = dict(batches=len(bs), plain=sum(16 + len(b) for b in bs),
                 ip={'plain': ip_level([16 + len(b) for b in bs])})
        for name, cmd in COMP:
            frames = [16 + csize(cmd, b) for b in bs]
            v[name] = sum(frames)
            v['ip'][name] = ip_level(frames)
        res['variants'][label] = v
    whole = b''.join(batches)
    res['whole'] = {name: 16 * len(batches) + csize(cmd, whole)
                    for name, cmd in COMP + [('zstd -19', ['zstd', '-q', '-c', '-19', '--no-check'])]}
    if rate:
        res['speed'] = {}
        for label in (f'{rate}-record batches', f'{rate}-record, random addr/ports'):
            bs = sets[label]
            res['speed'][label] = {name: speed(cmd, b''.join(bs), len(bs[0]), out + '.bin')
                                   for name, cmd in COMP}
    with open(out, 'w') as f:
        json.dump(res, f)


def ipfix_whole(path, out):
    data = b''.join(m for m, _ in udp_payloads(path) if m[:2] in (b'\x00\x0a', b'\x00\x09'))
    with open(out, 'w') as f:
        json.dump({name: csize(cmd, data) for name, cmd in COMP}, f)


# ------------------------------------------------------------------ report
def report(work, rate, link_kbit):
    J = lambda name: json.load(open(os.path.join(work, name)))
    ex = {k: J(f'export-{k}.json') for k in
          ('softflowd-v10', 'pmacct-v10', 'softflowd-v9', 'pmacct-v9', 'softflowd-v5')}
    truth = {k: J(f'truth-{k}.json') for k in ex}
    label = {'softflowd-v10': 'softflowd IPFIX', 'pmacct-v10': 'pmacct IPFIX',
             'softflowd-v9': 'softflowd NetFlow v9', 'pmacct-v9': 'pmacct NetFlow v9',
             'softflowd-v5': 'softflowd NetFlow v5'}
    base = {k: ex[k + '-v10']['message_bytes'] / ex[k + '-v10']['flow_records']
            for k in ('softflowd', 'pmacct')}
    W = 58
    budget = []  # (label, bytes per flow at the IP level or frame level)

    def row(name, nbytes, nflows, ref, note=''):
        bpf = nbytes / nflows if nflows else float('nan')
        print(f'  {name:<{W}} {nbytes:>11,} {nflows:>7,} {bpf:>8.2f} {bpf / ref:>7.2f}x'
              + (f'  {note}' if note else ''))
        return bpf

    head = f'  {"format":<{W}} {"bytes":>11} {"flows":>7} {"B/flow":>8} {"vs IPFIX":>8}'
    print('== 1. Exports of segment-a (../shared/testdata/flows); bytes = export messages '
          '(UDP payloads)')
    print('     vs IPFIX: against the same exporter\'s IPFIX messages per flow')
    print(head)
    for k, st in ex.items():
        who = k.split('-')[0]
        n = st['flow_records']
        t = truth[k]['flows']
        chk = 'flows = truth.json' if n == t else f'!! truth.json says {t} flows'
        if st['unknown_data_bytes']:
            chk += f'; {st["unknown_data_bytes"]} B of data without a template'
        row(f'{label[k]}: whole messages ({st["datagrams"]} datagrams)', st['message_bytes'], n,
            base[who], chk)
        if st['version'] != 5:
            row(f'{label[k]}: data records only', st['flow_record_bytes'], n, base[who],
                f'templates {st["template_bytes"]:,} B, options records {st["option_records"]}')
        b = row(f'{label[k]}: + IPv4/UDP headers (28 B/datagram)',
                st['message_bytes'] + st['l3_header_bytes'], n, base[who])
        if k.endswith('v10'):
            budget.append((f'{label[k]} (IP level)', b))
    for who in ('softflowd', 'pmacct'):
        z = J(f'ipfix-whole-{who}.json')
        n = ex[who + '-v10']['flow_records']
        row(f'{label[who + "-v10"]}: whole stream zstd -3 (control)', z['zstd -3'], n, base[who],
            'how compressible these flows are')

    for run, who in (('sf', 'softflowd'), ('pm', 'pmacct')):
        r = J(f'run-{run}.json')
        sp, tls = r['spool'], r['tls']
        n = sp['records'].get('flow', 0)
        src = ex[who + '-v10']
        print()
        print(f'== 2. citywatch-agent, flow listener fed {label[who + "-v10"]} '
              f'({r["datagrams"]} datagrams replayed) -> collector')
        print(f'     agent decoded {r["agent_flows"]:,} flows, collector committed '
              f'{r["collector_flows"]:,}; spool: {sp["batches"]} batches, records '
              + ', '.join(f'{k} {v:,}' for k, v in sp['records'].items()))
        t = truth[who + '-v10']
        same = (r['collector_packets'], r['collector_bytes']) == (t['packets'], t['octets'])
        print(f'     collector totals for the agent: {r["collector_packets"]:,} packets, '
              f'{r["collector_bytes"]:,} bytes'
              + (' = truth.json' if same else f' != truth.json {t["packets"]:,} / {t["octets"]:,}'))
        ok = r['sent_bytes'] == sp['frame_bytes']
        print(f'     citywatch_agent_sent_bytes_total {r["sent_bytes"]:,} '
              + ('= BATCH frames in the spool' if ok else f'!= spool frames {sp["frame_bytes"]:,}'
                 ' (resends?)'))
        if n != src['flow_records']:
            print(f'     !! the agent forwarded {n} flows, the export holds {src["flow_records"]}')
        print(head)
        row(f'CWTP BATCH frames ({sp["batches"]} batches)', sp['frame_bytes'], n, base[who],
                 'frame header 16 + batch header 12 + per record kind, length and body')
        row('CWTP flow records only (3 B header + body)', sp['record_bytes'].get('flow', 0), n,
            base[who], 'IPv4 body 81 B: 77 + exporter address 4')
        tb = tls['up_bytes'] - tls['base_up_bytes']
        trec = tls['up_records'] - tls['base_up_records']
        row(f'TLS stream after handshake ({trec} TLS records)', tb, n, base[who],
            f'+{tb - sp["frame_bytes"]:,} B over the frames; handshake + HELLO '
            f'{tls["base_up_bytes"]:,} B once per session')
        # TLS bytes of each batch in proportion to its frame; its last segment is a short one
        segs = sum(math.ceil((16 + x) * tb / sp['frame_bytes'] / 1448) for x in r['batch_sizes'])
        ib = row('+ TCP/IPv4 headers (est.: 52 B per 1448-B segment)', tb + 52 * segs, n,
                 base[who])
        if run == 'sf':
            budget.append((f'CWTP, batches as sent ({sp["batches"]}), measured TLS + est. TCP/IP', ib))
        dn = tls['down_bytes'] - tls['base_down_bytes']
        print(f'     (collector -> agent: {dn:,} B for {sp["batches"]} ACKs, not counted above)')
        for vlabel, v in sp['variants'].items():
            if run == 'pm' and vlabel != 'as sent':
                continue
            desc = {'as sent': f'batches as sent ({v["batches"]})'}.get(vlabel, f'{vlabel} ({v["batches"]})')
            if vlabel != 'as sent':
                row(f'{desc}: uncompressed', v['plain'], n, base[who])
                if run == 'sf' and 'random' not in vlabel:
                    budget.append((f'CWTP, {vlabel}, uncompressed (est.)', v['ip']['plain'] / n))
            for c in ('zstd -1', 'zstd -3', 'lz4'):
                b = row(f'{desc}: {c} per batch', v[c], n, base[who],
                        f'{v["plain"] / v[c]:.1f}x smaller')
                if run == 'sf' and vlabel != 'as sent' and c != 'zstd -3':
                    budget.append((f'CWTP, {vlabel}, {c} (est.)', v['ip'][c] / n))
        if run == 'sf':
            for c, b in sp['whole'].items():
                row(f'whole stream, one {c} context (upper bound)', b, n, base[who],
                    f'{sp["frame_bytes"] / b:.1f}x smaller')
            for vlabel, sp_ in sp.get('speed', {}).items():
                print(f'     compression speed (one pass of the CLI benchmark; rough), {vlabel}: '
                      + ', '.join(f'{c} {s:,.0f} MB/s' for c, s in sp_.items() if s))

    a = J('run-own.json')
    sp = a['spool']
    nf = sp['records'].get('flow', 0)
    print()
    print('== 2b. For reference: citywatch-agent -r segment-a.pcap (its own meter; plain batches, '
          'then the default, packed):')
    print('     its own flows (not the exporters\' ones) plus packet events; vs IPFIX: softflowd\'s')
    print(f'     records: ' + ', '.join(f'{k} {v:,} ({sp["record_bytes"][k] / v:.1f} B each)'
                                       for k, v in sp['records'].items())
          + '; B/flow below counts every byte (packet events too) per flow record')
    print(head)
    row(f'CWTP BATCH frames ({sp["batches"]} batches)', sp['frame_bytes'], nf, base['softflowd'])
    v = sp['variants']['as sent']
    for c in ('zstd -1', 'zstd -3', 'lz4'):
        row(f'batches as sent: {c} per batch', v[c], nf, base['softflowd'],
            f'{v["plain"] / v[c]:.1f}x smaller')
    row('measured: batch.compression lz4 (the default: packed batches)', a['packed'], nf,
        base['softflowd'], f'{sp["frame_bytes"] / a["packed"]:.1f}x smaller')

    print()
    print(f'== 3. Branch link budget: {rate} flows/s on {link_kbit / 1000:g} Mbit/s '
          '(IP-level bytes: IPFIX + IPv4/UDP;')
    print('     CWTP est. = frames + 22 B per TLS 1.3 record + 52 B per TCP/IPv4 segment (MSS 1448), '
          'one short segment per batch)')
    print(f'  {"":<{W}} {"B/flow":>8} {"kbit/s":>8} {"of link":>8}')
    for name, bpf in budget:
        kb = bpf * rate * 8 / 1000
        print(f'  {name:<{W}} {bpf:>8.1f} {kb:>8.1f} {100 * kb / link_kbit:>7.1f}%')


def main():
    c, a = sys.argv[1], sys.argv[2:]
    if c == 'export':
        print(json.dumps(analyse_export(a[0])))
    elif c == 'replay':
        replay(a[0], int(a[1]))
    elif c == 'proxy':
        proxy(a[0], a[1], int(a[2]))
    elif c == 'scrape':
        print(scrape(a[0], a[1], [x.split('=', 1) for x in a[2:]]))
    elif c == 'wait':
        wait_collector(a[0], a[1], int(a[2]), float(a[3]))
    elif c == 'spool':
        analyse_spool(a[0], a[1], int(a[2]))
    elif c == 'batch-sizes':
        print(json.dumps([len(b) for b in read_spool(a[0])]))
    elif c == 'ipfix-whole':
        ipfix_whole(a[0], a[1])
    elif c == 'report':
        report(a[0], int(a[1]), float(a[2]))


main()
PY
h() { "$PY" "$work/helper.py" "$@"; }
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
wait_for() {  # wait_for FILE PATTERN TIMEOUT_TENTHS: until FILE has a line matching PATTERN
  local i
  for ((i = 0; i < $3; i++)); do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "wire_bytes: timed out waiting for /$2/ in $1:" >&2
  cat "$1" >&2
  return 1
}

# ------------------------------------------------------------------ 1. the exports
for f in softflowd-v10 pmacct-v10 softflowd-v9 pmacct-v9 softflowd-v5; do
  h export "$flows/$f.pcap" >"$work/export-$f.json"
  cp "$flows/$f.truth.json" "$work/truth-$f.json"  # into the temp dir only, removed at exit
done
h ipfix-whole "$flows/softflowd-v10.pcap" "$work/ipfix-whole-softflowd.json"
h ipfix-whole "$flows/pmacct-v10.pcap" "$work/ipfix-whole-pmacct.json"

# ------------------------------------------------------------------ collector
bash "$here/../scripts/make-certs.sh" "$work/pki" bench-sf bench-pm bench-own >/dev/null
cat >"$work/collector.yaml" <<EOF
listen: {ingest: 127.0.0.1:0, metrics: 127.0.0.1:0}
tls: {ca: pki/ca.pem, cert: pki/collector.pem, key: pki/collector.key}
state_dir: collector-state
EOF
"$COLLECTOR_BIN" --config "$work/collector.yaml" --ready-file "$work/ready" >"$work/collector.log" 2>&1 &
pids+=("$!")
wait_for "$work/ready" ingest_port 100
ingest=$(sed -E 's/.*"ingest_port":([0-9]+).*/\1/' "$work/ready")
col_metrics="http://127.0.0.1:$(sed -E 's/.*"metrics_port":([0-9]+).*/\1/' "$work/ready")/metrics"

start_proxy() {  # start_proxy DIR: counting relay to the collector; sets proxy_port, proxy_pid
  "$PY" "$work/helper.py" proxy "$1/proxy.port" "$1/tls.json" "$ingest" &  # not via h(): $! is python
  proxy_pid=$!
  pids+=("$proxy_pid")
  wait_for "$1/proxy.port" '^[0-9]+$' 100
  proxy_port=$(cat "$1/proxy.port")
}
# The spool is read back and its plain batches analysed (and compressed with the CLIs), so these
# agents spool plain batches (batch.compression: none); section 2b also measures the default,
# batches packed with lz4 before the spool (docs/wire-protocol.md, "Packed batches").
agent_config() {  # agent_config DIR ID [EXTRA YAML] [COMPRESSION]
  cat >"$1/agent.yaml" <<EOF
agent: {id: $2, segment: bench}
collectors: [{address: 127.0.0.1:$proxy_port, server_name: localhost}]
tls: {ca: $work/pki/ca.pem, cert: $work/pki/$2.pem, key: $work/pki/$2.key}
spool: {dir: spool}
state_dir: state
batch: {compression: ${4:-none}}
$3
EOF
}

# ------------------------------------------------------------------ 2. agent fed the IPFIX exports
listener_run() {  # listener_run NAME AGENT_ID EXPORT RECUT (0: batches as sent only)
  local d="$work/$1" id=$2 export=$3 recut=$4 agent_pid port mport want
  mkdir -p "$d"
  start_proxy "$d"
  agent_config "$d" "$id" "flow_listeners: [{listen: 127.0.0.1:0, formats: [ipfix]}]
metrics: {listen: 127.0.0.1:0}"
  "$AGENT_BIN" --config "$d/agent.yaml" >"$d/agent.log" 2>&1 &
  agent_pid=$!
  pids+=("$agent_pid")
  wait_for "$d/agent.log" 'forward: connected' 100
  cp "$d/tls.json" "$d/tls-base.json"  # handshake, HELLO, HELLO_ACK
  port=$(sed -nE 's/.*flow listener udp:127\.0\.0\.1:([0-9]+).*/\1/p' "$d/agent.log")
  mport=$(sed -nE 's|.*metrics at http://127\.0\.0\.1:([0-9]+)/.*|\1|p' "$d/agent.log")
  want=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["flow_records"])' \
    "$work/export-$(basename "$export" .pcap).json")
  local sent got
  sent=$(h replay "$export" "$port")
  got=$(h wait "$col_metrics" "$id" "$want" 30)
  [[ $got -ge $want ]] || echo "wire_bytes: warning: collector has $got of $want flows from $id" >&2
  sleep 1.2  # the agent updates its metrics once a second
  local m="http://127.0.0.1:$mport/metrics"
  local sent_bytes agent_flows dropped cpackets cbytes
  cpackets=$(h scrape "$col_metrics" citywatch_flow_packets_total agent="$id")
  cbytes=$(h scrape "$col_metrics" citywatch_flow_bytes_total agent="$id")
  sent_bytes=$(h scrape "$m" citywatch_agent_sent_bytes_total)
  agent_flows=$(h scrape "$m" citywatch_agent_flow_records_total kind=flow)
  dropped=$(h scrape "$m" citywatch_agent_flow_datagrams_dropped_total)
  [[ $dropped -eq 0 ]] || echo "wire_bytes: warning: $id: listener dropped $dropped datagrams" >&2
  # The spool still holds every acked batch: its active segment stays until it rolls (16 MiB).
  h spool "$d/spool" "$d/spool.json" "$recut"
  h batch-sizes "$d/spool" >"$d/sizes.json"
  stop "$agent_pid"
  stop "$proxy_pid"
  "$PY" - "$d" "$work/run-$1.json" "$sent" "$got" "$sent_bytes" "$agent_flows" "$cpackets" "$cbytes" <<'EOF'
import json, sys
d, out, sent, got, sent_bytes, agent_flows, cpackets, cbytes = sys.argv[1:]
tls, base = json.load(open(d + '/tls.json')), json.load(open(d + '/tls-base.json'))
tls.update({'base_' + k: v for k, v in base.items()})
json.dump(dict(datagrams=int(sent), collector_flows=int(got), sent_bytes=int(sent_bytes),
               agent_flows=int(agent_flows), collector_packets=int(cpackets),
               collector_bytes=int(cbytes), tls=tls, spool=json.load(open(d + '/spool.json')),
               batch_sizes=json.load(open(d + '/sizes.json'))), open(out, 'w'))
EOF
}
listener_run sf bench-sf "$flows/softflowd-v10.pcap" "$RATE"
listener_run pm bench-pm "$flows/pmacct-v10.pcap" 0

# ------------------------------------------------------------------ 2b. the agent's own meter
d="$work/own"
mkdir -p "$d"
start_proxy "$d"
agent_config "$d" bench-own ""
"$AGENT_BIN" --config "$d/agent.yaml" -r "$capture" >"$d/agent.log" 2>&1 \
  || { echo "wire_bytes: citywatch-agent -r failed:" >&2; cat "$d/agent.log" >&2; exit 1; }
h spool "$d/spool" "$d/spool.json" 0
stop "$proxy_pid"
# The same with the agent's default, lz4: frame bytes from its closing log line.
d2="$work/own-lz4"
mkdir -p "$d2"
start_proxy "$d2"
agent_config "$d2" bench-own "" lz4
"$AGENT_BIN" --config "$d2/agent.yaml" -r "$capture" >"$d2/agent.log" 2>&1 \
  || { echo "wire_bytes: citywatch-agent -r (lz4) failed:" >&2; cat "$d2/agent.log" >&2; exit 1; }
stop "$proxy_pid"
packed=$(sed -n 's/.*batches: \([0-9]*\) bytes on the wire for.*/\1/p' "$d2/agent.log")
[[ -n $packed ]] || { echo "wire_bytes: the lz4 agent logged no byte count" >&2; exit 1; }
"$PY" -c 'import json,sys; json.dump(dict(spool=json.load(open(sys.argv[1])), packed=int(sys.argv[3])), open(sys.argv[2], "w"))' \
  "$d/spool.json" "$work/run-own.json" "$packed"

# ------------------------------------------------------------------ report
h report "$work" "$RATE" "$LINK_KBIT"
awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "(%.1f s)\n", e - s }'
