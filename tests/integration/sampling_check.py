#!/usr/bin/env python3
"""Checks sampled flow exports two ways, record by record (issue 18).

  sampling_check.py forms DIR PORT AGENT_BIN
      DIR holds sampling_captures.py's captures and cases.json. For each case: tshark reads
      back the options fields the case states (the fixture is what an independent decoder
      sees), and `citywatch-agent decode` gives every data record the specification's rate,
      scales packets and bytes by exactly that rate, and names the rate's source.

  sampling_check.py live CAPTURE PORT {cflow|sflow} AGENT_BIN
      CAPTURE holds a real exporter's sampled datagrams. tshark decodes each record's raw
      counters and its rate (NetFlow/IPFIX: the options data for the record's sampler, else
      the domain's; sFlow: each sample's rate); `citywatch-agent decode` must agree on every
      record: same rate, packets and bytes = raw x rate. Prints a JSON summary of the scaled
      totals (what the collector must count) and the raw ones.
Exits non-zero, naming the case and the record, on any difference.
"""
import collections
import json
import subprocess
import sys


def tshark_json(path, port, kind):
    out = subprocess.run(["tshark", "-r", path, "-n", "-d", f"udp.port=={port},{kind}", "-T", "json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def walk(node, key_fn):
    """Yields every dict below node for which key_fn(dict) holds, in document order."""
    if isinstance(node, dict):
        if key_fn(node):
            yield node
        for v in node.values():
            yield from walk(v, key_fn)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v, key_fn)


def all_values(node, field):
    out = []
    for d in walk(node, lambda d: field in d):
        v = d[field]
        out.extend(v if isinstance(v, list) else [v])
    return out


def decode(agent, path, port):
    p = subprocess.run([agent, "decode", "--port", str(port), path], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"citywatch-agent decode {path} failed ({p.returncode}): {p.stderr.strip()}")
    records = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    summary = json.loads(p.stderr.strip().splitlines()[-1])
    return records, summary


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def forms(directory, port, agent):
    cases = json.load(open(f"{directory}/cases.json"))
    checked = 0
    for name, case in cases.items():
        path = f"{directory}/{name}.pcap"
        frames = tshark_json(path, port, "cflow")
        for field, want in case["tshark"].items():
            got = all_values(frames, field)
            if [str(float(g)) if "." in str(g) else str(g) for g in got] != \
                    [str(float(w)) if "." in str(w) else str(w) for w in want]:
                fail(f"{name}: tshark reads {field} = {got}, the fixture meant {want}")
        if all_values(frames, "_ws.malformed"):
            fail(f"{name}: tshark finds the capture malformed")
        records, summary = decode(agent, path, port)
        want = case["records"]
        if len(records) != len(want):
            fail(f"{name}: decode gave {len(records)} records, expected {len(want)}")
        if summary["decode_errors"] != 0:
            fail(f"{name}: decode errors {summary['errors_by_reason']}")
        for i, (r, w) in enumerate(zip(records, want)):
            got = (r["sampling_rate"], r["packets"], r["bytes"], r["sampling_source"])
            exp = (w["rate"], w["raw_packets"] * w["rate"], w["raw_bytes"] * w["rate"], w["source"])
            if got != exp:
                fail(f"{name}: record {i}: (rate, packets, bytes, source) = {got}, expected {exp}")
        print(f"{name}: {len(records)} records at rates "
              f"{sorted({w['rate'] for w in want})} from {sorted({w['source'] for w in want})}; "
              f"rate changes {summary['sampling_rate_changes']}, "
              f"above ceiling {summary['sampling_above_ceiling']}")
        expect_changes = 1 if name == "ipfix-rate-change" else 0
        expect_ceiling = len(want) if name == "ipfix-above-ceiling" else 0
        if summary["sampling_rate_changes"] != expect_changes:
            fail(f"{name}: sampling_rate_changes {summary['sampling_rate_changes']}, expected {expect_changes}")
        if summary["sampling_above_ceiling"] != expect_ceiling:
            fail(f"{name}: sampling_above_ceiling {summary['sampling_above_ceiling']}, expected {expect_ceiling}")
        checked += len(records)
    print(f"PASS: {len(cases)} captures, {checked} records: rate, scaled packets and bytes and source as specified")


def cflow_records(frames):
    """(raw packets, raw bytes, rate) per data record, with the rate tshark's decode states:
    per record FLOW_SAMPLER_ID -> that sampler's random interval; else the options data's
    SAMPLING_INTERVAL; else 1."""
    samplers, domain_rate, out = {}, None, []
    for fr in frames:
        layer = fr["_source"]["layers"].get("cflow")
        if layer is None:
            continue
        for d in walk(layer, lambda d: any(k in d for k in ("cflow.sampler_random_interval",
                                                            "cflow.sampling_interval",
                                                            "cflow.packets", "cflow.packets64"))):
            if "cflow.packets" in d or "cflow.packets64" in d:
                pk = int(d.get("cflow.packets", d.get("cflow.packets64", 0)))
                ob = int(d.get("cflow.octets", d.get("cflow.octets64", 0)))
                if "cflow.sampler_id" in d and d["cflow.sampler_id"] in samplers:
                    rate = samplers[d["cflow.sampler_id"]]
                elif "cflow.sampling_interval" in d:
                    rate = int(d["cflow.sampling_interval"])
                else:
                    rate = domain_rate or 1
                out.append((pk, ob, rate))
            elif "cflow.sampler_random_interval" in d:
                samplers[d.get("cflow.sampler_id")] = int(d["cflow.sampler_random_interval"])
            elif "cflow.sampling_interval" in d:
                domain_rate = int(d["cflow.sampling_interval"])
    return out


def sflow_records(frames):
    """(frames, bytes of whole frames, rate) per flow sample."""
    out = []
    for fr in frames:
        layer = fr["_source"]["layers"].get("sflow")
        if layer is None:
            continue
        for s in walk(layer, lambda d: "sflow.flow_sample.sampling_rate" in d):
            rate = int(s["sflow.flow_sample.sampling_rate"])
            lens = [int(v) for v in all_values(s, "sflow_245.header.frame_length")]
            out.append((len(lens), sum(lens), rate))
    return out


def live(path, port, kind, agent):
    frames = tshark_json(path, port, kind)
    truth = cflow_records(frames) if kind == "cflow" else sflow_records(frames)
    records, summary = decode(agent, path, port)
    # sFlow counter samples (interface counters, sent on the exporter's own timer) are not
    # flows: compare flow records only.
    records = [x for x in records if x.get("kind") == "flow"]
    if not truth:
        fail(f"{path}: tshark decoded no records")
    if summary["decode_errors"] != 0:
        fail(f"{path}: decode errors {summary['errors_by_reason']}")
    want = collections.Counter((p * r, b * r, r) for p, b, r in truth)
    got = collections.Counter((x["packets"], x["bytes"], x["sampling_rate"]) for x in records)
    if want != got:
        missing = list((want - got).items())[:5]
        extra = list((got - want).items())[:5]
        fail(f"{path}: decode and tshark x rate differ; tshark only {missing}; decode only {extra}")
    rates = collections.Counter(r for _, _, r in truth)
    print(json.dumps({
        "records": len(truth),
        "rates": {str(k): v for k, v in sorted(rates.items())},
        "raw_packets": sum(p for p, _, _ in truth),
        "raw_bytes": sum(b for _, b, _ in truth),
        "scaled_packets": sum(p * r for p, _, r in truth),
        "scaled_bytes": sum(b * r for _, b, r in truth),
        "sources": sorted({x.get("sampling_source", "") for x in records}),
    }))


if __name__ == "__main__":
    if sys.argv[1] == "forms":
        forms(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif sys.argv[1] == "live":
        live(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        sys.exit(__doc__)
