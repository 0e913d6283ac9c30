#!/usr/bin/python3
"""Builds one capture per way an exporter can state its sampling, and what each record must
decode to (issue 18).

usage: sampling_captures.py OUT_DIR PORT

For each case OUT_DIR/CASE.pcap holds IPFIX (RFC 7011) or NetFlow v9 (RFC 3954) datagrams,
built field by field and framed by scapy (Ether/IP/UDP to PORT on 127.0.0.1); OUT_DIR/cases.json
lists, per case, every data record in order with its raw packets and bytes, the rate the
specification gives and the rate source the agent must name, and the options fields tshark
must read back from the capture (so the fixture is what an independent decoder sees too).

The rates, from the specifications:
  selectorAlgorithm 1 (RFC 5475 6.5.2.1, systematic count-based): (interval + space) / interval
  selectorAlgorithm 2 (systematic time-based): a share of time, no packet rate: not scaled
  selectorAlgorithm 3 (random n-out-of-N): samplingPopulation / samplingSize
  selectorAlgorithm 4 (uniform probabilistic): 1 / samplingProbability
  RFC 5102 samplingInterval (34) / samplerRandomInterval (50): the interval itself
  NetFlow v9 SAMPLING_INTERVAL (34), FLOW_SAMPLER_RANDOM_INTERVAL (50): the interval itself
"""
import json
import os
import struct
import sys

from scapy.all import Ether, IP, UDP, Raw, wrpcap  # Debian's python3-scapy

OUT, PORT = sys.argv[1], int(sys.argv[2])
EXPORTER = "127.0.0.1"
DOMAIN = 7  # IPFIX observation domain / v9 source ID


def fields(spec):
    return b"".join(struct.pack("!HH", t, n) for t, n in spec)


def value(n, v):
    if isinstance(v, float):
        return struct.pack("!d", v)
    if isinstance(v, str):  # dotted IPv4
        return bytes(int(x) for x in v.split("."))
    return v.to_bytes(n, "big")


def record(spec, values):
    return b"".join(value(n, v) for (_, n), v in zip(spec, values))


def pad4(b):
    return b + b"\0" * (-len(b) % 4)


class Ipfix:
    """One IPFIX message: sets appended in order."""

    def __init__(self, seq):
        self.seq, self.sets = seq, b""

    def template(self, tid, spec):
        body = struct.pack("!HH", tid, len(spec)) + fields(spec)
        self.sets += struct.pack("!HH", 2, 4 + len(body)) + body

    def options_template(self, tid, scope, spec):
        body = struct.pack("!HHH", tid, len(scope) + len(spec), len(scope)) + fields(scope + spec)
        self.sets += struct.pack("!HH", 3, 4 + len(pad4(body))) + pad4(body)

    def data(self, tid, spec, rows):
        body = pad4(b"".join(record(spec, r) for r in rows))
        self.sets += struct.pack("!HH", tid, 4 + len(body)) + body

    def bytes(self):
        return struct.pack("!HHIII", 10, 16 + len(self.sets), 1_764_000_000, self.seq, DOMAIN) + self.sets


class V9:
    """One NetFlow v9 export packet: flowsets appended in order."""

    def __init__(self, seq):
        self.seq, self.sets, self.count = seq, b"", 0

    def template(self, tid, spec):
        body = struct.pack("!HH", tid, len(spec)) + fields(spec)
        self.sets += struct.pack("!HH", 0, 4 + len(body)) + body
        self.count += 1

    def options_template(self, tid, scope, spec):
        body = struct.pack("!HHH", tid, 4 * len(scope), 4 * len(spec)) + fields(scope) + fields(spec)
        self.sets += struct.pack("!HH", 1, 4 + len(pad4(body))) + pad4(body)
        self.count += 1

    def data(self, tid, spec, rows):
        body = pad4(b"".join(record(spec, r) for r in rows))
        self.sets += struct.pack("!HH", tid, 4 + len(body)) + body
        self.count += len(rows)

    def bytes(self):
        return struct.pack("!HHIIII", 9, self.count, 600_000, 1_764_000_000, self.seq, DOMAIN) + self.sets


# Data template fields (IPFIX and v9 share the numbers): sourceIPv4Address, destination,
# protocolIdentifier, packetDeltaCount, octetDeltaCount.
FLOW = [(8, 4), (12, 4), (4, 1), (2, 4), (1, 4)]


def rows(n, first=1, extra=()):
    """n flows; flow i has i + first packets of 100 bytes (raw, as exported)."""
    out = []
    for i in range(n):
        p = first + i
        out.append(["10.99.0.%d" % (i + 1), "10.99.1.1", 6, p, 100 * p] + list(extra))
    return out


cases = {}


def case(name, fmt, messages, expect, tshark):
    """expect: per data record (raw packets, raw bytes, rate, source); tshark: field -> values."""
    frames = [Ether() / IP(src=EXPORTER, dst="127.0.0.1") / UDP(sport=40000, dport=PORT) / Raw(m.bytes())
              for m in messages]
    wrpcap(os.path.join(OUT, name + ".pcap"), frames)
    cases[name] = {
        "format": fmt,
        "records": [{"raw_packets": p, "raw_bytes": b, "rate": r, "source": s} for p, b, r, s in expect],
        "tshark": tshark,
    }


def expect_rows(rs, rate, source, packets_col=3):
    return [(r[packets_col], r[packets_col + 1], rate, source) for r in rs]


# --- IPFIX, PSAMP selector algorithms (RFC 5475 / RFC 7014), scoped by selectorId (302) ---
SEL_DATA = FLOW + [(302, 4)]


def selector_case(name, algorithm_fields, values, rate, source, tshark):
    m = Ipfix(0)
    m.options_template(300, [(302, 4)], [(304, 2)] + algorithm_fields)
    m.template(256, SEL_DATA)
    m.data(300, [(302, 4), (304, 2)] + algorithm_fields, [[1] + values])
    d = rows(4, extra=[1])
    m.data(256, SEL_DATA, d)
    case(name, "ipfix", [m], expect_rows(d, rate, source), tshark)


selector_case("ipfix-selector1-count", [(305, 4), (306, 4)], [1, 1, 99], 100, "options:selectorId=1",
              {"cflow.selector_algorithm": ["1"], "cflow.sampling_packet_interval": ["1"],
               "cflow.sampling_packet_space": ["99"]})
selector_case("ipfix-selector2-time", [(307, 4), (308, 4)], [2, 1000, 99000], 1, "time-based",
              {"cflow.selector_algorithm": ["2"], "cflow.sampling_time_interval": ["1000"],
               "cflow.sampling_time_space": ["99000"]})
# The Cisco router: random 1 out of 256, with a misleading samplingPacketInterval 1.
selector_case("ipfix-selector3-random", [(309, 4), (310, 4), (305, 4)], [3, 1, 256, 1], 256,
              "options:selectorId=1",
              {"cflow.selector_algorithm": ["3"], "cflow.sampling_size": ["1"],
               "cflow.sampling_population": ["256"]})
selector_case("ipfix-selector4-probabilistic", [(311, 8)], [4, 1.0 / 512], 512, "options:selectorId=1",
              {"cflow.selector_algorithm": ["4"]})

# --- IPFIX, the deprecated RFC 5102 elements ---
# samplerId (48) scoped options with samplerMode (49) and samplerRandomInterval (50); the
# records name their sampler. Two samplers, records alternating between them.
m = Ipfix(0)
m.options_template(301, [(48, 1)], [(49, 1), (50, 4)])
m.template(257, FLOW + [(48, 1)])
m.data(301, [(48, 1), (49, 1), (50, 4)], [[3, 2, 1000], [4, 2, 50]])
d = [r + [3 if i % 2 == 0 else 4] for i, r in enumerate(rows(6))]
m.data(257, FLOW + [(48, 1)], d)
case("ipfix-rfc5102-samplers", "ipfix", [m],
     [(r[3], r[4], 1000 if r[5] == 3 else 50, "options:samplerId=%d" % r[5]) for r in d],
     {"cflow.sampler_random_interval": ["1000", "50"]})
# samplingInterval (34) + samplingAlgorithm (35) for the whole observation domain (scope 149).
m = Ipfix(0)
m.options_template(302, [(149, 4)], [(34, 4), (35, 1)])
m.template(258, FLOW)
m.data(302, [(149, 4), (34, 4), (35, 1)], [[DOMAIN, 64, 1]])
d = rows(3)
m.data(258, FLOW, d)
case("ipfix-rfc5102-domain", "ipfix", [m], expect_rows(d, 64, "options:domain=%d" % DOMAIN),
     {"cflow.sampling_interval": ["64"], "cflow.sampling_algorithm": ["1"]})
# samplingInterval (34) in each data record: the record's own statement.
m = Ipfix(0)
m.template(259, FLOW + [(34, 4)])
d = rows(3, extra=[32])
m.data(259, FLOW + [(34, 4)], d)
case("ipfix-record-interval", "ipfix", [m], expect_rows(d, 32, "record"),
     {"cflow.sampling_interval": ["32", "32", "32"]})

# --- NetFlow v9 options (RFC 3954 section 6.1; Cisco's FLOW_SAMPLER_* fields) ---
# SAMPLING_INTERVAL + SAMPLING_ALGORITHM with System scope, as softflowd -s sends them.
m = V9(1)
m.options_template(260, [(1, 4)], [(34, 4), (35, 1)])
m.template(261, FLOW)
m.data(260, [(1, 4), (34, 4), (35, 1)], [[0, 10, 1]])
d = rows(4)
m.data(261, FLOW, d)
case("v9-sampling-interval", "netflow_v9", [m], expect_rows(d, 10, "options:domain=%d" % DOMAIN),
     {"cflow.sampling_interval": ["10"], "cflow.sampling_algorithm": ["1"]})
# FLOW_SAMPLER_ID / MODE / RANDOM_INTERVAL options per sampler; records carry FLOW_SAMPLER_ID,
# as pmacctd's nfprobe and Cisco IOS send them. Two samplers.
m = V9(1)
m.options_template(262, [(1, 4)], [(48, 1), (49, 1), (50, 4)])
m.template(263, FLOW + [(48, 1)])
m.data(262, [(1, 4), (48, 1), (49, 1), (50, 4)], [[0, 1, 2, 100], [0, 2, 2, 1000]])
d = [r + [1 if i < 2 else 2] for i, r in enumerate(rows(5))]
m.data(263, FLOW + [(48, 1)], d)
case("v9-flow-samplers", "netflow_v9", [m],
     [(r[3], r[4], 100 if r[5] == 1 else 1000, "options:samplerId=%d" % r[5]) for r in d],
     {"cflow.sampler_random_interval": ["100", "1000"]})
# SAMPLING_INTERVAL in each data record.
m = V9(1)
m.template(264, FLOW + [(34, 4)])
d = rows(2, extra=[20])
m.data(264, FLOW + [(34, 4)], d)
case("v9-record-interval", "netflow_v9", [m], expect_rows(d, 20, "record"),
     {"cflow.sampling_interval": ["20", "20"]})

# --- Rate changes and absurd rates ---
# Selector 1 announced 1 in 100, then 1 in 200: records before the change at 100, after at 200.
m1, m2 = Ipfix(0), Ipfix(3)
opts = [(302, 4), (304, 2), (305, 4), (306, 4)]
m1.options_template(303, [(302, 4)], [(304, 2), (305, 4), (306, 4)])
m1.template(265, SEL_DATA)
m1.data(303, opts, [[1, 1, 1, 99]])
d1 = rows(2, extra=[1])
m1.data(265, SEL_DATA, d1)
m2.data(303, opts, [[1, 1, 1, 199]])
d2 = rows(2, first=10, extra=[1])
m2.data(265, SEL_DATA, d2)
case("ipfix-rate-change", "ipfix", [m1, m2],
     expect_rows(d1, 100, "options:selectorId=1") + expect_rows(d2, 200, "options:selectorId=1"),
     {"cflow.sampling_packet_space": ["99", "199"]})
# Random 1 out of 1,000,000: above the default ceiling (1:65,536), not applied.
m = Ipfix(0)
m.options_template(304, [(302, 4)], [(304, 2), (309, 4), (310, 4)])
m.template(266, SEL_DATA)
m.data(304, [(302, 4), (304, 2), (309, 4), (310, 4)], [[9, 3, 1, 1_000_000]])
d = rows(2, extra=[9])
m.data(266, SEL_DATA, d)
case("ipfix-above-ceiling", "ipfix", [m], expect_rows(d, 1, "ignored:above-ceiling=1000000"),
     {"cflow.sampling_population": ["1000000"]})

with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
print("%d captures in %s" % (len(cases), OUT))
